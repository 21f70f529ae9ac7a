/* pytable.c: record tables to and from Python objects, in C.
 *
 * The one part of the C core that works on Python objects, with the CPython
 * limited API (3.10): the writer's table columns (below), trusted model
 * instances built from a table's columns, and a table's strings, lists of
 * strings and row dicts rebuilt on load. Every function here runs with the
 * GIL held: it is called through ctypes' PYFUNCTYPE (bfast_archive/_pytable.py),
 * never through cffi, which releases the GIL around its calls.
 *
 * A list of dicts with the same str keys in the same order is written as a
 * table (docs/format/nodes.md, "Table node"). Checking every row and converting
 * each column in Python costs about 1 us per row; here one call does it.
 *
 * The rows are read once, row by row (each cell converted while it is in
 * the CPU cache). bfa_py_table_columns(rows, keys) returns, per key, either
 *   - a ready column: a tuple (kind, regions..., nulls mask or None), or
 *   - the list of that column's cells, for the Python writer to decide
 *     (datetimes, nested values, mixed types, ints beyond 64 bits, strings
 *     with lone surrogates, ...),
 * or None when the rows are not such a table, or when anything here is
 * unsure: the Python writer then takes its own path over the rows, so the
 * bytes written are the same either way (tests/test_native_table.py).
 *
 * Only exact types are taken (no subclass: no Python code can run while the
 * rows are read). Regions are little-endian, as the format stores them.
 */
#include "bfa_python.h"

#include "bfa_internal.h"

/* Column kinds: the writer's (BFA_WK_*, shared with bfast_archive/writer.py). */
#define K_INT BFA_WK_INT
#define K_FLOAT BFA_WK_FLOAT
#define K_BOOL BFA_WK_BOOL
#define K_STR BFA_WK_STR
#define K_STRLIST BFA_WK_STRLIST

/* One column while the rows are read. kind 0: not decided yet (only None
 * so far); FALLBACK: its cells go to the Python writer. */
#define FALLBACK -1
typedef struct {
    PyTypeObject *type; /* of the first cell that is not None */
    int kind;
    Py_ssize_t nulls;
    uint8_t *mask;      /* a byte per row, 1 for None */
    uint8_t *fixed;     /* int / float: 8 bytes per row, bool: 1 */
    uint64_t *ends;     /* str: end of each row's bytes; str lists: of its items */
    bfa_growbuf blob;      /* the UTF-8 of the strings */
    bfa_growbuf item_ends; /* str lists: end of each item's bytes (uint64) */
} column_state;

/* The column's cells go to the Python writer: its buffers are not needed. */
static void fall_back(column_state *c) {
    PyMem_Free(c->fixed);
    PyMem_Free(c->ends);
    PyMem_Free(c->blob.data);
    PyMem_Free(c->item_ends.data);
    c->fixed = NULL;
    c->ends = NULL;
    c->blob.data = c->item_ends.data = NULL;
    c->kind = FALLBACK;
}

static void column_free(column_state *c) {
    fall_back(c);
    PyMem_Free(c->mask);
    c->mask = NULL;
}

/* The first cell that is not None decides the column's kind. */
static int decide(column_state *c, PyObject *x, Py_ssize_t n) {
    PyTypeObject *t = Py_TYPE(x);
    c->type = t;
    if (t == &PyLong_Type || t == &PyFloat_Type || t == &PyBool_Type) {
        c->kind = t == &PyLong_Type ? K_INT : t == &PyFloat_Type ? K_FLOAT : K_BOOL;
        c->fixed = PyMem_Calloc((size_t)n, t == &PyBool_Type ? 1 : 8);
        if (c->fixed == NULL) goto nomem;
    } else if (t == &PyUnicode_Type || (t == &PyList_Type && c->nulls == 0)) {
        /* (a None among lists of str: the Python writer's) */
        c->kind = t == &PyUnicode_Type ? K_STR : K_STRLIST;
        c->ends = PyMem_Calloc((size_t)n + 1, sizeof(uint64_t));
        if (c->ends == NULL) goto nomem;
    } else {
        c->kind = FALLBACK;
    }
    return 0;
nomem:
    PyErr_NoMemory();
    return -1;
}

/* Append one string's UTF-8 to the column's blob. 1 done, 0 cannot
 * (lone surrogates: the Python writer encodes them with surrogatepass),
 * -1 error. */
static int append_utf8(column_state *c, PyObject *s) {
    Py_ssize_t len;
    const char *u = PyUnicode_AsUTF8AndSize(s, &len);
    if (u == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) return -1;
        PyErr_Clear();
        return 0;
    }
    return bfa_growbuf_append(&c->blob, u, (size_t)len) < 0 ? -1 : 1;
}

/* Take cell x of row i into its column. 0 ok (or the column fell back), -1 error. */
static int take(column_state *c, PyObject *x, Py_ssize_t i, Py_ssize_t n) {
    if (c->kind == FALLBACK) return 0;
    if (x == Py_None) {
        c->mask[i] = 1;
        c->nulls++;
        if (c->kind == K_STR) c->ends[i + 1] = c->blob.len;
        else if (c->kind == K_STRLIST) fall_back(c); /* a None list: the Python writer's */
        return 0;
    }
    if (c->kind == 0) {
        if (decide(c, x, n) < 0) return -1;
        if (c->kind == FALLBACK) return 0;
    } else if (Py_TYPE(x) != c->type) {
        fall_back(c);
        return 0;
    }
    switch (c->kind) {
    case K_INT: {
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(x, &overflow);
        if (v == -1 && PyErr_Occurred()) return -1;
        if (overflow != 0) {
            fall_back(c); /* beyond 64 bits */
            return 0;
        }
        bfa_st64(c->fixed + 8 * i, (uint64_t)v);
        return 0;
    }
    case K_FLOAT: {
        double v = PyFloat_AsDouble(x);
        uint64_t bits;
        memcpy(&bits, &v, sizeof bits);
        bfa_st64(c->fixed + 8 * i, bits);
        return 0;
    }
    case K_BOOL:
        c->fixed[i] = x == Py_True;
        return 0;
    case K_STR: {
        int rc = append_utf8(c, x);
        if (rc < 0) return -1;
        if (rc == 0) fall_back(c);
        else c->ends[i + 1] = c->blob.len;
        return 0;
    }
    default: { /* K_STRLIST */
        Py_ssize_t m = PyList_Size(x);
        for (Py_ssize_t j = 0; j < m; j++) {
            PyObject *s = PyList_GetItem(x, j);
            if (s == NULL) return -1;
            if (!PyUnicode_CheckExact(s)) {
                fall_back(c);
                return 0;
            }
            int rc = append_utf8(c, s);
            if (rc < 0) return -1;
            if (rc == 0) {
                fall_back(c);
                return 0;
            }
            uint64_t end = c->blob.len;
            if (bfa_growbuf_append(&c->item_ends, &end, sizeof end) < 0) return -1;
        }
        c->ends[i + 1] = c->item_ends.len / sizeof(uint64_t);
        return 0;
    }
    }
}

static PyObject *bytes_of(const uint8_t *src, size_t n) {
    return PyBytes_FromStringAndSize((const char *)src, (Py_ssize_t)n);
}

/* count + 1 offsets from 0 (the ends of the items), little-endian. */
static PyObject *offsets_of(const uint64_t *ends, size_t count) {
    PyObject *b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(8 * (count + 1)));
    if (b == NULL) return NULL;
    uint8_t *o = (uint8_t *)PyBytes_AsString(b);
    bfa_st64(o, 0);
    for (size_t i = 0; i < count; i++) bfa_st64(o + 8 * (i + 1), ends[i]);
    return b;
}

/* A finished column: the ready tuple, or the list of its cells. */
static PyObject *column_result(column_state *c, PyObject *const *cells, Py_ssize_t n) {
    if (c->kind == 0 || c->kind == FALLBACK) {
        PyObject *list = PyList_New(n);
        if (list == NULL) return NULL;
        for (Py_ssize_t i = 0; i < n; i++) {
            Py_INCREF(cells[i]);
            PyList_SetItem(list, i, cells[i]);
        }
        return list;
    }
    PyObject *mask;
    if (c->nulls > 0) {
        mask = bytes_of(c->mask, (size_t)n);
        if (mask == NULL) return NULL;
    } else {
        mask = Py_None;
        Py_INCREF(mask);
    }
    if (c->kind == K_STR)
        return Py_BuildValue("(iNNN)", K_STR, offsets_of(c->ends + 1, (size_t)n),
                             bytes_of(c->blob.data, c->blob.len), mask);
    if (c->kind == K_STRLIST) {
        Py_DECREF(mask); /* (None: a column with None lists fell back) */
        return Py_BuildValue("(iNNN)", K_STRLIST, offsets_of(c->ends + 1, (size_t)n),
                             offsets_of((const uint64_t *)c->item_ends.data,
                                        c->item_ends.len / sizeof(uint64_t)),
                             bytes_of(c->blob.data, c->blob.len));
    }
    size_t width = c->kind == K_BOOL ? 1 : 8;
    return Py_BuildValue("(iNN)", c->kind, bytes_of(c->fixed, width * (size_t)n), mask);
}

BFA_EXPORT PyObject *bfa_py_table_columns(PyObject *rows, PyObject *keys) {
    if (!PyList_CheckExact(rows) || !PyTuple_CheckExact(keys)) Py_RETURN_NONE;
    Py_ssize_t n = PyList_Size(rows), k = PyTuple_Size(keys);
    if (n <= 0 || k <= 0) Py_RETURN_NONE;
    PyObject *result = NULL;
    /* the cells, column by column: borrowed from the rows, which the caller
     * holds. No Python code may run in this call: the objects created here
     * could start a garbage collection, whose finalizers could change the
     * rows, so the collector is paused until the call returns */
    int gc_was_enabled = PyGC_Disable();
    PyObject **cells = PyMem_Calloc((size_t)n * (size_t)k, sizeof(PyObject *));
    column_state *cols = PyMem_Calloc((size_t)k, sizeof(column_state));
    if (cells == NULL || cols == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t c = 0; c < k; c++) {
        cols[c].mask = PyMem_Calloc((size_t)n, 1);
        if (cols[c].mask == NULL) {
            PyErr_NoMemory();
            goto done;
        }
    }
    /* every row an exact dict whose keys are `keys`, in order */
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *row = PyList_GetItem(rows, i);
        if (row == NULL) goto done;
        if (!PyDict_CheckExact(row) || PyDict_Size(row) != k) goto not_a_table;
        Py_ssize_t pos = 0, c = 0;
        PyObject *key, *value;
        while (PyDict_Next(row, &pos, &key, &value)) {
            if (c >= k) goto not_a_table;
            PyObject *want = PyTuple_GetItem(keys, c);
            if (want == NULL) goto done;
            if (key != want) {
                if (!PyUnicode_CheckExact(key) || !PyUnicode_CheckExact(want)) goto not_a_table;
                int cmp = PyUnicode_Compare(key, want);
                if (cmp == -1 && PyErr_Occurred()) goto done;
                if (cmp != 0) goto not_a_table;
            }
            cells[c * n + i] = value;
            if (take(&cols[c], value, i, n) < 0) goto done;
            c++;
        }
        if (c != k) goto not_a_table;
    }
    result = PyList_New(k);
    if (result == NULL) goto done;
    for (Py_ssize_t c = 0; c < k; c++) {
        PyObject *col = column_result(&cols[c], cells + c * n, n);
        if (col == NULL) {
            Py_CLEAR(result);
            goto done;
        }
        PyList_SetItem(result, c, col);
    }
    goto done;
not_a_table:
    result = Py_None;
    Py_INCREF(result);
done:
    if (cols != NULL)
        for (Py_ssize_t c = 0; c < k; c++) column_free(&cols[c]);
    PyMem_Free(cols);
    PyMem_Free(cells);
    if (gc_was_enabled) PyGC_Enable();
    return result;
}

/* Trusted model loads: one instance per row of a table of a model's fields.
 *
 * bfa_py_model_rows(new, new_args, setters, fields_set, names, columns)
 * builds, for each row i, obj = new(*new_args) (cls.__new__(cls)) and sets
 * through the four descriptors in `setters` its __dict__ to
 * {names[j]: columns[j][i]}, its fields set to `fields_set` (shared), and
 * the extra and private slots to None: what models._rows_builder does in
 * Python (and pydantic's model_construct with every field given). */
BFA_EXPORT PyObject *bfa_py_model_rows(PyObject *new, PyObject *new_args, PyObject *setters,
                                       PyObject *fields_set, PyObject *names,
                                       PyObject *columns) {
    if (!PyTuple_CheckExact(new_args) || !PyTuple_CheckExact(setters) ||
        PyTuple_Size(setters) != 4 || !PyTuple_CheckExact(names) ||
        !PyList_CheckExact(columns) || PyList_Size(columns) != PyTuple_Size(names)) {
        PyErr_SetString(PyExc_TypeError, "bfa_py_model_rows: bad arguments");
        return NULL;
    }
    Py_ssize_t k = PyTuple_Size(names), n = -1;
    for (Py_ssize_t j = 0; j < k; j++) {
        PyObject *col = PyList_GetItem(columns, j);
        if (!PyList_CheckExact(col) || (n >= 0 && PyList_Size(col) != n)) {
            PyErr_SetString(PyExc_TypeError, "bfa_py_model_rows: columns of unequal length");
            return NULL;
        }
        n = PyList_Size(col);
    }
    if (n < 0) n = 0;
    PyObject *descr[4];
    descrsetfunc set[4];
    for (int s = 0; s < 4; s++) {
        descr[s] = PyTuple_GetItem(setters, s);
        set[s] = (descrsetfunc)PyType_GetSlot(Py_TYPE(descr[s]), Py_tp_descr_set);
        if (set[s] == NULL) {
            PyErr_Clear();
            PyErr_SetString(PyExc_TypeError, "bfa_py_model_rows: a setter is not a descriptor");
            return NULL;
        }
    }
    PyObject *out = PyList_New(n);
    if (out == NULL) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *obj = PyObject_Call(new, new_args, NULL);
        if (obj == NULL) goto fail;
        PyList_SetItem(out, i, obj); /* the list owns it from here */
        PyObject *d = PyDict_New();
        if (d == NULL) goto fail;
        for (Py_ssize_t j = 0; j < k; j++) {
            if (PyDict_SetItem(d, PyTuple_GetItem(names, j),
                               PyList_GetItem(PyList_GetItem(columns, j), i)) < 0) {
                Py_DECREF(d);
                goto fail;
            }
        }
        int rc = set[0](descr[0], obj, d);
        Py_DECREF(d);
        if (rc < 0 || set[1](descr[1], obj, fields_set) < 0 || set[2](descr[2], obj, Py_None) < 0 ||
            set[3](descr[3], obj, Py_None) < 0)
            goto fail;
    }
    return out;
fail:
    Py_DECREF(out);
    return NULL;
}

/* Reading tables back (load, to_python, column()): Python objects from an
 * archive's regions. The regions come from a file, so every offset is
 * checked again here (the reader's C checks ran before, but this code does
 * not rely on them): a bad one raises ValueError, which the reader reports
 * as an ArchiveError. */

static int offsets_at(PyObject *offsets, Py_ssize_t *count, const uint8_t **o) {
    if (!PyBytes_CheckExact(offsets) || PyBytes_Size(offsets) < 8 ||
        PyBytes_Size(offsets) % 8 != 0) {
        PyErr_SetString(PyExc_ValueError, "offsets region of a bad size");
        return -1;
    }
    *count = PyBytes_Size(offsets) / 8 - 1;
    *o = (const uint8_t *)PyBytes_AsString(offsets);
    return 0;
}

/* One piece of `source`, [a, e), as a new object. */
typedef PyObject *(*slice_fn)(PyObject *source, uint64_t a, uint64_t e);

static PyObject *utf8_slice(PyObject *blob, uint64_t a, uint64_t e) {
    return PyUnicode_DecodeUTF8(PyBytes_AsString(blob) + a, (Py_ssize_t)(e - a),
                                "surrogatepass");
}

static PyObject *list_slice(PyObject *items, uint64_t a, uint64_t e) {
    return PyList_GetSlice(items, (Py_ssize_t)a, (Py_ssize_t)e);
}

/* [make(source, o[i], o[i+1]) for each i], with 0 <= o[i] <= o[i+1] <= limit
 * checked for every i (`what` names the offsets in the error). */
static PyObject *slices(PyObject *source, uint64_t limit, PyObject *offsets, slice_fn make,
                        const char *what) {
    Py_ssize_t count;
    const uint8_t *o;
    if (offsets_at(offsets, &count, &o) < 0) return NULL;
    PyObject *out = PyList_New(count);
    if (out == NULL) return NULL;
    uint64_t a = bfa_ld64(o);
    for (Py_ssize_t i = 0; i < count; i++) {
        uint64_t e = bfa_ld64(o + 8 * (i + 1));
        if (a > e || e > limit) {
            Py_DECREF(out);
            PyErr_Format(PyExc_ValueError, "%s offsets out of order or bounds", what);
            return NULL;
        }
        PyObject *piece = make(source, a, e);
        if (piece == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SetItem(out, i, piece);
        a = e;
    }
    return out;
}

/* bfa_py_strings(blob, offsets): the count = len(offsets) / 8 - 1 strings
 * blob[o[i]:o[i+1]], decoded from UTF-8 with surrogatepass (the format
 * keeps lone surrogates). */
BFA_EXPORT PyObject *bfa_py_strings(PyObject *blob, PyObject *offsets) {
    if (!PyBytes_CheckExact(blob)) {
        PyErr_SetString(PyExc_TypeError, "bfa_py_strings: blob must be bytes");
        return NULL;
    }
    return slices(blob, (uint64_t)PyBytes_Size(blob), offsets, utf8_slice, "string");
}

/* bfa_py_groups(items, bounds): [items[b[i]:b[i+1]] for each row], the
 * lists of a list-of-str column. */
BFA_EXPORT PyObject *bfa_py_groups(PyObject *items, PyObject *bounds) {
    if (!PyList_CheckExact(items)) {
        PyErr_SetString(PyExc_TypeError, "bfa_py_groups: items must be a list");
        return NULL;
    }
    return slices(items, (uint64_t)PyList_Size(items), bounds, list_slice, "list");
}

/* bfa_py_rows(names, columns): one dict per row, {names[j]: columns[j][i]}. */
BFA_EXPORT PyObject *bfa_py_rows(PyObject *names, PyObject *columns) {
    if (!PyTuple_CheckExact(names) || !PyList_CheckExact(columns) ||
        PyList_Size(columns) != PyTuple_Size(names)) {
        PyErr_SetString(PyExc_TypeError, "bfa_py_rows: bad arguments");
        return NULL;
    }
    Py_ssize_t k = PyTuple_Size(names), n = 0;
    for (Py_ssize_t j = 0; j < k; j++) {
        PyObject *col = PyList_GetItem(columns, j);
        if (!PyList_CheckExact(col) || (j > 0 && PyList_Size(col) != n)) {
            PyErr_SetString(PyExc_TypeError, "bfa_py_rows: columns of unequal length");
            return NULL;
        }
        n = PyList_Size(col);
    }
    PyObject *out = PyList_New(n);
    if (out == NULL) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *d = PyDict_New();
        if (d == NULL) goto fail;
        PyList_SetItem(out, i, d);
        for (Py_ssize_t j = 0; j < k; j++)
            if (PyDict_SetItem(d, PyTuple_GetItem(names, j),
                               PyList_GetItem(PyList_GetItem(columns, j), i)) < 0)
                goto fail;
    }
    return out;
fail:
    Py_DECREF(out);
    return NULL;
}
