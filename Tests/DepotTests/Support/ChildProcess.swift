import Foundation
import Glibc
import Synchronization

/// A child process started with `posix_spawn`. Foundation's `Process.run()` on Linux (Swift
/// 6.3.1) reads past a `dirent` while listing `/proc/self/fd` and crashed the test process
/// (swift-corelibs-foundation PR 5472); this is the little the tests need, without it.
final class ChildProcess: Sendable {
    let pid: pid_t
    /// The raw `waitpid` status once the child has been reaped.
    private let reaped = Mutex<Int32?>(nil)

    /// Starts `executable` with `arguments`; its standard output and error go to `output`
    /// (a descriptor the caller still owns). Every other descriptor is closed in the child, so a
    /// long-lived server never holds a pipe another test waits on.
    init(executable: String, arguments: [String], environment: [String: String], output: Int32) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, output, 1)
        posix_spawn_file_actions_adddup2(&actions, output, 2)
        guard Self.addCloseFrom(&actions, 3) == 0 else { throw DepotProcess.Failure("posix_spawn_file_actions_addclosefrom_np failed") }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid = pid_t()
        let rc = posix_spawn(&pid, executable, &actions, nil, argv, envp)
        guard rc == 0 else { throw DepotProcess.Failure("posix_spawn \(executable): \(String(cString: strerror(rc)))") }
        self.pid = pid
    }

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34+), which the Glibc module hides
    /// behind `_GNU_SOURCE`.
    private static let addCloseFrom: @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32 = {
        guard let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") else {
            fatalError("glibc without posix_spawn_file_actions_addclosefrom_np")
        }
        return unsafeBitCast(symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self)
    }()

    /// Whether the child still runs (reaps it once it has exited).
    var isRunning: Bool {
        reaped.withLock { status in
            guard status == nil else { return false }
            var raw: Int32 = 0
            let rc = waitpid(pid, &raw, WNOHANG)
            if rc == pid { status = raw }
            return rc == 0
        }
    }

    /// Blocks until the child exits.
    func waitUntilExit() {
        reaped.withLock { status in
            guard status == nil else { return }
            var raw: Int32 = 0
            while waitpid(pid, &raw, 0) == -1 && errno == EINTR {}
            status = raw
        }
    }

    /// The exit code, or 128 + the signal that ended it; only meaningful once it has exited.
    var terminationStatus: Int32 {
        let raw = reaped.withLock { $0 } ?? 0
        let signal = raw & 0x7f
        return signal == 0 ? (raw >> 8) & 0xff : 128 + signal
    }

    func signal(_ number: Int32) { _ = kill(pid, number) }

    /// Runs `executable` to completion and returns its status and its output (standard output
    /// and error together).
    static func run(executable: String, arguments: [String], environment: [String: String]) throws -> (status: Int32, output: String) {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw DepotProcess.Failure("pipe failed") }
        // Not atomic with pipe(), but every child closes what it does not need anyway.
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        let child: ChildProcess
        do {
            child = try ChildProcess(executable: executable, arguments: arguments, environment: environment, output: fds[1])
        } catch {
            close(fds[0])
            close(fds[1])
            throw error
        }
        close(fds[1])
        defer { close(fds[0]) }
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = read(fds[0], &buffer, buffer.count)
            if n > 0 {
                output += buffer[0..<n]
            } else if n == 0 || errno != EINTR {
                break
            }
        }
        child.waitUntilExit()
        return (child.terminationStatus, String(decoding: output, as: UTF8.self))
    }
}
