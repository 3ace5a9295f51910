import Crypto
import Depot
import DepotCore
import DepotHTTP
import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore

/// A Depot on the real embedded backends (files + SQLite) in a fresh temporary directory, with
/// helpers to mint tokens and to look at what is stored.
struct TestEnvironment: Sendable {
    static let baseURL = "http://depot.test"
    let dir: String
    let service: StorageService
    let jwt: ProjectJWT
    let metrics: DepotMetrics
    static let secret = "test-secret-0123456789-0123456789-abcdef"
    var secret: String { Self.secret }
    /// Options of the HTTP layer (CORS, redirect downloads, answers from the pipeline
    /// (`pipelineDownloads`), the per-connection limits; not the
    /// connection cap, which HummingbirdTesting's live server would drop: it is tested on `depot serve`).
    var http = DepotHTTPOptions()
    /// The server's event loops: NIO's shared ones (one per core) unless a test gives its own.
    var eventLoops: (any EventLoopGroup)? = nil

    /// - Parameters:
    ///   - blobs: another blob store than the files under `dir` (e.g. S3).
    ///   - cacheBlobs: put the memory cache in front of it, as `depot serve` does (off for tests
    ///     that must see the store itself, e.g. a blob deleted behind Depot's back).
    static func make(
        _ configure: (inout StorageSettings) -> Void = { _ in }, clock: (@Sendable () -> Date)? = nil,
        blobs: (any BlobStore)? = nil, cacheBlobs: Bool = true, metadata: (any MetadataStore & JobStore)? = nil,
        images: (any ImageRenderer)? = nil
    ) async throws -> TestEnvironment {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("depot-test-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var settings = StorageSettings()
        settings.publicBaseURL = baseURL
        configure(&settings)
        // Assembled as `depot serve` assembles it (DepotServer), on SQLite and files in `dir`.
        let service = try await StorageService.assemble(
            blobs: try blobs ?? FileSystemBlobStore(directory: dir),
            metadata: try metadata ?? SQLiteMetadataStore(path: dir + "/depot.sqlite"), rowsShared: false, cacheBlobs: cacheBlobs,
            settings: settings, secret: Self.secret, images: images, resumable: try FileResumableStore(directory: dir + "/resumable"),
            logger: TestLogging.logger("depot-test", level: .warning),
            now: clock ?? { Date() })
        return TestEnvironment(
            dir: dir, service: service, jwt: await ProjectJWT(secret: Self.secret),
            metrics: DepotMetrics())
    }

    func cleanup() { try? FileManager.default.removeItem(atPath: dir) }

    var application: some ApplicationProtocol {
        // The one HTTP assembly (`depot serve`'s); port 0: a free one.
        buildApplication(
            service: service, jwt: jwt, metrics: metrics, options: http, port: 0, eventLoops: eventLoops.map { .shared($0) } ?? .singleton,
            logger: TestLogging.logger("depot-test", level: .warning))
    }

    /// Runs `body` against the app served over real HTTP on loopback.
    func live(_ body: @escaping @Sendable (LiveClient) async throws -> Void) async throws {
        defer { cleanup() }
        try await application.test(.live) { client in
            try await body(LiveClient(test: client, port: client.port!))
        }
    }

    func token(_ sub: String?, role: Identity.Role = .authenticated, ttl: TimeInterval = 3600) async throws -> String {
        try await jwt.mint(subject: sub, role: role, ttl: ttl)
    }

    func auth(_ sub: String, role: Identity.Role = .authenticated) async throws -> HTTPFields {
        [.authorization: "Bearer \(try await token(sub, role: role))"]
    }

    /// A bearer header of an HS256 token signed with the project secret carrying `claims` (any
    /// JSON) besides `sub`, `role` and an `exp` an hour away, as Supabase Auth adds custom claims.
    func auth(_ sub: String, claims: [String: Any], role: Identity.Role = .authenticated) throws -> HTTPFields {
        var payload = claims
        payload["sub"] = sub
        payload["role"] = role.rawValue
        payload["exp"] = Int(Date().timeIntervalSince1970) + 3600
        func part(_ object: [String: Any]) throws -> String {
            Base64URL.encode(Array(try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])))
        }
        let input = try part(["alg": "HS256", "typ": "JWT"]) + "." + part(payload)
        let mac = HMAC<SHA256>.authenticationCode(for: Array(input.utf8), using: SymmetricKey(data: Array(Self.secret.utf8)))
        return [.authorization: "Bearer \(input).\(Base64URL.encode(Array(mac)))"]
    }

    // MARK: What is stored

    struct Snapshot: Equatable, CustomStringConvertible {
        var blobFiles: Int
        var tempFiles: Int
        var objects: [String]
        /// Upload intents as "state:count", read straight from the SQLite file.
        var intents: [String] = []
        var description: String { "blobs=\(blobFiles) tmp=\(tempFiles) objects=\(objects) intents=\(intents)" }
    }

    func snapshot() async throws -> Snapshot {
        let fm = FileManager.default
        var blobs = 0
        if let e = fm.enumerator(atPath: dir + "/blobs") {
            while let p = e.nextObject() as? String {
                if BlobID.isWellFormed((p as NSString).lastPathComponent) { blobs += 1 }
            }
        }
        let tmp = (try? fm.contentsOfDirectory(atPath: dir + "/tmp").count) ?? 0
        var names: [String] = []
        for b in [service.settings.privateBucket, service.settings.publicBucket] {
            names += try await service.metadata.listObjects(in: b, prefix: "", after: nil, limit: 100_000).map { "\(b)/\($0.path)" }
        }
        // Rows in PostgreSQL (a test's own `metadata`): no SQLite file, no intents looked at.
        var intents: [String] = []
        if fm.fileExists(atPath: dir + "/depot.sqlite") {
            let queue = try DatabaseQueue(path: dir + "/depot.sqlite")
            intents = try await queue.read { db in
                try Row.fetchAll(db, sql: "SELECT state, count(*) AS n FROM upload_intents GROUP BY state ORDER BY state")
                    .map { "\($0["state"] as String):\($0["n"] as Int)" }
            }
        }
        return Snapshot(blobFiles: blobs, tempFiles: tmp, objects: names.sorted(), intents: intents)
    }

    /// The path+query of a URL Depot returned (they all start with `baseURL`).
    static func local(_ url: String) -> String {
        precondition(url.hasPrefix(baseURL), "\(url) does not start with \(baseURL)")
        return String(url.dropFirst(baseURL.count))
    }
}

/// A thin client over HummingbirdTesting's live client (raw request targets: what the test writes
/// is what goes on the wire) with JSON helpers.
struct LiveClient: Sendable {
    let test: any TestClientProtocol
    let port: Int

    struct Reply: Sendable {
        var status: HTTPResponse.Status
        var headers: HTTPFields
        var body: ByteBuffer
        var bytes: [UInt8] { Array(body.readableBytesView) }
        var text: String { String(buffer: body) }
        var json: [String: Any] {
            (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any] ?? [:]
        }
        /// `error.code` of an error body.
        var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
    }

    @discardableResult
    func request(_ method: HTTPRequest.Method, _ uri: String, headers: HTTPFields = [:], body: [UInt8]? = nil) async throws -> Reply {
        let r = try await test.execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(bytes: $0) })
        return Reply(status: r.status, headers: r.headers, body: r.body)
    }

    func json(_ method: HTTPRequest.Method, _ uri: String, headers: HTTPFields = [:], _ object: Any) async throws -> Reply {
        var h = headers
        h[.contentType] = "application/json"
        let data = try JSONSerialization.data(withJSONObject: object)
        return try await request(method, uri, headers: h, body: Array(data))
    }

    /// `POST /v1/assets` with a raw body.
    func upload(_ bytes: [UInt8], type: String? = "image/png", jobId: String = "job-1", query: String = "", headers: HTTPFields) async throws -> Reply
    {
        var h = headers
        if let type { h[.contentType] = type }
        return try await request(.post, "/v1/assets?jobId=\(jobId)\(query)", headers: h, body: bytes)
    }
}
