#ifndef CDEPOT_SYSTEM_H
#define CDEPOT_SYSTEM_H

#include <stdint.h>

/// syncfs(2) where the system has it (Linux): writes out the whole file system that `fd` is on and
/// waits for it. Returns 0, or -1 with errno set; -1 with errno ENOSYS elsewhere.
int depot_syncfs(int fd);

/// Starts asynchronous writeback of a file range (Linux sync_file_range with WRITE only): it
/// bounds the dirty data a later sync has to wait for. A no-op returning 0 elsewhere.
int depot_start_writeback(int fd, int64_t offset, int64_t count);

#endif
