import DepotCore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Supabase Storage's error envelope, `{"statusCode":"404","error":"not_found","message":…,"code":"NoSuchKey"}`,
/// as its clients parse it: `statusCode` is a string; the HTTP status is 400 for every handled
/// error except those upstream sends with their own status (403 on role-only endpoints, 404 for
/// an unknown route, 416, 500, 503).
struct SupabaseErrorBody: Sendable {
    var status: HTTPResponse.Status
    var statusCode: String
    var error: String
    var code: String
    var message: String

    func response(retryAfter: Int? = nil) -> Response {
        var json = JSONWriter(capacity: 128 + message.utf8.count)
        json.beginObject()
        json.key("statusCode"); json.string(statusCode)
        json.key("error"); json.string(error)
        json.key("message"); json.string(message)
        json.key("code"); json.string(code)
        json.endObject()
        return JSONResponse.make(json: json.buffer, status: status, headers: retryAfter.map { [.retryAfter: String($0)] } ?? [:])
    }

    /// An unknown route, as upstream reports it (a real 404).
    static func routeNotFound(_ request: Request) -> SupabaseErrorBody {
        SupabaseErrorBody(
            status: .notFound, statusCode: "404", error: "Not Found", code: "InvalidRequest",
            message: "Route \(request.method):\(request.uri.path) not found")
    }
}

/// An error a Storage API handler raises with a status or code of its own: a real 403 on a
/// service-only endpoint, or a more specific code (`BucketAlreadyExists`).
struct SupabaseStatusError: Error {
    var status: HTTPResponse.Status = .badRequest
    var error: StorageError
    var code: String? = nil
}

extension StorageError {
    /// The Supabase form of this error. Messages that clients or apps may match on keep
    /// upstream's wording; the others keep Depot's (which names the problem).
    var supabase: SupabaseErrorBody {
        func body(_ semantic: Int, _ error: String, _ code: String, _ message: String? = nil, status: HTTPResponse.Status = .badRequest)
            -> SupabaseErrorBody
        {
            SupabaseErrorBody(status: status, statusCode: String(semantic), error: error, code: code, message: message ?? self.message)
        }
        switch self.code {
        case .notFound: return body(404, "not_found", "NoSuchKey", "Object not found")
        case .bucketNotFound: return body(404, "Bucket not found", "NoSuchBucket", "Bucket not found")
        case .alreadyExists: return body(409, "Duplicate", "KeyAlreadyExists", "The resource already exists")
        case .conflict: return body(409, "ResourceNotEmpty", "ResourceNotEmpty")
        case .uploadConsumed: return body(409, "Duplicate", "InvalidUploadSignature")
        case .unauthenticated, .tokenExpired, .forbidden: return body(403, "Unauthorized", "AccessDenied")
        case .payloadTooLarge: return body(413, "Payload too large", "EntityTooLarge")
        case .quotaExceeded: return body(413, "Payload too large", "EntityTooLarge")
        case .rateLimited: return body(429, "too_many_requests", "SlowDown", status: .tooManyRequests)
        case .headersTooLarge:
            return body(431, "Request Header Fields Too Large", "RequestHeaderSectionTooLarge", status: .requestHeaderFieldsTooLarge)
        case .unsupportedMediaType, .mediaTypeMismatch: return body(415, "invalid_mime_type", "InvalidMimeType")
        case .invalidPath: return body(400, "InvalidKey", "InvalidKey")
        case .signatureInvalid: return body(400, "InvalidSignature", "InvalidSignature")
        case .urlExpired: return body(400, "InvalidJWT", "InvalidJWT")
        case .rangeNotSatisfiable: return body(416, "InvalidRange", "InvalidRange", status: .rangeNotSatisfiable)
        case .unavailable: return body(503, "Service Unavailable", "SlowDown", status: .serviceUnavailable)
        case .internalError: return body(500, "internal", "InternalError", status: .internalServerError)
        default: return body(400, "InvalidRequest", "InvalidRequest")
        }
    }
}

/// Which error envelope a request gets.
enum ErrorDialect {
    /// `{"error":{"code","message"}}` with a real status (the Assets API, `/v1`).
    case depot
    /// Supabase's envelope (the Storage API, `/storage/v1`).
    case supabase

    /// `/storage/v1/...` speaks Supabase's dialect, except the URLs the Assets API hands out
    /// (signed, public, authenticated downloads, transformed images and upload URLs), which keep Depot's unless the
    /// caller is a Supabase client (it sends `X-Client-Info` or `apikey`). Browsers fetching
    /// those URLs send neither and get a real status.
    static func of(_ request: Request) -> ErrorDialect {
        let path = request.uri.path
        guard path.hasPrefix("/storage/v1/") else { return .depot }
        let method = request.method
        let shared =
            ((method == .get || method == .head)
                && (path.hasPrefix(ObjectURLPath.signed) || path.hasPrefix(ObjectURLPath.public)
                    || path.hasPrefix(ObjectURLPath.authenticated) || path.hasPrefix("/storage/v1/render/image/")))
            || (method == .put && path.hasPrefix(ObjectURLPath.signedUpload))
        guard shared else { return .supabase }
        let fromClient = request.headers[.xClientInfo] != nil || request.headers[.apikey] != nil
        return fromClient ? .supabase : .depot
    }
}

extension HTTPField.Name {
    static let xClientInfo = HTTPField.Name("X-Client-Info")!
    static let apikey = HTTPField.Name("apikey")!
    static let xUpsert = HTTPField.Name("x-upsert")!
    static let xMetadata = HTTPField.Name("x-metadata")!
}
