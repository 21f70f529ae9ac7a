/* chunks.c: the directory of checksums and compressed payloads that follows
 * the nodes (docs/format/layout.md, "Directory"), and chunk-wise (de)compression.
 *
 * LZ4 itself comes from the `lz4` Python package's library: Python passes
 * its LZ4_compress_fast / LZ4_decompress_safe as function pointers, so a
 * whole range of chunks is checked and decoded in one call that holds no
 * GIL, straight into the caller's preallocated buffer.
 */
#include <limits.h>
#include <string.h>

#include "bfa_internal.h"

static uint64_t payload_geometry(const uint8_t *buf, const bfa_directory *dir, uint64_t p,
                                 uint64_t *chunk_size, uint64_t *first, uint64_t *n) {
    const uint8_t *e = buf + dir->payloads_off + p * BFA_PAYLOAD_ENTRY;
    *chunk_size = bfa_ld64(e + 8);
    *first = bfa_ld64(e + 16);
    *n = bfa_ld64(e + 24);
    return bfa_ld64(e);
}

/* One chunk entry of the directory (docs/format/layout.md, "Directory"). */
typedef struct {
    uint64_t off, stored, hash;
    uint32_t codec, reserved;
} chunk_entry;

static chunk_entry chunk_entry_at(const uint8_t *buf, const bfa_directory *dir, uint64_t k) {
    const uint8_t *e = buf + dir->chunks_off + k * BFA_CHUNK_ENTRY;
    chunk_entry c = {bfa_ld64(e), bfa_ld64(e + 8), bfa_ld64(e + 16), bfa_ld32(e + 24),
                     bfa_ld32(e + 28)};
    return c;
}

/* Raw size of chunk k of a payload of `logical` bytes cut in `chunk_size` pieces. */
static uint64_t chunk_raw(uint64_t logical, uint64_t chunk_size, uint64_t k) {
    if (k > logical / chunk_size) return 0; /* past the end: callers reject it */
    uint64_t start = k * chunk_size;
    return logical - start < chunk_size ? logical - start : chunk_size;
}

int bfa_directory_check(const uint8_t *buf, uint64_t len, const bfa_header *h,
                        bfa_directory *out) {
    if (buf == NULL || h == NULL || out == NULL) return BFA_E_ARG;
    memset(out, 0, sizeof *out);
    uint64_t at = h->sections_off;
    if (at == 0 || len < h->file_size || !bfa_in_range(at, BFA_DIRECTORY_HEADER, h->file_size))
        return BFA_E_BOUNDS;
    uint64_t nc = bfa_ld64(buf + at), np = bfa_ld64(buf + at + 8), nk = bfa_ld64(buf + at + 16);
    if (bfa_ld64(buf + at + 24) != 0) return BFA_E_CORRUPT;
    uint64_t room = h->file_size - at - BFA_DIRECTORY_HEADER;
    if (nc > room / BFA_CHECK_ENTRY) return BFA_E_BOUNDS;
    room -= nc * BFA_CHECK_ENTRY;
    if (np > room / BFA_PAYLOAD_ENTRY) return BFA_E_BOUNDS;
    room -= np * BFA_PAYLOAD_ENTRY;
    if (nk > room / BFA_CHUNK_ENTRY || room != nk * BFA_CHUNK_ENTRY) return BFA_E_BOUNDS;
    out->n_checks = nc;
    out->n_payloads = np;
    out->n_chunks = nk;
    out->checks_off = at + BFA_DIRECTORY_HEADER;
    out->payloads_off = out->checks_off + nc * BFA_CHECK_ENTRY;
    out->chunks_off = out->payloads_off + np * BFA_PAYLOAD_ENTRY;
    int compressed = (h->flags & BFA_F_COMPRESSED) != 0;
    if (!compressed) {
        /* checksum entries cover [64, nodes_end) in order, without gaps */
        if (np != 0 || nk != 0) return BFA_E_CORRUPT;
        uint64_t expect = BFA_HEADER_SIZE;
        for (uint64_t i = 0; i < nc; i++) {
            const uint8_t *e = buf + out->checks_off + i * BFA_CHECK_ENTRY;
            uint64_t off = bfa_ld64(e), n = bfa_ld64(e + 8);
            if (off != expect || n == 0 || !bfa_in_range(off, n, h->nodes_end))
                return BFA_E_CORRUPT;
            expect = off + n;
        }
        return expect == h->nodes_end ? BFA_OK : BFA_E_CORRUPT;
    }
    if (nc != 0 || np == 0) return BFA_E_CORRUPT;
    /* payloads own consecutive runs of chunk entries, and chunks lie in file
     * order without overlapping: the stored bytes are counted once, so the
     * 255:1 limit per chunk bounds the whole archive's expansion */
    uint64_t next_chunk = 0, stored_end = BFA_HEADER_SIZE;
    for (uint64_t p = 0; p < np; p++) {
        uint64_t cs, first, n;
        uint64_t logical = payload_geometry(buf, out, p, &cs, &first, &n);
        if (bfa_ld64(buf + out->payloads_off + p * BFA_PAYLOAD_ENTRY + 32) != 0)
            return BFA_E_CORRUPT;
        if (p == 0 && logical != h->nodes_end - BFA_HEADER_SIZE) return BFA_E_CORRUPT;
        if (cs == 0 || cs > BFA_MAX_CHUNK) return BFA_E_LIMIT;
        if (first > nk || n > nk - first) return BFA_E_BOUNDS;
        if (first != next_chunk) return BFA_E_CORRUPT;
        next_chunk = first + n;
        if (n != logical / cs + (logical % cs != 0)) return BFA_E_CORRUPT;
        for (uint64_t k = 0; k < n; k++) {
            chunk_entry c = chunk_entry_at(buf, out, first + k);
            uint64_t off = c.off, stored = c.stored;
            uint32_t codec = c.codec;
            uint64_t raw = chunk_raw(logical, cs, k);
            if (c.reserved != 0) return BFA_E_CORRUPT;
            if (off < stored_end || !bfa_in_range(off, stored, at)) return BFA_E_BOUNDS;
            stored_end = off + stored;
            if (codec == BFA_CODEC_RAW) {
                if (stored != raw) return BFA_E_CORRUPT;
            } else if (codec == BFA_CODEC_LZ4) {
                /* an LZ4 block cannot expand more than 255-fold: more is a bomb */
                if (stored == 0 || stored > BFA_MAX_CHUNK || raw > stored * 255u + 64u)
                    return BFA_E_LIMIT;
            } else {
                return BFA_E_TAG;
            }
        }
    }
    return next_chunk == nk ? BFA_OK : BFA_E_CORRUPT;
}

int bfa_payload_decode(const uint8_t *buf, uint64_t len, const bfa_directory *dir,
                       uint64_t payload, uint64_t from, uint64_t to, uint8_t *dst,
                       uint64_t dst_len, bfa_lz4_decompress_fn decompress, int verify,
                       uint64_t *bad) {
    if (buf == NULL || dir == NULL || dst == NULL || bad == NULL) return BFA_E_ARG;
    if (payload >= dir->n_payloads) return BFA_E_INDEX;
    uint64_t cs, first, n;
    uint64_t logical = payload_geometry(buf, dir, payload, &cs, &first, &n);
    if (cs == 0 || from > to || to > n || first > dir->n_chunks || n > dir->n_chunks - first ||
        to > logical / cs + 1u)
        return BFA_E_ARG;
    uint64_t start = from * cs;
    uint64_t end = to * cs < logical ? to * cs : logical;
    if (from < to && (start > end || dst_len != end - start)) return BFA_E_ARG;
    uint8_t *out = dst;
    uint64_t remaining = dst_len;
    for (uint64_t k = from; k < to; k++) {
        chunk_entry c = chunk_entry_at(buf, dir, first + k);
        uint64_t off = c.off, stored = c.stored;
        uint32_t codec = c.codec;
        uint64_t raw = chunk_raw(logical, cs, k);
        *bad = first + k;
        /* the buffer may have changed since the directory was checked */
        if (raw == 0 || raw > remaining) return BFA_E_CORRUPT;
        if (!bfa_in_range(off, stored, len)) return BFA_E_BOUNDS;
        if (verify && bfa_xxh64(buf + off, stored, 0) != c.hash) return BFA_E_CHECKSUM;
        if (codec == BFA_CODEC_RAW) {
            if (stored != raw) return BFA_E_CORRUPT;
            memcpy(out, buf + off, (size_t)raw);
        } else if (codec == BFA_CODEC_LZ4) {
            if (decompress == NULL) return BFA_E_ARG;
            if (stored > INT_MAX || raw > INT_MAX) return BFA_E_LIMIT;
            int got = decompress((const char *)(buf + off), (char *)out, (int)stored, (int)raw);
            if (got < 0 || (uint64_t)got != raw) return BFA_E_CORRUPT;
        } else {
            return BFA_E_TAG;
        }
        out += raw;
        remaining -= raw;
    }
    return BFA_OK;
}

uint64_t bfa_lz4_bound(uint64_t n) { return n + n / 255u + 16u; }

/* Adaptive storage without paying for LZ4 on data that does not compress
 * (random bytes, already compressed media): a chunk of at least 4 samples'
 * size is first tried on two samples, at its start and its middle. If
 * neither saves 1/32 of its bytes, the chunk is stored raw without
 * compressing it whole (the whole chunk must save 1/8 to be kept
 * compressed anyway). Smaller chunks are always tried whole. `scratch` has
 * room for the LZ4 bound of the chunk. Deterministic: the same bytes give
 * the same choice. */
#define BFA_SAMPLE ((uint64_t)32768)
static int worth_compressing(const uint8_t *in, uint64_t raw, uint8_t *scratch, uint64_t room,
                             bfa_lz4_compress_fn compress, int acceleration) {
    if (raw < 4 * BFA_SAMPLE) return 1;
    const uint8_t *at[2] = {in, in + (raw / 2 - (raw / 2) % 8)};
    for (int s = 0; s < 2; s++) {
        int got = compress((const char *)at[s], (char *)scratch, (int)BFA_SAMPLE, (int)room,
                           acceleration);
        if (got > 0 && (uint64_t)got <= BFA_SAMPLE - BFA_SAMPLE / 32u) return 1;
    }
    return 0;
}

/* The bytes of a payload in parts: parts[i], part_lens[i] bytes each, the
 * first starting at logical offset `first_off`. */
typedef struct {
    const uint8_t *const *ptr;
    const uint64_t *len;
    uint64_t n, at, start; /* the current part and its logical start */
} parts_cursor;

/* Chunk [s, s + raw) of the payload: a pointer into the part that holds it
 * whole, or NULL (and *straddles = 1) after copying it into `scratch`.
 * Chunks come in increasing order; the caller checked that the parts
 * cover every chunk asked for. */
static const uint8_t *chunk_bytes(parts_cursor *c, uint64_t s, uint64_t raw, uint8_t *scratch,
                                  int *straddles) {
    while (c->at < c->n && c->start + c->len[c->at] <= s) {
        c->start += c->len[c->at];
        c->at++;
    }
    *straddles = 0;
    if (c->at >= c->n) return NULL;
    uint64_t in = s - c->start, have = c->len[c->at] - in;
    if (raw <= have) return c->ptr[c->at] + in;
    *straddles = 1;
    if (scratch == NULL) return NULL;
    uint64_t got = 0;
    for (uint64_t p = c->at; p < c->n && got < raw; p++) {
        uint64_t from = p == c->at ? in : 0;
        uint64_t take = c->len[p] - from < raw - got ? c->len[p] - from : raw - got;
        if (take != 0) memcpy(scratch + got, c->ptr[p] + from, (size_t)take);
        got += take;
    }
    return got == raw ? scratch : NULL;
}

int bfa_chunks_encode(const uint8_t *const *parts, const uint64_t *part_lens, uint64_t n_parts,
                      uint64_t first_off, uint64_t src_len, uint64_t chunk_size, uint64_t from,
                      uint64_t to, uint8_t *dst, uint64_t dst_len, uint8_t *scratch,
                      uint64_t scratch_len, bfa_lz4_compress_fn compress, int acceleration,
                      uint64_t *sizes, uint64_t *hashes, uint32_t *codecs, uint64_t *used) {
    if (parts == NULL || part_lens == NULL || sizes == NULL || hashes == NULL ||
        codecs == NULL || used == NULL)
        return BFA_E_ARG;
    if (chunk_size == 0 || chunk_size > BFA_MAX_CHUNK || from > to) return BFA_E_ARG;
    uint64_t n = src_len / chunk_size + (src_len % chunk_size != 0);
    if (to > n) return BFA_E_ARG;
    /* the parts cover [from * chunk_size, end of chunk to - 1) */
    uint64_t covered = 0;
    for (uint64_t p = 0; p < n_parts; p++) {
        if (parts[p] == NULL && part_lens[p] != 0) return BFA_E_ARG;
        if (part_lens[p] > UINT64_MAX - covered) return BFA_E_BOUNDS;
        covered += part_lens[p];
    }
    uint64_t lo = from * chunk_size, hi = to * chunk_size < src_len ? to * chunk_size : src_len;
    if (from < to && (first_off > lo || covered > UINT64_MAX - first_off ||
                      first_off + covered < hi))
        return BFA_E_BOUNDS;
    uint64_t stride = bfa_lz4_bound(chunk_size);
    if (to - from > UINT64_MAX / stride || dst == NULL || dst_len < (to - from) * stride)
        return BFA_E_ARG;
    if (n_parts > 1 && (scratch == NULL || scratch_len < chunk_size)) return BFA_E_ARG;
    parts_cursor cur = {parts, part_lens, n_parts, 0, first_off};
    uint64_t at = 0; /* bytes of dst written: chunk i starts at most i * stride in */
    for (uint64_t k = from; k < to; k++) {
        uint64_t raw = chunk_raw(src_len, chunk_size, k);
        uint64_t i = k - from;
        int straddles;
        const uint8_t *in = chunk_bytes(&cur, k * chunk_size, raw, scratch, &straddles);
        if (in == NULL) return BFA_E_BOUNDS;
        uint8_t *out = dst + at; /* room: dst_len - at >= (to - k) * stride */
        if (compress != NULL && worth_compressing(in, raw, out, stride, compress, acceleration)) {
            int got = compress((const char *)in, (char *)out, (int)raw, (int)stride, acceleration);
            /* keep the compressed form only if it saves at least 1/8 */
            if (got > 0 && (uint64_t)got <= raw - raw / 8u) {
                sizes[i] = (uint64_t)got;
                codecs[i] = BFA_CODEC_LZ4;
                hashes[i] = bfa_xxh64(out, (uint64_t)got, 0);
                at += (uint64_t)got;
                continue;
            }
        }
        sizes[i] = raw;
        codecs[i] = BFA_CODEC_RAW;
        hashes[i] = bfa_xxh64(in, raw, 0);
        if (straddles) { /* stored from dst: the caller cannot slice it from one part */
            memcpy(out, in, (size_t)raw);
            at += raw;
        }
    }
    *used = at;
    return BFA_OK;
}

int bfa_chunk_entries(uint8_t *out, uint64_t out_len, uint64_t at, const uint64_t *sizes,
                      const uint64_t *hashes, const uint32_t *codecs, uint64_t n,
                      uint64_t *end) {
    if (out == NULL || sizes == NULL || hashes == NULL || codecs == NULL || end == NULL)
        return BFA_E_ARG;
    if (n > out_len / BFA_CHUNK_ENTRY) return BFA_E_BOUNDS;
    for (uint64_t i = 0; i < n; i++) {
        uint8_t *e = out + i * BFA_CHUNK_ENTRY;
        if (sizes[i] > UINT64_MAX - at) return BFA_E_BOUNDS;
        bfa_st64(e, at);
        bfa_st64(e + 8, sizes[i]);
        bfa_st64(e + 16, hashes[i]);
        bfa_st32(e + 24, codecs[i]);
        bfa_st32(e + 28, 0);
        at += sizes[i];
    }
    *end = at;
    return BFA_OK;
}
