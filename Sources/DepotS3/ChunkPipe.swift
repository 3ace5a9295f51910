import NIOCore
import Synchronization

/// Chunks handed from a blob writer to a streamed request body, with at most about `limit` bytes
/// waiting between them: the writer waits while the pipe is full, the body's reader while it is
/// empty. One writer and one reader. A failure (`fail`) ends both sides at once: the waiting
/// writer and the reader throw it, and so does every later `send` or `next`.
final class ChunkPipe: AsyncSequence, Sendable {
    typealias Element = ByteBuffer

    private struct State {
        var chunks: [ByteBuffer] = []
        var first = 0
        var bytes = 0
        var finished = false
        var failure: (any Error)?
        var reader: CheckedContinuation<ByteBuffer?, any Error>?
        var writer: CheckedContinuation<Void, any Error>?

        mutating func pop() -> ByteBuffer {
            let chunk = chunks[first]
            first += 1
            bytes -= chunk.readableBytes
            if first == chunks.count {
                chunks.removeAll(keepingCapacity: true)
                first = 0
            }
            return chunk
        }

        var isEmpty: Bool { first == chunks.count }
    }

    private let state = Mutex(State())
    let limit: Int

    init(limit: Int) {
        self.limit = limit
    }

    /// Hands `chunk` to the reader; waits while more than `limit` bytes are still to be read.
    func send(_ chunk: ByteBuffer) async throws {
        let full: Bool = try state.withLock { s in
            if let failure = s.failure { throw failure }
            precondition(!s.finished, "a chunk sent after the end")
            if let reader = s.reader {
                s.reader = nil
                reader.resume(returning: chunk)
                return false
            }
            s.chunks.append(chunk)
            s.bytes += chunk.readableBytes
            return s.bytes > limit
        }
        guard full else { return }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
                state.withLock { s in
                    if let failure = s.failure {
                        c.resume(throwing: failure)
                    } else if s.bytes <= limit {
                        c.resume()
                    } else {
                        s.writer = c
                    }
                }
            }
        } onCancel: {
            fail(CancellationError())
        }
    }

    /// No more chunks: the reader ends once it has read what is waiting.
    func finish() {
        state.withLock { s in
            s.finished = true
            if s.isEmpty, let reader = s.reader {
                s.reader = nil
                reader.resume(returning: nil)
            }
        }
    }

    /// Ends both sides with `error` (the first failure wins); what was waiting is dropped.
    func fail(_ error: any Error) {
        state.withLock { s in
            guard s.failure == nil else { return }
            s.failure = error
            s.chunks = []
            s.first = 0
            s.bytes = 0
            s.reader?.resume(throwing: error)
            s.writer?.resume(throwing: error)
            s.reader = nil
            s.writer = nil
        }
    }

    private func next() async throws -> ByteBuffer? {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<ByteBuffer?, any Error>) in
                state.withLock { s in
                    if let failure = s.failure {
                        c.resume(throwing: failure)
                    } else if !s.isEmpty {
                        c.resume(returning: s.pop())
                        if s.bytes <= limit, let writer = s.writer {
                            s.writer = nil
                            writer.resume()
                        }
                    } else if s.finished {
                        c.resume(returning: nil)
                    } else {
                        s.reader = c
                    }
                }
            }
        } onCancel: {
            fail(CancellationError())
        }
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        let pipe: ChunkPipe
        mutating func next() async throws -> ByteBuffer? { try await pipe.next() }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(pipe: self) }
}
