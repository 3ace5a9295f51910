import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// The real `depot` executable, started as a child process on a free port.
final class DepotProcess: @unchecked Sendable {
    // @unchecked: mutated only by the test that owns it.
    let dataDir: String
    let logPath: String
    var process: ChildProcess?
    var port = 0
    /// A soft open-file limit to start the server with (by the shell's `ulimit -Sn`); nil: inherited.
    var openFileLimit: Int?
    static let secret = "crash-test-secret-0123456789-0123456789"

    init(dataDir: String) {
        self.dataDir = dataDir
        self.logPath = dataDir + ".log"
    }

    /// `.build/<config>/depot`, beside the test binary.
    static var executable: String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // The test binary may sit inside a bundle directory (…/DepotPackageTests.xctest).
        while !FileManager.default.fileExists(atPath: dir.appendingPathComponent("depot").path), dir.path != "/" {
            dir = dir.deletingLastPathComponent()
        }
        return dir.appendingPathComponent("depot").path
    }

    /// Runs a `depot` subcommand to completion and returns its standard output. The wait happens
    /// on a thread of its own: blocking the (two-thread) cooperative pool stalled every other
    /// test's async work, PostgreSQL's timeouts first.
    static func run(_ arguments: [String], environment: [String: String] = [:]) async throws -> (status: Int32, output: String) {
        try await RawSocket.blocking { try runBlocking(arguments, environment: environment) }
    }

    private static func runBlocking(_ arguments: [String], environment: [String: String]) throws -> (status: Int32, output: String) {
        try ChildProcess.run(
            executable: executable, arguments: arguments,
            environment: ProcessInfo.processInfo.environment.merging(environment) { $1 })
    }

    /// - Parameter variants: make image variants (off by default: the process tests upload random
    ///   bytes behind a PNG signature, whose variant jobs would only end as dead letters).
    func start(extra: [String] = [], environment: [String: String] = [:], variants: Bool = false) async throws {
        guard FileManager.default.createFile(atPath: logPath, contents: nil) else {
            throw Failure("cannot create the server's log \(logPath)")
        }
        let log = open(logPath, O_WRONLY | O_APPEND | O_CLOEXEC)
        guard log >= 0 else { throw Failure("cannot open the server's log \(logPath)") }
        defer { close(log) }
        var executable = Self.executable
        var arguments =
            ["serve", "--data-dir", dataDir, "--port", "0", "--public-url", "http://depot.test"] + (variants ? [] : ["--variants", "none"]) + extra
        if let openFileLimit {
            arguments = ["-c", "ulimit -Sn \(openFileLimit) && exec \"$0\" \"$@\"", executable] + arguments
            executable = "/bin/sh"
        }
        let p = try ChildProcess(
            executable: executable, arguments: arguments,
            environment: ProcessInfo.processInfo.environment.merging(["DEPOT_JWT_SECRET": Self.secret]) { $1 }.merging(environment) { $1 },
            output: log)
        process = p
        // Wait for "listening on 127.0.0.1:PORT" in this start's log lines.
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").last(where: { $0.contains("listening on 127.0.0.1:") }),
                let portText = line.split(separator: ":").last, let port = Int(portText.prefix(while: \.isNumber)), port != self.port
            {
                self.port = port
                return
            }
            guard p.isRunning else { throw Failure("depot serve exited: \(text)") }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw Failure("depot serve did not start")
    }

    func kill9() {
        guard let p = process else { return }
        p.signal(SIGKILL)
        p.waitUntilExit()
        process = nil
    }

    /// Sends SIGTERM (a graceful shutdown) without waiting.
    func terminate() {
        process?.signal(SIGTERM)
    }

    /// The exit status once the process has exited within `timeout`; nil while it still runs.
    func exitStatus(within timeout: Duration) async throws -> Int32? {
        guard let p = process else { return nil }
        let deadline = ContinuousClock.now + timeout
        while p.isRunning && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        if p.isRunning { return nil }
        process = nil
        return p.terminationStatus
    }

    func stop() {
        guard let p = process else { return }
        p.signal(SIGINT)
        p.waitUntilExit()
        process = nil
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }

    // MARK: HTTP

    func request(_ method: HTTPMethod, _ uri: String, headers: [(String, String)] = [], body: [UInt8]? = nil) async throws -> (
        status: Int, body: [UInt8], headers: HTTPHeaders
    ) {
        let target = uri.hasPrefix("http://depot.test") ? String(uri.dropFirst("http://depot.test".count)) : uri
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(target)")
        request.method = method
        for (k, v) in headers { request.headers.add(name: k, value: v) }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 64 * 1024 * 1024)
        return (Int(response.status.code), Array(bytes.readableBytesView), response.headers)
    }
}
