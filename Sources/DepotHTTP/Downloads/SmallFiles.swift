import Foundation
import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Reads a small file whole on a thread pool, in one hop: open, read, close (what nginx does for a
/// small file, minus its `sendfile`: the bytes are kept in memory for the next request).
struct SmallFiles: Sendable {
    let threadPool: NIOThreadPool

    /// The file's bytes when it holds exactly `size` bytes; `nil` when it is missing, unreadable
    /// or of another size (a damaged blob: the router reports it).
    func read(_ path: String, expecting size: Int, eventLoop: any EventLoop) -> EventLoopFuture<ByteBuffer?> {
        threadPool.runIfActive(eventLoop: eventLoop) { Self.readWhole(path, expecting: size) }
    }

    static func readWhole(_ path: String, expecting size: Int) -> ByteBuffer? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        // One byte more than expected is asked for: a longer file is noticed without a stat.
        var buffer = ByteBufferAllocator().buffer(capacity: size + 1)
        var total = 0
        var failed = false
        while total <= size {
            let want = size + 1 - total
            let got = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: want) { raw -> Int in
                var n: Int
                repeat { n = systemRead(fd, raw.baseAddress, want) } while n < 0 && errno == EINTR
                if n < 0 { failed = true }
                return max(n, 0)
            }
            if failed { return nil }
            if got == 0 { break }
            total += got
        }
        return total == size ? buffer : nil
    }
}

#if canImport(Glibc)
    private let systemRead = Glibc.read
#elseif canImport(Darwin)
    private let systemRead = Darwin.read
#endif
