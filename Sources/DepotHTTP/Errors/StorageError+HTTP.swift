import DepotCore
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// The one mapping from error codes to HTTP statuses for the Assets API.
extension StorageError.Code {
    public var httpStatus: HTTPResponse.Status {
        switch self {
        case .invalidRequest, .invalidPath, .checksumMismatch, .sizeMismatch: return .badRequest
        case .unauthenticated, .tokenExpired: return .unauthorized
        case .forbidden, .signatureInvalid, .urlExpired: return .forbidden
        case .notFound, .bucketNotFound: return .notFound
        case .alreadyExists, .uploadConsumed, .conflict: return .conflict
        case .payloadTooLarge, .quotaExceeded: return .contentTooLarge
        case .rateLimited: return .tooManyRequests
        case .headersTooLarge: return .requestHeaderFieldsTooLarge
        case .expectationFailed: return .expectationFailed
        case .notImplemented: return .init(code: 501, reasonPhrase: "Not Implemented")
        case .unsupportedMediaType, .mediaTypeMismatch: return .unsupportedMediaType
        case .rangeNotSatisfiable: return .rangeNotSatisfiable
        case .unavailable: return .serviceUnavailable
        default: return .internalServerError
        }
    }
}

extension StorageError {
    /// `{"error":{"code","message"}}` with the code's status (and `Retry-After` for 503).
    func response(extraHeaders: HTTPFields = [:]) -> Response {
        let body = ErrorBody(error: .init(code: code.rawValue, message: message))
        let data = (try? JSONResponse.encoder.encode(body)) ?? Data()
        var headers = extraHeaders
        if let seconds = retryAfter ?? (code == .unavailable ? 5 : nil) { headers[.retryAfter] = String(seconds) }
        return JSONResponse.make(json: ByteBuffer(bytes: data), status: code.httpStatus, headers: headers)
    }

    struct ErrorBody: Codable {
        struct Detail: Codable {
            var code: String
            var message: String
        }
        var error: Detail
    }

    /// The client-facing form of a per-item error inside a batch response.
    var detail: ErrorBody.Detail { .init(code: code.rawValue, message: code == .internalError ? "internal error" : message) }
}
