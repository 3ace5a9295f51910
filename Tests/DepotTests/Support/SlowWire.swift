import DepotCore
import Foundation
import Glibc
import NIOCore

/// Raw-socket steps for the slow-client tests: sends that survive a closed connection, waiting
/// for the server to close, one response at a time on a kept-alive connection.
enum SlowWire {
    struct Reply {
        var status: Int
        var body: [UInt8]
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:] }
    }

    /// Connects with a short receive timeout (the waits below loop on it).
    static func connect(_ port: Int, receiveBuffer: Int32? = nil) throws -> Int32 {
        let fd = try RawSocket.connect(port: port, timeout: 10, receiveBuffer: receiveBuffer)
        var tv = timeval(tv_sec: 0, tv_usec: 50_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    /// Sends all of `bytes`; false when the connection is gone (no SIGPIPE).
    @discardableResult
    static func send(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            sent += n
        }
        return true
    }

    @discardableResult
    static func send(_ fd: Int32, _ text: String) -> Bool { send(fd, Array(text.utf8)) }

    /// Reads (and drops) what arrives until the server closes the connection (end of stream or
    /// reset): true when that happened within `timeout`.
    static func waitForClose(_ fd: Int32, within timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        while ContinuousClock.now < deadline {
            let n = recv(fd, &buf, buf.count, 0)
            if n == 0 { return true }
            if n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR { return true }
        }
        return false
    }

    /// How long after `start` the server closed the connection, if it did within `timeout`.
    static func closedAfter(_ fd: Int32, since start: ContinuousClock.Instant, within timeout: Duration) -> Duration? {
        waitForClose(fd, within: timeout) ? ContinuousClock.now - start : nil
    }

    /// Reads one response with a Content-Length body; nil when none arrived whole within `timeout`
    /// (or the connection closed first). `pace` reads at most `chunk` bytes per `pace`: a slow reader.
    static func response(_ fd: Int32, within timeout: Duration = .seconds(20), chunk: Int = 1 << 16, pace: Duration? = nil) -> Reply? {
        let deadline = ContinuousClock.now + timeout
        var received: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: chunk)
        let separator = Array("\r\n\r\n".utf8)
        while ContinuousClock.now < deadline {
            if let end = received.firstRange(of: separator) {
                let head = String(decoding: received[..<end.lowerBound], as: UTF8.self).lowercased().components(separatedBy: "\r\n")
                let status = Int(head[0].split(separator: " ")[1]) ?? 0
                let length =
                    head.compactMap { line -> Int? in
                        line.hasPrefix("content-length:") ? Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) : nil
                    }.first ?? 0
                if received.count - end.upperBound >= length {
                    return Reply(status: status, body: Array(received[end.upperBound..<end.upperBound + length]))
                }
            }
            let n = recv(fd, &buf, buf.count, 0)
            if n == 0 { return nil }
            if n < 0 {
                if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { continue }
                return nil
            }
            received += buf[0..<n]
            if let pace { Thread.sleep(forTimeInterval: Double(pace.components.attoseconds) / 1e18 + Double(pace.components.seconds)) }
        }
        return nil
    }

    /// One request on a new connection, closed after its response.
    static func exchange(_ port: Int, _ head: String, body: [UInt8] = []) throws -> Reply? {
        let fd = try connect(port)
        defer { close(fd) }
        guard send(fd, Array(head.utf8) + body) else { return nil }
        return response(fd, within: .seconds(60))
    }

    /// The head of `POST /v1/assets` with a PNG body of `length` bytes, or chunked.
    static func uploadHead(token: String, length: Int?, jobId: String = "job-1") -> String {
        "POST /v1/assets?jobId=\(jobId) HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\nContent-Type: image/png\r\n"
            + (length.map { "Content-Length: \($0)\r\n" } ?? "Transfer-Encoding: chunked\r\n") + "\r\n"
    }
}
