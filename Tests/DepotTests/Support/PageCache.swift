import Foundation
import Glibc

/// Dropping a file from the kernel's page cache, for tests of what is read without waiting for
/// the disk. Only some file systems can: tmpfs (a `/tmp` in memory) keeps every page, so
/// ``evictableDirectory()`` looks for a directory whose files can be dropped.
enum PageCache {
    /// Drops the file's pages (written back first) and tells whether none is left in memory.
    static func drop(_ path: String) -> Bool {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        _ = fdatasync(fd)
        guard posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0 else { return false }
        return residentPages(fd) == 0
    }

    /// How many of the file's pages are in memory (`mincore` of a mapping); `nil` when unknown.
    static func residentPages(_ fd: Int32) -> Int? {
        let end = lseek(fd, 0, SEEK_END)
        guard end > 0 else { return nil }
        let length = Int(end)
        guard let map = mmap(nil, length, PROT_READ, MAP_SHARED, fd, 0), map != MAP_FAILED else { return nil }
        defer { munmap(map, length) }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        var vector = [UInt8](repeating: 0, count: (length + page - 1) / page)
        guard mincore(map, length, &vector) == 0 else { return nil }
        return vector.filter { $0 & 1 != 0 }.count
    }

    /// A fresh directory (the caller removes it) on a file system that drops pages when asked:
    /// the temporary directory, else one under the working directory's `.build`; `nil` when
    /// neither can.
    static func evictableDirectory() -> String? {
        let bases = [FileManager.default.temporaryDirectory.path, FileManager.default.currentDirectoryPath + "/.build"]
        for base in bases {
            let dir = "\(base)/depot-pagecache-\(UUID().uuidString)"
            guard (try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)) != nil else { continue }
            let probe = "\(dir)/probe"
            if FileManager.default.createFile(atPath: probe, contents: Data(repeating: 7, count: 8192)), drop(probe) {
                try? FileManager.default.removeItem(atPath: probe)
                return dir
            }
            try? FileManager.default.removeItem(atPath: dir)
        }
        return nil
    }
}
