import DepotCore
import Foundation
import HTTPTypes
import NIOCore
import Testing

/// Depot's Storage API responses decoded with the field names and types of supabase-swift's
/// `Storage` models (supabase-swift's `Sources/Storage/Types.swift`), with a decoder that
/// reads dates the way supabase-swift does (ISO 8601, fractional seconds). A Swift app switches by
/// changing its URL.
@Suite("Storage API: supabase-swift's models")
struct StorageAPIClientModelTests {
    // The shapes supabase-swift decodes.
    struct Bucket: Decodable {
        var id: String
        var name: String
        var owner: String
        var isPublic: Bool
        var createdAt: Date
        var updatedAt: Date
        var allowedMimeTypes: [String]?
        var fileSizeLimit: Int64?
        enum CodingKeys: String, CodingKey {
            case id, name, owner
            case isPublic = "public"
            case createdAt = "created_at", updatedAt = "updated_at"
            case allowedMimeTypes = "allowed_mime_types", fileSizeLimit = "file_size_limit"
        }
    }

    struct FileObject: Decodable {
        var name: String
        var bucketId: String?
        var owner: String?
        var id: UUID?
        var updatedAt: Date?
        var createdAt: Date?
        var lastAccessedAt: Date?
        var metadata: [String: JSONValue]?
        enum CodingKeys: String, CodingKey {
            case name, owner, id, metadata
            case bucketId = "bucket_id", updatedAt = "updated_at", createdAt = "created_at", lastAccessedAt = "last_accessed_at"
        }
    }

    /// `info()`'s model: `id`, `version` and `name` are required.
    struct FileObjectV2: Decodable {
        var id: String
        var version: String
        var name: String
        var bucketId: String?
        var size: Int?
        var contentType: String?
        var cacheControl: String?
        var etag: String?
        var lastModified: Date?
        var createdAt: Date?
        var metadata: [String: JSONValue]?
        enum CodingKeys: String, CodingKey {
            case id, version, name, size, etag, metadata
            case bucketId = "bucket_id", contentType = "content_type", cacheControl = "cache_control"
            case lastModified = "last_modified", createdAt = "created_at"
        }
    }

    struct FileUploadResponse: Decodable {
        var Id: UUID
        var Key: String
    }

    struct SignedURL: Decodable { var signedURL: URL }

    struct SignedURLItem: Decodable {
        var signedURL: String?
        var path: String
        var error: String?
    }

    struct SignedUploadURL: Decodable { var url: URL }

    struct StorageError: Decodable {
        var statusCode: String?
        var message: String
        var error: String?
    }

    enum JSONValue: Decodable {
        case string(String), number(Double), bool(Bool), null, array([JSONValue]), object([String: JSONValue])
        init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if c.decodeNil() {
                self = .null
            } else if let b = try? c.decode(Bool.self) {
                self = .bool(b)
            } else if let n = try? c.decode(Double.self) {
                self = .number(n)
            } else if let s = try? c.decode(String.self) {
                self = .string(s)
            } else if let a = try? c.decode([JSONValue].self) {
                self = .array(a)
            } else {
                self = .object(try c.decode([String: JSONValue].self))
            }
        }
    }

    static let decoder: JSONDecoder = {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .custom { decoder in
            let s = try decoder.singleValueContainer().decode(String.self)
            let f = ISO8601DateFormatter()
            f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            guard let date = f.date(from: s) else {
                throw DecodingError.dataCorrupted(
                    .init(codingPath: decoder.codingPath, debugDescription: "not ISO 8601 with fractional seconds: \(s)"))
            }
            return date
        }
        return d
    }()

    func decode<T: Decodable>(_ type: T.Type, _ reply: LiveClient.Reply) throws -> T {
        try Self.decoder.decode(T.self, from: Data(reply.bytes))
    }

    @Test func everyResponseDecodes() async throws {
        let env = try await TestEnvironment.make()
        defer { env.cleanup() }
        try await env.live { client in
            let service = try await env.auth("svc", role: .serviceRole)
            // supabase-swift sends fileSizeLimit as a string when it has a unit.
            let created = try await client.json(
                .post, "/storage/v1/bucket", headers: service,
                ["id": "swift", "name": "swift", "public": false, "file_size_limit": "2mb", "allowed_mime_types": ["image/png"]])
            #expect(created.status == .ok, "\(created.text)")

            let buckets = try decode([Bucket].self, try await client.request(.get, "/storage/v1/bucket", headers: service))
            let swift = try #require(buckets.first { $0.id == "swift" })
            #expect(swift.owner == "svc" && !swift.isPublic && swift.fileSizeLimit == 2_000_000 && swift.allowedMimeTypes == ["image/png"])
            _ = try decode(Bucket.self, try await client.request(.get, "/storage/v1/bucket/swift", headers: service))

            // supabase-swift uploads a multipart form with an empty field name and a Cache-Control header.
            let png = Fixture.png(3000)
            var upload = service
            upload[.contentType] = "multipart/form-data; boundary=depot-boundary-1234"
            upload[.cacheControl] = "max-age=3600"
            upload[HTTPField.Name("x-upsert")!] = "false"
            let form = Fixture.multipart(fields: [("cacheControl", "3600")], fileField: "", filename: "p.png", file: png)
            let uploaded = try await client.request(.post, "/storage/v1/object/swift/dir/p.png", headers: upload, body: form)
            #expect(try decode(FileUploadResponse.self, uploaded).Key == "swift/dir/p.png")

            let info = try decode(FileObjectV2.self, try await client.request(.get, "/storage/v1/object/info/swift/dir/p.png", headers: service))
            #expect(info.name == "dir/p.png" && info.size == png.count && info.cacheControl == "max-age=3600" && info.contentType == "image/png")
            #expect(UUID(uuidString: info.id) != nil && UUID(uuidString: info.version) != nil)

            let listed = try decode(
                [FileObject].self,
                try await client.json(
                    .post, "/storage/v1/object/list/swift", headers: service,
                    ["prefix": "dir", "limit": 100, "offset": 0, "sortBy": ["column": "name", "order": "asc"]]))
            #expect(listed.map(\.name) == ["p.png"] && listed[0].id != nil && listed[0].metadata != nil)
            let root = try decode([FileObject].self, try await client.json(.post, "/storage/v1/object/list/swift", headers: service, ["prefix": ""]))
            #expect(root.map(\.name) == ["dir"] && root[0].id == nil)

            let signed = try decode(
                SignedURL.self, try await client.json(.post, "/storage/v1/object/sign/swift/dir/p.png", headers: service, ["expiresIn": 60]))
            #expect(signed.signedURL.path == "/object/sign/swift/dir/p.png")
            let fetched = try await client.request(.get, "/storage/v1" + signed.signedURL.absoluteString)
            #expect(fetched.bytes == png)
            let many = try decode(
                [SignedURLItem].self,
                try await client.json(
                    .post, "/storage/v1/object/sign/swift", headers: service,
                    ["expiresIn": 60, "paths": ["dir/p.png", "dir/none.png"]]))
            #expect(
                many.map(\.path) == ["dir/p.png", "dir/none.png"] && many[0].signedURL != nil && many[1].signedURL == nil && many[1].error != nil)

            // supabase-swift asks for a signed upload URL with no body and no content type.
            let uploadURL = try decode(
                SignedUploadURL.self, try await client.request(.post, "/storage/v1/object/upload/sign/swift/dir/q.png", headers: service))
            let token = try #require(
                URLComponents(url: uploadURL.url, resolvingAgainstBaseURL: false)?.queryItems?.first { $0.name == "token" }?.value)
            var put: HTTPFields = [.contentType: "multipart/form-data; boundary=depot-boundary-1234"]
            put[HTTPField.Name("X-Client-Info")!] = "storage-swift/2.0.0"
            let direct = try await client.request(
                .put, "/storage/v1/object/upload/sign/swift/dir/q.png?token=\(token)", headers: put,
                body: Fixture.multipart(fields: [("cacheControl", "3600")], fileField: "", file: png))
            #expect(direct.status == .ok && direct.json["Key"] as? String == "swift/dir/q.png", "\(direct.text)")

            let missing = try await client.request(.get, "/storage/v1/object/info/swift/dir/none.png", headers: service)
            let error = try decode(StorageError.self, missing)
            #expect(missing.status == .badRequest && error.statusCode == "404" && error.error == "not_found")
            // exists(): HEAD, false on 400 or 404.
            let head = try await client.request(.head, "/storage/v1/object/swift/dir/none.png", headers: service)
            #expect(head.status == .badRequest || head.status == .notFound)
            #expect(try await client.request(.head, "/storage/v1/object/swift/dir/p.png", headers: service).status == .ok)
        }
    }

    @Test func timestampsHaveMillisecondsAndZ() async throws {
        let env = try await TestEnvironment.make()
        defer { env.cleanup() }
        try await env.live { client in
            let r = try await client.request(.get, "/storage/v1/bucket/assets", headers: try await env.auth("svc", role: .serviceRole))
            let created = try #require(r.json["created_at"] as? String)
            #expect(created.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/) != nil, "\(created)")
        }
    }
}
