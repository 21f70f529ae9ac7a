/* checksum.c: XXH64 (xxHash, 64-bit, seed 0 unless stated), written from the
 * algorithm's public specification, and the checks built on it. */
#include "bfa_internal.h"

#define P1 0x9E3779B185EBCA87ULL
#define P2 0xC2B2AE3D27D4EB4FULL
#define P3 0x165667B19E3779F9ULL
#define P4 0x85EBCA77C2B2AE63ULL
#define P5 0x27D4EB2F165667C5ULL

static inline uint64_t rotl64(uint64_t x, unsigned r) { return (x << r) | (x >> (64u - r)); }

static inline uint64_t xxh_round(uint64_t acc, uint64_t input) {
    acc += input * P2;
    acc = rotl64(acc, 31);
    return acc * P1;
}

static inline uint64_t xxh_merge(uint64_t acc, uint64_t val) {
    acc ^= xxh_round(0, val);
    return acc * P1 + P4;
}

uint64_t bfa_xxh64(const uint8_t *p, uint64_t len, uint64_t seed) {
    const uint8_t *end = p + len;
    uint64_t h;
    if (len >= 32) {
        uint64_t v1 = seed + P1 + P2, v2 = seed + P2, v3 = seed, v4 = seed - P1;
        const uint8_t *limit = end - 32;
        do {
            v1 = xxh_round(v1, bfa_ld64(p));
            v2 = xxh_round(v2, bfa_ld64(p + 8));
            v3 = xxh_round(v3, bfa_ld64(p + 16));
            v4 = xxh_round(v4, bfa_ld64(p + 24));
            p += 32;
        } while (p <= limit);
        h = rotl64(v1, 1) + rotl64(v2, 7) + rotl64(v3, 12) + rotl64(v4, 18);
        h = xxh_merge(h, v1);
        h = xxh_merge(h, v2);
        h = xxh_merge(h, v3);
        h = xxh_merge(h, v4);
    } else {
        h = seed + P5;
    }
    h += len;
    while (end - p >= 8) {
        h ^= xxh_round(0, bfa_ld64(p));
        h = rotl64(h, 27) * P1 + P4;
        p += 8;
    }
    if (end - p >= 4) {
        h ^= (uint64_t)bfa_ld32(p) * P1;
        h = rotl64(h, 23) * P2 + P3;
        p += 4;
    }
    while (p < end) {
        h ^= (uint64_t)(*p) * P5;
        h = rotl64(h, 11) * P1;
        p++;
    }
    h ^= h >> 33;
    h *= P2;
    h ^= h >> 29;
    h *= P3;
    h ^= h >> 32;
    return h;
}

/* Check the XXH64 of entries [first, first + count) of a table of
 * `entry_size`-byte entries that each start with (u64 offset, u64 length,
 * u64 xxh64): the checksum table of an uncompressed archive, or the chunk
 * table of a compressed one. On a mismatch *bad is the entry's index. */
int bfa_verify_entries(const uint8_t *buf, uint64_t len, uint64_t table_off,
                       uint64_t entry_size, uint64_t first, uint64_t count, uint64_t *bad) {
    if (buf == NULL || bad == NULL || entry_size < 24) return BFA_E_ARG;
    if (!bfa_in_range(table_off, 0, len) || first > (len - table_off) / entry_size ||
        count > (len - table_off) / entry_size - first)
        return BFA_E_BOUNDS;
    for (uint64_t i = first; i < first + count; i++) {
        const uint8_t *e = buf + table_off + i * entry_size;
        uint64_t off = bfa_ld64(e), n = bfa_ld64(e + 8);
        *bad = i;
        if (!bfa_in_range(off, n, len)) return BFA_E_BOUNDS;
        if (bfa_xxh64(buf + off, n, 0) != bfa_ld64(e + 16)) return BFA_E_CHECKSUM;
    }
    return BFA_OK;
}
