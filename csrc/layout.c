/* layout.c: the writer's half of the core: builds the hash index of a dict
 * node whose header and entries are already laid out in the output segment.
 *
 * The writer appends nodes to a growing segment whose first byte sits at
 * absolute archive offset `seg_base`; the keys of a dict are written into the
 * same segment before the dict node, so everything this reads is in `seg`.
 */
#include <string.h>

#include "bfa_internal.h"

int bfa_dict_build_index(uint8_t *seg, uint64_t seg_len, uint64_t seg_base, uint64_t node_off) {
    if (seg == NULL || node_off < seg_base) return BFA_E_ARG;
    uint64_t rel = node_off - seg_base;
    if (!bfa_in_range(rel, BFA_DICT_HEADER, seg_len)) return BFA_E_BOUNDS;
    uint8_t *node = seg + rel;
    uint64_t count = bfa_ld64(node);
    uint64_t nbuckets = bfa_ld64(node + 8);
    uint32_t width = bfa_ld32(node + 16);
    if (nbuckets != bfa_nbuckets_for(count) || (width != 4 && width != 8)) return BFA_E_ARG;
    uint64_t room = seg_len - rel - BFA_DICT_HEADER;
    if (count > room / BFA_DICT_ENTRY || nbuckets > (room - count * BFA_DICT_ENTRY) / width)
        return BFA_E_BOUNDS;
    uint8_t *entries = node + BFA_DICT_HEADER;
    uint8_t *index = entries + count * BFA_DICT_ENTRY;
    memset(index, 0, (size_t)(nbuckets * width));
    uint64_t mask = nbuckets - 1u;
    for (uint64_t i = 0; i < count; i++) {
        const uint8_t *slot = entries + i * BFA_DICT_ENTRY;
        uint64_t w0 = bfa_ld64(slot);
        uint64_t payload = bfa_ld64(slot + 8);
        uint32_t tag = (uint32_t)(w0 & 0xFFu);
        uint64_t aux = w0 >> 8;
        uint32_t kind;
        const uint8_t *kb;
        uint64_t kn;
        switch (tag) {
        case BFA_T_INT:
            kind = BFA_K_INT;
            kb = slot + 8;
            kn = 8;
            break;
        case BFA_T_SSTR:
        case BFA_T_SBYTES:
            if (aux > 8) return BFA_E_CORRUPT;
            kind = tag == BFA_T_SSTR ? BFA_K_STR : BFA_K_BYTES;
            kb = slot + 8;
            kn = aux;
            break;
        case BFA_T_STR:
        case BFA_T_BYTES:
        case BFA_T_BIGINT:
            if (payload < seg_base || !bfa_in_range(payload - seg_base, aux, rel))
                return BFA_E_BOUNDS;
            kind = tag == BFA_T_STR ? BFA_K_STR : tag == BFA_T_BYTES ? BFA_K_BYTES : BFA_K_BIGINT;
            kb = seg + (payload - seg_base);
            kn = aux;
            break;
        default:
            return BFA_E_TAG;
        }
        uint64_t b = bfa_hash_bytes(kind, kb, kn) & mask;
        for (uint64_t probe = 0;; probe++, b = (b + 1u) & mask) {
            if (probe == nbuckets) return BFA_E_CORRUPT; /* cannot happen: load <= 1/2 */
            uint8_t *cell = index + b * width;
            uint64_t e = width == 4 ? bfa_ld32(cell) : bfa_ld64(cell);
            if (e == 0) {
                if (width == 4)
                    bfa_st32(cell, (uint32_t)(i + 1u));
                else
                    bfa_st64(cell, i + 1u);
                break;
            }
        }
    }
    return BFA_OK;
}
