import Crypto
import Foundation
import NIOCore

/// SHA-256 computed beside the upload rather than in its way: bytes are hashed in batches of about
/// 1 MiB on another task while the next batch arrives. At most two batches are pending, so memory
/// stays bounded whatever the hashing speed.
struct PipelinedSHA256 {
    static let batchSize = 1024 * 1024
    private var batch: [ByteBuffer] = []
    private var batchBytes = 0
    private var running: Task<SHA256, Never>?
    private var previous: Task<SHA256, Never>?

    mutating func update(_ chunk: ByteBuffer) async {
        batch.append(chunk)
        batchBytes += chunk.readableBytes
        if batchBytes >= Self.batchSize { await submit() }
    }

    private mutating func submit() async {
        // Bound the pipeline: the batch before the running one must be done.
        if let previous { _ = await previous.value }
        let (prior, buffers) = (running, batch)
        previous = running
        batch = []
        batchBytes = 0
        running = Task {
            var hasher = await prior?.value ?? SHA256()
            for b in buffers { b.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) } }
            return hasher
        }
    }

    /// The lower-case hex digest of everything passed to `update`.
    mutating func finalize() async -> String {
        var hasher = await running?.value ?? SHA256()
        for b in batch { b.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) } }
        return hasher.finalize().hexString
    }
}
