import CDepotSystem
import Foundation
import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Reads a small file whole: open, read, close (what nginx does for a small file, minus its
/// `sendfile`: the bytes are kept in memory for the next request). First on the event loop from
/// the page cache alone (``readIfCached(_:expecting:)``: no thread hop, as nginx reads a cached
/// file), and on a thread pool when the bytes would have to come from the disk.
struct SmallFiles: Sendable {
    let threadPool: NIOThreadPool

    /// What a read from the page cache found.
    enum CachedRead {
        /// The file's bytes, exactly the expected count.
        case bytes(ByteBuffer)
        /// Not all in the page cache: read on the thread pool instead (``read(_:expecting:eventLoop:)``).
        case notCached
        /// Missing, unreadable or of another size (a damaged blob: the router reports it).
        case failed
    }

    /// The file's bytes when it holds exactly `size` bytes; `nil` when it is missing, unreadable
    /// or of another size (a damaged blob: the router reports it).
    func read(_ path: String, expecting size: Int, eventLoop: any EventLoop) -> EventLoopFuture<ByteBuffer?> {
        threadPool.runIfActive(eventLoop: eventLoop) { Self.readWhole(path, expecting: size) }
    }

    /// The file's bytes when every one of them is in the page cache, without waiting for the disk
    /// (`preadv2` with `RWF_NOWAIT`; an `open` may still read a directory or inode that is not
    /// cached, as nginx's does). Meant for the event loop: `.notCached` sends the caller to
    /// ``read(_:expecting:eventLoop:)``.
    static func readIfCached(_ path: String, expecting size: Int) -> CachedRead {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .failed }
        defer { close(fd) }
        // Exactly the row's size (a ByteBuffer's storage is a power of two: a byte more would
        // double a 4 KiB thumbnail's); the byte after it is read apart, so a longer file is
        // noticed without a stat.
        var buffer = ByteBufferAllocator().buffer(capacity: size)
        var n = -1
        var error: Int32 = 0
        _ = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { raw -> Int in
            n = depot_read_cached(fd, raw.baseAddress, UInt(size), 0)
            if n < 0 { error = errno }
            return min(max(n, 0), size)
        }
        if n == size { return .bytes(buffer) }
        // Short or long: the file is not the row's size, or its tail is not cached; the thread's
        // read tells which.
        return n < 0 && error != EAGAIN ? .failed : .notCached
    }

    static func readWhole(_ path: String, expecting size: Int) -> ByteBuffer? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        // Exactly the row's size (see `readIfCached`), then one byte more asked for apart: a
        // longer file is noticed without a stat.
        var buffer = ByteBufferAllocator().buffer(capacity: size)
        var total = 0
        var failed = false
        while total < size {
            let want = size - total
            let got = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: want) { raw -> Int in
                var n: Int
                repeat { n = systemRead(fd, raw.baseAddress, want) } while n < 0 && errno == EINTR
                if n < 0 { failed = true }
                return max(n, 0)
            }
            if failed { return nil }
            if got == 0 { return nil }  // shorter than the row says
            total += got
        }
        var beyond: UInt8 = 0
        var n: Int
        repeat { n = systemRead(fd, &beyond, 1) } while n < 0 && errno == EINTR
        return n == 0 ? buffer : nil
    }
}

#if canImport(Glibc)
    private let systemRead = Glibc.read
#elseif canImport(Darwin)
    private let systemRead = Darwin.read
#endif
