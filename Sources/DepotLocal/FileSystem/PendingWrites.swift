import NIOCore

/// Received chunks gathered for one write system call each, kept as they arrived rather than
/// copied into one buffer: the copy cost as much CPU as a tenth of the upload's SHA-256, on the
/// same thread. The chunks are the ones the hasher holds anyway, so nothing more stays in memory.
struct PendingWrites: Sendable {
    private(set) var chunks: [ByteBuffer] = []
    private(set) var byteCount = 0

    var isEmpty: Bool { byteCount == 0 }

    mutating func append(_ chunk: ByteBuffer) {
        guard chunk.readableBytes > 0 else { return }
        chunks.append(chunk)
        byteCount += chunk.readableBytes
    }

    /// Everything gathered so far; self is empty afterwards.
    mutating func take() -> PendingWrites {
        defer { self = PendingWrites() }
        return self
    }

    /// Writes every chunk in order (on a thread that may block).
    func write(to fd: Int32, path: String) throws {
        for chunk in chunks { try POSIX.writeAll(fd, chunk, path: path) }
    }
}
