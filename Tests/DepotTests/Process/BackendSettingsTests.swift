import Foundation
import Testing

/// `depot serve` refuses backend settings that do not fit together, naming the setting, before it
/// opens anything.
@Suite("Backend settings of depot serve")
struct BackendSettingsTests {
    func serve(_ environment: [String: String]) async throws -> (status: Int32, output: String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("depot-settings-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Settings of the test process (DEPOT_TEST_*) do not leak in: only DEPOT_* names matter.
        return try await DepotProcess.run(["serve", "--data-dir", dir, "--port", "0", "--public-url", "http://depot.test"], environment: environment)
    }

    @Test(arguments: [
        (["DEPOT_BLOB_STORE": "tape"], "DEPOT_BLOB_STORE must be file or s3"),
        (["DEPOT_BLOB_STORE": "s3"], "needs DEPOT_S3_ENDPOINT"),
        (
            [
                "DEPOT_BLOB_STORE": "s3", "DEPOT_S3_ENDPOINT": "http://127.0.0.1:9", "DEPOT_S3_BUCKET": "x", "DEPOT_S3_ACCESS_KEY": "a",
                "DEPOT_S3_SECRET_KEY": "s",
            ], "bucket must be 3–63"
        ),
        (
            [
                "DEPOT_BLOB_STORE": "s3", "DEPOT_S3_ENDPOINT": "http://127.0.0.1:9", "DEPOT_S3_BUCKET": "depot", "DEPOT_S3_ACCESS_KEY": "a",
                "DEPOT_S3_SECRET_KEY": "s", "DEPOT_S3_PATH_STYLE": "maybe",
            ], "DEPOT_S3_PATH_STYLE must be true or false"
        ),
        (
            [
                "DEPOT_BLOB_STORE": "s3", "DEPOT_S3_ENDPOINT": "http://127.0.0.1:9", "DEPOT_S3_BUCKET": "depot", "DEPOT_S3_ACCESS_KEY": "a",
                "DEPOT_S3_SECRET_KEY": "s", "DEPOT_S3_STREAMED_PUT_MAX": "99999999999999999999",
            ], "DEPOT_S3_STREAMED_PUT_MAX must be a number of bytes"
        ),
        (["DEPOT_DOWNLOAD_MODE": "redirect"], "needs DEPOT_BLOB_STORE=s3"),
        (["DEPOT_DOWNLOAD_MODE": "teleport"], "DEPOT_DOWNLOAD_MODE must be proxy or redirect"),
        (["DEPOT_DATABASE_URL": "postgres://u:p@127.0.0.1:9/db", "DEPOT_JWT_SECRET": ""], "needs the same DEPOT_JWT_SECRET"),
        (["DEPOT_DATABASE_URL": "mysql://u@h/db", "DEPOT_JWT_SECRET": String(repeating: "s", count: 40)], "postgres://user:password@host"),
    ])
    func inconsistentSettingsAreRefused(_ environment: [String: String], _ message: String) async throws {
        let (status, output) = try await serve(environment)
        #expect(status != 0)
        #expect(output.contains(message), "\(output)")
        #expect(!output.contains("listening"))
    }
}
