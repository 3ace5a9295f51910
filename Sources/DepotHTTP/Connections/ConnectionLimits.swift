import HummingbirdCore

/// What a client may make a connection wait for, and how many connections may be open at once:
/// the defence against clients that hold sockets by sending slowly (a "slowloris" that never
/// finishes its request head, an upload that trickles a few bytes a second) or by opening many
/// and sending nothing — and against clients that hold them by *reading* slowly: a download whose
/// bytes the client does not take (``sendTimeout``). Time the server spends not reading — storing
/// an upload to a slow disk or S3 (backpressure), answering an earlier pipelined request — never
/// counts against the client.
///
/// `nil` turns a limit off. The timeouts and the upload rate are enforced per connection by
/// ``ConnectionGuard``; the cap by Hummingbird (``availableConnectionsDelegate``).
public struct ConnectionLimits: Sendable, Equatable {
    /// Header-read timeout: once the first byte of a request head has arrived, the whole head
    /// (request line and headers) must have arrived this long after, or the connection is closed
    /// without an answer. Sending slowly does not extend it. It starts when the server is free
    /// for the request: a head that arrives while an earlier request on the connection is still
    /// being answered is timed from that answer's end. Default 10 s: a head is a few hundred bytes
    /// that any client sends in one go, even on a poor mobile link; 10 s allows for retransmits.
    public var headerTimeout: Duration? = .seconds(10)

    /// Idle (keep-alive) timeout: a connection with no request in progress — between requests, or
    /// new and silent from the start — is closed after this long. (Not shorter for a new one:
    /// clients open connections ahead of their requests, and a connection closed under a client
    /// that is about to send an upload fails that upload; ``maxConnectionsPerAddress`` is what
    /// stops one client from holding many silent ones.) Default 60 s: longer than the
    /// keep-alive of common clients and load balancers (which then close first, so they never
    /// send on a connection the server is closing), short enough that idle sockets do not pile up.
    public var idleTimeout: Duration? = .seconds(60)

    /// Minimum upload rate, bytes per second: while a request body is being received, a client
    /// that sends less than this, measured over ``uploadRateWindow`` of time during which the
    /// server was waiting for its bytes, has its connection closed; the upload then fails as any
    /// cut-off upload does (nothing is stored). Only time with a read pending on the socket
    /// counts: while the server holds reads back because it is still storing earlier bytes, the
    /// clock stops. Default 1 KiB/s: a 10 MiB image at that rate takes almost three hours; only a
    /// client that is stalled or deliberately trickling is slower.
    public var minUploadRate: Int? = 1024

    /// The time over which ``minUploadRate`` is measured (server-waiting time, see there). A
    /// client that sent nothing for this long while the server waited is closed. Default 30 s:
    /// long enough for a mobile client to ride out a short loss of signal.
    public var uploadRateWindow: Duration = .seconds(30)

    /// Send timeout: while the server has bytes queued for a client that the client does not take
    /// (the connection's send buffer is full), the client must take a piece within this long, or
    /// the connection is closed and the download is cut off. A piece is what lets the buffer drain
    /// below its low mark, or one part of a file sent with `sendfile` (files go in parts of
    /// ``sendPiece`` bytes), or one write of a streamed body (at most 1 MiB): so a download slower
    /// than about 16 KiB/s for a whole minute is cut off. Default 60 s. Without it, a client that
    /// asks for a public object and never reads holds its connection — and delays a graceful
    /// shutdown — forever.
    public var sendTimeout: Duration? = .seconds(60)

    /// The parts a file is sent in (``sendTimeout``'s pieces). 256 KiB.
    public static let sendPiece = 256 * 1024

    /// Cap on concurrent connections: beyond it the server stops accepting (new clients wait in
    /// the listen backlog, then the kernel refuses them) until a connection closes. Accepts come in
    /// small batches, so the count can pass the cap by a few. Default 4,096: far more than the
    /// busiest benchmark uses (wrk's 256), few enough that each can hold a socket and an open
    /// file within a raised descriptor limit (`depot serve` raises RLIMIT_NOFILE to match).
    public var maxConnections: Int? = 4096

    /// Cap on concurrent connections from one client address (an IPv4 address; an IPv6 /64, the
    /// block one host is usually given): a connection beyond it is closed as soon as it is
    /// accepted, unanswered. Without it, one client holding silent sockets could fill
    /// ``maxConnections`` and lock every other client out. Default 512: twice what the busiest
    /// benchmark opens from one address (wrk's 256), an eighth of the global cap. Behind a proxy
    /// or load balancer every connection comes from its address: raise it, or turn it off (nil)
    /// and cap connections per client at the proxy.
    public var maxConnectionsPerAddress: Int? = 512

    public init() {}

    /// Hummingbird's delegate enforcing ``maxConnections``, for
    /// `ApplicationConfiguration(availableConnectionsDelegate:)`; nil without a cap.
    public var availableConnectionsDelegate: (any AvailableConnectionsDelegate)? {
        maxConnections.map { MaximumAvailableConnections($0) }
    }
}
