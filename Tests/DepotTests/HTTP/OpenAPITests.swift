import DepotHTTP
import Foundation
import HTTPTypes
import Testing

/// `GET /openapi.json` serves the committed description, byte for byte, to anyone.
@Suite("OpenAPI description")
struct OpenAPITests {
    /// The repository's root, from this file's place in it (Tests/DepotTests/HTTP/).
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    static var committed: [UInt8] {
        get throws { Array(try Data(contentsOf: root.appendingPathComponent("docs/openapi.json"))) }
    }

    @Test func servedDocumentIsDocsOpenAPIJSON() async throws {
        let committed = try Self.committed
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let r = try await client.request(.get, "/openapi.json")
            #expect(r.status == .ok)
            #expect(r.headers[.contentType]?.hasPrefix("application/json") == true)
            #expect(
                r.bytes == committed,
                "GET /openapi.json differs from docs/openapi.json: run scripts/openapi-sync after editing docs/openapi.json")
            // Open to anyone, whatever token is presented.
            let withBadToken = try await client.request(.get, "/openapi.json", headers: [.authorization: "Bearer garbage"])
            #expect(withBadToken.status == .ok)
            #expect(withBadToken.bytes == committed)
        }
    }

    @Test func documentIsOpenAPI31ForThisVersion() throws {
        let document = try #require(try JSONSerialization.jsonObject(with: Data(try Self.committed)) as? [String: Any])
        #expect(document["openapi"] as? String == "3.1.0")
        let info = try #require(document["info"] as? [String: Any])
        #expect(info["version"] as? String == DepotVersion.string, "info.version in docs/openapi.json must be Depot's version")
        let paths = try #require(document["paths"] as? [String: Any])
        for path in ["/v1/assets", "/storage/v1/bucket", "/storage/v1/object/{bucket}/{path}", "/openapi.json", "/health", "/metrics"] {
            #expect(paths[path] != nil, "\(path) is not described")
        }
    }
}
