import DepotCore
import Foundation
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// Makes the answer to a request whose head is larger than NIO's HTTP/1 decoder takes (request
/// line and header fields over 80 KiB, or more than 1,000 header lines:
/// `HTTPParserError.headerOverflow`) a 431 `headers_too_large` in the JSON error envelope, where
/// Hummingbird answers every parser error with a bare 400 and closes.
///
/// Hummingbird writes that 400 in order, after the responses still owed to the requests before
/// the bad head (it reads the error from the request stream after them, and
/// ``PipelineDownloadHandler`` holds the error behind a file it is sending); so this handler,
/// behind the decoder (and the ``ConnectionGuard``), counts the requests passed on and the
/// responses ended, and rewrites the first response that starts once those owed at the error have
/// ended — that 400, the decoder delivers nothing more — keeping its `Connection: close`.
final class OversizedHeadAnswer: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// Requests passed on whose final response has not ended.
    private var inFlight = 0
    /// After a header overflow: the responses still owed before the parser error's.
    private var owedBeforeAnswer: Int?
    /// The parser error's response is being rewritten: its body goes before its end.
    private var rewriting = false

    /// The envelope as every JSON body leaves Depot (``JSONResponse``: sorted keys, a newline).
    static let body: ByteBuffer = {
        let error = StorageError.ErrorBody(
            error: .init(
                code: StorageError.Code.headersTooLarge.rawValue,
                message: "the request line and header fields are larger than the server takes (80 KiB, 1,000 lines)"))
        return JSONResponse.body(ByteBuffer(bytes: (try? JSONResponse.encoder.encode(error)) ?? Data()))
    }()

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head = unwrapInboundIn(data) { inFlight += 1 }
        context.fireChannelRead(data)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let parserError = error as? HTTPParserError, parserError == .headerOverflow, owedBeforeAnswer == nil {
            owedBeforeAnswer = inFlight
        }
        context.fireErrorCaught(error)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head) where head.status.code >= 200:
            if owedBeforeAnswer == 0, head.status == .badRequest {
                owedBeforeAnswer = nil
                rewriting = true
                let headers = HTTPHeaders([
                    ("Content-Type", JSONResponse.contentType), ("Content-Length", String(Self.body.readableBytes)), ("Connection", "close"),
                ])
                let answer = HTTPResponseHead(version: head.version, status: .init(statusCode: 431), headers: headers)
                context.write(wrapOutboundOut(.head(answer)), promise: promise)
                return
            }
        case .end:
            if rewriting {
                rewriting = false
                context.write(wrapOutboundOut(.body(.byteBuffer(Self.body))), promise: nil)
            } else {
                inFlight -= 1
                if let owed = owedBeforeAnswer, owed > 0 { owedBeforeAnswer = owed - 1 }
            }
        default:
            break
        }
        context.write(data, promise: promise)
    }
}

/// Puts an ``OversizedHeadAnswer`` right behind NIO's HTTP/1 decoder when the connection starts,
/// then leaves the pipeline.
final class OversizedHeadAnswerInstaller: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart

    func handlerAdded(context: ChannelHandlerContext) {
        let pipeline = context.pipeline.syncOperations
        do {
            let decoder = try pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            try pipeline.addHandler(OversizedHeadAnswer(), position: .after(decoder))
        } catch {
            assertionFailure("cannot install the answer to oversized heads: \(error)")
        }
        pipeline.removeHandler(context: context, promise: nil)
    }
}
