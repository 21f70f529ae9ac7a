/* files.c: preallocating the file dump() writes.
 *
 * Writing a large file into blocks the filesystem allocates as the pages
 * arrive costs ext4 (and others) about as much again as the copy into the
 * page cache; reserving the whole size first (fallocate, as NumPy's tofile
 * does) lets the writes fill extents that already exist. Linux's
 * fallocate(2) is called directly: glibc's posix_fallocate would instead
 * write a zero into every block on filesystems without the call, a second
 * pass over the whole file.
 */
#define _GNU_SOURCE /* fallocate */
#include <errno.h>
#include <stdint.h>
#if defined(__linux__)
#include <fcntl.h>
#endif

#include "bfa.h"

int bfa_preallocate(int fd, uint64_t len) {
#if defined(__linux__)
    if (fd < 0 || len > (uint64_t)INT64_MAX) return EINVAL;
    if (len == 0) return 0;
    if ((uint64_t)(off_t)len != len) return EFBIG; /* a 32-bit off_t */
    return fallocate(fd, 0, 0, (off_t)len) == 0 ? 0 : errno;
#else
    (void)fd;
    (void)len;
    return EOPNOTSUPP;
#endif
}
