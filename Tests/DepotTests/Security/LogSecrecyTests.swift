import Depot
import DepotHTTP
import DepotS3
import Foundation
import NIOCore
import NIOHTTP1
import Testing

/// No log, at any level, holds key material: not the project secret, not the URL signing key (its
/// HMAC state signs links as well as the key), not S3's secret key. ServiceLifecycle prints each
/// service whole at debug level; before key-holding types redacted themselves, `--log-level debug`
/// wrote the signing key's HMAC state to the log, and a link for any object and any lifetime could
/// be forged from it.
@Suite("Secrets stay out of logs")
struct LogSecrecyTests {
    @Test func aTraceLevelServerLogHoldsNoKeyMaterial() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("depot-logs-\(UUID().uuidString)").path
        defer {
            try? FileManager.default.removeItem(atPath: dir)
            try? FileManager.default.removeItem(atPath: dir + ".log")
        }
        let server = DepotProcess(dataDir: dir)
        try await server.start(extra: ["--log-level", "trace", "--gc-interval", "1"])
        let token = try await ProjectJWT(secret: DepotProcess.secret).mint(subject: "alice", role: .authenticated, ttl: 600)
        let auth = [("Authorization", "Bearer \(token)")]
        let up = try await server.request(.POST, "/v1/assets?jobId=j", headers: auth + [("Content-Type", "image/png")], body: Fixture.png(300))
        #expect(up.status == 201)
        let url = try #require((try JSONSerialization.jsonObject(with: Data(up.body)) as? [String: Any])?["url"] as? String)
        #expect(try await server.request(.GET, url).status == 200)
        #expect(try await server.request(.GET, url + "x").status == 403)
        try await Task.sleep(for: .milliseconds(1500))  // a garbage-collection pass, logged too
        server.stop()

        let log = try String(contentsOfFile: server.logPath, encoding: .utf8)
        #expect(log.contains("Starting service"), "the test must see the services' debug lines")
        #expect(!log.contains(DepotProcess.secret))
        #expect(!log.contains("depot_hmac_sha256_key"))
        #expect(!log.contains("inner:"))
        #expect(!log.contains("SymmetricKey"))
        #expect(!log.contains(String(token.split(separator: ".")[2])), "a bearer token's signature was logged")
    }

    @Test func keyHoldersDescribeThemselvesWithoutTheirKeys() throws {
        let ring = KeyRing.derived(fromProjectSecret: "a-project-secret-0123456789abcdefghij")
        for text in [String(describing: ring), String(reflecting: ring), String(describing: ring.active)] {
            #expect(text.contains("redacted") && !text.contains("inner") && !text.contains("prototype"), "\(text)")
        }
        let s3 = S3Configuration(
            endpoint: "http://127.0.0.1:9000", region: "us-east-1", bucket: "b", prefix: "",
            accessKey: "AKIAEXAMPLE", secretKey: "wJalrXUtnFEMI-secret", pathStyle: true)
        for text in [
            String(describing: s3), String(reflecting: s3), "\(SigV4Signer.Credentials(accessKey: "AKIAEXAMPLE", secretKey: "wJalrXUtnFEMI-secret"))",
        ] {
            #expect(!text.contains("wJalrXUtnFEMI") && !text.contains("AKIAEXAMPLE"), "\(text)")
        }
    }
}
