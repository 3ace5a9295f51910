import ArgumentParser
import DepotCore
import Depot
import DepotS3
import Foundation
import Logging

/// Where blobs live: files under the data directory (the default) or an S3-compatible bucket.
struct BlobStoreOptions: ParsableArguments {
    @Option(name: .customLong("blob-store"), help: "file (blobs under the data directory) or s3. (env DEPOT_BLOB_STORE, default file)")
    var blobStore: String?
    @Option(
        name: .customLong("s3-endpoint"),
        help: "S3 endpoint, http(s)://host[:port], e.g. https://s3.eu-west-1.amazonaws.com or http://127.0.0.1:9000. (env DEPOT_S3_ENDPOINT)")
    var endpoint: String?
    @Option(
        name: .customLong("s3-region"),
        help: "Region in the request signatures: the bucket's AWS region, 'auto' for R2. (env DEPOT_S3_REGION, default us-east-1)")
    var region: String?
    @Option(name: .customLong("s3-bucket"), help: "Bucket that holds the blobs; it must exist. (env DEPOT_S3_BUCKET)")
    var bucket: String?
    @Option(
        name: .customLong("s3-prefix"),
        help: "Key prefix, so several deployments can share a bucket; blobs go to PREFIX/blobs/<id>. (env DEPOT_S3_PREFIX, default none)")
    var prefix: String?
    @Option(name: .customLong("s3-access-key"), help: "Access key id. (env DEPOT_S3_ACCESS_KEY)")
    var accessKey: String?
    @Option(name: .customLong("s3-secret-key"), help: "Secret access key; prefer the environment, flags show in `ps`. (env DEPOT_S3_SECRET_KEY)")
    var secretKey: String?
    @Option(
        name: .customLong("download-mode"),
        help:
            "proxy: Depot streams the bytes of signed downloads; redirect: after its checks, Depot answers a signed GET with a 302 to a 60-second S3 presigned URL, so the bytes skip the server (needs --blob-store s3). (env DEPOT_DOWNLOAD_MODE, default proxy)"
    )
    var downloadMode: String?
    @Option(
        name: .customLong("s3-path-style"),
        help: "true: endpoint/bucket/key (MinIO, Ceph, moto); false: bucket.endpoint/key (AWS). (env DEPOT_S3_PATH_STYLE, default true)")
    var pathStyle: String?
    @Option(
        name: .customLong("s3-streamed-put-max"),
        help:
            "Uploads of a size declared in advance (presigned) that are larger than a part (8 MiB) and at most BYTES go to S3 as one streamed PutObject, not in parts: nothing buffered, nothing joined by the store, but the body is not hashed into the request's signature (UNSIGNED-PAYLOAD) and a failure is not retried part by part. 0: always parts. At most 5 GiB. (env DEPOT_S3_STREAMED_PUT_MAX, default 1073741824 for an https endpoint, 0 for http)"
    )
    var streamedPutMax: String?

    /// Whether signed GETs are redirected to the blob store (checked: only with S3).
    func redirectsDownloads() throws -> Bool {
        switch setting(downloadMode, "DEPOT_DOWNLOAD_MODE") ?? "proxy" {
        case "proxy": return false
        case "redirect":
            guard (setting(blobStore, "DEPOT_BLOB_STORE") ?? "file") == "s3" else {
                throw ValidationError("DEPOT_DOWNLOAD_MODE=redirect needs DEPOT_BLOB_STORE=s3 (local files have no URL of their own)")
            }
            return true
        case let other: throw ValidationError("DEPOT_DOWNLOAD_MODE must be proxy or redirect, got '\(other)'")
        }
    }

    /// The choice, every S3 setting checked (a missing or malformed one is named).
    func resolve() throws -> BlobBackend {
        switch setting(blobStore, "DEPOT_BLOB_STORE") ?? "file" {
        case "file": return .files
        case "s3": break
        case let other: throw ValidationError("DEPOT_BLOB_STORE must be file or s3, got '\(other)'")
        }
        func required(_ flag: String?, _ env: String) throws -> String {
            guard let v = setting(flag, env) else { throw ValidationError("DEPOT_BLOB_STORE=s3 needs \(env) (or its flag)") }
            return v
        }
        let pathStyle: Bool
        switch (setting(self.pathStyle, "DEPOT_S3_PATH_STYLE") ?? "true").lowercased() {
        case "true", "1", "yes": pathStyle = true
        case "false", "0", "no": pathStyle = false
        case let other: throw ValidationError("DEPOT_S3_PATH_STYLE must be true or false, got '\(other)'")
        }
        var streamedPutMax: Int64?
        if let text = setting(self.streamedPutMax, "DEPOT_S3_STREAMED_PUT_MAX") {
            guard text.utf8.allSatisfy({ (48...57).contains($0) }), let n = Int64(text), n <= 5 * 1024 * 1024 * 1024 else {
                throw ValidationError("DEPOT_S3_STREAMED_PUT_MAX must be a number of bytes, 0 … 5368709120, got '\(text)'")
            }
            streamedPutMax = n
        }
        var config = S3Configuration(
            endpoint: try required(endpoint, "DEPOT_S3_ENDPOINT"),
            region: setting(region, "DEPOT_S3_REGION") ?? "us-east-1",
            bucket: try required(bucket, "DEPOT_S3_BUCKET"),
            prefix: setting(prefix, "DEPOT_S3_PREFIX") ?? "",
            accessKey: try required(accessKey, "DEPOT_S3_ACCESS_KEY"),
            secretKey: try required(secretKey, "DEPOT_S3_SECRET_KEY"),
            pathStyle: pathStyle)
        config.streamedPutMax = streamedPutMax
        do { try config.validate() } catch { throw ValidationError(error.message) }
        return .s3(config)
    }
}
