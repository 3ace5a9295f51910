import NIOCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The connections open from each client address, against ``ConnectionLimits/maxConnectionsPerAddress``:
/// one instance per server, shared by every connection's ``ConnectionGuardInstaller``. A
/// connection is admitted when it starts and released when its channel closes.
final class ConnectionsPerAddress: Sendable {
    /// What is counted: an IPv4 address (also when it comes IPv4-mapped over IPv6), or the first
    /// 64 bits of an IPv6 address (one host commonly holds a whole /64).
    enum Key: Hashable, Sendable {
        case v4(UInt32)
        case v6(UInt64)
    }

    let cap: Int
    private let open = Mutex<[Key: Int]>([:])

    init(cap: Int) {
        self.cap = cap
    }

    /// The key of `address`; nil for addresses that are not counted (a Unix socket: local clients).
    static func key(_ address: SocketAddress?) -> Key? {
        switch address {
        case .v4(let a):
            return .v4(UInt32(bigEndian: a.address.sin_addr.s_addr))
        case .v6(let a):
            let bytes = withUnsafeBytes(of: a.address.sin6_addr) { raw in (0..<16).map { raw[$0] } }
            // ::ffff:a.b.c.d is an IPv4 client.
            if bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF {
                return .v4(bytes[12...].reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
            }
            return .v6(bytes[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
        default:
            return nil
        }
    }

    /// Counts a connection from `key`: false (and not counted) when `cap` are already open.
    func admit(_ key: Key) -> Bool {
        open.withLock { counts in
            let n = counts[key, default: 0]
            guard n < cap else { return false }
            counts[key] = n + 1
            return true
        }
    }

    /// A connection admitted from `key` closed.
    func release(_ key: Key) {
        open.withLock { counts in
            guard let n = counts[key] else { return }
            counts[key] = n > 1 ? n - 1 : nil
        }
    }

    /// Connections open from `key` (for tests).
    func count(_ key: Key) -> Int { open.withLock { $0[key, default: 0] } }
}
