import DepotCore
import Foundation
import HTTPTypes
import Testing

/// `POST /object/list-v2/{bucket}` in upstream's formats (supabase/storage's `listObjectsV2`):
/// `key` is an entry's own segment at the listed level (folders' `name` end in `/`), a flat
/// listing's objects have no `key`, pages carry `nextCursor` and `nextCursorKey`, and `sortBy`
/// takes `name`, `created_at` and `updated_at` either way round. Plus upstream's `/health`.
@Suite("Storage API: list-v2 and health as upstream")
struct StorageListV2Tests {
    static let t0 = Date(timeIntervalSince1970: 1_700_000_000)

    /// Rows with chosen times (a listing reads rows only): name → seconds after `t0`.
    static let rows: [(String, Double)] = [
        ("top.svg", 5), ("sub/a.png", 3), ("sub/deeper/b.png", 1), ("sub/deeper/c.png", 9), ("zed.txt", 3), ("Alpha.txt", 7),
    ]

    func seed(_ env: TestEnvironment) async throws {
        try await env.service.metadata.createBucket(BucketRecord(name: "files", isPublic: false, createdAt: Self.t0))
        for (name, seconds) in Self.rows {
            let at = Self.t0.addingTimeInterval(seconds)
            _ = try await env.service.metadata.putObject(
                ObjectRecord(
                    bucket: "files", path: try ObjectPath(name), owner: nil, blobID: .random(), size: 1, contentType: "text/plain",
                    sha256: String(repeating: "0", count: 64), createdAt: at, updatedAt: Self.t0.addingTimeInterval(100 - seconds)),
                upsert: false)
        }
    }

    func list(_ client: LiveClient, _ headers: HTTPFields, _ body: [String: Any]) async throws -> [String: Any] {
        let r = try await client.json(.post, "/storage/v1/object/list-v2/files", headers: headers, body)
        #expect(r.status == .ok, "\(r.text)")
        return r.json
    }

    static func names(_ page: [String: Any], _ field: String) -> [String] {
        (page[field] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
    }

    static func keys(_ page: [String: Any], _ field: String) -> [String?] {
        (page[field] as? [[String: Any]] ?? []).map { $0["key"] as? String }
    }

    @Test func keysNamesAndCursorsAsUpstream() async throws {
        let env = try await TestEnvironment.make()
        defer { env.cleanup() }
        try await seed(env)
        try await env.live { client in
            let service = try await env.auth("svc", role: .serviceRole)
            // A folder level: `key` is the entry's own segment, `name` the full path.
            let root = try await list(client, service, ["prefix": "", "with_delimiter": true])
            #expect(Self.names(root, "folders") == ["sub/"] && Self.keys(root, "folders") == ["sub"])
            #expect(Self.names(root, "objects") == ["Alpha.txt", "top.svg", "zed.txt"])
            #expect(Self.keys(root, "objects") == ["Alpha.txt", "top.svg", "zed.txt"])
            let sub = try await list(client, service, ["prefix": "sub/", "with_delimiter": true])
            #expect(Self.names(sub, "folders") == ["sub/deeper/"] && Self.keys(sub, "folders") == ["deeper"])
            #expect(Self.names(sub, "objects") == ["sub/a.png"] && Self.keys(sub, "objects") == ["a.png"])
            // A prefix that is not a folder: the level is the prefix's own.
            let partial = try await list(client, service, ["prefix": "su", "with_delimiter": true])
            #expect(Self.keys(partial, "folders") == ["sub"])

            // Flat: full names, no `key`, no folders.
            let flat = try await list(client, service, ["prefix": ""])
            #expect(Self.names(flat, "objects") == ["Alpha.txt", "sub/a.png", "sub/deeper/b.png", "sub/deeper/c.png", "top.svg", "zed.txt"])
            #expect(Self.keys(flat, "objects").allSatisfy { $0 == nil } && Self.names(flat, "folders").isEmpty)

            // Pages: hasNext, nextCursor (upstream's spelling: base64 of `l:`, `o:`, `c:` lines)
            // and nextCursorKey (a folder's without its `/`).
            let first = try await list(client, service, ["prefix": "", "with_delimiter": true, "limit": 2])
            #expect(first["hasNext"] as? Bool == true && first["nextCursorKey"] as? String == "sub")
            let cursor = try #require(first["nextCursor"] as? String)
            let decoded = String(decoding: try #require(Data(base64Encoded: cursor)), as: UTF8.self)
            #expect(decoded.hasPrefix("l:sub/") && decoded.hasSuffix("\no:asc\nc:name"), "\(decoded.debugDescription)")
            let second = try await list(client, service, ["prefix": "", "with_delimiter": true, "limit": 2, "cursor": cursor])
            #expect(Self.names(second, "objects") == ["top.svg", "zed.txt"] && second["hasNext"] as? Bool == false)
            #expect(second["nextCursor"] == nil && second["nextCursorKey"] == nil)
        }
    }

    @Test func sortedByTimeEitherWayRoundWithFoldersAtTheirEarliestObject() async throws {
        let env = try await TestEnvironment.make()
        defer { env.cleanup() }
        try await seed(env)
        try await env.live { client in
            let service = try await env.auth("svc", role: .serviceRole)
            func all(_ body: [String: Any], limit: Int) async throws -> [String] {
                var seen: [String] = []
                var cursor: String? = nil
                for _ in 0..<20 {
                    var b = body
                    b["limit"] = limit
                    if let cursor { b["cursor"] = cursor }
                    let page = try await list(client, service, b)
                    seen += Self.names(page, "folders") + Self.names(page, "objects")
                    guard page["hasNext"] as? Bool == true else { return seen }
                    cursor = try #require(page["nextCursor"] as? String)
                }
                Issue.record("more pages than entries")
                return seen
            }
            // created_at: b 1, a 3, zed 3 (ties by name), top 5, Alpha 7, c 9.
            let created = ["sub/deeper/b.png", "sub/a.png", "zed.txt", "top.svg", "Alpha.txt", "sub/deeper/c.png"]
            for limit in [1, 2, 100] {
                #expect(try await all(["sortBy": ["column": "created_at", "order": "asc"]], limit: limit) == created, "limit \(limit)")
                #expect(try await all(["sortBy": ["column": "created_at", "order": "desc"]], limit: limit) == created.reversed(), "limit \(limit)")
            }
            // updated_at runs the other way here (100 - created; a and zed tie, by name).
            #expect(
                try await all(["sortBy": ["column": "updated_at"]], limit: 2)
                    == ["sub/deeper/c.png", "Alpha.txt", "top.svg", "sub/a.png", "zed.txt", "sub/deeper/b.png"])
            // Names descending, paged.
            #expect(
                try await all(["sortBy": ["column": "name", "order": "desc"]], limit: 4)
                    == ["zed.txt", "top.svg", "sub/deeper/c.png", "sub/deeper/b.png", "sub/a.png", "Alpha.txt"])
            // A folder level by time: `sub/` sorts at its earliest object (b, 1 s), as upstream,
            // and carries that time.
            let level = try await list(client, service, ["with_delimiter": true, "prefix": "", "sortBy": ["column": "created_at"]])
            #expect(Self.names(level, "folders") == ["sub/"] && Self.names(level, "objects") == ["zed.txt", "top.svg", "Alpha.txt"])
            let folder = try #require((level["folders"] as? [[String: Any]])?.first)
            #expect(folder["created_at"] as? String == HTTPDate.iso8601(Self.t0.addingTimeInterval(1)))
            #expect(
                try await all(["with_delimiter": true, "prefix": "", "sortBy": ["column": "created_at", "order": "desc"]], limit: 1)
                    == ["Alpha.txt", "top.svg", "zed.txt", "sub/"])
        }
    }

    @Test func badSortsAndCursorsAreRefusedClearly() async throws {
        let env = try await TestEnvironment.make()
        defer { env.cleanup() }
        try await seed(env)
        try await env.live { client in
            let service = try await env.auth("svc", role: .serviceRole)
            let bad: [[String: Any]] = [
                ["sortBy": ["column": "size"]], ["sortBy": ["column": "last_accessed_at"]], ["sortBy": ["column": "name", "order": "up"]],
                ["cursor": "%%%"], ["cursor": Data("no-line".utf8).base64EncodedString()],
                ["cursor": Data("l:a\nl:b".utf8).base64EncodedString()], ["cursor": Data("l:a\nx:1".utf8).base64EncodedString()],
                ["cursor": Data("l:a\nc:size".utf8).base64EncodedString()], ["cursor": Data("l:a\na:yesterday".utf8).base64EncodedString()],
                ["cursor": Data("l:a\na:2024-13-01T00:00:00.000Z".utf8).base64EncodedString()],
                ["cursor": String(repeating: "A", count: 5000)], ["limit": 0], ["limit": 1001],
            ]
            for body in bad {
                let r = try await client.json(.post, "/storage/v1/object/list-v2/files", headers: service, body)
                #expect(r.status == .badRequest, "\(body): \(r.status) \(r.text)")
            }
            // A tenant's cursor may not reach past its own names, in a time order too.
            let alice = try await env.auth("alice")
            let stolen = Data("l:sub/a.png\no:asc\nc:created_at\na:2023-11-14T22:13:20.000Z".utf8).base64EncodedString()
            let r = try await client.json(.post, "/storage/v1/object/list-v2/files", headers: alice, ["cursor": stolen])
            #expect(r.status == .badRequest && !r.text.contains("zed"))
            // Nothing changed.
            let flat = try await list(client, service, ["prefix": ""])
            #expect(Self.names(flat, "objects").count == Self.rows.count)
        }
    }

    @Test func healthAsUpstream() async throws {
        let env = try await TestEnvironment.make()
        defer { env.cleanup() }
        try await env.live { client in
            let anon: HTTPFields = [.authorization: "Bearer \(try await env.token(nil, role: .anon))"]
            let ok = try await client.request(.get, "/storage/v1/health", headers: anon)
            #expect(ok.status == .ok && ok.json["healthy"] as? Bool == true)
            // Upstream asks for a valid key or token (its AccessDenied shape: HTTP 400, statusCode 403).
            let refused = try await client.request(.get, "/storage/v1/health")
            #expect(refused.status == .badRequest && refused.json["statusCode"] as? String == "403", "\(refused.status) \(refused.text)")
        }
    }
}
