#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import DepotCore
import Foundation
import NIOCore
import NIOPosix

/// Blobs as files under a data directory: `blobs/ab/<id>`, with the 256 `ab` directories made at start.
///
/// A write goes to `tmp/<id>` on the same file system, is fsynced, renamed into place, and the
/// directory is fsynced; only then does ``BlobWriter/finish()`` return. A crash leaves at most a
/// temp file (swept at start-up and by garbage collection) or an unreferenced blob (an orphan that
/// garbage collection removes) — never a half-written blob under its final name. Blocking system
/// calls run on a NIO thread pool, never on the cooperative executor.
public struct FileSystemBlobStore: BlobStore {
    public let root: String
    let threadPool: NIOThreadPool
    let allocator = ByteBufferAllocator()
    /// Finished writes waiting to be made durable together.
    let syncGroup: BlobSyncGroup
    /// Bytes buffered before a write system call, and the size of read chunks.
    static let chunkSize = 1024 * 1024
    /// How many bytes of a large blob are written between background syncs.
    static let syncStretch: Int64 = 32 * 1024 * 1024

    /// The blocking file-system calls' threads, shared by every store of the process. More than
    /// the cores: a thread waiting on the disk uses no CPU, and concurrent uploads write while a
    /// group of others is being synced.
    public static let ioThreadPool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 8)
        pool.start()
        return pool
    }()

    /// Opens (creating when missing) a blob store under `directory`, and removes temp files left by
    /// an earlier process.
    public init(directory: String, threadPool: NIOThreadPool = Self.ioThreadPool, sweepTemporaryFiles: Bool = true) throws {
        self.root = directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        self.threadPool = threadPool
        self.syncGroup = BlobSyncGroup(threadPool: threadPool)
        try POSIX.mkdir(root)
        try POSIX.mkdir(root + "/blobs")
        try POSIX.mkdir(root + "/tmp")
        // The 256 first-level fan-out directories exist before any write, made durable once here.
        for i in 0..<256 {
            try POSIX.mkdir(root + "/blobs/" + [UInt8(i)].hexString)
        }
        try POSIX.fsyncDirectory(root + "/blobs")
        try POSIX.fsyncDirectory(root)
        if sweepTemporaryFiles {
            for name in try POSIX.list(root + "/tmp") { try POSIX.unlink(root + "/tmp/" + name) }
        }
    }

    /// `<root>/blobs/ab/<id>`.
    func path(of id: BlobID) throws -> String {
        guard let path = BlobFileLayout(root: root).path(of: id) else { throw StorageError.notFound("blob not found") }
        return path
    }

    public func makeWriter(for id: BlobID) async throws -> any BlobWriter {
        FileBlobWriter(store: self, id: id, finalPath: try path(of: id), tempPath: "\(root)/tmp/\(id.rawValue)")
    }

    public func read(_ id: BlobID, range: Range<Int64>?, into consume: (ByteBuffer) async throws -> Void) async throws {
        let p = try path(of: id)
        let (fd, size) = try await threadPool.runIfActive { () throws -> (Int32, Int64) in
            let fd = try POSIX.open(p, O_RDONLY)
            do { return (fd, try POSIX.fileSize(fd, path: p)) } catch { close(fd); throw error }
        }
        defer { close(fd) }
        let wanted = range ?? 0..<size
        var offset: Int64 = Swift.max(0, wanted.lowerBound)
        let end: Int64 = Swift.min(size, wanted.upperBound)
        let (pool, allocator) = (threadPool, self.allocator)
        // Read ahead: the next chunk is read on the thread pool while this one is sent.
        func readChunk(at: Int64) -> Task<ByteBuffer, any Error> {
            let count = Int(Swift.min(Int64(Self.chunkSize), end - at))
            return Task { try await pool.runIfActive { try POSIX.pread(fd, count: count, offset: at, path: p, allocator: allocator) } }
        }
        var next: Task<ByteBuffer, any Error>? = offset < end ? readChunk(at: offset) : nil
        do {
            while let pending = next {
                let chunk = try await pending.value
                guard chunk.readableBytes > 0 else { throw StorageError.internal("blob shorter than expected") }
                offset += Int64(chunk.readableBytes)
                next = offset < end ? readChunk(at: offset) : nil
                try await consume(chunk)
            }
        } catch {
            // The fd is closed only after the read-ahead in flight has finished with it.
            if let next { _ = try? await next.value }
            throw error
        }
    }

    public func size(of id: BlobID) async throws -> Int64? {
        let p = try path(of: id)
        return try await threadPool.runIfActive { try POSIX.status(p)?.size }
    }

    public func delete(_ id: BlobID) async throws {
        let p = try path(of: id)
        try await threadPool.runIfActive { try POSIX.unlink(p) }
    }

    public func blobs(writtenBefore date: Date) async throws -> [BlobID] {
        let cutoff = date.timeIntervalSince1970
        let root = self.root
        return try await threadPool.runIfActive {
            for name in try POSIX.list(root + "/tmp") {
                let p = root + "/tmp/" + name
                if let st = try POSIX.status(p), st.mtime < cutoff { try POSIX.unlink(p) }
            }
            var found: [BlobID] = []
            for a in try POSIX.list(root + "/blobs") {
                for name in try POSIX.list("\(root)/blobs/\(a)") where BlobID.isWellFormed(name) {
                    if let st = try POSIX.status("\(root)/blobs/\(a)/\(name)"), st.mtime < cutoff {
                        found.append(BlobID(rawValue: name))
                    }
                }
            }
            return found
        }
    }

    public func ping() async throws {
        let root = self.root
        try await threadPool.runIfActive {
            if access(root + "/blobs", W_OK) != 0 || access(root + "/tmp", W_OK) != 0 {
                throw POSIX.error("access", root)
            }
        }
    }
}

extension FileSystemBlobStore: BlobFiles {
    public var fileLayout: BlobFileLayout? { BlobFileLayout(root: root) }

    public func adopt(file path: String, as id: BlobID) async throws -> Bool {
        let final = try self.path(of: id)
        return try await threadPool.runIfActive {
            if link(path, final) != 0 {
                if errno == EXDEV || errno == EPERM || errno == EMLINK || errno == ENOTSUP { return false }
                throw POSIX.error("link", final)
            }
            try POSIX.fsyncDirectory(String(final[..<final.lastIndex(of: "/")!]))
            return true
        }
    }
}
