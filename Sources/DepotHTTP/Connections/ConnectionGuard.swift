import DepotCore
import Foundation
import Hummingbird
import HummingbirdCore
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// Enforces ``ConnectionLimits``'s header timeout, idle timeout, minimum upload rate and send
/// timeout on one connection, and closes it when the client breaks one.
///
/// It sits right behind NIO's HTTP/1 decoder (in front of ``PipelineDownloadHandler``, so it sees the
/// requests and responses of the fast path too — all but the repeated GETs that
/// ``RecentAnswerFront`` answers before the decoder, which it reports: ``answeredAhead()``) and has a helper, ``ConnectionGuardFront``, at the
/// very front of the pipeline that reports the raw bytes as they arrive — the start of a head the
/// decoder has not finished — and every `read()` that reaches the socket. A `read()` at the socket
/// means the server is waiting for the client; when the server holds reads back (an upload's
/// bytes not stored yet, a file being sent, the router's task busy), no `read()` gets there and the
/// upload-rate clock stops.
///
/// Cost: one timer per connection, re-armed when it fires (at most every ``tick``), never per
/// request or per read: a state change only sets fields, so the timer finds the state when it
/// fires and re-arms for the deadline that state has. A request costs a few branches and a clock
/// read when its response ends (the idle clock), plus one per socket read while a body arrives.
///
/// A request is "in progress" from its head until its response's end has been handed to the
/// channel and the channel is writable again (NIO holds under 64 KiB of it): a client that reads
/// a download slowly is never idle. While the channel is not writable, the send timeout runs from
/// the last progress: the channel becoming unwritable, or a large body write (a file part, a
/// streamed chunk of 64 KiB or more) completing — small writes (the hot 4 KiB answers) carry no
/// promise of ours.
final class ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler, NIOScheduledCallbackHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private let headerTimeout: TimeAmount?
    private let idleTimeout: TimeAmount?
    private let minUploadRate: Int?
    private let window: TimeAmount
    private let sendTimeout: TimeAmount?
    /// The longest the timer sleeps: the shortest limit, so that a state entered just after the
    /// timer was armed is looked at before its own deadline.
    private let tick: TimeAmount

    private var context: ChannelHandlerContext?
    private var started = false
    private var closed = false
    /// A request was refused here: nothing more of this connection goes on to the server.
    private var refused = false
    private var armed = false

    /// A head has arrived and its request's end has not.
    private var reading = false
    /// Requests whose head has arrived and whose response has not ended.
    private var inFlight = 0
    /// The channel is not writable: a response (a file, a large body) is still being sent; the
    /// client last took a piece of it at `sendProgress`.
    private var sending = false
    private var sendProgress = NIODeadline.uptimeNanoseconds(0)
    /// Bytes of a head the decoder has not finished have arrived, since `headSince` (nil until
    /// the server is free for that request: no other request in flight).
    private var headStarted = false
    private var headSince: NIODeadline?
    /// The last time the connection had nothing in progress.
    private var idleSince = NIODeadline.uptimeNanoseconds(0)

    /// While a body arrives: a read is pending at the socket since `waitSince`; the time waited
    /// and the bytes received in the current window.
    private var waiting = false
    private var waitSince = NIODeadline.uptimeNanoseconds(0)
    private var waited = TimeAmount.zero
    private var received = 0

    init(limits: ConnectionLimits) {
        headerTimeout = limits.headerTimeout.map { TimeAmount($0) }
        idleTimeout = limits.idleTimeout.map { TimeAmount($0) }
        minUploadRate = limits.minUploadRate
        window = max(TimeAmount(limits.uploadRateWindow), .milliseconds(10))
        sendTimeout = limits.sendTimeout.map { TimeAmount($0) }
        let limits = [headerTimeout, idleTimeout, minUploadRate == nil ? nil : window, sendTimeout].compactMap { $0 }
        tick = max(limits.min() ?? .seconds(60), .milliseconds(10))
    }

    // MARK: Lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { start() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        closed = true
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        start()
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        context.fireChannelInactive()
    }

    private func start() {
        guard !started else { return }
        started = true
        idleSince = .now()
        arm(idleSince + tick)
    }

    // MARK: What the front reports (raw bytes, reads at the socket)

    /// Bytes arrived from the socket, before the decoder sees them.
    func bytesArriving() {
        if waiting {
            waiting = false
            if reading, minUploadRate != nil { waited = waited + (.now() - waitSince) }
        }
        if !reading && !headStarted {
            headStarted = true
            headSince = nil
        }
    }

    /// The decoder has seen those bytes.
    func bytesArrived(_ count: Int) {
        if reading {
            received &+= count
        } else if headStarted, headSince == nil, inFlight == 0, !sending {
            // A head still unfinished after a read: its clock starts now.
            let now = NIODeadline.now()
            headSince = now
            if !armed, headerTimeout != nil { arm(now + tick) }
        }
    }

    /// ``RecentAnswerFront`` answered every request whose bytes arrived, before the decoder saw
    /// them: no head is begun, and, with nothing else in progress, the idle clock starts.
    func answeredAhead() {
        headStarted = false
        headSince = nil
        if !reading, inFlight == 0 { becameFree() }
    }

    /// A `read()` reached the socket: the server waits for the client.
    func readRequested() {
        guard !waiting else { return }
        waiting = true
        if reading, minUploadRate != nil { waitSince = .now() }
    }

    // MARK: HTTP parts

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refused else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            if let refusal = Self.refusal(of: head) {
                refuse(context: context, refusal, head: head.method == .HEAD)
                return
            }
            reading = true
            inFlight += 1
            headStarted = false
            headSince = nil
            waited = .zero
            received = 0
            if !armed, minUploadRate != nil { arm(.now() + tick) }
        case .body:
            break
        case .end:
            reading = false
        }
        context.fireChannelRead(data)
    }

    /// Whether a request head announces a body (a length other than 0, or a transfer coding).
    static func hasBody(_ head: HTTPRequestHead) -> Bool {
        head.headers.contains(name: "transfer-encoding") || head.headers["content-length"].contains { $0 != "0" }
    }

    /// Why a request is refused before any route sees it, if it is:
    /// - a GET or HEAD with a body: no route reads one, yet the server would wait for all of it
    ///   (at the minimum upload rate, for as long as the client keeps sending) — 400;
    /// - a transfer coding other than `chunked` alone (`gzip, chunked`, `xchunked`): the body
    ///   would be stored still encoded, or framed differently by a proxy in front — 501;
    /// - an expectation other than `100-continue` — 417.
    static func refusal(of head: HTTPRequestHead) -> StorageError? {
        if hasBody(head), head.method == .GET || head.method == .HEAD {
            return StorageError(.invalidRequest, "a GET or HEAD request has no body")
        }
        let codings = head.headers["transfer-encoding"]
        if !codings.isEmpty, codings.count != 1 || !Self.equalsIgnoringCase(codings[0], "chunked") {
            return StorageError(.notImplemented, "the only transfer coding taken is chunked, alone")
        }
        let expect = head.headers["expect"]
        if !expect.isEmpty, expect.count != 1 || !Self.equalsIgnoringCase(expect[0], "100-continue") {
            return StorageError(.expectationFailed, "the only expectation met is 100-continue")
        }
        return nil
    }

    /// `value` without surrounding spaces or tabs is `token`, ASCII letters in any case.
    static func equalsIgnoringCase(_ value: String, _ token: String) -> Bool {
        let trimmed = value.utf8.drop { $0 == 0x20 || $0 == 0x09 }.reversed().drop { $0 == 0x20 || $0 == 0x09 }.reversed()
        return trimmed.count == token.utf8.count
            && zip(trimmed, token.utf8).allSatisfy { ($0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0) == $1 }
    }

    /// Answers a refused request with its error at once (or, behind an answer still being sent,
    /// closes the connection) and closes the connection: its body's bytes are not read.
    private func refuse(context: ChannelHandlerContext, _ error: StorageError, head isHead: Bool) {
        closed = true
        refused = true
        // Behind an answer still going out, an answer would land in the middle of it: close instead.
        guard inFlight == 0 else {
            context.close(promise: nil)
            return
        }
        let body = JSONResponse.body(
            ByteBuffer(
                bytes: (try? JSONResponse.encoder.encode(StorageError.ErrorBody(error: .init(code: error.code.rawValue, message: error.message))))
                    ?? Data()))
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: JSONResponse.contentType)
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        headers.add(name: "Connection", value: "close")
        let status = HTTPResponseStatus(statusCode: Int(error.code.httpStatus.code))
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        if !isHead { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .end:
            if inFlight > 0 {
                inFlight -= 1
                if inFlight == 0 { becameFree() }
            }
        case .body(let body) where sendTimeout != nil && body.readableBytes >= Self.largeWrite:
            // Its completion is progress of a client that takes what it is sent.
            let done = promise ?? context.eventLoop.makePromise()
            done.futureResult.assumeIsolated().whenSuccess { _ in self.sendProgress = .now() }
            context.write(data, promise: done)
            return
        default:
            break
        }
        context.write(data, promise: promise)
    }

    /// Body writes at least this large are watched for the send timeout.
    static let largeWrite = 64 * 1024

    /// A response's end is handed to the channel when its last bytes may still wait to be sent (a
    /// file sent by `sendfile`, above all): while the channel is not writable the server is still
    /// sending, and a slow reader is not idle.
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        sending = !context.channel.isWritable
        if sending {
            sendProgress = .now()
            if !armed, sendTimeout != nil { arm(sendProgress + tick) }
        }
        if !sending, inFlight == 0 { becameFree() }
        context.fireChannelWritabilityChanged()
    }

    /// No request is in progress (any more): the idle clock starts, and a head already begun is
    /// timed from now.
    private func becameFree() {
        guard !sending else { return }
        idleSince = .now()
        if headStarted { headSince = idleSince }
        if !armed { arm(idleSince + tick) }
    }

    // MARK: The timer

    private func arm(_ deadline: NIODeadline) {
        guard let context, !closed else { return }
        armed = (try? context.eventLoop.assumeIsolated().scheduleCallback(at: deadline, handler: self)) != nil
    }

    /// Looks at the state: closes the connection when the current state's limit has passed, else
    /// sleeps until that limit (or a `tick`, whichever is sooner), or not at all while the server
    /// is answering (the next state change arms it again).
    func handleScheduledCallback(eventLoop: some EventLoop) {
        armed = false
        guard let context, !closed, context.channel.isActive else { return }
        let now = NIODeadline.now()
        var deadline: NIODeadline? = nil
        if reading {
            deadline = minUploadRate.flatMap { uploadDeadline(now: now, rate: $0) }
        }
        // Also while a pipelined request's body arrives (whose reads wait for this answer): the
        // send timeout is never suspended by another request.
        if sending, let sendTimeout {
            let sent = sendProgress + sendTimeout
            deadline = deadline.map { min($0, sent) } ?? sent
        }
        if !reading, !sending, inFlight == 0 {
            if headStarted, let headerTimeout {
                deadline = (headSince ?? now) + headerTimeout
            } else if let idleTimeout {
                deadline = idleSince + idleTimeout
            }
        }
        guard let deadline else { return }
        if deadline <= now {
            closed = true
            context.close(promise: nil)
        } else {
            arm(min(deadline, now + tick))
        }
    }

    /// While a body arrives: when a window of waiting is complete, `now` (the rate is too low) or
    /// the end of the next window; else when the current one can be complete at the earliest.
    private func uploadDeadline(now: NIODeadline, rate: Int) -> NIODeadline {
        var total = waited
        if waiting { total = total + (now - waitSince) }
        guard total >= window else { return now + (window - total) }
        let seconds = Double(total.nanoseconds) / 1e9
        if Double(received) < Double(rate) * seconds { return now }
        waited = .zero
        received = 0
        if waiting { waitSince = now }
        return now + window
    }
}

/// The front of the pipeline, before NIO's HTTP decoder: tells its ``ConnectionGuard`` of raw
/// bytes arriving and of reads reaching the socket. Everything passes through unchanged.
/// ``RecentAnswerFront``, when the pipeline answers downloads, takes its place and reports the same.
final class ConnectionGuardFront: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    private let owner: ConnectionGuard

    init(owner: ConnectionGuard) {
        self.owner = owner
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let count = unwrapInboundIn(data).readableBytes
        owner.bytesArriving()
        context.fireChannelRead(data)
        owner.bytesArrived(count)
    }

    func read(context: ChannelHandlerContext) {
        owner.readRequested()
        context.read()
    }
}

/// Hummingbird adds a server's extra handlers after its conversion to swift-http-types; this one
/// admits the connection against the cap on its address (``ConnectionsPerAddress``), puts a
/// ``ConnectionGuard`` right behind NIO's HTTP/1 decoder and its ``ConnectionGuardFront`` at the
/// front of the pipeline when the connection starts, then leaves the pipeline.
final class ConnectionGuardInstaller: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    private let limits: ConnectionLimits
    private let perAddress: ConnectionsPerAddress?

    init(limits: ConnectionLimits, perAddress: ConnectionsPerAddress?) {
        self.limits = limits
        self.perAddress = perAddress
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let pipeline = context.pipeline.syncOperations
        // One address's connections beyond its cap: closed unanswered, before anything is read.
        if let perAddress, let key = ConnectionsPerAddress.key(context.channel.remoteAddress) {
            guard perAddress.admit(key) else {
                context.close(promise: nil)
                return
            }
            context.channel.closeFuture.whenComplete { _ in perAddress.release(key) }
        }
        let guarding = ConnectionGuard(limits: limits)
        do {
            if let decoder = try? pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self) {
                try pipeline.addHandler(guarding, position: .after(decoder))
            } else {
                try pipeline.addHandler(guarding, position: .before(try pipeline.handler(type: HTTP1ToHTTPServerCodec.self)))
            }
            try pipeline.addHandler(ConnectionGuardFront(owner: guarding), position: .first)
        } catch {
            assertionFailure("cannot install the connection guard: \(error)")
        }
        pipeline.removeHandler(context: context, promise: nil)
    }
}
