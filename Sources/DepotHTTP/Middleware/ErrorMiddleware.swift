import DepotCore
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1

/// Turns every error into a JSON error response. `StorageError`s keep their code; Hummingbird's
/// own HTTP errors become `invalid_request`/`not_found`/…; anything else is logged with the
/// request id and the caller's tenant, and answered with a generic 500 that reveals nothing.
public struct ErrorMiddleware: RouterMiddleware {
    public typealias Context = DepotRequestContext
    let metrics: DepotMetrics

    public init(metrics: DepotMetrics) { self.metrics = metrics }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            var storageError = Self.storageError(from: error, context: context)
            metrics.recordError(storageError.code)
            var facts: Logger.Metadata = [:]
            if let tenant = context.logFacts.tenant { facts["tenant"] = "\(tenant)" }
            if storageError.code == .internalError || storageError.code == .unavailable {
                facts["method"] = "\(request.method)"
                facts["route"] = "\(context.endpointPath ?? "-")"
                facts["error"] = "\(error)"
                context.logger.error("request failed", metadata: facts)
            } else {
                facts["code"] = "\(storageError.code)"
                context.logger.debug("request rejected", metadata: facts)
            }
            if storageError.code == .internalError {
                // Never show internals; the request id finds the log line.
                storageError.message = "internal error (request id \(context.id))"
            }
            guard ErrorDialect.of(request) == .supabase else { return storageError.response() }
            if let e = error as? HTTPError, e.status == .notFound || e.status == .methodNotAllowed {
                return SupabaseErrorBody.routeNotFound(request).response()
            }
            var body = storageError.supabase
            if let forced = error as? SupabaseStatusError {
                body.status = forced.status
                if let code = forced.code { body.code = code }
            }
            return body.response(retryAfter: storageError.retryAfter ?? (storageError.code == .unavailable ? 5 : nil))
        }
    }

    static func storageError(from error: any Error, context: Context) -> StorageError {
        switch error {
        case let e as StorageError:
            return e
        case let e as SupabaseStatusError:
            return e.error
        case let e as HTTPError:
            switch e.status {
            case .notFound: return StorageError(.notFound, "no such route")
            case .contentTooLarge: return StorageError(.payloadTooLarge, "the body is too large")
            case .unauthorized: return StorageError(.unauthenticated, e.body ?? "unauthenticated")
            case .methodNotAllowed: return StorageError(.invalidRequest, "method not allowed")
            case .badRequest: return StorageError(.invalidRequest, e.body ?? "bad request")
            default: return StorageError(.internalError, "internal error", cause: e)
            }
        case is DecodingError:
            return StorageError(.invalidRequest, "the JSON body does not have the expected shape")
        case let e as HTTPParserError:
            // Raised by the body stream: the request's own bytes are at fault (a chunk size that is
            // not hex, a missing CRLF), or the client left before its body ended.
            if e == .invalidEOFState { return StorageError(.invalidRequest, "the connection closed before the request's body ended") }
            return StorageError(.invalidRequest, "the request's body is not valid HTTP/1.1 framing (\(e.debugDescription))")
        default:
            return StorageError(.internalError, "internal error", cause: error)
        }
    }
}
