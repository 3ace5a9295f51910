import DepotCore
import DepotHTTP
import Foundation
import NIOCore
import NIOHTTP1
import Testing

/// A request that fails inside the server is logged with the caller's tenant (the error
/// middleware runs outside the identity middleware, whose context copy it never sees).
@Suite("Error logs name the tenant")
struct ErrorLogTests {
    @Test func aServerErrorIsLoggedWithTheTenant() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("depot-errlog-\(UUID().uuidString)").path
        defer {
            try? FileManager.default.removeItem(atPath: dir)
            try? FileManager.default.removeItem(atPath: dir + ".log")
        }
        let server = DepotProcess(dataDir: dir)
        try await server.start(extra: ["--log-level", "info"])
        let token = try await ProjectJWT(secret: DepotProcess.secret).mint(subject: "alice-7", role: .authenticated, ttl: 600)
        let auth = [("Authorization", "Bearer \(token)")]
        let up = try await server.request(.POST, "/v1/assets?jobId=j", headers: auth + [("Content-Type", "image/png")], body: Fixture.png(300))
        #expect(up.status == 201)
        let url = try #require((try JSONSerialization.jsonObject(with: Data(up.body)) as? [String: Any])?["url"] as? String)
        // The blob's file removed behind Depot's back: the object's bytes are lost, a 500.
        let blobs = FileManager.default.enumerator(atPath: dir + "/blobs")
        while let p = blobs?.nextObject() as? String {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: dir + "/blobs/" + p, isDirectory: &isDir), !isDir.boolValue {
                try FileManager.default.removeItem(atPath: dir + "/blobs/" + p)
            }
        }
        let signedPath = try #require(URL(string: url)?.path)
        let authenticated = signedPath.replacingOccurrences(of: "/object/sign/", with: "/object/authenticated/")
        let failed = try await server.request(.GET, authenticated, headers: auth)
        #expect(failed.status == 500, "\(authenticated) \(failed.status)")
        server.stop()
        let log = try String(contentsOfFile: server.logPath, encoding: .utf8)
        let line = log.split(separator: "\n").first { $0.contains("request failed") }
        #expect(line?.contains("tenant=alice-7") == true, "\(line ?? "no 'request failed' line in:\n\(log)")")
    }
}
