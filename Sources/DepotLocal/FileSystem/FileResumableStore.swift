#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import DepotCore
import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// Resumable uploads staged in one directory, as tusd's file store keeps them: `<id>.json` (the
/// record, written to a temporary name, fsynced and renamed) and `<id>.bin` (the bytes so far; its
/// size is the offset). An append is fsynced before it returns. A finished upload keeps its record
/// (marked finished, without bytes) until it expires.
public final class FileResumableStore: ResumableStore {
    let directory: String
    let threadPool: NIOThreadPool
    let allocator = ByteBufferAllocator()
    /// Uploads with an append under way (one at a time each).
    private let busy = Mutex<Set<String>>([])
    /// Unfinished uploads by owner ("" for none), id → declared bytes and expiry: read from the
    /// records at start, held by ``reserve(_:most:now:)`` before a record exists.
    private let holds = Mutex<[String: [String: Held]]>([:])
    struct Held {
        var length: Int64
        var expiresAt: Date
    }
    static let readChunk = 256 * 1024
    static let writeChunk = 1024 * 1024

    public init(directory: String, threadPool: NIOThreadPool = FileSystemBlobStore.ioThreadPool) throws {
        self.directory = directory
        self.threadPool = threadPool
        _ = try POSIX.mkdir(directory)
        // Temporary records of a create that crashed before its rename.
        var holds: [String: [String: Held]] = [:]
        for name in try POSIX.list(directory) {
            if name.hasSuffix(".tmp") { try? POSIX.unlink(directory + "/" + name) }
            if name.hasSuffix(".json"), let upload = Self.record(at: directory + "/" + name), upload.finishedAt == nil {
                holds[upload.owner ?? "", default: [:]][upload.id] = Held(length: upload.length, expiresAt: upload.expiresAt)
            }
        }
        self.holds.withLock { $0 = holds }
    }

    static func record(at path: String) -> ResumableUpload? {
        FileManager.default.contents(atPath: path).flatMap { try? JSONDecoder().decode(ResumableUpload.self, from: $0) }
    }

    /// Held atomically: uploads created at once are counted as one after the other.
    public func reserve(_ upload: ResumableUpload, most: Int, now: Date) throws -> Int64 {
        try holds.withLock { (all) throws(StorageError) -> Int64 in
            let key = upload.owner ?? ""
            var mine = (all[key] ?? [:]).filter { $0.value.expiresAt > now }
            defer { all[key] = mine.isEmpty ? nil : mine }
            if most > 0, mine.count >= most {
                throw StorageError(
                    .rateLimited,
                    "the user has \(mine.count) resumable uploads open (at most \(most)); finish or terminate some, or let them expire",
                    retryAfter: 60)
            }
            mine[upload.id] = Held(length: upload.length, expiresAt: upload.expiresAt)
            return mine.values.reduce(0) { RequestNumber.saturatingAdd($0, $1.length) }
        }
    }

    public func release(_ upload: ResumableUpload) {
        holds.withLock { all in
            let key = upload.owner ?? ""
            all[key]?[upload.id] = nil
            if all[key]?.isEmpty == true { all[key] = nil }
        }
    }

    public func openUploads(owner: String?, now: Date) async -> (count: Int, bytes: Int64) {
        holds.withLock { all in
            let mine = (all[owner ?? ""] ?? [:]).values.filter { $0.expiresAt > now }
            return (mine.count, mine.reduce(0) { RequestNumber.saturatingAdd($0, $1.length) })
        }
    }

    func paths(_ id: String) throws(StorageError) -> (record: String, bytes: String) {
        guard ResumableUpload.isValidID(id) else { throw .notFound("no such upload") }
        return (directory + "/" + id + ".json", directory + "/" + id + ".bin")
    }

    public func create(_ upload: ResumableUpload) async throws {
        let (record, bytes) = try paths(upload.id)
        let json = try JSONEncoder().encode(upload)
        let directory = self.directory
        try await threadPool.runIfActive {
            let fd = Glibc.open(bytes, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            if fd < 0, errno == EEXIST { throw StorageError(.conflict, "an upload with this id is already under way") }
            guard fd >= 0 else { throw POSIX.error("open", bytes) }
            try POSIX.fsync(fd, path: bytes)
            close(fd)
            try Self.write(json, to: record, in: directory)
        }
    }

    /// Writes a record under a temporary name, fsyncs it and renames it into place (durable).
    private static func write(_ json: Data, to record: String, in directory: String) throws {
        let temp = record + ".tmp"
        let rfd = try POSIX.open(temp, O_WRONLY | O_CREAT | O_TRUNC)
        defer { close(rfd) }
        try POSIX.writeAll(rfd, ByteBuffer(bytes: json), path: temp)
        try POSIX.fsync(rfd, path: temp)
        try POSIX.rename(temp, record)
        try POSIX.fsyncDirectory(directory)
    }

    public func finish(id: String, at date: Date) async throws {
        let (record, bytes) = try paths(id)
        let directory = self.directory
        let finished = try await threadPool.runIfActive { () throws -> ResumableUpload? in
            guard var upload = Self.record(at: record), upload.finishedAt == nil else { return nil }
            upload.finishedAt = date
            try Self.write(try JSONEncoder().encode(upload), to: record, in: directory)
            try POSIX.unlink(bytes)
            return upload
        }
        if let finished { release(finished) }
    }

    public func upload(id: String) async throws -> (upload: ResumableUpload, offset: Int64)? {
        let (record, bytes) = try paths(id)
        return try await threadPool.runIfActive { () throws -> (ResumableUpload, Int64)? in
            // Twice at most: the upload may be finished (its record rewritten, then its bytes
            // dropped) between reading the record and looking at the bytes.
            for _ in 0..<2 {
                guard let data = FileManager.default.contents(atPath: record) else { return nil }
                guard let upload = try? JSONDecoder().decode(ResumableUpload.self, from: data) else {
                    throw StorageError.internal("the record of resumable upload \(id) cannot be read")
                }
                if upload.finishedAt != nil { return (upload, upload.length) }
                if let size = try POSIX.status(bytes)?.size { return (upload, size) }
            }
            return nil
        }
    }

    public func append<Body: AsyncSequence>(
        id: String, at offset: Int64, limit: Int64, keepPartial: Bool, body: Body, observe: (ByteBuffer) async throws -> Void
    ) async throws -> Int64 where Body.Element == ByteBuffer {
        let (_, bytes) = try paths(id)
        let claimed = busy.withLock { $0.insert(id).inserted }
        guard claimed else { throw StorageError(.conflict, "another request is appending to this upload; retry once it ends") }
        defer { _ = busy.withLock { $0.remove(id) } }
        let fd = try await threadPool.runIfActive { () throws -> Int32 in
            guard try POSIX.status(bytes) != nil else { throw StorageError.notFound("no such upload") }
            return try POSIX.open(bytes, O_WRONLY | O_APPEND)
        }
        defer { close(fd) }
        let size = try await threadPool.runIfActive { try POSIX.fileSize(fd, path: bytes) }
        guard size == offset else {
            throw StorageError(
                .conflict, "Upload-Offset \(offset) is not the upload's offset (\(size) now): HEAD the upload for its offset, then continue from it")
        }
        // Chunks are gathered into writes of up to `writeChunk` bytes, each written while the next
        // are received and observed (hashed): at most one write in flight.
        let pool = threadPool
        var pending = PendingWrites()
        var inFlight: Task<Void, any Error>? = nil
        var flushed = offset
        func flush() async throws {
            if let previous = inFlight {
                inFlight = nil
                try await previous.value
            }
            guard !pending.isEmpty else { return }
            let buffer = pending.take()
            let at = flushed
            flushed += Int64(buffer.byteCount)
            // Written back from now on, so the fdatasync that ends the append waits for the tail only.
            inFlight = Task {
                try await pool.runIfActive {
                    try buffer.write(to: fd, path: bytes)
                    POSIX.startWriteback(fd, offset: at, count: Int64(buffer.byteCount))
                }
            }
        }
        var end = offset
        var cutShort = false
        do {
            var chunks = body.makeAsyncIterator()
            while true {
                let next: ByteBuffer?
                do { next = try await chunks.next() } catch {
                    // The client went away mid-body: what arrived is kept (durable) when it may be.
                    guard keepPartial else { throw StorageError.invalidRequest("the request body ended early; nothing of it is kept") }
                    try await flush()
                    try await flush()
                    try await pool.runIfActive { try POSIX.fdatasync(fd, path: bytes) }
                    cutShort = true
                    throw StorageError.invalidRequest("the request body ended early; the upload's offset is now \(end)")
                }
                guard let chunk = next else { break }
                end = RequestNumber.saturatingAdd(end, Int64(chunk.readableBytes))
                if end > limit { throw StorageError(.payloadTooLarge, "the upload is larger than its \(limit) bytes") }
                try await observe(chunk)
                pending.append(chunk)
                if pending.byteCount >= Self.writeChunk { try await flush() }
            }
            try await flush()
            try await flush()
            try await pool.runIfActive { try POSIX.fdatasync(fd, path: bytes) }
        } catch {
            if cutShort { throw error }
            // No write may land after the truncation.
            if let previous = inFlight { _ = try? await previous.value }
            try? await pool.runIfActive { if ftruncate(fd, off_t(offset)) == 0 { _ = fdatasync(fd) } }
            throw error
        }
        return end
    }

    public func truncate(id: String, to offset: Int64) async throws {
        let (_, bytes) = try paths(id)
        try await threadPool.runIfActive {
            let fd = try POSIX.open(bytes, O_WRONLY)
            defer { close(fd) }
            guard ftruncate(fd, off_t(offset)) == 0 else { throw POSIX.error("ftruncate", bytes) }
            try POSIX.fdatasync(fd, path: bytes)
        }
    }

    public func localFile(id: String) -> String? { try? paths(id).bytes }

    public func head(id: String, count: Int) async throws -> ByteBuffer {
        let (_, bytes) = try paths(id)
        let allocator = self.allocator
        return try await threadPool.runIfActive {
            let fd = try POSIX.open(bytes, O_RDONLY)
            defer { close(fd) }
            return try POSIX.pread(fd, count: count, offset: 0, path: bytes, allocator: allocator)
        }
    }

    public func read(id: String, into consume: (ByteBuffer) async throws -> Void) async throws {
        let (_, bytes) = try paths(id)
        let fd = try await threadPool.runIfActive { try POSIX.open(bytes, O_RDONLY) }
        defer { close(fd) }
        var at: Int64 = 0
        let allocator = self.allocator
        while true {
            let position = at
            let chunk = try await threadPool.runIfActive {
                try POSIX.pread(fd, count: Self.readChunk, offset: position, path: bytes, allocator: allocator)
            }
            if chunk.readableBytes == 0 { return }
            at += Int64(chunk.readableBytes)
            try await consume(chunk)
        }
    }

    public func delete(id: String) async throws {
        let (record, bytes) = try paths(id)
        let removed = try await threadPool.runIfActive { () throws -> ResumableUpload? in
            let upload = Self.record(at: record)
            try POSIX.unlink(record)
            try POSIX.unlink(bytes)
            return upload
        }
        if let removed { release(removed) }
    }

    public func expired(before date: Date) async throws -> [String] {
        let directory = self.directory
        return try await threadPool.runIfActive {
            var ids: [String] = []
            for name in try POSIX.list(directory) where name.hasSuffix(".json") {
                let id = String(name.dropLast(5))
                guard ResumableUpload.isValidID(id), let data = FileManager.default.contents(atPath: directory + "/" + name) else { continue }
                // A record that cannot be read is of no use to anyone: collected too.
                let upload = try? JSONDecoder().decode(ResumableUpload.self, from: data)
                if upload.map({ $0.expiresAt < date }) ?? true { ids.append(id) }
            }
            return ids
        }
    }
}
