/* sparse.c: images of archives whose bytes arrive by range (remote objects).
 *
 * An image is an anonymous mapping the size of the archive (pages cost
 * memory only once written) plus one residency byte per block of 2^shift
 * bytes. The reader's functions (read.c), handed the base of a registered
 * image, run their ranged variant (read_sparse.c, the same code compiled
 * with each load preceded by bfa_sparse_touch): a load of a block that is
 * not resident first calls the image's fill function, which fetches the
 * blocks, copies them in and marks them (bfa_image_mark). The C code thus
 * never reads a byte that has not arrived; a fill that fails makes the call
 * return BFA_E_IO, whatever it computed from the zeros it read meanwhile.
 *
 * Registration is a small table of (base, image) read without locks: a read
 * function compares its buffer with each registered base (only when an
 * image exists at all). An image is unregistered before its memory is
 * unmapped, and no read can be running on it then (its owner holds the
 * image while any read uses it), so a base never names freed memory.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, MAP_NORESERVE */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "bfa_internal.h"

struct bfa_image {
    uint8_t *base;
    uint64_t len;
    unsigned shift;
    uint64_t nblocks;
    _Atomic unsigned char *resident;
    bfa_fill_fn fill;
    void *userdata;
    _Atomic uint64_t prefix; /* bytes [0, prefix) are resident, whatever their blocks */
};

#define BFA_MAX_IMAGES 4096

static _Atomic uintptr_t reg_base[BFA_MAX_IMAGES];
static bfa_image *_Atomic reg_image[BFA_MAX_IMAGES];
static atomic_int reg_count;
static atomic_flag reg_lock = ATOMIC_FLAG_INIT;

/* The image the current thread's ranged read runs on, and whether a fill failed. */
static _Thread_local const bfa_image *tl_image;
static _Thread_local int tl_failed;

static void lock(void) {
    while (atomic_flag_test_and_set_explicit(&reg_lock, memory_order_acquire)) {
    }
}

static void unlock(void) { atomic_flag_clear_explicit(&reg_lock, memory_order_release); }

bfa_image *bfa_image_new(uint64_t len, unsigned shift, bfa_fill_fn fill, void *userdata) {
    if (len == 0 || shift < 9 || shift > 30 || fill == NULL) return NULL;
    if (len > (uint64_t)SIZE_MAX / 2) return NULL;
    bfa_image *im = calloc(1, sizeof *im);
    if (im == NULL) return NULL;
    im->len = len;
    im->shift = shift;
    im->nblocks = ((len - 1) >> shift) + 1;
    im->resident = calloc((size_t)im->nblocks, sizeof *im->resident);
    void *p = mmap(NULL, (size_t)len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (im->resident == NULL || p == MAP_FAILED) {
        if (p != MAP_FAILED) munmap(p, (size_t)len);
        free((void *)im->resident);
        free(im);
        return NULL;
    }
    im->base = p;
    im->fill = fill;
    im->userdata = userdata;
    lock();
    int slot = -1;
    for (int i = 0; i < BFA_MAX_IMAGES; i++) {
        if (atomic_load_explicit(&reg_base[i], memory_order_relaxed) == 0) {
            slot = i;
            break;
        }
    }
    if (slot >= 0) {
        atomic_store_explicit(&reg_image[slot], im, memory_order_release);
        atomic_store_explicit(&reg_base[slot], (uintptr_t)p, memory_order_release);
        atomic_fetch_add_explicit(&reg_count, 1, memory_order_release);
    }
    unlock();
    if (slot < 0) { /* too many images open at once */
        munmap(p, (size_t)len);
        free((void *)im->resident);
        free(im);
        return NULL;
    }
    return im;
}

uint8_t *bfa_image_base(const bfa_image *im) { return im == NULL ? NULL : im->base; }

void bfa_image_free(bfa_image *im) {
    if (im == NULL) return;
    lock();
    for (int i = 0; i < BFA_MAX_IMAGES; i++) {
        if (atomic_load_explicit(&reg_base[i], memory_order_relaxed) == (uintptr_t)im->base) {
            atomic_store_explicit(&reg_base[i], 0, memory_order_release);
            atomic_store_explicit(&reg_image[i], NULL, memory_order_release);
            atomic_fetch_sub_explicit(&reg_count, 1, memory_order_release);
            break;
        }
    }
    unlock();
    munmap(im->base, (size_t)im->len);
    free((void *)im->resident);
    free(im);
}

void bfa_image_mark(bfa_image *im, uint64_t first, uint64_t end) {
    if (im == NULL) return;
    if (end > im->nblocks) end = im->nblocks;
    for (uint64_t b = first; b < end; b++)
        atomic_store_explicit(&im->resident[b], 1, memory_order_release);
}

void bfa_image_prefix(bfa_image *im, uint64_t n) {
    if (im != NULL) atomic_store_explicit(&im->prefix, n < im->len ? n : im->len, memory_order_release);
}

int bfa_image_resident(const bfa_image *im, uint64_t first, uint64_t end) {
    if (im == NULL || end > im->nblocks) return 0;
    for (uint64_t b = first; b < end; b++)
        if (!atomic_load_explicit(&im->resident[b], memory_order_acquire)) return 0;
    return 1;
}

int bfa_images_registered(void) {
    return atomic_load_explicit(&reg_count, memory_order_relaxed) != 0;
}

const bfa_image *bfa_image_of(const uint8_t *buf) {
    uintptr_t a = (uintptr_t)buf;
    for (int i = 0; i < BFA_MAX_IMAGES; i++) {
        if (atomic_load_explicit(&reg_base[i], memory_order_acquire) == a)
            return atomic_load_explicit(&reg_image[i], memory_order_acquire);
    }
    return NULL;
}

bfa_sparse_state bfa_sparse_enter(const bfa_image *im) {
    bfa_sparse_state saved = {tl_image, tl_failed};
    tl_image = im;
    tl_failed = 0;
    return saved;
}

int bfa_sparse_leave(bfa_sparse_state saved) {
    int failed = tl_failed;
    tl_image = saved.image;
    tl_failed = saved.failed;
    return failed;
}

void bfa_sparse_touch(const uint8_t *p, uint64_t n) {
    const bfa_image *im = tl_image;
    if (im == NULL || tl_failed || n == 0) return;
    uintptr_t a = (uintptr_t)p, base = (uintptr_t)im->base;
    if (a < base || a - base >= im->len) return; /* not in the image: a caller's key bytes */
    uint64_t off = (uint64_t)(a - base);
    uint64_t prefix = atomic_load_explicit(&im->prefix, memory_order_acquire);
    if (n <= prefix && off <= prefix - n) return;
    uint64_t last = n - 1 > im->len - 1 - off ? im->len - 1 : off + n - 1;
    uint64_t end = (last >> im->shift) + 1;
    for (uint64_t b = off >> im->shift; b < end; b++) {
        if (atomic_load_explicit(&im->resident[b], memory_order_acquire)) continue;
        if (im->fill(im->userdata, b, end) != 0 ||
            !atomic_load_explicit(&im->resident[b], memory_order_acquire)) {
            tl_failed = BFA_E_IO;
            return;
        }
    }
}
