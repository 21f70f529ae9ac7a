/* pyencode.c: the cells of a record table's SLOTS column, encoded in C.
 *
 * A SLOTS column holds one 16-byte slot per cell; the cells' nodes and bytes
 * (referents) are appended to the writer's segment first, cell by cell, then
 * the slots. bfast_archive/writer.py does that one Python call per node;
 * bfa_py_encode_cells does it here for the cell types that realistic models
 * hold, producing EXACTLY the bytes the Python writer produces (same nodes,
 * same order, same padding; tests/test_native_cells.py compares the two):
 *
 *   None, bool, int (64-bit range), float, str (short in the slot, else
 *   appended), and, by the exact type named in `kinds` (a dict the Python
 *   side fills, bfast_archive/_cells.py):
 *   datetime (naive, or with a datetime.timezone), date, uuid.UUID,
 *   decimal.Decimal, enum members inside a model (their value), and
 *   instances of a model class whose stored form is its field values in
 *   field order (MODEL node: [schema slot, dict of the fields]);
 *   and lists and tuples of the values above other than models.
 *
 * Any other cell (an int beyond 64 bits, a str with lone surrogates, a
 * list holding a container, an unknown type, a tzinfo that is not datetime.timezone, nesting
 * beyond the writer's max_depth...) is handed back: the call stops before
 * it, having written nothing for it, and the Python writer encodes that
 * cell (raising its errors, with their paths) before calling again for the
 * rest. Nothing here raises for a value: only MemoryError and the like.
 *
 * Like pytable.c, this runs with the GIL held (called through ctypes'
 * PYFUNCTYPE, bfast_archive/_pytable.py), with the CPython limited API
 * (3.10), and pauses the garbage collector for the call; every object it
 * works on is held by a strong reference while it does.
 */
#include "bfa_python.h"

#include "bfa_internal.h"

#define DONE 1
#define HAND_BACK 0
#define FAILED -1
#define MAX_LEVEL 48   /* C recursion bound (nested models, enum values) */
#define TZ_CACHE 8     /* distinct tzinfo objects remembered per call */
#define FIELDS_ON_STACK 16
/* value() flags: enum members are written as their value (inside a model);
 * only leaves are taken (inside a list or tuple: no container, so no cycle) */
#define IN_MODEL 1
#define LEAVES_ONLY 2

typedef struct {
    PyObject *tz;  /* strong reference */
    int64_t offset; /* microseconds */
    PyObject *name; /* strong reference; NULL: the offset's default name (stored as None) */
} tz_entry;

typedef struct {
    bfa_growbuf blob;       /* the referents, appended to the segment after the call */
    uint64_t base;     /* the segment offset blob.data[0] lands at */
    PyObject *kinds;   /* dict: exact type -> BFA_CELL_* code, or (schema slot, field names) */
    PyObject *tz_type; /* datetime.timezone */
    Py_ssize_t room;   /* field dicts that may be entered (max_depth - open containers) */
    tz_entry tzs[TZ_CACHE];
    int ntz;
} encoder;

typedef uint8_t slot_t[BFA_SLOT_SIZE];

static void set_slot(uint8_t *out, uint64_t word, uint64_t payload) {
    bfa_st64(out, word);
    bfa_st64(out + 8, payload);
}

static uint64_t position(const encoder *e) {
    return e->base + e->blob.len;
}

/* Zero bytes up to the next multiple of 8 of the segment (writer._pad). */
static int pad8(encoder *e) {
    static const uint8_t zeros[8] = {0};
    return bfa_growbuf_append(&e->blob, zeros, (size_t)((8u - position(e) % 8u) % 8u));
}

/* writer._append_bytes(data, inline=True): aligned, then padded to 8. */
static int append(encoder *e, const void *data, size_t n, uint64_t *off) {
    if (pad8(e) < 0) return -1;
    *off = position(e);
    if (bfa_growbuf_append(&e->blob, data, n) < 0) return -1;
    return pad8(e);
}

/* writer.seq_node: count, then the slots. */
static int seq_node(encoder *e, uint32_t tag, const uint8_t *slots, size_t n, uint8_t *out) {
    uint8_t count[8];
    if (pad8(e) < 0) return -1;
    uint64_t off = position(e);
    bfa_st64(count, n);
    if (bfa_growbuf_append(&e->blob, count, 8) < 0 || bfa_growbuf_append(&e->blob, slots, n * BFA_SLOT_SIZE) < 0) return -1;
    set_slot(out, tag | (uint64_t)n << 8, off);
    return 0;
}

/* writer.str: UTF-8 in the slot (<= 8 bytes) or appended. Lone surrogates
 * (the Python writer keeps them, surrogatepass): handed back. */
static int str_slot(encoder *e, PyObject *s, uint8_t *out) {
    Py_ssize_t n;
    const char *u = PyUnicode_AsUTF8AndSize(s, &n);
    if (u == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) return FAILED;
        PyErr_Clear();
        return HAND_BACK;
    }
    if (n <= 8) {
        set_slot(out, BFA_T_SSTR | (uint64_t)n << 8, 0);
        memcpy(out + 8, u, (size_t)n);
        return DONE;
    }
    uint64_t off;
    if (append(e, u, (size_t)n, &off) < 0) return FAILED;
    set_slot(out, BFA_T_STR | (uint64_t)n << 8, off);
    return DONE;
}

static void int_slot(int64_t v, uint8_t *out) {
    set_slot(out, BFA_T_INT, (uint64_t)v);
}

static void none_slot(uint8_t *out) {
    set_slot(out, BFA_T_NONE, 0);
}

/* The attribute names read here, interned once (a fresh name string per
 * lookup would miss the type attribute cache: several times slower). */
enum { A_YEAR, A_MONTH, A_DAY, A_HOUR, A_MINUTE, A_SECOND, A_MICROSECOND, A_FOLD, A_TZINFO,
       A_DAYS, A_SECONDS, A_MICROSECONDS, A_INT, A_VALUE, A_COUNT };
static const char *const attr_text[A_COUNT] = {
    "year", "month", "day", "hour", "minute", "second", "microsecond", "fold", "tzinfo",
    "days", "seconds", "microseconds", "int", "_value_"};
static PyObject *attr_name[A_COUNT];

static int intern_names(void) {
    for (int i = 0; i < A_COUNT; i++) {
        if (attr_name[i] != NULL) continue;
        attr_name[i] = PyUnicode_InternFromString(attr_text[i]);
        if (attr_name[i] == NULL) return -1;
    }
    return 0;
}

/* An int attribute of a datetime/date/timedelta/UUID (C getters, no Python code). */
static int long_attr(PyObject *x, int name, long long *v) {
    PyObject *a = PyObject_GetAttr(x, attr_name[name]);
    if (a == NULL) return -1;
    *v = PyLong_AsLongLong(a);
    Py_DECREF(a);
    return *v == -1 && PyErr_Occurred() ? -1 : 0;
}

/* Days since 0001-01-01 plus one (date.toordinal). */
static int64_t ordinal(long long y, long long m, long long d) {
    static const int before[13] = {0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
    long long p = y - 1;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return (int64_t)(p * 365 + p / 4 - p / 100 + p / 400 + before[m] + (m > 2 && leap) + d);
}

static int date_fields(PyObject *x, long long *y, long long *m, long long *d) {
    if (long_attr(x, A_YEAR, y) < 0 || long_attr(x, A_MONTH, m) < 0 || long_attr(x, A_DAY, d) < 0)
        return -1;
    if (*m < 1 || *m > 12) {
        PyErr_SetString(PyExc_ValueError, "bfa_py_encode_cells: a date's month out of range");
        return -1;
    }
    return 0;
}

/* writer._tz_fields for a datetime.timezone: its offset in microseconds and
 * its name, NULL where it is the offset's default name. Remembered per tz
 * object (the cells hold many references to a few zones). */
static tz_entry *zone(encoder *e, PyObject *tz, tz_entry *scratch) {
    for (int i = 0; i < e->ntz; i++)
        if (e->tzs[i].tz == tz) return &e->tzs[i];
    tz_entry *z = e->ntz < TZ_CACHE ? &e->tzs[e->ntz] : scratch;
    PyObject *td = PyObject_CallMethod(tz, "utcoffset", "O", Py_None);
    if (td == NULL) return NULL;
    long long days, seconds, micros;
    PyObject *name = NULL, *plain = NULL, *plain_name = NULL;
    if (long_attr(td, A_DAYS, &days) < 0 || long_attr(td, A_SECONDS, &seconds) < 0 ||
        long_attr(td, A_MICROSECONDS, &micros) < 0)
        goto fail;
    name = PyObject_CallMethod(tz, "tzname", "O", Py_None);
    if (name == NULL) goto fail;
    plain = PyObject_CallFunctionObjArgs(e->tz_type, td, NULL);
    if (plain == NULL) goto fail;
    plain_name = PyObject_CallMethod(plain, "tzname", "O", Py_None);
    if (plain_name == NULL) goto fail;
    int same = PyObject_RichCompareBool(name, plain_name, Py_EQ);
    if (same < 0) goto fail;
    Py_DECREF(td);
    Py_DECREF(plain);
    Py_DECREF(plain_name);
    if (same) Py_CLEAR(name);
    z->offset = (int64_t)((days * 86400 + seconds) * 1000000 + micros);
    z->name = name;
    Py_INCREF(tz);
    z->tz = tz;
    if (z != scratch) e->ntz++;
    return z;
fail:
    Py_DECREF(td);
    Py_XDECREF(name);
    Py_XDECREF(plain);
    Py_XDECREF(plain_name);
    return NULL;
}

static void zone_release(tz_entry *z) {
    Py_CLEAR(z->tz);
    Py_CLEAR(z->name);
}

/* writer._datetime: DATETIME node [wall microseconds, fold, offset, name]. */
static int datetime_slot(encoder *e, PyObject *x, uint8_t *out) {
    long long y, mo, d, h, mi, s, us, fold;
    if (date_fields(x, &y, &mo, &d) < 0 || long_attr(x, A_HOUR, &h) < 0 ||
        long_attr(x, A_MINUTE, &mi) < 0 || long_attr(x, A_SECOND, &s) < 0 ||
        long_attr(x, A_MICROSECOND, &us) < 0 || long_attr(x, A_FOLD, &fold) < 0)
        return FAILED;
    PyObject *tz = PyObject_GetAttr(x, attr_name[A_TZINFO]);
    if (tz == NULL) return FAILED;
    uint8_t slots[4 * BFA_SLOT_SIZE];
    int64_t wall = ((ordinal(y, mo, d) - 1) * 86400 + h * 3600 + mi * 60 + s) * 1000000 + us;
    int_slot(wall, slots);
    int_slot(fold, slots + 16);
    int rc = DONE;
    if (tz == Py_None) {
        none_slot(slots + 32);
        none_slot(slots + 48);
    } else if ((PyObject *)Py_TYPE(tz) != e->tz_type) {
        rc = HAND_BACK; /* the Python writer refuses it, naming the path */
    } else {
        tz_entry scratch = {NULL, 0, NULL};
        tz_entry *z = zone(e, tz, &scratch);
        if (z == NULL) {
            rc = FAILED;
        } else {
            int_slot(z->offset, slots + 32);
            if (z->name == NULL) none_slot(slots + 48);
            else rc = str_slot(e, z->name, slots + 48);
        }
        zone_release(&scratch);
    }
    Py_DECREF(tz);
    if (rc != DONE) return rc;
    return seq_node(e, BFA_T_DATETIME, slots, 4, out) < 0 ? FAILED : DONE;
}

/* writer._uuid: its 16 bytes (big-endian), appended. */
static int uuid_slot(encoder *e, PyObject *x, uint8_t *out) {
    PyObject *v = PyObject_GetAttr(x, attr_name[A_INT]);
    if (v == NULL) return FAILED;
    if (!PyLong_Check(v)) {
        Py_DECREF(v);
        return HAND_BACK;
    }
    PyObject *shift = PyLong_FromLong(64);
    PyObject *high = shift == NULL ? NULL : PyNumber_Rshift(v, shift);
    Py_XDECREF(shift);
    if (high == NULL) {
        Py_DECREF(v);
        return FAILED;
    }
    unsigned long long lo = PyLong_AsUnsignedLongLongMask(v);
    unsigned long long hi = PyLong_AsUnsignedLongLong(high);
    Py_DECREF(high);
    Py_DECREF(v);
    if (PyErr_Occurred()) {
        /* negative, or beyond 128 bits: the Python writer raises */
        if (!PyErr_ExceptionMatches(PyExc_OverflowError)) return FAILED;
        PyErr_Clear();
        return HAND_BACK;
    }
    uint8_t bytes[16];
    for (int i = 0; i < 8; i++) {
        bytes[i] = (uint8_t)(hi >> (56 - 8 * i));
        bytes[8 + i] = (uint8_t)(lo >> (56 - 8 * i));
    }
    uint64_t off;
    if (append(e, bytes, 16, &off) < 0) return FAILED;
    set_slot(out, BFA_T_UUID | (uint64_t)16 << 8, off);
    return DONE;
}

/* writer._decimal: str(v) in ASCII, appended. */
static int decimal_slot(encoder *e, PyObject *x, uint8_t *out) {
    PyObject *text = PyObject_Str(x);
    if (text == NULL) return FAILED;
    Py_ssize_t n;
    const char *u = PyUnicode_AsUTF8AndSize(text, &n);
    int rc = DONE;
    if (u == NULL) {
        rc = FAILED;
    } else {
        for (Py_ssize_t i = 0; i < n; i++)
            if ((unsigned char)u[i] >= 0x80) rc = HAND_BACK;
        uint64_t off;
        if (rc == DONE) {
            if (append(e, u, (size_t)n, &off) < 0) rc = FAILED;
            else set_slot(out, BFA_T_DECIMAL | (uint64_t)n << 8, off);
        }
    }
    Py_DECREF(text);
    return rc;
}

static int value(encoder *e, PyObject *x, int flags, Py_ssize_t depth, int level, uint8_t *out);

/* writer.model for a model class stored as its field values: the field
 * dict's values, then its keys, the dict node (writer.dict), and the MODEL
 * node [schema, dict]. `spec` is (schema slot, field names). */
static int model_slot(encoder *e, PyObject *x, PyObject *spec, Py_ssize_t depth, int level,
                      uint8_t *out) {
    if (depth >= e->room) return HAND_BACK; /* the Python writer raises NestingError */
    PyObject *schema = PyTuple_GetItem(spec, 0), *names = PyTuple_GetItem(spec, 1);
    if (schema == NULL || names == NULL) return FAILED;
    if (!PyBytes_Check(schema) || PyBytes_Size(schema) != BFA_SLOT_SIZE || !PyTuple_Check(names)) {
        PyErr_SetString(PyExc_TypeError, "bfa_py_encode_cells: bad model spec");
        return FAILED;
    }
    PyObject *fields = PyObject_GenericGetDict(x, NULL);
    if (fields == NULL) return FAILED;
    Py_ssize_t n = PyTuple_Size(names);
    slot_t stack[2 * FIELDS_ON_STACK];
    uint8_t *entries = n <= FIELDS_ON_STACK ? (uint8_t *)stack
                                            : PyMem_Malloc((size_t)n * 2 * BFA_SLOT_SIZE);
    int rc = DONE;
    if (entries == NULL) {
        PyErr_NoMemory();
        rc = FAILED;
    }
    /* the values (each a key's entry's second slot), then the keys */
    for (Py_ssize_t j = 0; j < n && rc == DONE; j++) {
        PyObject *v = PyDict_GetItemWithError(fields, PyTuple_GetItem(names, j));
        if (v == NULL) {
            rc = PyErr_Occurred() ? FAILED : HAND_BACK; /* a field missing */
            break;
        }
        Py_INCREF(v);
        rc = value(e, v, IN_MODEL, depth + 1, level + 1, entries + (2 * j + 1) * BFA_SLOT_SIZE);
        Py_DECREF(v);
    }
    for (Py_ssize_t j = 0; j < n && rc == DONE; j++) {
        PyObject *k = PyTuple_GetItem(names, j);
        rc = PyUnicode_CheckExact(k) ? str_slot(e, k, entries + 2 * j * BFA_SLOT_SIZE) : HAND_BACK;
    }
    Py_DECREF(fields);
    uint8_t body[BFA_SLOT_SIZE];
    if (rc == DONE) {
        uint64_t count = (uint64_t)n, nbuckets = bfa_nbuckets_for(count);
        uint8_t header[BFA_DICT_HEADER];
        bfa_st64(header, count);
        bfa_st64(header + 8, nbuckets);
        bfa_st32(header + 16, 4);
        bfa_st32(header + 20, 0);
        size_t index = (size_t)nbuckets * 4u;
        index += (8u - index % 8u) % 8u;
        uint64_t off = 0;
        if (pad8(e) < 0) {
            rc = FAILED;
        } else {
            off = position(e);
            if (bfa_growbuf_append(&e->blob, header, sizeof header) < 0 ||
                bfa_growbuf_append(&e->blob, entries, (size_t)n * 2 * BFA_SLOT_SIZE) < 0 ||
                bfa_growbuf_reserve(&e->blob, index) < 0) {
                rc = FAILED;
            } else {
                memset(e->blob.data + e->blob.len, 0, index);
                e->blob.len += index;
                if (n > 0 && bfa_dict_build_index(e->blob.data, e->blob.len, e->base, off) != 0) {
                    PyErr_SetString(PyExc_SystemError, "bfa_py_encode_cells: dict index build failed");
                    rc = FAILED;
                }
            }
        }
        set_slot(body, BFA_T_DICT | count << 8, off);
    }
    if (entries != (uint8_t *)stack) PyMem_Free(entries);
    if (rc != DONE) return rc;
    uint8_t pair[2 * BFA_SLOT_SIZE];
    memcpy(pair, PyBytes_AsString(schema), BFA_SLOT_SIZE);
    memcpy(pair + BFA_SLOT_SIZE, body, BFA_SLOT_SIZE);
    return seq_node(e, BFA_T_MODEL, pair, 2, out) < 0 ? FAILED : DONE;
}

/* writer.sequence for a list or tuple of leaves (no container, so it can
 * be no table and hold no cycle): the items, then the node. */
static int seq_slot(encoder *e, PyObject *x, int flags, Py_ssize_t depth, int level,
                    uint8_t *out) {
    if (depth >= e->room) return HAND_BACK; /* the Python writer raises NestingError */
    int list = PyList_CheckExact(x);
    Py_ssize_t n = list ? PyList_Size(x) : PyTuple_Size(x);
    slot_t stack[FIELDS_ON_STACK];
    uint8_t *items = n <= FIELDS_ON_STACK ? (uint8_t *)stack
                                          : PyMem_Malloc((size_t)n * BFA_SLOT_SIZE);
    if (items == NULL) {
        PyErr_NoMemory();
        return FAILED;
    }
    int rc = DONE;
    for (Py_ssize_t i = 0; i < n && rc == DONE; i++) {
        PyObject *item = list ? PyList_GetItem(x, i) : PyTuple_GetItem(x, i);
        if (item == NULL) {
            rc = FAILED;
            break;
        }
        Py_INCREF(item);
        rc = value(e, item, flags | LEAVES_ONLY, depth + 1, level + 1, items + i * BFA_SLOT_SIZE);
        Py_DECREF(item);
    }
    if (rc == DONE && seq_node(e, list ? BFA_T_LIST : BFA_T_TUPLE, items, (size_t)n, out) < 0)
        rc = FAILED;
    if (items != (uint8_t *)stack) PyMem_Free(items);
    return rc;
}

/* One value: its referents appended, its slot in `out`. */
static int value(encoder *e, PyObject *x, int flags, Py_ssize_t depth, int level, uint8_t *out) {
    if (level > MAX_LEVEL) return HAND_BACK;
    PyTypeObject *t = Py_TYPE(x);
    if (x == Py_None) {
        none_slot(out);
        return DONE;
    }
    if (t == &PyUnicode_Type) return str_slot(e, x, out);
    if (t == &PyLong_Type) {
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(x, &overflow);
        if (v == -1 && PyErr_Occurred()) return FAILED;
        if (overflow != 0) return HAND_BACK; /* a BIGINT */
        int_slot(v, out);
        return DONE;
    }
    if (t == &PyFloat_Type) {
        double v = PyFloat_AsDouble(x);
        uint64_t bits;
        memcpy(&bits, &v, sizeof bits);
        set_slot(out, BFA_T_FLOAT, bits);
        return DONE;
    }
    if (t == &PyBool_Type) {
        set_slot(out, x == Py_True ? BFA_T_TRUE : BFA_T_FALSE, 0);
        return DONE;
    }
    if (t == &PyList_Type || t == &PyTuple_Type)
        return flags & LEAVES_ONLY ? HAND_BACK : seq_slot(e, x, flags, depth, level, out);
    PyObject *kind = PyDict_GetItemWithError(e->kinds, (PyObject *)t);
    if (kind == NULL) return PyErr_Occurred() ? FAILED : HAND_BACK;
    if (PyTuple_Check(kind)) {
        if (flags & LEAVES_ONLY) return HAND_BACK;
        Py_INCREF(kind);
        int rc = model_slot(e, x, kind, depth, level, out);
        Py_DECREF(kind);
        return rc;
    }
    long code = PyLong_AsLong(kind);
    switch (code) {
    case BFA_CELL_DATETIME:
        return datetime_slot(e, x, out);
    case BFA_CELL_DATE: {
        long long y, m, d;
        if (date_fields(x, &y, &m, &d) < 0) return FAILED;
        set_slot(out, BFA_T_DATE, (uint64_t)ordinal(y, m, d));
        return DONE;
    }
    case BFA_CELL_UUID:
        return uuid_slot(e, x, out);
    case BFA_CELL_DECIMAL:
        return decimal_slot(e, x, out);
    case BFA_CELL_ENUM: {
        if (!(flags & IN_MODEL)) return HAND_BACK; /* refused outside a model: the Python writer says why */
        PyObject *v = PyObject_GetAttr(x, attr_name[A_VALUE]);
        if (v == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_AttributeError)) return FAILED;
            PyErr_Clear();
            return HAND_BACK;
        }
        int rc = value(e, v, flags, depth, level + 1, out);
        Py_DECREF(v);
        return rc;
    }
    default:
        if (code == -1 && PyErr_Occurred()) return FAILED;
        return HAND_BACK;
    }
}

/* bfa_py_encode_cells(cells, (start, offset, kinds, timezone, in_model, room)):
 * encode cells[start:] until one must be handed back; returns (blob, slots,
 * stop): the referents of cells[start:stop], to be appended to the segment
 * at `offset` (its current end), their slots, and the index of the first
 * cell not encoded (len(cells) when all were). */
BFA_EXPORT PyObject *bfa_py_encode_cells(PyObject *cells, PyObject *ctx) {
    encoder e;
    memset(&e, 0, sizeof e);
    Py_ssize_t start, room;
    long long base;
    int in_model;
    if (!PyList_CheckExact(cells) || !PyTuple_Check(ctx) ||
        !PyArg_ParseTuple(ctx, "nLO!Opn", &start, &base, &PyDict_Type, &e.kinds, &e.tz_type,
                          &in_model, &room) ||
        start < 0 || base < 0 || !PyType_Check(e.tz_type)) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "bfa_py_encode_cells: bad arguments");
        return NULL;
    }
    if (intern_names() < 0) return NULL;
    e.base = (uint64_t)base;
    e.room = room;
    bfa_growbuf slots = {NULL, 0, 0};
    PyObject *result = NULL;
    int gc_was_enabled = PyGC_Disable();
    Py_ssize_t i = start;
    for (; i < PyList_Size(cells); i++) {
        PyObject *x = PyList_GetItem(cells, i);
        if (x == NULL) goto done;
        size_t mark = e.blob.len;
        uint8_t slot[BFA_SLOT_SIZE];
        Py_INCREF(x);
        int rc = value(&e, x, in_model ? IN_MODEL : 0, 0, 0, slot);
        Py_DECREF(x);
        if (rc == FAILED) goto done;
        if (rc == HAND_BACK) {
            e.blob.len = mark; /* nothing of it written */
            break;
        }
        if (bfa_growbuf_append(&slots, slot, sizeof slot) < 0) goto done;
    }
    result = Py_BuildValue("(y#y#n)", e.blob.data ? (const char *)e.blob.data : "",
                           (Py_ssize_t)e.blob.len, slots.data ? (const char *)slots.data : "",
                           (Py_ssize_t)slots.len, i);
done:
    for (int z = 0; z < e.ntz; z++) zone_release(&e.tzs[z]);
    PyMem_Free(e.blob.data);
    PyMem_Free(slots.data);
    if (gc_was_enabled) PyGC_Enable();
    return result;
}
