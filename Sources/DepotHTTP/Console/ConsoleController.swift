import Crypto
import DepotCore
import HTTPTypes
import Hummingbird
import NIOCore

/// The web console at `/console/` (`/` redirects there): static files (a page, its styles and
/// JavaScript modules) built into the binary (``ConsoleFiles``), each with a strict Content-Security-Policy (its own scripts
/// and styles only, requests to this origin only, no framing) and an ETag (`no-cache`: revalidated,
/// so a new binary's console is seen at once). The console signs in with a token kept in the
/// tab's session storage and calls the Assets API like any client.
struct ConsoleController: Sendable {
    struct File: Sendable {
        var body: ByteBuffer
        var contentType: String
        var etag: String

        init(_ text: String, _ contentType: String) {
            body = ByteBuffer(string: text)
            self.contentType = contentType
            etag = "\"" + SHA256.hash(data: Array(text.utf8)).prefix(12).hexString + "\""
        }
    }

    /// By name; "" is the page (`/console`, `/console/`).
    static let files: [String: File] = {
        var files = [String: File]()
        for file in ConsoleFiles.all { files[file.name] = File(file.text, file.contentType) }
        files[""] = files["index.html"]
        return files
    }()

    static let contentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        + "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    func addRoutes(to router: Router<DepotRequestContext>) {
        for method in [HTTPRequest.Method.get, .head] {
            router.on("/", method: method) { _, _ in Response(status: .found, headers: [.location: "/console/", .cacheControl: "no-cache"]) }
        }
        for method in [HTTPRequest.Method.get, .head] {
            // `/console` and `/console/` are one route (the page names its files from the root).
            router.on("/console", method: method) { request, _ in Self.answer(Self.files[""]!, request) }
            router.on("/console/{file}", method: method) { request, context in
                guard let file = Self.files[try context.parameters.require("file")] else {
                    throw StorageError.notFound("no such console file")
                }
                return Self.answer(file, request)
            }
        }
    }

    static func answer(_ file: File, _ request: Request) -> Response {
        var headers: HTTPFields = [
            .contentType: file.contentType, .cacheControl: "no-cache", .eTag: file.etag,
            .contentSecurityPolicy: contentSecurityPolicy, .xContentTypeOptions: "nosniff",
            HTTPField.Name("Referrer-Policy")!: "no-referrer", HTTPField.Name("X-Frame-Options")!: "DENY",
            HTTPField.Name("Cross-Origin-Opener-Policy")!: "same-origin",
        ]
        if request.headers[.ifNoneMatch] == file.etag {
            return Response(status: .notModified, headers: headers)
        }
        headers[.contentLength] = String(file.body.readableBytes)
        guard request.method != .head else { return Response(status: .ok, headers: headers) }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: file.body))
    }
}
