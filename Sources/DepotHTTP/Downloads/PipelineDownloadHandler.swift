import DepotCore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import NIOPosix

/// Answers signed and public GETs of cached objects in the channel pipeline, in front of the
/// router: no task, no router, no middleware. The row and the headers are in memory; the bytes
/// too for small objects, while a large object's local file is opened off the event loop and sent
/// by the kernel (`sendfile`), as nginx does; one `Range` of either too, and with the router's CORS
/// headers for an `Origin`. Anything else (not cached, a conditional request, a Range on a HEAD or
/// not satisfiable, a token that does not verify, a file that cannot be opened, an error to
/// report) goes on to the router, which gives the same answer for what this handler would have
/// served and reports every error. A small object's file is read here on the event loop when the
/// page cache holds all of it, as nginx reads it; on the thread pool when it would wait for the disk.
///
/// It sits between NIO's HTTP/1 codec and the conversion to swift-http-types (so a request it
/// answers is never converted) and writes NIO's response parts, which pass NIO's response encoder
/// like the router's (the encoder pairs each response with its request's method). HTTP/1.1 order
/// is kept: a request is answered here only when no earlier request on the connection is still
/// waiting for the router's response. While a file is being opened and sent, the requests behind
/// it wait here and reads from the socket are held (as nginx does), so a connection holds at most
/// one open file and a client that pipelines without reading gets no further. A graceful shutdown
/// waits for the file being sent: the quiesce event goes on when it has left.
final class PipelineDownloadHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private let downloads: PipelineDownloads
    /// Requests passed on whose response has not ended yet.
    private var forwarded = 0
    /// The request being read and the answer to send when its end arrives.
    private var pending: (request: HTTPRequestHead, answer: PipelineDownloads.Answer)?
    /// A file is being opened or sent: inbound parts wait in `held`, and a read asked for
    /// meanwhile waits too.
    private var busy = false
    private var held = CircularBuffer<NIOAny>()
    private var readHeld = false
    /// A shutdown asked for: nothing more is answered here, and the event waits for the file.
    private var quiescing = false
    private var heldQuiesce: Any?
    /// A parser error (a bad head behind the request whose file is being sent): passed on after
    /// the parts that waited, so that its answer comes after theirs.
    private var heldError: (any Error)?

    init(downloads: PipelineDownloads) {
        self.downloads = downloads
    }

    /// What ``RecentAnswerFront`` decided for the head it passes on next (an answer worked out
    /// there, or `nil`: the router), so that it is not worked out twice.
    private var handedOver: (target: String, answer: PipelineDownloads.Answer?)?

    func handOver(_ answer: PipelineDownloads.Answer?, for target: String) {
        handedOver = (target, answer)
    }

    /// Nothing is waiting here or at the router, and no shutdown is underway: an answer written
    /// now by ``RecentAnswerFront`` comes after every earlier response, in order.
    var isIdle: Bool {
        forwarded == 0 && !busy && pending == nil && !quiescing && held.isEmpty
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if busy {
            held.append(data)
        } else {
            handle(context: context, data: data)
        }
    }

    private func handle(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let request):
            let handedOver = self.handedOver
            self.handedOver = nil
            if forwarded == 0, !quiescing,
                let answer = handedOver?.target == request.uri ? handedOver!.answer : downloads.answer(request)
            {
                pending = (request, answer)
                return
            }
            forwarded += 1
            context.fireChannelRead(data)
        case .body:
            if pending == nil { context.fireChannelRead(data) }
        case .end:
            guard let (request, answer) = pending else {
                context.fireChannelRead(data)
                return
            }
            pending = nil
            switch answer.body {
            case .none: send(context: context, answer, body: nil)
            case .bytes(let bytes): send(context: context, answer, body: .byteBuffer(bytes))
            case .file(let path, let size, let range):
                open(context: context, path: path, size: size, range: range, request: request, answer: answer)
            case .smallFile(let path, let object, let epoch, let range):
                load(context: context, path: path, object: object, epoch: epoch, range: range, request: request, answer: answer)
            }
        }
    }

    private func send(context: ChannelHandlerContext, _ answer: PipelineDownloads.Answer, body: IOData?) {
        downloads.record(answer)
        context.write(wrapOutboundOut(.head(answer.head)), promise: nil)
        if let body { context.write(wrapOutboundOut(.body(body)), promise: nil) }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    /// Opens the file on NIO's thread pool, then sends its `range`, or, when it is missing or not
    /// the expected size, hands the request to the router after all.
    private func open(
        context: ChannelHandlerContext, path: String, size: Int64, range: Range<Int64>, request: HTTPRequestHead,
        answer: PipelineDownloads.Answer
    ) {
        busy = true
        downloads.fileIO.openFile(_deprecatedPath: path, eventLoop: context.eventLoop).assumeIsolated().whenComplete { result in
            switch result {
            case .success(let (file, region)) where region.readableBytes == size:
                self.downloads.record(answer)
                context.write(self.wrapOutboundOut(.head(answer.head)), promise: nil)
                // In parts, each a sign of progress for the send timeout (``ConnectionLimits/sendPiece``).
                var start = Int(range.lowerBound)
                let end = Int(range.upperBound)
                while start < end {
                    let stop = min(end, start + ConnectionLimits.sendPiece)
                    let part = FileRegion(fileHandle: region.fileHandle, readerIndex: start, endIndex: stop)
                    context.write(self.wrapOutboundOut(.body(.fileRegion(part))), promise: nil)
                    start = stop
                }
                let sent = context.eventLoop.makePromise(of: Void.self)
                context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: sent)
                sent.futureResult.assumeIsolated().whenComplete { _ in
                    try? file.close()
                    self.resume(context: context)
                }
            case .success(let (file, _)):
                try? file.close()
                self.forward(context: context, request)
                self.resume(context: context)
            case .failure:
                self.forward(context: context, request)
                self.resume(context: context)
            }
        }
    }

    /// Reads a small file whole — here when the page cache holds it, else on the thread pool —
    /// keeps its bytes in memory and sends the `range`; when it is missing or not the row's size,
    /// the router answers after all.
    private func load(
        context: ChannelHandlerContext, path: String, object: ObjectRecord, epoch: UInt64, range: Range<Int64>,
        request: HTTPRequestHead, answer: PipelineDownloads.Answer
    ) {
        switch SmallFiles.readIfCached(path, expecting: Int(object.size)) {
        case .bytes(let bytes):
            sendLoaded(context: context, bytes, object: object, epoch: epoch, range: range, answer: answer)
            return
        case .failed:
            forward(context: context, request)
            return
        case .notCached:
            break
        }
        busy = true
        downloads.smallFiles.read(path, expecting: Int(object.size), eventLoop: context.eventLoop).assumeIsolated().whenComplete { result in
            if case .success(let bytes?) = result {
                self.downloads.metrics.recordSmallFileDiskRead()
                self.sendLoaded(context: context, bytes, object: object, epoch: epoch, range: range, answer: answer)
            } else {
                self.forward(context: context, request)
            }
            self.resume(context: context)
        }
    }

    /// Keeps a small object's bytes, just read, in memory and sends the `range` of them.
    private func sendLoaded(
        context: ChannelHandlerContext, _ bytes: ByteBuffer, object: ObjectRecord, epoch: UInt64, range: Range<Int64>,
        answer: PipelineDownloads.Answer
    ) {
        downloads.service.keepInMemory(bytes, of: object, epoch: epoch)
        let part = bytes.getSlice(at: bytes.readerIndex + Int(range.lowerBound), length: range.count)!
        send(context: context, answer, body: .byteBuffer(part))
    }

    /// The router answers a request this handler took but could not serve.
    private func forward(context: ChannelHandlerContext, _ request: HTTPRequestHead) {
        guard context.channel.isActive else { return }
        forwarded += 1
        context.fireChannelRead(wrapInboundOut(.head(request)))
        context.fireChannelRead(wrapInboundOut(.end(nil)))
    }

    /// After a file: handles the parts that waited, then the read and the quiesce event that waited.
    private func resume(context: ChannelHandlerContext) {
        busy = false
        while !busy, let data = held.popFirst() {
            handle(context: context, data: data)
        }
        // What was passed on since the socket's last read is delivered now.
        context.fireChannelReadComplete()
        guard !busy else { return }
        if let error = heldError {
            heldError = nil
            context.fireErrorCaught(error)
        }
        if let event = heldQuiesce {
            heldQuiesce = nil
            context.fireUserInboundEventTriggered(event)
        }
        if readHeld {
            readHeld = false
            context.read()
        }
    }

    func read(context: ChannelHandlerContext) {
        if busy {
            readHeld = true
        } else {
            context.read()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if error is HTTPParserError, busy || !held.isEmpty {
            if heldError == nil { heldError = error }
            return
        }
        context.fireErrorCaught(error)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            quiescing = true
            if busy {
                heldQuiesce = event
                return
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { forwarded = max(0, forwarded - 1) }
        context.write(data, promise: promise)
    }
}

/// Hummingbird adds a server's extra handlers after its conversion to swift-http-types; this one
/// puts ``PipelineDownloadHandler`` in front of that conversion when the connection starts, then
/// leaves the pipeline.
final class PipelineDownloadInstaller: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    private let downloads: PipelineDownloads

    init(downloads: PipelineDownloads) {
        self.downloads = downloads
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let pipeline = context.pipeline.syncOperations
        if let codec = try? pipeline.handler(type: HTTP1ToHTTPServerCodec.self) {
            let handler = PipelineDownloadHandler(downloads: downloads)
            try? pipeline.addHandler(handler, position: .before(codec))
            // Before the decoder, first: in the connection guard's front's place when there is
            // one (it reports to the guard itself).
            let connectionGuard = try? pipeline.handler(type: ConnectionGuard.self)
            let front = RecentAnswerFront(downloads: downloads, above: handler, connectionGuard: connectionGuard)
            if let guardFront = try? pipeline.handler(type: ConnectionGuardFront.self) {
                try? pipeline.addHandler(front, position: .after(guardFront))
                pipeline.removeHandler(guardFront, promise: nil)
            } else {
                try? pipeline.addHandler(front, position: .first)
            }
        }
        pipeline.removeHandler(context: context, promise: nil)
    }
}
