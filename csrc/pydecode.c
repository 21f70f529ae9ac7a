/* pydecode.c: the cells of a SLOTS column (or any run of checked slots)
 * decoded to Python objects in one call, for copy-outs (load, to_python).
 *
 * Like pytable.c: CPython limited API (3.10), every function called with
 * the GIL held through ctypes (bfast_archive/_pytable.py), never through
 * cffi. The Python reader decodes a slot with _decode.mat; this file
 * decodes the common scalar cells the same way, to the same objects, and
 * leaves every other cell to it: a cell is decoded here only when every
 * check the Python path makes passes, else it is reported as a fallback
 * and the Python path decodes it (and raises its own error for a corrupt
 * one). So a damaged cell gives exactly the error it gives cell by cell.
 *
 * The slots handed in are positions the caller has checked
 * (bfa_slots_check, bfa_dict_check); the nodes they name are checked here
 * with the core's functions (bfa_seq_check, bfa_seq_get, bfa_dict_check)
 * before any byte of them is read. Those functions make the bytes they
 * check resident in an archive read by range (sparse.c), so no byte is read
 * here before it arrived. Bounds are checked again before every read.
 */
#include "bfa_python.h"

#include "bfa_internal.h"

/* Payloads longer than this are claimed (tracked against sharing) by a
 * copy-out: arrays.TRACK_MIN. */
#define TRACK_MIN 64u
#define MAX_MICROS 315537897599999999LL /* 9999-12-31 23:59:59.999999 */
#define DAY_MICROS 86400000000LL

/* What the decoding needs from Python, in the ctx tuple (see _pytable.py). */
typedef struct {
    PyObject *zone;       /* _decode._tz(offset, name) */
    PyObject *datetime;   /* datetime.datetime */
    PyObject *date;       /* datetime.date */
    PyObject *uuid;       /* uuid.UUID */
    PyObject *safe;       /* uuid.SafeUUID.unknown */
    PyObject *decimal;    /* decimal.Decimal */
    PyObject *fold_kw;    /* {"fold": 1} */
    PyObject *int_name;   /* "int" */
    PyObject *safe_name;  /* "is_safe" */
    allocfunc uuid_alloc;
    /* the last zone made: most columns have one */
    int zone_set;
    int64_t zone_offset;
    int zone_naive;
    const uint8_t *zone_name;
    uint64_t zone_name_len;
    int zone_has_name;
    PyObject *zone_obj;
} decoder;

static int decoder_init(decoder *d, PyObject *ctx) {
    memset(d, 0, sizeof *d);
    if (!PyTuple_CheckExact(ctx) || PyTuple_Size(ctx) != 9) {
        PyErr_SetString(PyExc_TypeError, "pydecode: bad context");
        return -1;
    }
    PyObject **fields[9] = {&d->zone, &d->datetime, &d->date, &d->uuid, &d->safe,
                            &d->decimal, &d->fold_kw, &d->int_name, &d->safe_name};
    for (Py_ssize_t i = 0; i < 9; i++) *fields[i] = PyTuple_GetItem(ctx, i);
    if (!PyType_Check(d->uuid)) {
        PyErr_SetString(PyExc_TypeError, "pydecode: UUID is not a type");
        return -1;
    }
    d->uuid_alloc = (allocfunc)PyType_GetSlot((PyTypeObject *)d->uuid, Py_tp_alloc);
    if (d->uuid_alloc == NULL) {
        PyErr_Clear();
        PyErr_SetString(PyExc_TypeError, "pydecode: UUID has no allocator");
        return -1;
    }
    return 0;
}

static void decoder_free(decoder *d) { Py_CLEAR(d->zone_obj); }

/* A Python exception raised while decoding a cell means "not here": the
 * Python path decodes the cell again and reports it. Only MemoryError is
 * kept (returned as -1). */
static int not_here(void) {
    if (PyErr_ExceptionMatches(PyExc_MemoryError)) return -1;
    PyErr_Clear();
    return 0;
}

static PyObject *utf8(const uint8_t *p, uint64_t n) {
    return PyUnicode_DecodeUTF8((const char *)p, (Py_ssize_t)n, "surrogatepass");
}

/* Days from 1970-01-01 to y-m-d (H. Hinnant's civil_from_days). */
static void civil(int64_t z, int *y, int *m, int *dd) {
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t day = doy - (153 * mp + 2) / 5 + 1;
    int64_t month = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yoe + era * 400 + (month <= 2));
    *m = (int)month;
    *dd = (int)day;
}

#define ORDINAL_1970 719163 /* date(1970, 1, 1).toordinal() */

/* The timezone of (offset, name) as _decode._tz makes it; NULL with no
 * error set: not a zone this path makes (the Python path says why). */
static PyObject *zone_of(decoder *d, int naive, int64_t offset, const uint8_t *name,
                         uint64_t name_len, int has_name, int *fail) {
    if (d->zone_set && d->zone_naive == naive && d->zone_offset == offset &&
        d->zone_has_name == has_name && d->zone_name_len == name_len &&
        (name_len == 0 || memcmp(d->zone_name, name, name_len) == 0)) {
        return d->zone_obj;
    }
    PyObject *off = naive ? Py_None : PyLong_FromLongLong(offset);
    if (off == NULL) goto error;
    if (naive) Py_INCREF(off);
    PyObject *nm = has_name ? utf8(name, name_len) : Py_None;
    if (nm == NULL) {
        Py_DECREF(off);
        goto error;
    }
    if (!has_name) Py_INCREF(nm);
    PyObject *z = PyObject_CallFunctionObjArgs(d->zone, off, nm, NULL);
    Py_DECREF(off);
    Py_DECREF(nm);
    if (z == NULL) goto error;
    Py_XDECREF(d->zone_obj);
    d->zone_obj = z;
    d->zone_set = 1;
    d->zone_naive = naive;
    d->zone_offset = offset;
    d->zone_name = name;
    d->zone_name_len = name_len;
    d->zone_has_name = has_name;
    return z;
error:
    *fail = not_here();
    return NULL;
}

/* The datetime of the DATETIME node at `off` (aux n), as
 * _decode.datetime_node builds it. NULL, *fail 0: a fallback. */
static PyObject *datetime_cell(decoder *d, const uint8_t *buf, uint64_t len, uint64_t n,
                               uint64_t off, int *fail) {
    *fail = 0;
    if (n != 4 || bfa_seq_check(buf, len, off, 4) < 0) return NULL;
    if (!bfa_in_range(off, 8 + 4 * 16, len)) return NULL;
    const uint8_t *s = buf + off + 8;
    uint64_t w0 = bfa_ld64(s), w1 = bfa_ld64(s + 16), w2 = bfa_ld64(s + 32),
             w3 = bfa_ld64(s + 48);
    int64_t wall = (int64_t)bfa_ld64(s + 8), fold = (int64_t)bfa_ld64(s + 24),
            offset = (int64_t)bfa_ld64(s + 40);
    uint32_t t2 = (uint32_t)(w2 & 0xFF), t3 = (uint32_t)(w3 & 0xFF);
    if ((w0 & 0xFF) != BFA_T_INT || (w1 & 0xFF) != BFA_T_INT ||
        (t2 != BFA_T_INT && t2 != BFA_T_NONE))
        return NULL;
    const uint8_t *name = NULL;
    uint64_t name_len = w3 >> 8;
    if (t3 == BFA_T_SSTR) {
        if (name_len > 8) return NULL;
        name = s + 56;
    } else if (t3 == BFA_T_STR) {
        uint64_t p3 = bfa_ld64(s + 56);
        if (!bfa_in_range(p3, name_len, len)) return NULL;
        name = buf + p3;
    } else if (t3 != BFA_T_NONE) {
        return NULL;
    } else {
        name_len = 0;
    }
    int naive = t2 == BFA_T_NONE;
    if (naive && t3 != BFA_T_NONE) return NULL; /* a name without an offset */
    if (wall < 0 || wall > MAX_MICROS || (fold != 0 && fold != 1)) return NULL;
    if (!naive && (offset <= -DAY_MICROS || offset >= DAY_MICROS)) return NULL;
    PyObject *tz = zone_of(d, naive, naive ? 0 : offset, name, name_len, t3 != BFA_T_NONE, fail);
    if (tz == NULL) return NULL;
    int64_t days = wall / DAY_MICROS, rest = wall % DAY_MICROS;
    int y, m, dd;
    civil(days + 1 - ORDINAL_1970, &y, &m, &dd);
    int64_t secs = rest / 1000000;
    PyObject *args = Py_BuildValue("(iiiiiiiO)", y, m, dd, (int)(secs / 3600),
                                   (int)(secs / 60 % 60), (int)(secs % 60),
                                   (int)(rest % 1000000), tz);
    if (args == NULL) return NULL;
    PyObject *out = PyObject_Call(d->datetime, args, fold ? d->fold_kw : NULL);
    Py_DECREF(args);
    if (out == NULL) *fail = not_here();
    return out;
}

/* uuid.UUID(bytes=b) without its __init__: the object with `int` and
 * `is_safe` set, as UUID.__init__ (and its unpickling) leaves it. */
static PyObject *uuid_cell(decoder *d, const uint8_t *b, int *fail) {
    *fail = 0;
    PyObject *hi = PyLong_FromUnsignedLongLong(
        ((uint64_t)b[0] << 56) | ((uint64_t)b[1] << 48) | ((uint64_t)b[2] << 40) |
        ((uint64_t)b[3] << 32) | ((uint64_t)b[4] << 24) | ((uint64_t)b[5] << 16) |
        ((uint64_t)b[6] << 8) | (uint64_t)b[7]);
    PyObject *lo = PyLong_FromUnsignedLongLong(
        ((uint64_t)b[8] << 56) | ((uint64_t)b[9] << 48) | ((uint64_t)b[10] << 40) |
        ((uint64_t)b[11] << 32) | ((uint64_t)b[12] << 24) | ((uint64_t)b[13] << 16) |
        ((uint64_t)b[14] << 8) | (uint64_t)b[15]);
    PyObject *sixty_four = PyLong_FromLong(64);
    PyObject *shifted = NULL, *value = NULL, *obj = NULL;
    if (hi == NULL || lo == NULL || sixty_four == NULL) goto done;
    shifted = PyNumber_Lshift(hi, sixty_four);
    if (shifted == NULL) goto done;
    value = PyNumber_Or(shifted, lo);
    if (value == NULL) goto done;
    obj = d->uuid_alloc((PyTypeObject *)d->uuid, 0);
    if (obj == NULL) goto done;
    if (PyObject_GenericSetAttr(obj, d->int_name, value) < 0 ||
        PyObject_GenericSetAttr(obj, d->safe_name, d->safe) < 0)
        Py_CLEAR(obj);
done:
    Py_XDECREF(hi);
    Py_XDECREF(lo);
    Py_XDECREF(sixty_four);
    Py_XDECREF(shifted);
    Py_XDECREF(value);
    if (obj == NULL) *fail = not_here();
    return obj;
}

/* decimal.Decimal of the n ASCII bytes at p, provided str() spells the
 * value as those bytes (_decode._decimal's rule). */
static PyObject *decimal_cell(decoder *d, const uint8_t *p, uint64_t n, int *fail) {
    *fail = 0;
    for (uint64_t i = 0; i < n; i++)
        if (p[i] >= 0x80) return NULL;
    PyObject *text = PyUnicode_FromStringAndSize((const char *)p, (Py_ssize_t)n);
    if (text == NULL) goto error;
    PyObject *value = PyObject_CallFunctionObjArgs(d->decimal, text, NULL);
    if (value == NULL) {
        Py_DECREF(text);
        goto error;
    }
    PyObject *spelled = PyObject_Str(value);
    int same = spelled == NULL ? -1 : PyUnicode_Compare(spelled, text);
    Py_XDECREF(spelled);
    Py_DECREF(text);
    if (same == 0) return value;
    Py_DECREF(value);
    if (same == -1 && PyErr_Occurred()) goto error;
    return NULL;
error:
    *fail = not_here();
    return NULL;
}

/* The value of the checked slot at `pos`, or NULL: a fallback (*fail 0) or
 * an error (*fail -1). `claim` is set to the offset a copy-out claims for
 * it (0: none). */
static PyObject *cell(decoder *d, const uint8_t *buf, uint64_t len, uint64_t pos, int *fail,
                      uint64_t *claim) {
    *fail = 0;
    *claim = 0;
    if (!bfa_in_range(pos, BFA_SLOT_SIZE, len)) return NULL;
    uint64_t w0 = bfa_ld64(buf + pos), p = bfa_ld64(buf + pos + 8), aux = w0 >> 8;
    PyObject *out;
    switch (w0 & 0xFF) {
    case BFA_T_NONE:
        Py_RETURN_NONE;
    case BFA_T_FALSE:
        Py_RETURN_FALSE;
    case BFA_T_TRUE:
        Py_RETURN_TRUE;
    case BFA_T_INT:
        out = PyLong_FromLongLong((long long)p);
        break;
    case BFA_T_FLOAT: {
        double v;
        memcpy(&v, &p, sizeof v);
        out = PyFloat_FromDouble(v);
        break;
    }
    case BFA_T_SSTR:
        if (aux > 8) return NULL;
        out = utf8(buf + pos + 8, aux);
        break;
    case BFA_T_STR:
        if (!bfa_in_range(p, aux, len)) return NULL;
        out = utf8(buf + p, aux);
        if (aux > TRACK_MIN) *claim = p;
        break;
    case BFA_T_DATE: {
        if (p < 1 || p > 3652059u) return NULL;
        int y, m, dd;
        civil((int64_t)p - ORDINAL_1970, &y, &m, &dd);
        out = PyObject_CallFunction(d->date, "iii", y, m, dd);
        break;
    }
    case BFA_T_DATETIME:
        out = datetime_cell(d, buf, len, aux, p, fail);
        if (out != NULL) *claim = p;
        return out;
    case BFA_T_UUID:
        if (aux != 16 || !bfa_in_range(p, 16, len)) return NULL;
        return uuid_cell(d, buf + p, fail);
    case BFA_T_DECIMAL:
        if (!bfa_in_range(p, aux, len)) return NULL;
        out = decimal_cell(d, buf + p, aux, fail);
        if (out != NULL && aux > TRACK_MIN) *claim = p;
        return out;
    default:
        return NULL;
    }
    if (out == NULL) *fail = not_here();
    return out;
}

/* Position i of a run: `positions` (uint64 little-endian, bytes) or
 * start + 16 * i. */
static uint64_t position(const uint8_t *positions, uint64_t start, Py_ssize_t i) {
    return positions != NULL ? bfa_ld64(positions + 8 * i) : start + 16u * (uint64_t)i;
}

static int append_u64(PyObject *list, uint64_t v) {
    PyObject *o = PyLong_FromUnsignedLongLong(v);
    if (o == NULL) return -1;
    int rc = PyList_Append(list, o);
    Py_DECREF(o);
    return rc;
}

/* bfa_py_decode_slots(buf, len, positions, start, count, ctx): the values
 * of `count` checked slots (at the uint64 offsets in the bytes `positions`,
 * or, when it is None, at start, start + 16, ...), as
 * (values, fallbacks, claims): values[i] is the cell's value, or None for
 * each index listed in `fallbacks` (cells for the Python path); `claims`
 * the offsets a copy-out claims for the cells decoded here. */
BFA_EXPORT PyObject *bfa_py_decode_slots(const uint8_t *buf, uint64_t len, PyObject *positions,
                                         uint64_t start, uint64_t count, PyObject *ctx) {
    const uint8_t *at = NULL;
    if (positions != Py_None) {
        if (!PyBytes_CheckExact(positions) ||
            (uint64_t)PyBytes_Size(positions) != 8u * count) {
            PyErr_SetString(PyExc_TypeError, "bfa_py_decode_slots: bad positions");
            return NULL;
        }
        at = (const uint8_t *)PyBytes_AsString(positions);
    }
    if (buf == NULL || count > (uint64_t)PY_SSIZE_T_MAX / 16u) {
        PyErr_SetString(PyExc_ValueError, "bfa_py_decode_slots: bad arguments");
        return NULL;
    }
    decoder d;
    if (decoder_init(&d, ctx) < 0) return NULL;
    Py_ssize_t n = (Py_ssize_t)count;
    PyObject *values = PyList_New(n), *fallbacks = PyList_New(0), *claims = PyList_New(0);
    if (values == NULL || fallbacks == NULL || claims == NULL) goto fail;
    for (Py_ssize_t i = 0; i < n; i++) {
        int failed;
        uint64_t claim;
        PyObject *v = cell(&d, buf, len, position(at, start, i), &failed, &claim);
        if (v == NULL) {
            if (failed < 0) goto fail;
            Py_INCREF(Py_None);
            PyList_SetItem(values, i, Py_None);
            PyObject *index = PyLong_FromSsize_t(i);
            if (index == NULL || PyList_Append(fallbacks, index) < 0) {
                Py_XDECREF(index);
                goto fail;
            }
            Py_DECREF(index);
            continue;
        }
        PyList_SetItem(values, i, v);
        if (claim != 0 && append_u64(claims, claim) < 0) goto fail;
    }
    decoder_free(&d);
    return Py_BuildValue("(NNN)", values, fallbacks, claims);
fail:
    decoder_free(&d);
    Py_XDECREF(values);
    Py_XDECREF(fallbacks);
    Py_XDECREF(claims);
    return NULL;
}

/* A key slot's bytes, if it is a str key (SSTR, or STR not claimed). */
static int str_key(const uint8_t *buf, uint64_t len, uint64_t pos, const uint8_t **b,
                   uint64_t *n) {
    uint64_t w0 = bfa_ld64(buf + pos), aux = w0 >> 8;
    if ((w0 & 0xFF) == BFA_T_SSTR && aux <= 8) {
        *b = buf + pos + 8;
        *n = aux;
        return 1;
    }
    uint64_t p = bfa_ld64(buf + pos + 8);
    if ((w0 & 0xFF) == BFA_T_STR && aux <= TRACK_MIN && bfa_in_range(p, aux, len)) {
        *b = buf + p;
        *n = aux;
        return 1;
    }
    return 0;
}

/* bfa_py_model_cells(buf, len, start, count): for `count` checked MODEL
 * slots at start, start + 16, ... that name one schema node and DICT bodies
 * of the same str keys in the same order (each body checked with
 * bfa_dict_check), (schema_off, key_positions, value_positions, claims):
 * the key slots of the first body (bytes of uint64), per key the value
 * slots of every body (a list of bytes), and the offsets a copy-out claims
 * (each model node and body). None when they are not such cells (the
 * Python path then reads them one by one and reports what is wrong). */
BFA_EXPORT PyObject *bfa_py_model_cells(const uint8_t *buf, uint64_t len, uint64_t start,
                                        uint64_t count) {
    if (buf == NULL || count == 0 || count > (uint64_t)PY_SSIZE_T_MAX / 16u) Py_RETURN_NONE;
    uint64_t schema_off = 0, k = 0, first_body = 0;
    uint8_t **cols = NULL;
    PyObject *result = NULL, *claims = NULL, *values = NULL, *keys = NULL;
    for (uint64_t i = 0; i < count; i++) {
        uint64_t pos = start + 16u * i;
        if (!bfa_in_range(pos, BFA_SLOT_SIZE, len)) goto none;
        uint64_t w0 = bfa_ld64(buf + pos), off = bfa_ld64(buf + pos + 8);
        if ((w0 & 0xFF) != BFA_T_MODEL || (w0 >> 8) != 2) goto none;
        int64_t spos = bfa_seq_get(buf, len, off, 0), bpos = bfa_seq_get(buf, len, off, 1);
        if (spos < 0 || bpos < 0) goto none;
        uint64_t sw = bfa_ld64(buf + spos), bw = bfa_ld64(buf + bpos);
        uint64_t sp = bfa_ld64(buf + spos + 8), bp = bfa_ld64(buf + bpos + 8);
        if ((sw & 0xFF) != BFA_T_DICT || (bw & 0xFF) != BFA_T_DICT) goto none;
        if (i == 0) {
            schema_off = sp;
            k = bw >> 8;
            first_body = bp;
            if (k == 0 || k > 4096) goto none;
            cols = PyMem_Calloc((size_t)k, sizeof *cols);
            if (cols == NULL) goto nomem;
            for (uint64_t j = 0; j < k; j++) {
                cols[j] = PyMem_Malloc((size_t)count * 8u);
                if (cols[j] == NULL) goto nomem;
            }
            claims = PyList_New(0);
            if (claims == NULL) goto fail;
        } else if (sp != schema_off || (bw >> 8) != k) {
            goto none;
        }
        if (bfa_dict_check(buf, len, bp, k) < 0) goto none;
        for (uint64_t j = 0; j < k; j++) {
            uint64_t entry = bp + BFA_DICT_HEADER + j * BFA_DICT_ENTRY;
            uint64_t first = first_body + BFA_DICT_HEADER + j * BFA_DICT_ENTRY;
            const uint8_t *kb, *fb;
            uint64_t kn, fn;
            if (!str_key(buf, len, entry, &kb, &kn) || !str_key(buf, len, first, &fb, &fn) ||
                kn != fn || (kn != 0 && memcmp(kb, fb, kn) != 0))
                goto none;
            bfa_st64(cols[j] + 8u * i, entry + BFA_SLOT_SIZE);
        }
        if (append_u64(claims, off) < 0 || append_u64(claims, bp) < 0) goto fail;
    }
    keys = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(8u * k));
    values = PyList_New((Py_ssize_t)k);
    if (keys == NULL || values == NULL) goto fail;
    for (uint64_t j = 0; j < k; j++) {
        bfa_st64((uint8_t *)PyBytes_AsString(keys) + 8u * j,
                 first_body + BFA_DICT_HEADER + j * BFA_DICT_ENTRY);
        PyObject *col = PyBytes_FromStringAndSize((const char *)cols[j], (Py_ssize_t)(8u * count));
        if (col == NULL) goto fail;
        PyList_SetItem(values, (Py_ssize_t)j, col);
    }
    result = Py_BuildValue("(KOOO)", (unsigned long long)schema_off, keys, values, claims);
    goto done;
nomem:
    PyErr_NoMemory();
    goto fail;
none:
    result = Py_None;
    Py_INCREF(result);
    goto done;
fail:
    result = NULL;
done:
    if (cols != NULL)
        for (uint64_t j = 0; j < k; j++) PyMem_Free(cols[j]);
    PyMem_Free(cols);
    Py_XDECREF(claims);
    Py_XDECREF(values);
    Py_XDECREF(keys);
    return result;
}
