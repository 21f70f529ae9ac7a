/* memory.c: filling large output buffers from threads.
 *
 * The writer assembles a big archive (`dumps`) by copying its pieces into one
 * new buffer from several threads, each call with the GIL released. Fresh
 * memory costs a page fault per 4 KiB page touched, which for a few hundred
 * MiB costs more than the copy itself; bfa_advise_huge asks Linux for 2 MiB
 * pages on the aligned interior of such a buffer (only a hint: without
 * transparent huge pages, or on other systems, it does nothing).
 */
#define _DEFAULT_SOURCE /* madvise, MADV_HUGEPAGE */
#include <stdint.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "bfa.h"

#define BFA_HUGE_PAGE ((uintptr_t)2 << 20)

void bfa_advise_huge(uint8_t *p, uint64_t len) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (p == NULL || len < 2 * BFA_HUGE_PAGE) return;
    uintptr_t start = ((uintptr_t)p + BFA_HUGE_PAGE - 1) & ~(BFA_HUGE_PAGE - 1);
    uintptr_t end = ((uintptr_t)p + (uintptr_t)len) & ~(BFA_HUGE_PAGE - 1);
    /* only whole huge pages inside [p, p + len): memory the caller owns */
    if (end > start) (void)madvise((void *)start, (size_t)(end - start), MADV_HUGEPAGE);
#else
    (void)p;
    (void)len;
#endif
}

int bfa_copy(uint8_t *dst, uint64_t dst_len, uint64_t at, const uint8_t *src, uint64_t n) {
    if (dst == NULL || (src == NULL && n != 0)) return BFA_E_ARG;
    if (at > dst_len || n > dst_len - at) return BFA_E_BOUNDS;
    if (n != 0) memcpy(dst + at, src, (size_t)n);
    return BFA_OK;
}
