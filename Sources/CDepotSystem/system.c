#define _GNU_SOURCE
#include "CDepotSystem.h"
#include <errno.h>
#include <stdlib.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

int depot_syncfs(int fd) {
#ifdef __linux__
    return syncfs(fd);
#else
    (void)fd;
    errno = ENOSYS;
    return -1;
#endif
}

int depot_start_writeback(int fd, int64_t offset, int64_t count) {
#ifdef __linux__
    return sync_file_range(fd, offset, count, SYNC_FILE_RANGE_WRITE);
#else
    (void)fd; (void)offset; (void)count;
    return 0;
#endif
}

long depot_read_cached(int fd, void *buffer, unsigned long count, int64_t offset) {
#if defined(__linux__) && defined(RWF_NOWAIT)
    // The byte after `count` goes to a scratch byte, so that a longer file is noticed without a
    // stat and the caller's buffer is exactly `count` long.
    unsigned char beyond;
    struct iovec io[2] = {{.iov_base = buffer, .iov_len = count}, {.iov_base = &beyond, .iov_len = 1}};
    ssize_t n;
    do {
        n = preadv2(fd, io, 2, offset, RWF_NOWAIT);
    } while (n < 0 && errno == EINTR);
    // A kernel or file system without RWF_NOWAIT: as if not cached (the caller's thread reads).
    if (n < 0 && (errno == EOPNOTSUPP || errno == EINVAL || errno == ENOSYS)) errno = EAGAIN;
    // `count` bytes ending on a page boundary: the byte after them is on a page of its own, and
    // RWF_NOWAIT stops short, as at the end of the file, when that page is not cached. The file's
    // size tells which (a read of that byte alone would too, but kernels before 5.16 answer
    // EAGAIN at the end of a file whose last page is not cached).
    if (n >= 0 && (unsigned long)n == count && count > 0 && offset >= 0 && (offset + (int64_t)count) % getpagesize() == 0) {
        struct stat st;
        if (fstat(fd, &st) != 0) return -1;
        if ((int64_t)st.st_size > offset + (int64_t)count) n += 1;
    }
    return (long)n;
#else
    (void)fd; (void)buffer; (void)count; (void)offset;
    errno = EAGAIN;
    return -1;
#endif
}

void depot_tune_malloc(long mmap_threshold, long trim_threshold) {
#if defined(__GLIBC__)
    if (getenv("MALLOC_MMAP_THRESHOLD_") == NULL) mallopt(M_MMAP_THRESHOLD, (int)mmap_threshold);
    if (getenv("MALLOC_TRIM_THRESHOLD_") == NULL) mallopt(M_TRIM_THRESHOLD, (int)trim_threshold);
#else
    (void)mmap_threshold; (void)trim_threshold;
#endif
}
