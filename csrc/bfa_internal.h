/* bfa_internal.h: helpers shared by read.c and layout.c (not part of the cdef). */
#ifndef BFA_INTERNAL_H
#define BFA_INTERNAL_H

#include "bfa.h"

/* Little-endian loads and stores, independent of the host's byte order and
 * of alignment; compilers turn them into single moves. */
static inline uint64_t bfa_ld64(const uint8_t *p) {
    return (uint64_t)p[0] | ((uint64_t)p[1] << 8) | ((uint64_t)p[2] << 16) |
           ((uint64_t)p[3] << 24) | ((uint64_t)p[4] << 32) | ((uint64_t)p[5] << 40) |
           ((uint64_t)p[6] << 48) | ((uint64_t)p[7] << 56);
}

static inline uint32_t bfa_ld32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static inline uint16_t bfa_ld16(const uint8_t *p) {
    return (uint16_t)((unsigned)p[0] | ((unsigned)p[1] << 8));
}

static inline void bfa_st64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static inline void bfa_st32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* BFA_UNCHECKED: a build that measures what validation costs
 * (benchmarks/bench_checked.py; build_ffi.py with BFA_UNCHECKED=1), never one
 * to read files with. Defined, the read path trusts the bytes: bounds,
 * alignment, tag, order and consistency checks are compiled out (each is an
 * `if (!BFA_TRUST && ...)` or an early `if (BFA_TRUST) return` that the
 * compiler removes), so a damaged archive can crash the process. What a
 * valid archive needs stays: index ranges, key lookup and its misses. Left
 * undefined, as in every normal build, BFA_TRUST is 0 and nothing changes. */
#ifdef BFA_UNCHECKED
#define BFA_TRUST 1
#else
#define BFA_TRUST 0
#endif

/* Is [off, off + size) inside [0, limit)? Overflow-safe. */
static inline int bfa_in_range(uint64_t off, uint64_t size, uint64_t limit) {
    if (BFA_TRUST) return 1;
    return off <= limit && size <= limit - off;
}

/* Ranged images (sparse.c): what read.c's functions need to run their
 * ranged variant (read_sparse.c) on a registered image. */
typedef struct {
    const bfa_image *image;
    int failed;
} bfa_sparse_state;
int bfa_images_registered(void);
const bfa_image *bfa_image_of(const uint8_t *buf);
bfa_sparse_state bfa_sparse_enter(const bfa_image *im);
int bfa_sparse_leave(bfa_sparse_state saved);
void bfa_sparse_touch(const uint8_t *p, uint64_t n);

/* The ranged variants of read.c's functions (read_sparse.c). */
int bfa_sp_check_slot(const uint8_t *buf, uint64_t len, uint64_t slot_pos, uint64_t limit);
int64_t bfa_sp_seq_get(const uint8_t *buf, uint64_t len, uint64_t node_off, int64_t index);
int bfa_sp_seq_check(const uint8_t *buf, uint64_t len, uint64_t node_off, uint64_t count);
int64_t bfa_sp_dict_find(const uint8_t *buf, uint64_t len, uint64_t node_off, uint32_t kind,
                         const char *key, uint64_t key_len, int64_t int_key);
int bfa_sp_dict_check(const uint8_t *buf, uint64_t len, uint64_t node_off, uint64_t count);
int bfa_sp_table_check(const uint8_t *buf, uint64_t len, uint64_t node_off, uint64_t nrows);
int bfa_sp_slots_check(const uint8_t *buf, uint64_t len, uint64_t off, uint64_t count,
                       uint64_t limit);
int bfa_sp_offsets_check(const uint8_t *buf, uint64_t len, uint64_t off, uint64_t count,
                         uint64_t limit);

/* Layout constants of the dict node (docs/format/nodes.md, "Dict node"). */
#define BFA_DICT_HEADER 24u
#define BFA_DICT_ENTRY 32u
#define BFA_SEQ_HEADER 8u
#define BFA_NDARRAY_HEADER 32u
#define BFA_NDARRAY_MAX_NDIM 64u
#define BFA_ARRAY_ALIGN 64u

/* The key hash (docs/format/nodes.md, "Key hash"): FNV-1a 64 over the kind byte and
 * the key bytes, then the MurmurHash3 64-bit finaliser. */
static inline uint64_t bfa_hash_bytes(uint32_t kind, const uint8_t *key, uint64_t key_len) {
    uint64_t h = 0xcbf29ce484222325ULL;
    const uint64_t prime = 0x100000001b3ULL;
    h ^= (uint64_t)(kind & 0xFFu);
    h *= prime;
    for (uint64_t i = 0; i < key_len; i++) {
        h ^= key[i];
        h *= prime;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

/* Number of index buckets for a dict of `count` keys: 0 for an empty dict,
 * else the smallest power of two >= 2 * count (load factor <= 1/2). */
static inline uint64_t bfa_nbuckets_for(uint64_t count) {
    if (count == 0) return 0;
    if (count > (UINT64_C(1) << 62)) return UINT64_MAX; /* no buffer holds such a dict */
    uint64_t n = 2;
    while (n < count * 2u) n <<= 1;
    return n;
}

#endif
