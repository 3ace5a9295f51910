import Foundation
import HTTPTypes
import Testing

/// The web console's files are served as committed in `console/`, with a strict
/// Content-Security-Policy and revalidation; its behaviour in a browser is tests/browser's.
@Suite("Web console")
struct ConsoleTests {
    /// Every file of `console/`, by its extension's type.
    static let committedFiles: [(String, String)] = {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: OpenAPITests.root.appendingPathComponent("console").path)) ?? []
        let types = ["html": "text/html", "js": "text/javascript", "css": "text/css"]
        return names.sorted().map { ($0, types[String($0.split(separator: ".").last ?? "")] ?? "?") }
    }()

    @Test func theConsoleIsAPageItsStylesAndModules() {
        let names = Self.committedFiles.map(\.0)
        #expect(names.contains("index.html") && names.contains("app.js") && names.contains("style.css") && names.count >= 5, "\(names)")
    }

    @Test(arguments: committedFiles)
    func filesAreServedAsCommittedAndLockedDown(file: String, type: String) async throws {
        let committed = Array(try Data(contentsOf: OpenAPITests.root.appendingPathComponent("console/" + file)))
        let env = try await TestEnvironment.make()
        defer { env.cleanup() }
        try await env.live { client in
            let r = try await client.request(.get, "/console/" + file)
            #expect(r.status == .ok && r.headers[.contentType]?.hasPrefix(type) == true)
            let same = r.bytes == committed
            #expect(same, "GET /console/\(file) differs from console/\(file): run scripts/console-sync after editing console/")
            let csp = try #require(r.headers[HTTPField.Name("Content-Security-Policy")!])
            #expect(csp.contains("default-src 'none'") && csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"))
            #expect(r.headers[HTTPField.Name("X-Content-Type-Options")!] == "nosniff" && r.headers[.cacheControl] == "no-cache")
            let etag = try #require(r.headers[.eTag])
            let again = try await client.request(.get, "/console/" + file, headers: [.ifNoneMatch: etag])
            #expect(again.status == .notModified && again.bytes.isEmpty)
            let head = try await client.request(.head, "/console/" + file)
            #expect(head.status == .ok && head.headers[.contentLength] == String(committed.count) && head.bytes.isEmpty)
        }
    }

    @Test func theRootLeadsToTheConsoleAndNothingElseIsServed() async throws {
        let env = try await TestEnvironment.make()
        defer { env.cleanup() }
        try await env.live { client in
            let root = try await client.request(.get, "/")
            #expect(root.status == .found && root.headers[.location] == "/console/")
            let headRoot = try await client.request(.head, "/")
            #expect(headRoot.status == .found && headRoot.headers[.location] == "/console/")
            #expect(try await client.request(.get, "/console").status == .ok)
            for path in ["/console/server.log", "/console/..%2Fdepot.sqlite", "/console/%2e%2e/openapi.json", "/console/app.js/x"] {
                #expect(try await client.request(.get, path).status == .notFound, "\(path)")
            }
        }
    }
}
