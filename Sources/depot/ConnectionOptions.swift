import ArgumentParser
import DepotHTTP
import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `depot serve`'s limits on slow and idle clients and on open connections (``ConnectionLimits``
/// explains each), resolved flag → environment → default. 0 turns a limit off.
struct ConnectionOptions: ParsableArguments {
    @Option(
        name: .customLong("header-timeout"),
        help:
            "Seconds a client has to send a whole request head once it has started one; then the connection is closed. 0 turns it off. (env DEPOT_HEADER_TIMEOUT, default 10)"
    )
    var headerTimeout: Int?
    @Option(
        name: .customLong("idle-timeout"),
        help:
            "Seconds a connection may stay open with no request in progress (between keep-alive requests, or new and silent); 0 turns it off. (env DEPOT_IDLE_TIMEOUT, default 60)"
    )
    var idleTimeout: Int?
    @Option(
        name: .customLong("min-upload-rate"),
        help:
            "Bytes per second a request body must arrive at, measured over 30 s of the server waiting for the client (time spent storing does not count); a slower connection is closed and the upload fails. 0 turns it off. (env DEPOT_MIN_UPLOAD_RATE, default 1024)"
    )
    var minUploadRate: Int?
    @Option(
        name: .customLong("send-timeout"),
        help:
            "Seconds a client that does not take the bytes of a download has to take the next piece of it (the buffer's worth, or a 256 KiB part of a file; about 16 KiB/s over a minute); then the connection is closed. 0 turns it off. (env DEPOT_SEND_TIMEOUT, default 60)"
    )
    var sendTimeout: Int?
    @Option(
        name: .customLong("shutdown-timeout"),
        help:
            "Seconds a graceful stop (SIGINT, SIGTERM) waits for requests in flight; then their connections are closed. 0: wait for them however long they take. (env DEPOT_SHUTDOWN_TIMEOUT, default 30)"
    )
    var shutdownTimeout: Int?
    @Option(
        name: .customLong("max-connections"),
        help:
            "Most connections open at once; beyond it new clients wait to be accepted. 0: no cap. At start the open-file limit is raised to fit. (env DEPOT_MAX_CONNECTIONS, default 4096)"
    )
    var maxConnections: Int?
    @Option(
        name: .customLong("max-connections-per-address"),
        help:
            "Most connections open at once from one client address (an IPv4 address, an IPv6 /64); a connection beyond it is closed unanswered. Behind a proxy every client has the proxy's address: raise it, or 0 (no cap) and cap clients at the proxy. (env DEPOT_MAX_CONNECTIONS_PER_ADDRESS, default 512)"
    )
    var maxConnectionsPerAddress: Int?

    /// The largest values accepted: a day for the timeouts, 1 GiB/s, about a million connections.
    static let maxTimeout = 86_400
    static let maxRate = 1 << 30
    static let maxCap = 1 << 20

    /// How long a graceful stop waits (nil: as long as it takes).
    func resolvedShutdownTimeout() throws -> Duration? {
        try Self.value(shutdownTimeout, "shutdown-timeout", "DEPOT_SHUTDOWN_TIMEOUT", max: Self.maxTimeout, default: 30).map { .seconds($0) }
    }

    func resolve() throws -> ConnectionLimits {
        var limits = ConnectionLimits()
        limits.headerTimeout = try Self.value(headerTimeout, "header-timeout", "DEPOT_HEADER_TIMEOUT", max: Self.maxTimeout, default: 10)
            .map { .seconds($0) }
        limits.idleTimeout = try Self.value(idleTimeout, "idle-timeout", "DEPOT_IDLE_TIMEOUT", max: Self.maxTimeout, default: 60)
            .map { .seconds($0) }
        limits.minUploadRate = try Self.value(minUploadRate, "min-upload-rate", "DEPOT_MIN_UPLOAD_RATE", max: Self.maxRate, default: 1024)
        limits.sendTimeout = try Self.value(sendTimeout, "send-timeout", "DEPOT_SEND_TIMEOUT", max: Self.maxTimeout, default: 60)
            .map { .seconds($0) }
        limits.maxConnections = try Self.value(maxConnections, "max-connections", "DEPOT_MAX_CONNECTIONS", max: Self.maxCap, default: 4096)
        limits.maxConnectionsPerAddress = try Self.value(
            maxConnectionsPerAddress, "max-connections-per-address", "DEPOT_MAX_CONNECTIONS_PER_ADDRESS", max: Self.maxCap, default: 512)
        return limits
    }

    /// A setting from its flag, else its environment variable, else its default; 0 means off (nil).
    private static func value(_ flag: Int?, _ name: String, _ env: String, max: Int, default def: Int) throws -> Int? {
        let v: Int
        if let flag {
            v = flag
        } else if let s = setting(nil, env) {
            guard let parsed = Int(s.trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError("\(env) must be a whole number, got '\(s)'")
            }
            v = parsed
        } else {
            v = def
        }
        guard (0...max).contains(v) else { throw ValidationError("--\(name) must be 0 … \(max), got \(v)") }
        return v == 0 ? nil : v
    }

    /// Resolves the limits and raises the process's open-file limit to what they need.
    func resolve(raisingOpenFileLimit logger: Logger) throws -> ConnectionLimits {
        let limits = try resolve()
        if let line = OpenFileLimit.raise(toFit: limits) { logger.warning("\(line)") }
        return limits
    }
}

/// The process's soft RLIMIT_NOFILE (often 1,024 by default), raised toward its hard limit at
/// start so that the connection cap, not the descriptor limit, is what stops new connections.
enum OpenFileLimit {
    /// Descriptors `limits` need: per connection its socket and at most one open file (a download
    /// sent from its file, an upload's temp file), plus 256 for the database, the listening socket,
    /// the event loops and the blob store's own. Without a cap: as many as the hard limit allows.
    static func needed(by limits: ConnectionLimits) -> UInt64 {
        guard let cap = limits.maxConnections else { return UInt64(ConnectionOptions.maxCap) * 2 }
        return UInt64(cap) * 2 + 256
    }

    /// Raises the soft limit when it is below what `limits` need; returns one line to log when
    /// that fails or when the hard limit is lower than the need, else nil.
    static func raise(toFit limits: ConnectionLimits) -> String? {
        let need = needed(by: limits)
        var current = rlimit()
        guard getrlimit(resource, &current) == 0 else {
            return "could not read the open-file limit (RLIMIT_NOFILE): \(String(cString: strerror(errno)))"
        }
        let soft = UInt64(current.rlim_cur)
        let hard = UInt64(current.rlim_max)
        guard soft < need else { return nil }
        let target = min(need, hard)
        if target > soft {
            var raised = current
            raised.rlim_cur = rlim_t(target)
            guard setrlimit(resource, &raised) == 0 else {
                return "could not raise the open-file limit (RLIMIT_NOFILE) from \(soft) to \(target): "
                    + "\(String(cString: strerror(errno))); \(advice)"
            }
        }
        // Without a cap, as many as the hard limit allows is all there is to do.
        guard target < need, let cap = limits.maxConnections else { return nil }
        return "the open-file limit (RLIMIT_NOFILE) is \(target), its hard limit: fewer than the \(need) descriptors "
            + "that --max-connections \(cap) needs; \(advice)"
    }

    private static let advice = "raise the hard limit (ulimit -Hn, LimitNOFILE= in systemd) or lower --max-connections"

    #if canImport(Glibc)
        private static let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    #else
        private static let resource = RLIMIT_NOFILE
    #endif
}
