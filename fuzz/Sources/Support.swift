import Dispatch
import Synchronization
#if canImport(Glibc)
    import Glibc
#endif

/// One fuzz input, with the small helpers the targets share to cut it into fields.
struct FuzzInput {
    let bytes: [UInt8]
    init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// The bytes as a Swift string (invalid UTF-8 repaired, as every `String` Depot receives is).
    var text: String { String(decoding: bytes, as: UTF8.self) }

    /// The bytes cut at `\n`, at most `maxSplits` times (the last field keeps the rest).
    func lines(maxSplits: Int = Int.max) -> [String] {
        bytes.split(separator: UInt8(ascii: "\n"), maxSplits: maxSplits, omittingEmptySubsequences: false)
            .map { String(decoding: $0, as: UTF8.self) }
    }

    /// The head before the first blank line (`\n\n` or `\r\n\r\n`) and the bytes after it; the
    /// whole input is the head when there is no blank line.
    func headAndBody() -> (head: String, body: [UInt8]) {
        let b = bytes
        var i = 0
        while i < b.count {
            if b[i] == UInt8(ascii: "\n") {
                if i + 1 < b.count, b[i + 1] == UInt8(ascii: "\n") {
                    return (String(decoding: b[..<i], as: UTF8.self), Array(b[(i + 2)...]))
                }
                if i + 2 < b.count, b[i + 1] == UInt8(ascii: "\r"), b[i + 2] == UInt8(ascii: "\n") {
                    return (String(decoding: b[..<i], as: UTF8.self), Array(b[(i + 3)...]))
                }
            }
            i += 1
        }
        return (text, [])
    }

    /// A 64-bit FNV-1a hash of the input: a deterministic seed for choices the input does not spell out.
    var hash: UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }
}

/// A small deterministic generator (SplitMix64): the same input always makes the same choices.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func next(below n: Int) -> Int { Int(next() % UInt64(n)) }
}

/// A property every input must keep. Failing it aborts, which libFuzzer reports as a crash and
/// saves the input.
func check(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String, file: StaticString = #fileID, line: UInt = #line) {
    if !condition() {
        writeToStandardError("depot-fuzz: property failed at \(file):\(line): \(message())\n")
        abort()
    }
}

/// Runs `body` to completion on the calling thread and returns when it has finished. libFuzzer
/// calls the target on one thread and needs the input's work done when the call returns; and work
/// left to other threads would make libFuzzer's leak check (run whenever an input's mallocs and
/// frees do not balance) scan the whole heap after nearly every input. So the task prefers
/// ``InlineExecutor``: its jobs, and those of the default actors it calls (jwt-kit's key
/// collection), run here; the thread sleeps only while the task waits for something else.
func runToCompletion(_ body: @escaping @Sendable () async -> Void) {
    let done = Box(false)
    let executor = InlineExecutor.shared
    _ = Task(executorPreference: executor) {
        await body()
        done.value = true
    }
    executor.run(until: { done.value })
}

/// A task executor whose jobs run on the thread that calls ``run(until:)``.
final class InlineExecutor: TaskExecutor, @unchecked Sendable {
    static let shared = InlineExecutor()
    private let queue = Mutex<[UnownedJob]>([])
    private let ready = DispatchSemaphore(value: 0)

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.withLock { $0.append(job) }
        ready.signal()
    }

    /// Runs jobs as they come until `finished()`.
    func run(until finished: () -> Bool) {
        while !finished() {
            ready.wait()
            let job = queue.withLock { $0.removeFirst() }
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}

/// A value a task hands back to the thread that waits for it (`runToCompletion`).
final class Box<Value>: @unchecked Sendable {
    var value: Value
    init(_ value: Value) { self.value = value }
}

/// Writes `text` to file descriptor 2 (libFuzzer's log).
func writeToStandardError(_ text: String) {
    var text = text
    text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}
