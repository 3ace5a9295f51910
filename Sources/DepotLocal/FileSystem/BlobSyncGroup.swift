#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CDepotSystem
import DepotCore
import NIOPosix
import Synchronization

/// Group commit for blob files: writers that finish while a group is being made durable wait and
/// are made durable together, with one file-system sync for their bytes and one for their names,
/// instead of two fsyncs each.
///
/// The order per blob stays: bytes durable → renamed into place → name durable → `finish()`
/// returns. So a blob's final name never shows fewer bytes than it has, and the metadata row that
/// makes it visible is written only after all of it is on disk.
///
/// On Linux the syncs are `syncfs(2)` on the data directory's file system, which also writes out
/// unrelated dirty data of that file system; large writers therefore start writeback as they go
/// (``POSIX/startWriteback(_:offset:count:)``) so that little is left for a group to wait on.
/// Elsewhere each file and directory is fsynced.
final class BlobSyncGroup: Sendable {
    struct Entry: Sendable {
        let fd: Int32
        let tempPath: String
        let finalPath: String
    }

    private struct Waiter {
        let entry: Entry
        let continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var queue: [Waiter] = []
        var draining = false
    }

    private let state = Mutex(State())
    private let threadPool: NIOThreadPool
    let maxGroup = 256

    init(threadPool: NIOThreadPool) {
        self.threadPool = threadPool
    }

    /// Makes the written file `entry.fd` durable under `entry.finalPath`, and closes the fd.
    /// On failure the temp file is left for the caller to remove.
    func commit(_ entry: Entry) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let start = state.withLock { s -> Bool in
                s.queue.append(Waiter(entry: entry, continuation: continuation))
                if s.draining { return false }
                s.draining = true
                return true
            }
            if start { Task { await self.drain() } }
        }
    }

    private func drain() async {
        while true {
            let group: [Waiter] = state.withLock { s in
                if s.queue.isEmpty {
                    s.draining = false
                    return []
                }
                let n = min(s.queue.count, maxGroup)
                let group = Array(s.queue.prefix(n))
                s.queue.removeFirst(n)
                return group
            }
            if group.isEmpty { return }
            let entries = group.map(\.entry)
            let results: [Result<Void, any Error>]
            do {
                results = try await threadPool.runIfActive { () throws -> [Result<Void, any Error>] in
                    Self.makeDurable(entries)
                }
            } catch {
                results = Array(repeating: .failure(error), count: group.count)
            }
            for (waiter, result) in zip(group, results) { waiter.continuation.resume(with: result) }
        }
    }

    /// Runs on the thread pool. Closes every fd.
    private static func makeDurable(_ entries: [Entry]) -> [Result<Void, any Error>] {
        defer { for e in entries { close(e.fd) } }
        var results = [Result<Void, any Error>](repeating: .success(()), count: entries.count)
        // 1. The bytes.
        do {
            try syncData(entries)
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
            try syncNames(entries[0].fd, directories: directories)
        } catch {
            return Array(repeating: .failure(error), count: entries.count)
        }
        return results
    }

    private static func syncData(_ entries: [Entry]) throws {
        #if os(Linux)
        if depot_syncfs(entries[0].fd) != 0 { throw POSIX.error("syncfs", entries[0].tempPath) }
        #else
        for e in entries { try POSIX.fsync(e.fd, path: e.tempPath) }
        #endif
    }

    private static func syncNames(_ anyFD: Int32, directories: Set<String>) throws {
        #if os(Linux)
        if depot_syncfs(anyFD) != 0 { throw POSIX.error("syncfs", "blob store") }
        #else
        for directory in directories { try POSIX.fsyncDirectory(directory) }
        #endif
    }
}
