import Crypto
import Synchronization

/// Uploads that a request of this process is committing or ending: one such request at a time
/// per upload, the others wait their turn (then find the upload complete, or ended).
final class UploadTurns: Sendable {
    private let busy = Mutex<Set<String>>([])

    func serialize<T>(_ id: String, _ body: () async throws -> T) async throws -> T {
        while !busy.withLock({ $0.insert(id).inserted }) {
            try await Task.sleep(for: .milliseconds(10))
        }
        defer { _ = busy.withLock { $0.remove(id) } }
        return try await body()
    }
}

/// How many appends of each upload run in this process now.
final class RunningAppends: Sendable {
    private let counts = Mutex<[String: Int]>([:])

    func begin(_ id: String) { counts.withLock { $0[id, default: 0] += 1 } }

    func end(_ id: String) {
        counts.withLock { counts in
            let left = (counts[id] ?? 1) - 1
            counts[id] = left > 0 ? left : nil
        }
    }

    func isRunning(_ id: String) -> Bool { counts.withLock { $0[id] != nil } }
}

/// SHA-256 states of resumable uploads by id and the offset they cover; taken (removed) by the
/// append that continues one, put back when it succeeds. Bounded: past 10,000 uploads all are
/// dropped (their commits read the bytes back).
final class RunningDigests: Sendable {
    private let states = Mutex<[String: (offset: Int64, sha256: SHA256)]>([:])

    func take(_ id: String, at offset: Int64) -> SHA256? {
        states.withLock { states in
            guard let entry = states.removeValue(forKey: id), entry.offset == offset else { return nil }
            return entry.sha256
        }
    }

    func put(_ id: String, at offset: Int64, _ sha256: SHA256) {
        states.withLock { states in
            if states.count >= 10_000 { states.removeAll() }
            states[id] = (offset, sha256)
        }
    }
}
