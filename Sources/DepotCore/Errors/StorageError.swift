/// The one error type of Depot.
///
/// Every backend translates its native failures (errno, SQLite result codes, S3 error codes) into a
/// `StorageError` at its own boundary; nothing above a backend matches on a driver's error types.
/// `code` is a closed set of stable strings that are safe as metric labels; `message` is written for
/// the client and never carries internals; `cause` keeps the underlying error for the logs only.
public struct StorageError: Error, Sendable, CustomStringConvertible {
    /// A stable error code. A struct over a private enum, so cases can be added without breaking
    /// callers that switch on it.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        enum Base: String, Sendable {
            case invalidRequest = "invalid_request"
            case invalidPath = "invalid_path"
            case checksumMismatch = "checksum_mismatch"
            case sizeMismatch = "size_mismatch"
            case unauthenticated
            case tokenExpired = "token_expired"
            case forbidden
            case signatureInvalid = "signature_invalid"
            case urlExpired = "url_expired"
            case notFound = "not_found"
            case bucketNotFound = "bucket_not_found"
            case alreadyExists = "already_exists"
            case uploadConsumed = "upload_consumed"
            case conflict
            case payloadTooLarge = "payload_too_large"
            case unsupportedMediaType = "unsupported_media_type"
            case mediaTypeMismatch = "media_type_mismatch"
            case rangeNotSatisfiable = "range_not_satisfiable"
            case quotaExceeded = "quota_exceeded"
            case rateLimited = "rate_limited"
            case headersTooLarge = "headers_too_large"
            case expectationFailed = "expectation_failed"
            case notImplemented = "not_implemented"
            case unavailable
            case internalError = "internal_error"
        }
        let base: Base

        /// The stable string sent to clients and used as a metric label.
        public var rawValue: String { base.rawValue }
        public var description: String { base.rawValue }

        public static let invalidRequest = Code(base: .invalidRequest)
        public static let invalidPath = Code(base: .invalidPath)
        public static let checksumMismatch = Code(base: .checksumMismatch)
        public static let sizeMismatch = Code(base: .sizeMismatch)
        public static let unauthenticated = Code(base: .unauthenticated)
        public static let tokenExpired = Code(base: .tokenExpired)
        public static let forbidden = Code(base: .forbidden)
        public static let signatureInvalid = Code(base: .signatureInvalid)
        public static let urlExpired = Code(base: .urlExpired)
        public static let notFound = Code(base: .notFound)
        /// The named bucket does not exist (or the caller may not see it).
        public static let bucketNotFound = Code(base: .bucketNotFound)
        public static let alreadyExists = Code(base: .alreadyExists)
        public static let uploadConsumed = Code(base: .uploadConsumed)
        /// A state conflict other than an existing name, e.g. deleting a bucket that is not empty.
        public static let conflict = Code(base: .conflict)
        public static let payloadTooLarge = Code(base: .payloadTooLarge)
        /// A request head larger than the HTTP decoder takes (answered before any route).
        public static let headersTooLarge = Code(base: .headersTooLarge)
        /// An `Expect` other than `100-continue` (answered before any route).
        public static let expectationFailed = Code(base: .expectationFailed)
        /// A transfer coding other than `chunked` (answered before any route).
        public static let notImplemented = Code(base: .notImplemented)
        public static let unsupportedMediaType = Code(base: .unsupportedMediaType)
        public static let mediaTypeMismatch = Code(base: .mediaTypeMismatch)
        public static let rangeNotSatisfiable = Code(base: .rangeNotSatisfiable)
        /// The caller's tenant would hold more bytes or objects than its quota allows.
        public static let quotaExceeded = Code(base: .quotaExceeded)
        /// Too many requests (or open upload URLs) from one caller; retry after ``StorageError/retryAfter``.
        public static let rateLimited = Code(base: .rateLimited)
        /// A store is down or overloaded; the request may be retried.
        public static let unavailable = Code(base: .unavailable)
        /// Anything unexpected. Its message is never shown to clients.
        public static let internalError = Code(base: .internalError)
    }

    public var code: Code
    public var message: String
    /// The underlying error, for logs only.
    public var cause: (any Error)?
    /// Seconds after which a retry may succeed (`Retry-After`), for `.rateLimited` and `.unavailable`.
    public var retryAfter: Int?

    public init(_ code: Code, _ message: String, cause: (any Error)? = nil, retryAfter: Int? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
        self.retryAfter = retryAfter
    }

    public var description: String {
        if let cause { return "\(code): \(message) (cause: \(cause))" }
        return "\(code): \(message)"
    }
}

extension StorageError {
    public static func notFound(_ message: String = "object not found") -> StorageError {
        StorageError(.notFound, message)
    }
    public static func bucketNotFound() -> StorageError {
        StorageError(.bucketNotFound, "bucket not found")
    }
    public static func forbidden(_ message: String = "you may not access this path") -> StorageError {
        StorageError(.forbidden, message)
    }
    public static func invalidPath(_ message: String) -> StorageError {
        StorageError(.invalidPath, message)
    }
    public static func invalidRequest(_ message: String) -> StorageError {
        StorageError(.invalidRequest, message)
    }
    public static func `internal`(_ message: String, cause: (any Error)? = nil) -> StorageError {
        StorageError(.internalError, message, cause: cause)
    }
    public static func unavailable(_ message: String, cause: (any Error)? = nil) -> StorageError {
        StorageError(.unavailable, message, cause: cause)
    }
}
