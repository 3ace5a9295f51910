import DepotCore
import Foundation
import Glibc

/// A plain TCP connection to the test server on loopback, for what only shows on the wire.
enum RawSocket {
    /// Connects to 127.0.0.1:`port` with a receive timeout; the caller closes the descriptor.
    /// - Parameter receiveBuffer: a small `SO_RCVBUF` (set before connecting) keeps a large
    ///   response in flight while the test reads slowly.
    static func connect(port: Int, timeout seconds: Int = 2, receiveBuffer: Int32? = nil) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        if var size = receiveBuffer {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            close(fd)
            throw StorageError.internal("connect failed")
        }
        var tv = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    static func send(_ fd: Int32, _ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) }
    }

    /// Runs blocking socket code on a thread of its own: a test blocked in `recv` on the
    /// cooperative pool could starve the in-process server it is waiting for.
    static func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try body() }) }.start()
        }
    }

    /// Sends `requests` at once on a new connection and reads until the server closes it (or is
    /// silent for `timeout` seconds).
    static func exchange(port: Int, _ requests: String, timeout: Int = 30) async throws -> [UInt8] {
        try await blocking {
            let fd = try connect(port: port, timeout: timeout)
            defer { close(fd) }
            send(fd, Array(requests.utf8))
            return receiveAll(fd)
        }
    }

    /// Reads until the server closes the connection (or the receive timeout passes).
    static func receiveAll(_ fd: Int32) -> [UInt8] {
        var received: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = recv(fd, &buf, buf.count, 0)
            if n <= 0 { break }
            received += buf[0..<n]
        }
        return received
    }
}
