import AsyncHTTPClient
import DepotCore
import DepotS3
import Foundation
import Logging

/// The S3 server the tests use: moto, started by `scripts/test` (through `scripts/s3-test-server`)
/// with signature checking on. Its address and key come from the environment.
enum S3TestServer {
    static let environment = ProcessInfo.processInfo.environment
    static let endpoint = environment["DEPOT_TEST_S3_ENDPOINT"]
    static let bucket = "depot-test"
    /// A second moto without signature checking, for presigned URLs (moto with checking on answers
    /// them with 500).
    static let plainEndpoint = environment["DEPOT_TEST_S3_PLAIN_ENDPOINT"]

    /// Whether the S3 suites run: when the server is configured, and always in CI (where a
    /// missing server must fail the run rather than skip it).
    static let enabled = endpoint != nil || environment["CI"] != nil
    static let skipNote = "S3 tests skipped: DEPOT_TEST_S3_ENDPOINT is not set (scripts/test starts moto and sets it)"

    /// One HTTP client for every S3 store of the test process (never shut down: it lives as long
    /// as the process).
    static let httpClient = S3BlobStore.makeHTTPClient()

    static func configuration(prefix: String = "t-\(UUID().uuidString.prefix(8))") throws -> S3Configuration {
        guard let endpoint else {
            throw StorageError.unavailable("DEPOT_TEST_S3_ENDPOINT is not set; run the tests with scripts/test")
        }
        var config = S3Configuration(
            endpoint: endpoint, region: "us-east-1", bucket: bucket, prefix: prefix,
            accessKey: environment["DEPOT_TEST_S3_ACCESS_KEY"] ?? "testing",
            secretKey: environment["DEPOT_TEST_S3_SECRET_KEY"] ?? "testing", pathStyle: true)
        config.baseBackoff = .milliseconds(5)
        config.maxBackoff = .milliseconds(50)
        return config
    }

    /// A store over the test bucket, under a prefix of its own so tests do not see each other.
    static func makeStore(_ configure: (inout S3Configuration) -> Void = { _ in }) async throws -> S3BlobStore {
        var config = try configuration()
        configure(&config)
        let logger = TestLogging.logger("depot-test-s3", level: .error)
        let store = try S3BlobStore(configuration: config, httpClient: httpClient, logger: logger)
        try await store.createBucketIfMissing()
        return store
    }
}
