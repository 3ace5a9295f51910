#ifndef CDEPOT_SYSTEM_H
#define CDEPOT_SYSTEM_H

#include <stdint.h>

/// syncfs(2) where the system has it (Linux): writes out the whole file system that `fd` is on and
/// waits for it. Returns 0, or -1 with errno set; -1 with errno ENOSYS elsewhere.
int depot_syncfs(int fd);

/// Starts asynchronous writeback of a file range (Linux sync_file_range with WRITE only): it
/// bounds the dirty data a later sync has to wait for. A no-op returning 0 elsewhere.
int depot_start_writeback(int fd, int64_t offset, int64_t count);

/// Reads up to `count` bytes at `offset` into `buffer` only from the page cache (Linux preadv2
/// with RWF_NOWAIT), and the byte after them into a scratch byte: the bytes read (`count` + 1
/// when the file goes on past them), or -1 with errno EAGAIN when they are not all cached (a read
/// would wait for the disk), or another errno. When they end on a page boundary, the file's size
/// (fstat) tells whether it goes on, as the next page may not be cached. A short count means the
/// end of the file, or that the rest was not cached. Elsewhere -1 with errno EAGAIN always (the
/// caller reads on a thread instead).
long depot_read_cached(int fd, void *buffer, unsigned long count, int64_t offset);

/// Keeps large transient buffers (socket reads of up to 1 MiB, held while an upload is hashed and
/// written) in malloc's heap instead of a fresh mmap each, whose pages the kernel must fault in and
/// zero again on every read: allocations under `mmap_threshold` bytes come from the heap, and up to
/// `trim_threshold` free bytes stay there. Skipped for a setting the operator chose with glibc's own
/// MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_. A no-op without glibc.
void depot_tune_malloc(long mmap_threshold, long trim_threshold);

#endif
