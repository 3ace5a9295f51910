import AsyncHTTPClient
import DepotCore
import Logging
import NIOCore
import NIOHTTP1

/// One blob whose size is known before its first byte (a presigned upload's declared size),
/// sent to S3 as one `PutObject` streamed as it is written: no part is held in memory, and the
/// object store writes the object once (a multipart upload's parts are written, then joined; some
/// servers keep them in memory until then). The body is `UNSIGNED-PAYLOAD`; the request is not
/// repeated after a failure (the upload fails and its client sends it again).
///
/// Bytes in flight are bounded by the pipe (`pipeBytes`). `finish()` waits for S3's answer;
/// `abort()` cancels the request (or, when every byte was sent, waits for its answer), then
/// removes the object in case it was stored.
final class S3StreamedWriter: BlobWriter, @unchecked Sendable {
    // @unchecked: owned by one task at a time (see `BlobWriter`).
    static let pipeBytes = 2 * 1024 * 1024

    private let client: S3Client
    private let key: String
    private let size: Int64
    private var written: Int64 = 0
    private let pipe = ChunkPipe(limit: S3StreamedWriter.pipeBytes)
    private var request: Task<HTTPClientResponse, any Error>?

    init(client: S3Client, key: String, size: Int64) {
        self.client = client
        self.key = key
        self.size = size
    }

    func write(_ chunk: ByteBuffer) async throws {
        guard chunk.readableBytes > 0 else { return }
        written += Int64(chunk.readableBytes)
        guard written <= size else {
            throw StorageError.internal("more bytes than the \(size) declared for the blob")
        }
        start()
        do { try await pipe.send(chunk) } catch {
            // The request ended early: its own error says why.
            if let request, case .failure(let failure) = await request.result { throw failure }
            throw error
        }
    }

    func finish() async throws -> Int64 {
        guard written == size else {
            throw StorageError.internal("a blob of \(size) bytes ended after \(written)")
        }
        start()
        pipe.finish()
        _ = try await request!.value
        return size
    }

    func abort() async {
        guard let request else {
            pipe.fail(CancellationError())
            return
        }
        if written == size {
            // Every byte is on its way (a checksum found wrong at the end): S3 may store the
            // object whatever the client does now, so its answer is awaited, then it is removed.
            pipe.finish()
        } else {
            // Cut short: the request ends before its declared length, S3 keeps nothing.
            pipe.fail(CancellationError())
            request.cancel()
        }
        _ = await request.result
        // Also after a cut-off request: a lenient server may have kept what it got.
        do {
            _ = try await client.send(S3Request(method: .DELETE, key: key, accepting: [404], operation: "DeleteObject"))
        } catch {
            client.logger.warning("S3 object \(key) of an aborted upload not removed (garbage collection will): \(error)")
        }
    }

    private func start() {
        guard request == nil else { return }
        let (client, key, pipe, size) = (self.client, self.key, self.pipe, self.size)
        request = Task {
            do {
                return try await client.send(
                    S3Request(method: .PUT, key: key, stream: (pipe, size), idempotent: false, operation: "PutObject"))
            } catch {
                pipe.fail(error)
                throw error
            }
        }
    }
}
