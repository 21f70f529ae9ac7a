/* What the C files that work on Python objects share (pytable.c,
 * pyencode.c, pydecode.c): the CPython limited API they are built against,
 * the export macro of their entry points (called through ctypes with the GIL
 * held), and a growable byte buffer. Include it first, before any other
 * header (Python.h must come first). */
#ifndef BFA_PYTHON_H
#define BFA_PYTHON_H

#define PY_SSIZE_T_CLEAN
#define Py_LIMITED_API 0x030A0000
#include <Python.h>

#include <stdint.h>
#include <string.h>

#if defined(__GNUC__)
#define BFA_EXPORT __attribute__((visibility("default")))
#else
#define BFA_EXPORT
#endif

/* A growable byte buffer on the Python allocator; {NULL, 0, 0} is empty,
 * PyMem_Free(data) releases it. */
typedef struct {
    uint8_t *data;
    size_t len, cap;
} bfa_growbuf;

/* Room for n more bytes (capacity doubled from 4 KiB); -1 with
 * MemoryError set. */
static inline int bfa_growbuf_reserve(bfa_growbuf *b, size_t n) {
    if (n <= b->cap - b->len) return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < n) {
        if (cap > ((size_t)PY_SSIZE_T_MAX) / 2) {
            PyErr_NoMemory();
            return -1;
        }
        cap *= 2;
    }
    uint8_t *p = PyMem_Realloc(b->data, cap);
    if (p == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

/* Append n bytes of src; -1 with MemoryError set. */
static inline int bfa_growbuf_append(bfa_growbuf *b, const void *src, size_t n) {
    if (n == 0) return 0; /* (memcpy may not be given the NULL of an empty buffer) */
    if (bfa_growbuf_reserve(b, n) < 0) return -1;
    memcpy(b->data + b->len, src, n);
    b->len += n;
    return 0;
}

#endif
