#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif
import CDepotSystem
import DepotCore
import NIOCore

/// Thin, throwing wrappers over the system calls the file system blob store makes. All errno →
/// `StorageError` translation happens here.
enum POSIX {
    static func error(_ op: String, _ path: String, errno e: Int32 = errno) -> StorageError {
        switch e {
        case ENOENT: return StorageError(.notFound, "blob not found")
        case ENOSPC, EDQUOT: return StorageError(.unavailable, "the disk is full", cause: SyscallError(op: op, path: path, errno: e))
        case EMFILE, ENFILE: return StorageError(.unavailable, "too many open files", cause: SyscallError(op: op, path: path, errno: e))
        default: return StorageError(.internalError, "file system error", cause: SyscallError(op: op, path: path, errno: e))
        }
    }

    struct SyscallError: Error, CustomStringConvertible {
        var op: String, path: String, errno: Int32
        var description: String { "\(op)(\(path)): \(String(cString: strerror(errno)))" }
    }

    static func open(_ path: String, _ flags: Int32, _ mode: mode_t = 0o600) throws -> Int32 {
        while true {
            let fd = Glibc.open(path, flags | O_CLOEXEC, mode)
            if fd >= 0 { return fd }
            if errno != EINTR { throw error("open", path) }
        }
    }

    static func writeAll(_ fd: Int32, _ buffer: ByteBuffer, path: String) throws {
        var failure: StorageError?
        buffer.withUnsafeReadableBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = error("write", path)
                    return
                }
                offset += n
            }
        }
        if let failure { throw failure }
    }

    static func fsync(_ fd: Int32, path: String) throws {
        if Glibc.fsync(fd) != 0 { throw error("fsync", path) }
    }

    static func fdatasync(_ fd: Int32, path: String) throws {
        if Glibc.fdatasync(fd) != 0 { throw error("fdatasync", path) }
    }

    /// Starts writing a range of a file out without waiting for it (a hint: errors are ignored;
    /// the final sync reports them).
    static func startWriteback(_ fd: Int32, offset: Int64, count: Int64) {
        _ = depot_start_writeback(fd, offset, count)
    }

    static func fsyncDirectory(_ path: String) throws {
        let fd = try open(path, O_RDONLY | O_DIRECTORY)
        defer { close(fd) }
        try fsync(fd, path: path)
    }

    static func rename(_ from: String, _ to: String) throws {
        if Glibc.rename(from, to) != 0 { throw error("rename", to) }
    }

    /// Creates a directory; returns whether it was created (false when it existed).
    @discardableResult
    static func mkdir(_ path: String, mode: mode_t = 0o700) throws -> Bool {
        if Glibc.mkdir(path, mode) == 0 { return true }
        if errno == EEXIST { return false }
        throw error("mkdir", path)
    }

    static func unlink(_ path: String) throws {
        if Glibc.unlink(path) != 0 && errno != ENOENT { throw error("unlink", path) }
    }

    static func fileSize(_ fd: Int32, path: String) throws -> Int64 {
        var st = Glibc.stat()
        if fstat(fd, &st) != 0 { throw error("fstat", path) }
        return Int64(st.st_size)
    }

    /// `(size, modification time as unix seconds)`, or nil when missing.
    static func status(_ path: String) throws -> (size: Int64, mtime: Double)? {
        var st = Glibc.stat()
        if stat(path, &st) != 0 {
            if errno == ENOENT { return nil }
            throw error("stat", path)
        }
        return (Int64(st.st_size), Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9)
    }

    /// Reads up to `count` bytes at `offset` into a new buffer.
    static func pread(_ fd: Int32, count: Int, offset: Int64, path: String, allocator: ByteBufferAllocator) throws -> ByteBuffer {
        var buffer = allocator.buffer(capacity: count)
        var failure: StorageError?
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { ptr in
            var done = 0
            while done < count {
                let n = Glibc.pread(fd, ptr.baseAddress! + done, count - done, off_t(offset) + off_t(done))
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = error("pread", path)
                    return done
                }
                if n == 0 { break }
                done += n
            }
            return done
        }
        if let failure { throw failure }
        return buffer
    }

    /// Names in a directory (without `.` and `..`); empty when it does not exist.
    static func list(_ path: String) throws -> [String] {
        guard let dir = opendir(path) else {
            if errno == ENOENT { return [] }
            throw error("opendir", path)
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}
