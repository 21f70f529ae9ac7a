/* read_sparse.c: read.c compiled again as the ranged variant of its
 * functions (bfa_sp_*), for images of archives whose bytes arrive by range
 * (sparse.c). Each load from the buffer is preceded by bfa_sparse_touch,
 * which makes its block resident first; so are the byte ranges the Python
 * reader reads right after a check (a string's bytes, an ndarray header). */
#define BFA_SPARSE_BUILD 1
#include "read.c"
