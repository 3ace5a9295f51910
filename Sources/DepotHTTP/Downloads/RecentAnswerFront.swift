import DepotCore
import NIOCore

/// Answers plain GETs of signed and public URLs from the raw request bytes, before NIO's HTTP
/// decoder: when a request head is a plain `GET` (``RequestHeadScanner``) whose answer has its
/// bytes in memory — one of the current second's answers (``RecentAnswers``), or one built now
/// from the cached row and blob (``PipelineDownloads/frontAnswer(to:)``) — its head's wire bytes
/// and the body's bytes are written as they are: no decoding into NIO's request types, no
/// response encoding. An answer that needs a file first (or the router) is worked out here once and
/// handed to ``PipelineDownloadHandler`` with the head.
///
/// Every other request's bytes go on to the decoder unchanged, one head at a time, and from the
/// first head the scanner does not frame (a body, another method, a malformed line) every byte of
/// the connection does, so the decoder frames, refuses and answers exactly as without this
/// handler. HTTP/1.1 order is kept: an answer is written here only when ``PipelineDownloadHandler``
/// above is idle (every earlier response has been handed to the channel). While the channel is
/// not writable (a client that pipelines without reading), nothing is answered and reads wait.
///
/// First in the pipeline, it also tells the ``ConnectionGuard`` of the bytes and reads at the
/// socket, in ``ConnectionGuardFront``'s place.
final class RecentAnswerFront: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    private let downloads: PipelineDownloads
    private let above: PipelineDownloadHandler
    private let connectionGuard: ConnectionGuard?
    /// Bytes of heads not yet answered or passed on.
    private var buffer = ByteBuffer()
    /// Put in `buffer`'s place when it is empty, so that the socket's receive buffer is not kept
    /// (NIO reuses it only when nothing else holds it).
    private let empty = ByteBuffer()
    /// How much of `buffer` was searched for a blank line.
    private var searched = 0
    /// The decoder takes every byte from now on.
    private var passThrough = false
    /// A head waits for the channel to be writable, and so does the next read.
    private var stalled = false
    private var readHeld = false
    /// Bytes were passed on since the last read-complete event passed on: the next one goes on
    /// too. A read wholly answered here ends with no event above (as NIO's
    /// `HTTPServerPipelineHandler` fires none when it delivered nothing): the decoder, the
    /// router's handlers and its async channel have nothing to do with it.
    private var passedOnSinceComplete = false

    init(downloads: PipelineDownloads, above: PipelineDownloadHandler, connectionGuard: ConnectionGuard?) {
        self.downloads = downloads
        self.above = above
        self.connectionGuard = connectionGuard
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // What `ConnectionGuardFront` reports when this handler is not there (one handler less
        // for every read and write to pass through).
        guard let connectionGuard else { return receive(context: context, data: data) }
        let count = unwrapInboundIn(data).readableBytes
        connectionGuard.bytesArriving()
        receive(context: context, data: data)
        connectionGuard.bytesArrived(count)
    }

    private func receive(context: ChannelHandlerContext, data: NIOAny) {
        guard !passThrough else {
            passedOnSinceComplete = true
            context.fireChannelRead(data)
            return
        }
        var bytes = unwrapInboundIn(data)
        if buffer.readableBytes == 0 {
            buffer = bytes
        } else {
            buffer.writeBuffer(&bytes)
        }
        if !stalled { process(context: context) }
    }

    /// Answers or passes on each whole head in `buffer`, in order; whether anything was passed on.
    @discardableResult
    private func process(context: ChannelHandlerContext) -> Bool {
        var answered = false
        var passedOn = false
        scanning: while buffer.readableBytes > 0 {
            let outcome = buffer.withUnsafeReadableBytes { RequestHeadScanner.scan($0, searched: &searched) }
            switch outcome {
            case .incomplete:
                break scanning
            case .unframed:
                passThrough = true
                let rest = buffer
                buffer = ByteBuffer()
                context.fireChannelRead(wrapInboundOut(rest))
                passedOn = true
                break scanning
            case .request(let length, let hot):
                searched = 0
                if let hot, above.isIdle {
                    guard context.channel.isWritable else {
                        stalled = true
                        break scanning
                    }
                    // Read before anything the answer is built from (see `RecentAnswers`).
                    let epoch = downloads.service.cacheEpoch
                    let second = downloads.service.unixNow()
                    if let wire = buffer.withUnsafeReadableBytes({
                        HotAnswer.current(from: downloads.recentAnswers, for: UnsafeRawBufferPointer(rebasing: $0[hot]), second: second, epoch: epoch)
                    }) {
                        send(wire, repeated: true, answering: length, context: context)
                        answered = true
                        continue scanning
                    }
                    let target = buffer.getString(at: buffer.readerIndex + hot.lowerBound, length: hot.count)!
                    switch downloads.frontAnswer(to: target, second: second, epoch: epoch) {
                    case .wire(let wire, let repeated):
                        if repeated {
                            // Asked for again in its second: this loop's next requests for it skip the table.
                            buffer.withUnsafeReadableBytes {
                                HotAnswer.remember(
                                    wire, from: downloads.recentAnswers, for: UnsafeRawBufferPointer(rebasing: $0[hot]), second: second,
                                    epoch: epoch)
                            }
                        }
                        send(wire, repeated: repeated, answering: length, context: context)
                        answered = true
                        continue scanning
                    case .handOver(let answer):
                        above.handOver(answer, for: target)
                    }
                }
                let head = buffer.readSlice(length: length)!
                context.fireChannelRead(wrapInboundOut(head))
                passedOn = true
            }
        }
        if answered {
            context.flush()
            if buffer.readableBytes == 0 { connectionGuard?.answeredAhead() }
        }
        if buffer.readableBytes == 0 { buffer = empty }
        if passedOn { passedOnSinceComplete = true }
        return passedOn
    }

    /// Writes `wire` (flushed after the read) as the answer to the head of `length` bytes at the
    /// buffer's start, and counts it.
    private func send(_ wire: RecentAnswers.Wire, repeated: Bool, answering length: Int, context: ChannelHandlerContext) {
        buffer.moveReaderIndex(forwardBy: length)
        downloads.recordFront(wire, repeated: repeated)
        context.write(wrapOutboundOut(.byteBuffer(wire.head)), promise: nil)
        context.write(wrapOutboundOut(.byteBuffer(wire.body)), promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        guard passedOnSinceComplete else { return }
        passedOnSinceComplete = false
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if stalled {
            readHeld = true
        } else {
            connectionGuard?.readRequested()
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        context.fireChannelWritabilityChanged()
        guard stalled, context.channel.isWritable else { return }
        stalled = false
        // Not in a read from the socket: what was passed on is delivered now (the router's
        // side takes reads in at their end).
        if process(context: context) { channelReadComplete(context: context) }
        if !stalled, readHeld {
            readHeld = false
            connectionGuard?.readRequested()
            context.read()
        }
    }
}
