import Synchronization

/// Runs `work` for at most `timeout`, and returns (or throws `failure()`) as soon as either ends,
/// without waiting for the other.
///
/// Not a task group, which waits for every child: work that ignores cancellation would hold it
/// past its timeout. A query sent on a connection the server has just dropped may never be
/// answered nor fail (postgres-nio leaves its promise pending) and does not end when cancelled;
/// a task group waited for it for ever, however early its timeout fired (seen in the full test
/// suite: a request after `pg_terminate_backend` hung, and the suite with it). Here the work is
/// cancelled and abandoned; it ends when it ends (a query with its connection), if ever.
///
/// When the caller is cancelled, the work is told and still awaited up to the timeout: a statement
/// that commits reports that it did, as it would in a task group.
public func abandoningAfter<T: Sendable>(
    _ timeout: Duration, _ failure: @escaping @Sendable () -> any Error, _ work: @escaping @Sendable () async throws -> T
) async throws -> T {
    let race = Race()
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let worker = Task {
                let result: Result<T, any Error>
                do { result = .success(try await work()) } catch { result = .failure(error) }
                if race.settle() { continuation.resume(with: result) }
            }
            let timer = Task {
                try? await Task.sleep(for: timeout)
                if race.settle() { continuation.resume(throwing: failure()) }
            }
            race.started(worker, timer)
        }
    } onCancel: {
        race.cancelWork()
    }
}

/// Which of the work and its timer ended first; the caller's cancellation.
private final class Race: Sendable {
    private struct State {
        var settled = false
        var cancelled = false
        var worker: Task<Void, Never>?
        var timer: Task<Void, Never>?
    }
    private let state = Mutex(State())

    /// True for the first caller only; the other task is cancelled.
    func settle() -> Bool {
        let (first, tasks) = state.withLock { s -> (Bool, [Task<Void, Never>?]) in
            defer { s.settled = true }
            return (!s.settled, [s.worker, s.timer])
        }
        if first { tasks.forEach { $0?.cancel() } }
        return first
    }

    func started(_ worker: Task<Void, Never>, _ timer: Task<Void, Never>) {
        let (settled, cancelled) = state.withLock { s -> (Bool, Bool) in
            s.worker = worker
            s.timer = timer
            return (s.settled, s.cancelled)
        }
        if settled {
            worker.cancel()
            timer.cancel()
        } else if cancelled {
            worker.cancel()
        }
    }

    /// The caller was cancelled: the work is told (the timer still bounds the wait).
    func cancelWork() {
        let worker = state.withLock { s -> Task<Void, Never>? in
            s.cancelled = true
            return s.worker
        }
        worker?.cancel()
    }
}
