import Crypto
import Foundation
import NIOCore

/// SHA-256 computed beside the upload rather than in its way: bytes are hashed in batches of about
/// 1 MiB on another task while the next batch arrives. At most two batches are pending, so memory
/// stays bounded whatever the hashing speed. A resumable upload's hash is carried from one append
/// to the next (``init(continuing:)``, ``state()``).
struct PipelinedSHA256 {
    static let batchSize = 1024 * 1024
    /// What the first batch continues (a resumable upload's bytes before this append).
    private let base: SHA256
    private var batch: [ByteBuffer] = []
    private var batchBytes = 0
    private var running: Task<SHA256, Never>?
    private var previous: Task<SHA256, Never>?

    /// - Parameter base: the hash of the bytes before the first `update` (none by default).
    init(continuing base: SHA256 = SHA256()) {
        self.base = base
    }

    mutating func update(_ chunk: ByteBuffer) async {
        batch.append(chunk)
        batchBytes += chunk.readableBytes
        if batchBytes >= Self.batchSize { await submit() }
    }

    private mutating func submit() async {
        // Bound the pipeline: the batch before the running one must be done.
        if let previous { _ = await previous.value }
        let (prior, buffers, base) = (running, batch, base)
        previous = running
        batch = []
        batchBytes = 0
        running = Task {
            var hasher = await prior?.value ?? base
            for b in buffers { b.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) } }
            return hasher
        }
    }

    /// The lower-case hex digest of everything passed to `update`.
    mutating func finalize() async -> String {
        await state().finalize().hexString
    }

    /// The hash of everything passed to `update`, not finalized: a later append continues it.
    mutating func state() async -> SHA256 {
        var hasher = await running?.value ?? base
        for b in batch { b.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) } }
        batch = []
        batchBytes = 0
        previous = nil
        running = Task { [hasher] in hasher }
        return hasher
    }
}
