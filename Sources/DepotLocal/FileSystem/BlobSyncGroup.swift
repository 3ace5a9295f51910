#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import CDepotSystem
import DepotCore
import NIOPosix

/// Group commit for blob files: writers that finish while a group is being made durable wait and
/// are made durable together, with one file-system sync for their bytes and one for their names,
/// instead of two fsyncs each.
///
/// The order per blob stays: bytes durable → renamed into place → name durable → `finish()`
/// returns. So a blob's final name never shows fewer bytes than it has, and the metadata row that
/// makes it visible is written only after all of it is on disk.
///
/// A group of a few (a large upload finishing alone, light load) fsyncs each file and each
/// directory. From ``wholeFileSystemThreshold`` writers on, Linux uses `syncfs(2)` on the data
/// directory's file system instead: two calls for the whole group. That also writes out unrelated
/// dirty data of the file system (other programs' too), which is why it is kept for groups big
/// enough to be worth it; large writers start writeback as they go
/// (``POSIX/startWriteback(_:offset:count:)``) so they leave little behind for it.
final class BlobSyncGroup: Sendable {
    struct Entry: Sendable {
        let fd: Int32
        let tempPath: String
        let finalPath: String
    }

    private let queue: GroupingQueue<Entry, Void>

    init(threadPool: NIOThreadPool, maxGroup: Int = 256) {
        queue = GroupingQueue(maxGroup: maxGroup) { entries in
            do {
                return try await threadPool.runIfActive { () throws -> [Result<Void, any Error>] in
                    Self.makeDurable(entries)
                }
            } catch {
                return Array(repeating: .failure(error), count: entries.count)
            }
        }
    }

    /// Makes the written file `entry.fd` durable under `entry.finalPath`, and closes the fd.
    /// On failure the temp file is left for the caller to remove.
    func commit(_ entry: Entry) async throws {
        try await queue.submit(entry)
    }

    /// Runs on the thread pool. Closes every fd.
    private static func makeDurable(_ entries: [Entry]) -> [Result<Void, any Error>] {
        defer { for e in entries { close(e.fd) } }
        var results = [Result<Void, any Error>](repeating: .success(()), count: entries.count)
        // syncfs pays for every dirty page of the file system, other programs' too: worth it only
        // when it replaces many fsyncs.
        let whole = entries.count >= wholeFileSystemThreshold
        // 1. The bytes.
        do {
            try syncData(entries, whole: whole)
        } catch {
            return Array(repeating: .failure(error), count: entries.count)
        }
        // 2. The names.
        var directories: Set<String> = []
        for (i, e) in entries.enumerated() {
            do {
                try POSIX.rename(e.tempPath, e.finalPath)
                directories.insert(String(e.finalPath[..<e.finalPath.lastIndex(of: "/")!]))
            } catch {
                results[i] = .failure(error)
            }
        }
        // 3. The names made durable.
        do {
            try syncNames(entries[0].fd, directories: directories, whole: whole)
        } catch {
            return Array(repeating: .failure(error), count: entries.count)
        }
        return results
    }

    /// The group size from which one `syncfs` replaces an fsync per file and per directory.
    static let wholeFileSystemThreshold = 4

    private static func syncData(_ entries: [Entry], whole: Bool) throws {
        #if os(Linux)
            if whole {
                if depot_syncfs(entries[0].fd) != 0 { throw POSIX.error("syncfs", entries[0].tempPath) }
                return
            }
        #endif
        for e in entries { try POSIX.fsync(e.fd, path: e.tempPath) }
    }

    private static func syncNames(_ anyFD: Int32, directories: Set<String>, whole: Bool) throws {
        #if os(Linux)
            if whole {
                if depot_syncfs(anyFD) != 0 { throw POSIX.error("syncfs", "blob store") }
                return
            }
        #endif
        for directory in directories { try POSIX.fsyncDirectory(directory) }
    }
}
