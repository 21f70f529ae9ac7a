/* read.c: checked decoding and lookup over an archive buffer.
 *
 * Nothing read from the buffer is trusted: every offset, count and size is
 * checked against the buffer length (with overflow-safe arithmetic) and
 * against the "children before parents" rule before it is used, on every
 * call. The functions keep no state, so any number of threads may call them
 * at once on the same buffer.
 */
#include <string.h>

#include "bfa_internal.h"

/* Loads from the buffer. In the ranged variant (read_sparse.c) each first
 * makes its bytes resident (bfa_sparse_touch), and TOUCH does so for bytes
 * read elsewhere (compared, hashed, or read by the Python reader right after
 * the check); the public functions are named bfa_sp_* there. In the normal
 * build a public function handed the base of a ranged image runs the ranged
 * variant instead (RANGED): one relaxed load when no image exists. */
#ifdef BFA_SPARSE_BUILD
#define LD64(p) (bfa_sparse_touch((p), 8), bfa_ld64(p))
#define LD32(p) (bfa_sparse_touch((p), 4), bfa_ld32(p))
#define LD16(p) (bfa_sparse_touch((p), 2), bfa_ld16(p))
#define TOUCH(p, n) bfa_sparse_touch((p), (n))
#define FN(name) bfa_sp_##name
#define RANGED(T, call)
#else
#define LD64(p) bfa_ld64(p)
#define LD32(p) bfa_ld32(p)
#define LD16(p) bfa_ld16(p)
#define TOUCH(p, n) ((void)0)
#define FN(name) bfa_##name
#define RANGED(T, call)                                                   \
    if (bfa_images_registered()) {                                        \
        const bfa_image *image_ = bfa_image_of(buf);                      \
        if (image_ != NULL) {                                             \
            bfa_sparse_state saved_ = bfa_sparse_enter(image_);           \
            T result_ = bfa_sp_##call;                                    \
            int failed_ = bfa_sparse_leave(saved_);                       \
            return failed_ < 0 ? (T)failed_ : result_;                    \
        }                                                                 \
    }
#endif

#ifndef BFA_SPARSE_BUILD
static const uint8_t BFA_MAGIC[8] = {0x89, 'B', 'F', 'A', '\r', '\n', 0x1a, '\n'};

uint64_t bfa_hash_key(uint32_t kind, const char *key, uint64_t key_len) {
    return bfa_hash_bytes(kind, (const uint8_t *)key, key_len);
}

uint64_t bfa_dict_nbuckets(uint64_t count) { return bfa_nbuckets_for(count); }

int bfa_build_checked(void) { return !BFA_TRUST; }

int bfa_parse_header(const uint8_t *buf, uint64_t len, bfa_header *out) {
    if (buf == NULL || out == NULL) return BFA_E_ARG;
    if (len < BFA_HEADER_SIZE) return BFA_E_TRUNCATED;
    if (memcmp(buf, BFA_MAGIC, sizeof BFA_MAGIC) != 0) return BFA_E_MAGIC;
    out->version_major = bfa_ld16(buf + 8);
    out->version_minor = bfa_ld16(buf + 10);
    out->flags = bfa_ld32(buf + 12);
    out->file_size = bfa_ld64(buf + 16);
    out->nodes_end = bfa_ld64(buf + 40);
    out->sections_off = bfa_ld64(buf + 48);
    if (out->version_major != BFA_VERSION_MAJOR) return BFA_E_VERSION;
    if ((out->flags & ~(uint32_t)BFA_F_KNOWN) != 0) return BFA_E_FLAGS;
    int checksums = (out->flags & BFA_F_CHECKSUMS) != 0;
    int compressed = (out->flags & BFA_F_COMPRESSED) != 0;
    if (!checksums && bfa_ld64(buf + 56) != 0) return BFA_E_HEADER;
    if (checksums && bfa_ld64(buf + 56) != bfa_xxh64(buf, 56, 0)) return BFA_E_CHECKSUM;
    if (compressed && !checksums) return BFA_E_HEADER;
    if (out->file_size < BFA_HEADER_SIZE) return BFA_E_HEADER;
    if (out->file_size > len) return BFA_E_TRUNCATED;
    if (out->nodes_end < BFA_HEADER_SIZE || out->nodes_end % 8 != 0) return BFA_E_HEADER;
    if (!compressed && out->nodes_end > out->file_size) return BFA_E_HEADER;
    if (!checksums) {
        if (out->sections_off != 0) return BFA_E_HEADER;
    } else if (out->sections_off % 8 != 0 || out->sections_off >= out->file_size ||
               out->sections_off < (compressed ? BFA_HEADER_SIZE : out->nodes_end)) {
        return BFA_E_HEADER;
    }
    /* the root of a compressed archive lies in its structure payload: checked
     * by the reader once that is decompressed */
    return compressed ? BFA_OK : bfa_check_slot(buf, out->file_size, 24, out->nodes_end);
}
#endif

/* A referent of `size` bytes at `off`, owned by a parent that starts at
 * `limit`: it must lie after the header, before the parent, 8-aligned. */
static int check_ref(uint64_t off, uint64_t size, uint64_t limit) {
    if (BFA_TRUST) return BFA_OK;
    if (off % 8 != 0) return BFA_E_ALIGN;
    if (off < BFA_HEADER_SIZE) return BFA_E_ORDER;
    if (!bfa_in_range(off, size, limit)) return off >= limit ? BFA_E_ORDER : BFA_E_BOUNDS;
    return BFA_OK;
}

/* The bytes of a string, bytes, decimal, bigint or UUID node: the reader
 * decodes them right after the check. */
static int byte_string(const uint8_t *buf, uint64_t off, uint64_t size, uint64_t limit) {
    int rc = check_ref(off, size, limit);
    if (rc == BFA_OK) TOUCH(buf + off, size);
    (void)buf;
    return rc;
}

/* A sequence node (count + slots) of `count` slots at `off` before `limit`. */
static int check_seq_node(const uint8_t *buf, uint64_t off, uint64_t count, uint64_t limit) {
    if (BFA_TRUST) return BFA_OK;
    int rc = check_ref(off, BFA_SEQ_HEADER, limit);
    if (rc < 0) return rc;
    if (LD64(buf + off) != count) return BFA_E_CORRUPT;
    if (count > (limit - off - BFA_SEQ_HEADER) / BFA_SLOT_SIZE) return BFA_E_BOUNDS;
    return BFA_OK;
}

/* A sequence node of a fixed shape (a datetime's parts, a model's schema and
 * body): its few slots are read by the reader right after the check. */
static int fixed_seq_node(const uint8_t *buf, uint64_t off, uint64_t count, uint64_t limit) {
    int rc = check_seq_node(buf, off, count, limit);
    if (rc == BFA_OK) TOUCH(buf + off, BFA_SEQ_HEADER + count * BFA_SLOT_SIZE);
    (void)buf;
    return rc;
}

/* Dict node header at `off` (before `limit`); on success stores its geometry. */
static int dict_geometry(const uint8_t *buf, uint64_t off, uint64_t limit, uint64_t *count,
                         uint64_t *nbuckets, uint32_t *width) {
    int rc = check_ref(off, BFA_DICT_HEADER, limit);
    if (rc < 0) return rc;
    uint64_t n = LD64(buf + off);
    uint64_t nb = LD64(buf + off + 8);
    uint32_t w = LD32(buf + off + 16);
    if (!BFA_TRUST) {
        if (LD32(buf + off + 20) != 0) return BFA_E_CORRUPT;
        if (w != 4 && w != 8) return BFA_E_CORRUPT;
        uint64_t room = limit - off - BFA_DICT_HEADER;
        if (n > room / BFA_DICT_ENTRY) return BFA_E_BOUNDS; /* before sizing its index */
        if (nb != bfa_nbuckets_for(n)) return BFA_E_CORRUPT;
        room -= n * BFA_DICT_ENTRY;
        if (nb > room / w) return BFA_E_BOUNDS;
    }
    *count = n;
    *nbuckets = nb;
    *width = w;
    return BFA_OK;
}

static int check_ndarray_node(const uint8_t *buf, uint64_t off, uint64_t limit) {
    if (BFA_TRUST) return BFA_OK;
    int rc = check_ref(off, BFA_NDARRAY_HEADER, limit);
    if (rc < 0) return rc;
    uint64_t data_off = LD64(buf + off);
    uint64_t nbytes = LD64(buf + off + 8);
    uint32_t ndim = LD32(buf + off + 16);
    uint32_t flags = LD32(buf + off + 20);
    uint64_t descr_len = LD64(buf + off + 24);
    if (ndim > BFA_NDARRAY_MAX_NDIM) return BFA_E_CORRUPT;
    if ((flags & ~(uint32_t)(1u | BFA_NDARRAY_EXTERNAL)) != 0) return BFA_E_FLAGS;
    uint64_t room = limit - off - BFA_NDARRAY_HEADER;
    if (descr_len == 0 || descr_len > room) return BFA_E_BOUNDS;
    uint64_t descr_padded = (descr_len + 7u) & ~(uint64_t)7u;
    if (descr_padded > room || (uint64_t)ndim * 8u > room - descr_padded) return BFA_E_BOUNDS;
    /* the reader parses the dtype descriptor and the shape next */
    TOUCH(buf + off, BFA_NDARRAY_HEADER + descr_padded + (uint64_t)ndim * 8u);
    if (flags & BFA_NDARRAY_EXTERNAL) return BFA_OK; /* data_off = a payload number */
    if (data_off % BFA_ARRAY_ALIGN != 0) return BFA_E_ALIGN;
    if (data_off < BFA_HEADER_SIZE) return BFA_E_ORDER;
    if (!bfa_in_range(data_off, nbytes, off)) return BFA_E_ORDER;
    return BFA_OK;
}

/* Table node header: nrows, ncols, the key-dict slot; the column
 * descriptors must fit before `limit`. O(1): columns are checked by
 * bfa_table_check. */
static int check_table_header(const uint8_t *buf, uint64_t off, uint64_t nrows, uint64_t limit,
                              uint64_t *ncols_out) {
    if (BFA_TRUST) {
        if (ncols_out != NULL) *ncols_out = LD64(buf + off + 8);
        return BFA_OK;
    }
    int rc = check_ref(off, BFA_TABLE_HEADER, limit);
    if (rc < 0) return rc;
    if (LD64(buf + off) != nrows) return BFA_E_CORRUPT;
    uint64_t ncols = LD64(buf + off + 8);
    if (ncols == 0) return BFA_E_CORRUPT;
    if (ncols > (limit - off - BFA_TABLE_HEADER) / BFA_COLUMN_SIZE) return BFA_E_BOUNDS;
    if (ncols_out != NULL) *ncols_out = ncols;
    return BFA_OK;
}

int FN(check_slot)(const uint8_t *buf, uint64_t len, uint64_t slot_pos, uint64_t limit) {
    RANGED(int, check_slot(buf, len, slot_pos, limit))
    if (buf == NULL) return BFA_E_ARG;
    if (BFA_TRUST) return BFA_OK;
    if (limit > len || !bfa_in_range(slot_pos, BFA_SLOT_SIZE, len)) return BFA_E_BOUNDS;
    uint64_t w0 = LD64(buf + slot_pos);
    uint64_t payload = LD64(buf + slot_pos + 8);
    uint32_t tag = (uint32_t)(w0 & 0xFFu);
    uint64_t aux = w0 >> 8;
    switch (tag) {
    case BFA_T_NONE:
    case BFA_T_FALSE:
    case BFA_T_TRUE:
        return (aux == 0 && payload == 0) ? BFA_OK : BFA_E_CORRUPT;
    case BFA_T_INT:
    case BFA_T_FLOAT:
        return aux == 0 ? BFA_OK : BFA_E_CORRUPT;
    case BFA_T_DATE:
        return (aux == 0 && payload >= 1 && payload <= 3652059u) ? BFA_OK : BFA_E_CORRUPT;
    case BFA_T_SSTR:
    case BFA_T_SBYTES:
        if (aux > 8) return BFA_E_CORRUPT;
        /* unused payload bytes are zero, so equal values have equal bytes */
        if (aux < 8 && (payload >> (8 * aux)) != 0) return BFA_E_CORRUPT;
        return BFA_OK;
    case BFA_T_STR:
    case BFA_T_BYTES:
    case BFA_T_DECIMAL:
        return byte_string(buf, payload, aux, limit);
    case BFA_T_XBYTES:
        return BFA_OK; /* payload = a payload number, checked against the directory */
    case BFA_T_BIGINT:
        /* only integers outside int64 are bigints, and they need >= 9 bytes */
        if (aux < 9) return BFA_E_CORRUPT;
        return byte_string(buf, payload, aux, limit);
    case BFA_T_UUID:
        if (aux != 16) return BFA_E_CORRUPT;
        return byte_string(buf, payload, aux, limit);
    case BFA_T_LIST:
    case BFA_T_TUPLE:
    case BFA_T_SET:
    case BFA_T_FROZENSET:
        return check_seq_node(buf, payload, aux, limit);
    case BFA_T_DATETIME:
    case BFA_T_TIME:
    case BFA_T_TIMEDELTA:
    case BFA_T_COMPLEX:
    case BFA_T_NPSCALAR:
        return fixed_seq_node(buf, payload, aux, limit);
    case BFA_T_MODEL: /* [schema dict, body dict or table] */
        if (aux != 2) return BFA_E_CORRUPT;
        return fixed_seq_node(buf, payload, aux, limit);
    case BFA_T_FRAME: /* format 1.1: [metadata dict, table, list of dictionary tables] */
        if (aux != 3) return BFA_E_CORRUPT;
        return fixed_seq_node(buf, payload, aux, limit);
    case BFA_T_DICT: {
        uint64_t n, nb;
        uint32_t w;
        int rc = dict_geometry(buf, payload, limit, &n, &nb, &w);
        if (rc < 0) return rc;
        return n == aux ? BFA_OK : BFA_E_CORRUPT;
    }
    case BFA_T_NDARRAY:
        if (aux != 0) return BFA_E_CORRUPT;
        return check_ndarray_node(buf, payload, limit);
    case BFA_T_TABLE:
        return check_table_header(buf, payload, aux, limit, NULL);
    default:
        return BFA_E_TAG;
    }
}

int64_t FN(seq_get)(const uint8_t *buf, uint64_t len, uint64_t node_off, int64_t index) {
    RANGED(int64_t, seq_get(buf, len, node_off, index))
    if (buf == NULL) return BFA_E_ARG;
    if (!BFA_TRUST && node_off % 8 != 0) return BFA_E_ALIGN;
    if (!bfa_in_range(node_off, BFA_SEQ_HEADER, len)) return BFA_E_BOUNDS;
    uint64_t count = LD64(buf + node_off);
    if (!BFA_TRUST && count > (len - node_off - BFA_SEQ_HEADER) / BFA_SLOT_SIZE)
        return BFA_E_BOUNDS;
    uint64_t i;
    if (index < 0) {
        uint64_t back = (uint64_t)(-(index + 1)) + 1u; /* |index| without overflow */
        if (back > count) return BFA_E_INDEX;
        i = count - back;
    } else {
        i = (uint64_t)index;
        if (i >= count) return BFA_E_INDEX;
    }
    uint64_t pos = node_off + BFA_SEQ_HEADER + i * BFA_SLOT_SIZE;
    int rc = FN(check_slot)(buf, len, pos, node_off);
    return rc < 0 ? rc : (int64_t)pos;
}

int FN(seq_check)(const uint8_t *buf, uint64_t len, uint64_t node_off, uint64_t count) {
    RANGED(int, seq_check(buf, len, node_off, count))
    if (buf == NULL) return BFA_E_ARG;
    if (BFA_TRUST) return BFA_OK;
    if (node_off % 8 != 0) return BFA_E_ALIGN;
    if (!bfa_in_range(node_off, BFA_SEQ_HEADER, len)) return BFA_E_BOUNDS;
    if (LD64(buf + node_off) != count) return BFA_E_CORRUPT;
    return FN(slots_check)(buf, len, node_off + BFA_SEQ_HEADER, count, node_off);
}

int FN(slots_check)(const uint8_t *buf, uint64_t len, uint64_t off, uint64_t count,
                    uint64_t limit) {
    RANGED(int, slots_check(buf, len, off, count, limit))
    if (buf == NULL) return BFA_E_ARG;
    if (BFA_TRUST) return BFA_OK;
    if (off % 8 != 0) return BFA_E_ALIGN;
    if (!bfa_in_range(off, 0, len) || count > (len - off) / BFA_SLOT_SIZE) return BFA_E_BOUNDS;
    for (uint64_t i = 0; i < count; i++) {
        int rc = FN(check_slot)(buf, len, off + i * BFA_SLOT_SIZE, limit);
        if (rc < 0) return rc;
    }
    return BFA_OK;
}

/* Is the BIGINT of n >= 9 bytes at b in the one form a writer produces and a
 * lookup hashes (docs/format/layout.md, "Byte strings")? Its value v lies outside
 * int64 (inside it, a writer uses INT and a lookup hashes kind INT) and n is
 * floor(bitlen(|v|) / 8) + 1: the minimal two's complement length, plus one
 * byte for a negative power of two whose bit length is a multiple of 8. Any
 * other form of a key would be iterated but never found by a lookup (and two
 * forms of one value would be two entries for one key). Reads the last two
 * bytes, and all of them only for values next to a power of two. */
static int bigint_canonical(const uint8_t *b, uint64_t n) {
    uint8_t last = b[n - 1], prev = b[n - 2];
    if (last < 0x80u) /* v >= 0: canonical if minimal, and then v >= 2^(8n - 9) >= 2^63 */
        return last != 0 || prev >= 0x80u;
    /* v < 0, so -2^(8n - 1) <= v <= -1; canonical: -2^(8n - 1) < v <= -2^(8n - 9),
     * and v != -2^63 (in int64) */
    int fits_shorter = last == 0xFFu && prev >= 0x80u; /* v >= -2^(8n - 9) */
    int near_min = last == 0x80u && prev == 0;        /* v < -2^(8n - 1) + 2^(8n - 16) */
    if (!fits_shorter && !near_min) return 1;
    if (fits_shorter && prev != 0x80u) return 0; /* v > -2^(8n - 9) */
    int low_zero = 1;
    for (uint64_t i = 0; i + 2 < n; i++) {
        if (b[i] != 0) {
            low_zero = 0;
            break;
        }
    }
    if (fits_shorter) return low_zero && n > 9; /* only v = -2^(8n - 9), beyond int64 */
    return !low_zero;                           /* v = -2^(8n - 1) takes n + 1 bytes */
}

/* The bytes of a key slot, for hashing and comparison. `scratch` holds the
 * 8 bytes of an INT key. Returns the kind, or a negative error. */
static int key_bytes(const uint8_t *buf, uint64_t pos, uint64_t limit, uint8_t scratch[8],
                     const uint8_t **bytes, uint64_t *n) {
    uint64_t w0 = LD64(buf + pos);
    uint64_t payload = LD64(buf + pos + 8);
    uint32_t tag = (uint32_t)(w0 & 0xFFu);
    uint64_t aux = w0 >> 8;
    switch (tag) {
    case BFA_T_INT:
        if (!BFA_TRUST && aux != 0) return BFA_E_CORRUPT;
        bfa_st64(scratch, payload);
        *bytes = scratch;
        *n = 8;
        return BFA_K_INT;
    case BFA_T_SSTR:
    case BFA_T_SBYTES:
        if (!BFA_TRUST && (aux > 8 || (aux < 8 && (payload >> (8 * aux)) != 0)))
            return BFA_E_CORRUPT;
        *bytes = buf + pos + 8;
        *n = aux;
        return tag == BFA_T_SSTR ? BFA_K_STR : BFA_K_BYTES;
    case BFA_T_STR:
    case BFA_T_BYTES:
    case BFA_T_BIGINT: {
        if (!BFA_TRUST && tag == BFA_T_BIGINT && aux < 9) return BFA_E_CORRUPT;
        int rc = check_ref(payload, aux, limit);
        if (rc < 0) return rc;
        TOUCH(buf + payload, aux); /* compared, hashed, or read next */
        if (!BFA_TRUST && tag == BFA_T_BIGINT && !bigint_canonical(buf + payload, aux))
            return BFA_E_CORRUPT;
        *bytes = buf + payload;
        *n = aux;
        return tag == BFA_T_STR ? BFA_K_STR : tag == BFA_T_BYTES ? BFA_K_BYTES : BFA_K_BIGINT;
    }
    default:
        return BFA_E_TAG;
    }
}

/* Probe the hash index of the dict at `node_off` for `key` (of `kind`), from
 * its home bucket on: the 0-based number of the first entry reached that is
 * `self` or holds an equal key; BFA_E_NOTFOUND at an empty bucket or after
 * every bucket; BFA_E_CORRUPT for a bucket naming no entry. Lookups pass
 * self = UINT64_MAX; the check passes the entry whose key it probes. */
static int64_t probe_index(const uint8_t *buf, uint64_t node_off, uint64_t count,
                           uint64_t nbuckets, uint32_t width, uint32_t kind, const uint8_t *key,
                           uint64_t key_len, uint64_t self) {
    uint64_t entries = node_off + BFA_DICT_HEADER;
    uint64_t index = entries + count * BFA_DICT_ENTRY;
    uint64_t mask = nbuckets - 1u;
    uint64_t b = bfa_hash_bytes(kind, key, key_len) & mask;
    for (uint64_t probe = 0; probe < nbuckets; probe++, b = (b + 1u) & mask) {
        const uint8_t *cell = buf + index + b * width;
        uint64_t e = width == 4 ? LD32(cell) : LD64(cell);
        if (e == 0) return BFA_E_NOTFOUND;
        if (!BFA_TRUST && e > count) return BFA_E_CORRUPT;
        if (e - 1u == self) return (int64_t)self;
        uint8_t scratch[8];
        const uint8_t *kb;
        uint64_t kn;
        int k = key_bytes(buf, entries + (e - 1u) * BFA_DICT_ENTRY, node_off, scratch, &kb, &kn);
        if (k < 0) return k;
        if ((uint32_t)k == kind && kn == key_len && (kn == 0 || memcmp(kb, key, kn) == 0))
            return (int64_t)(e - 1u);
    }
    return BFA_E_NOTFOUND;
}

int64_t FN(dict_find)(const uint8_t *buf, uint64_t len, uint64_t node_off, uint32_t kind,
                      const char *key_chars, uint64_t key_len, int64_t int_key) {
    RANGED(int64_t, dict_find(buf, len, node_off, kind, key_chars, key_len, int_key))
    const uint8_t *key = (const uint8_t *)key_chars;
    if (buf == NULL || (key == NULL && key_len != 0)) return BFA_E_ARG;
    uint64_t count, nbuckets;
    uint32_t width;
    int rc = dict_geometry(buf, node_off, len, &count, &nbuckets, &width);
    if (rc < 0) return rc;
    if (count == 0) return BFA_E_NOTFOUND;
    uint8_t int_bytes[8];
    if (kind == BFA_K_INT) {
        bfa_st64(int_bytes, (uint64_t)int_key);
        key = int_bytes;
        key_len = 8;
    } else if (kind != BFA_K_STR && kind != BFA_K_BYTES && kind != BFA_K_BIGINT) {
        return BFA_E_ARG;
    }
    int64_t found = probe_index(buf, node_off, count, nbuckets, width, kind, key, key_len,
                                UINT64_MAX);
    if (found < 0) return found;
    uint64_t pos = node_off + BFA_DICT_HEADER + (uint64_t)found * BFA_DICT_ENTRY;
    rc = FN(check_slot)(buf, len, pos + BFA_SLOT_SIZE, node_off);
    return rc < 0 ? rc : (int64_t)(pos + BFA_SLOT_SIZE);
}

/* Does probing the index for entry i's key reach entry i, with no other
 * entry holding an equal key on the way? Catches keys the index misses and
 * duplicate keys, either of which would make lookups disagree with iteration. */
static int index_finds(const uint8_t *buf, uint64_t node_off, uint64_t count, uint64_t nbuckets,
                       uint32_t width, uint64_t i, uint32_t kind, const uint8_t *key,
                       uint64_t key_len) {
    int64_t reached = probe_index(buf, node_off, count, nbuckets, width, kind, key, key_len, i);
    if (reached < 0 && reached != BFA_E_NOTFOUND) return (int)reached;
    return reached == (int64_t)i ? BFA_OK : BFA_E_CORRUPT; /* missed, or a duplicate key */
}

int FN(dict_check)(const uint8_t *buf, uint64_t len, uint64_t node_off, uint64_t count) {
    RANGED(int, dict_check(buf, len, node_off, count))
    if (buf == NULL) return BFA_E_ARG;
    if (BFA_TRUST) return BFA_OK;
    uint64_t n, nbuckets;
    uint32_t width;
    int rc = dict_geometry(buf, node_off, len, &n, &nbuckets, &width);
    if (rc < 0) return rc;
    if (n != count) return BFA_E_CORRUPT;
    uint64_t entries = node_off + BFA_DICT_HEADER;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t pos = entries + i * BFA_DICT_ENTRY;
        uint8_t scratch[8];
        const uint8_t *kb;
        uint64_t kn;
        int k = key_bytes(buf, pos, node_off, scratch, &kb, &kn);
        if (k < 0) return k;
        rc = FN(check_slot)(buf, len, pos + BFA_SLOT_SIZE, node_off);
        if (rc < 0) return rc;
        rc = index_finds(buf, node_off, n, nbuckets, width, i, (uint32_t)k, kb, kn);
        if (rc < 0) return rc;
    }
    return BFA_OK;
}

/* One region of a column: [off, off + size) before the table node at `limit`. */
static int check_region(const uint8_t *buf, uint64_t desc, int region, uint64_t size,
                        uint64_t align, uint64_t limit) {
    uint64_t off = LD64(buf + desc + 8 + 16u * (uint64_t)region);
    uint64_t len = LD64(buf + desc + 16 + 16u * (uint64_t)region);
    if (len != size) return BFA_E_CORRUPT;
    if (off % align != 0) return BFA_E_ALIGN;
    if (off < BFA_HEADER_SIZE) return BFA_E_ORDER;
    if (!bfa_in_range(off, len, limit)) return BFA_E_ORDER;
    return BFA_OK;
}

static int region_unused(const uint8_t *buf, uint64_t desc, int region) {
    return LD64(buf + desc + 8 + 16u * (uint64_t)region) == 0 &&
                   LD64(buf + desc + 16 + 16u * (uint64_t)region) == 0
               ? BFA_OK
               : BFA_E_CORRUPT;
}

/* Bytes per value of a FIXED column's element type code, 0 for no type. */
static uint64_t fixed_width(uint32_t code) {
    switch (code) {
    case BFA_FX_INT8:
    case BFA_FX_UINT8:
        return 1;
    case BFA_FX_INT16:
    case BFA_FX_UINT16:
    case BFA_FX_FLOAT16:
        return 2;
    case BFA_FX_INT32:
    case BFA_FX_UINT32:
    case BFA_FX_FLOAT32:
    case BFA_FX_DATE32:
        return 4;
    case BFA_FX_UINT64:
    case BFA_FX_TIMESTAMP_S:
    case BFA_FX_TIMESTAMP_MS:
    case BFA_FX_TIMESTAMP_US:
    case BFA_FX_TIMESTAMP_NS:
    case BFA_FX_DURATION_S:
    case BFA_FX_DURATION_MS:
    case BFA_FX_DURATION_US:
    case BFA_FX_DURATION_NS:
        return 8;
    default:
        return 0;
    }
}

/* Sizes in bytes of `n` items of `width`, or UINT64_MAX on overflow. */
static uint64_t times(uint64_t n, uint64_t width) {
    return n > UINT64_MAX / width ? UINT64_MAX : n * width;
}

int FN(table_check)(const uint8_t *buf, uint64_t len, uint64_t node_off, uint64_t nrows) {
    RANGED(int, table_check(buf, len, node_off, nrows))
    if (buf == NULL) return BFA_E_ARG;
    if (BFA_TRUST) return BFA_OK;
    uint64_t ncols;
    int rc = check_table_header(buf, node_off, nrows, len, &ncols);
    if (rc < 0) return rc;
    /* the key dict maps each column name to its column number */
    uint64_t keys_slot = node_off + 16;
    if ((LD64(buf + keys_slot) & 0xFFu) != BFA_T_DICT ||
        (LD64(buf + keys_slot) >> 8) != ncols)
        return BFA_E_CORRUPT;
    rc = FN(check_slot)(buf, len, keys_slot, node_off);
    if (rc < 0) return rc;
    uint64_t rows1 = nrows == UINT64_MAX ? UINT64_MAX : nrows + 1u;
    for (uint64_t c = 0; c < ncols; c++) {
        uint64_t d = node_off + BFA_TABLE_HEADER + c * BFA_COLUMN_SIZE;
        uint32_t kind = LD32(buf + d);
        uint32_t flags = LD32(buf + d + 4);
        int nulls = (flags & BFA_COL_HAS_NULLS) != 0;
        uint32_t allowed = BFA_COL_HAS_NULLS | (kind == BFA_COL_FIXED ? BFA_COL_TYPE_MASK : 0u);
        if ((flags & ~allowed) != 0) return BFA_E_FLAGS;
        switch (kind) {
        case BFA_COL_FIXED: {
            uint64_t width = fixed_width((flags & BFA_COL_TYPE_MASK) >> BFA_COL_TYPE_SHIFT);
            if (width == 0) return BFA_E_FLAGS;
            rc = check_region(buf, d, 0, times(nrows, width), BFA_ARRAY_ALIGN, node_off);
            if (rc == BFA_OK)
                rc = nulls ? check_region(buf, d, 1, nrows, 8, node_off) : region_unused(buf, d, 1);
            if (rc == BFA_OK) rc = region_unused(buf, d, 2);
            break;
        }
        case BFA_COL_INT64:
        case BFA_COL_FLOAT64:
        case BFA_COL_DATETIME:
        case BFA_COL_BOOL:
            rc = check_region(buf, d, 0, times(nrows, kind == BFA_COL_BOOL ? 1u : 8u),
                              BFA_ARRAY_ALIGN, node_off);
            if (rc == BFA_OK)
                rc = nulls ? check_region(buf, d, 1, nrows, 8, node_off) : region_unused(buf, d, 1);
            if (rc == BFA_OK) rc = region_unused(buf, d, 2);
            break;
        case BFA_COL_STR:
        case BFA_COL_BINARY: {
            rc = check_region(buf, d, 0, times(rows1, 8u), 8, node_off);
            if (rc == BFA_OK) {
                uint64_t blob_len = LD64(buf + d + 32);
                rc = check_region(buf, d, 1, blob_len, 8, node_off);
            }
            if (rc == BFA_OK)
                rc = nulls ? check_region(buf, d, 2, nrows, 8, node_off) : region_unused(buf, d, 2);
            break;
        }
        case BFA_COL_SLOTS:
            if (nulls) return BFA_E_FLAGS;
            rc = check_region(buf, d, 0, times(nrows, BFA_SLOT_SIZE), 8, node_off);
            if (rc == BFA_OK) rc = region_unused(buf, d, 1);
            if (rc == BFA_OK) rc = region_unused(buf, d, 2);
            break;
        case BFA_COL_STRLIST: {
            if (nulls) return BFA_E_FLAGS;
            rc = check_region(buf, d, 0, times(rows1, 8u), 8, node_off);
            uint64_t items_len = LD64(buf + d + 32);
            if (rc == BFA_OK && (items_len < 8 || items_len % 8 != 0)) rc = BFA_E_CORRUPT;
            if (rc == BFA_OK) rc = check_region(buf, d, 1, items_len, 8, node_off);
            if (rc == BFA_OK) {
                uint64_t blob_len = LD64(buf + d + 48);
                rc = check_region(buf, d, 2, blob_len, 8, node_off);
            }
            break;
        }
        default:
            return BFA_E_TAG;
        }
        if (rc < 0) return rc;
    }
    return BFA_OK;
}

int FN(offsets_check)(const uint8_t *buf, uint64_t len, uint64_t off, uint64_t count,
                      uint64_t limit) {
    RANGED(int, offsets_check(buf, len, off, count, limit))
    if (buf == NULL) return BFA_E_ARG;
    if (BFA_TRUST) return BFA_OK;
    if (off % 8 != 0) return BFA_E_ALIGN;
    if (count == 0 || !bfa_in_range(off, times(count, 8u), len)) return BFA_E_BOUNDS;
    uint64_t prev = 0;
    for (uint64_t i = 0; i < count; i++) {
        uint64_t v = LD64(buf + off + 8u * i);
        if (v < prev || v > limit) return BFA_E_CORRUPT;
        prev = v;
    }
    return LD64(buf + off) == 0 ? BFA_OK : BFA_E_CORRUPT;
}
