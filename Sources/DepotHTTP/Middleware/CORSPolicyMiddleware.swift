import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// CORS for browsers: the Storage API and the object URLs (`/storage/v1/...`) allow the configured
/// origins (default `*`, as Supabase's gateway does: callers authenticate with bearer tokens, never
/// cookies); the Assets API allows only origins listed explicitly.
/// Answers preflights (OPTIONS) itself.
struct CORSPolicyMiddleware: RouterMiddleware {
    typealias Context = DepotRequestContext
    /// Origins for the object routes; `["*"]` allows any.
    let objectOrigins: CORSOrigins
    /// Origins for the API routes; empty allows none.
    let apiOrigins: CORSOrigins

    init(objectOrigins: [String], apiOrigins: [String]) {
        self.objectOrigins = CORSOrigins(objectOrigins)
        self.apiOrigins = CORSOrigins(apiOrigins)
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let origin = request.headers[.origin] else { return try await next(request, context) }
        let isObjectRoute = request.uri.path.hasPrefix("/storage/v1/")
        let allowOrigin = (isObjectRoute ? objectOrigins : apiOrigins).allowOrigin(for: origin)
        if request.method == .options {
            var headers: HTTPFields = [:]
            if let allowOrigin {
                headers[.accessControlAllowOrigin] = allowOrigin
                headers[.accessControlAllowMethods] = "GET, HEAD, PUT, POST, PATCH, DELETE, OPTIONS"
                headers[.accessControlAllowHeaders] =
                    "Authorization, Content-Type, Range, x-checksum-sha256, Content-Digest, If-None-Match, apikey, x-client-info, x-upsert, x-metadata, cache-control, x-signature, tus-resumable, upload-length, upload-offset, upload-metadata, upload-checksum"
                headers[.accessControlMaxAge] = "3600"
                if allowOrigin != "*" { headers[.vary] = "Origin" }
            }
            return Response(status: allowOrigin == nil ? .forbidden : .noContent, headers: headers)
        }
        var response = try await next(request, context)
        if let allowOrigin {
            for (name, value) in CORSOrigins.answerHeaders(allowOrigin) { response.headers[name] = value }
        }
        return response
    }
}

/// The origins one group of routes allows, and what an allowed request's answer says
/// (`CORSPolicyMiddleware`, and `PipelineDownloads` for the object URLs it answers).
struct CORSOrigins: Sendable {
    static let exposedHeaders =
        "ETag, Content-Length, Content-Range, Content-Disposition, Location, Upload-Offset, Upload-Length, Upload-Expires, Tus-Resumable, Tus-Complete, Depot-Path, Depot-Checksum, Depot-Content-Type"
    let allowsAny: Bool
    let listed: Set<String>

    init(_ origins: [String]) {
        allowsAny = origins.contains("*")
        listed = Set(origins)
    }

    /// The CORS headers of an answer (not a preflight's) to an allowed request.
    static func answerHeaders(_ allowOrigin: String) -> [(name: HTTPField.Name, value: String)] {
        var headers: [(name: HTTPField.Name, value: String)] = [
            (.accessControlAllowOrigin, allowOrigin), (.accessControlExposeHeaders, exposedHeaders),
        ]
        if allowOrigin != "*" { headers.append((.vary, "Origin")) }
        return headers
    }

    /// `Access-Control-Allow-Origin` for a request from `origin`: `*`, the origin itself, or nil
    /// (not allowed: the answer carries no CORS header and the browser keeps it from the page).
    func allowOrigin(for origin: String) -> String? {
        allowsAny ? "*" : (listed.contains(origin) ? origin : nil)
    }
}
