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
#include <sys/stat.h>
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

/* The identity check of a kept mapping (bfast_archive/_mappings.py) in one
 * call: os.stat builds a 19-field result (three timestamps as floats and as
 * nanosecond ints) for the four values compared here. */
int bfa_file_matches(const char *path, const uint64_t *expected) {
#if defined(__linux__)
    struct stat st;
    if (path == NULL || expected == NULL || stat(path, &st) != 0) return -1;
    int64_t sec = (int64_t)st.st_mtim.tv_sec, nsec = (int64_t)st.st_mtim.tv_nsec;
    /* mtime in ns as Python computes it (sec * 10**9 + nsec); beyond int64: compared there */
    if (sec > (INT64_MAX - 999999999) / 1000000000 || sec < INT64_MIN / 1000000000 + 1)
        return 0;
    uint64_t mtime_ns = (uint64_t)(sec * 1000000000 + nsec);
    return (uint64_t)st.st_dev == expected[0] && (uint64_t)st.st_ino == expected[1] &&
           (uint64_t)(int64_t)st.st_size == expected[2] && mtime_ns == expected[3];
#else
    (void)path;
    (void)expected;
    return -2;
#endif
}
