import ArgumentParser
import Depot
import DepotCore
import Foundation
import Logging

/// Reads a setting: the flag's value when given, else the environment variable, else nil.
func setting(_ flag: String?, _ env: String) -> String? {
    flag ?? ProcessInfo.processInfo.environment[env].flatMap { $0.isEmpty ? nil : $0 }
}

/// The options shared by every command that opens the data directory.
struct DataOptions: ParsableArguments {
    @Option(name: .customLong("data-dir"), help: "Where blobs and the SQLite database live. (env DEPOT_DATA_DIR, default ./depot-data)")
    var dataDir: String?

    var resolvedDataDir: String { setting(dataDir, "DEPOT_DATA_DIR") ?? "./depot-data" }
}

/// Every `depot serve` setting, resolved once (flag → environment → default) and validated.
struct ServeOptions: ParsableArguments {
    @Option(help: "Address to listen on. (env DEPOT_HOST, default 127.0.0.1)")
    var host: String?
    @Option(help: "Port to listen on. (env DEPOT_PORT, default 8080)")
    var port: Int?
    @Option(name: .customLong("public-url"), help: "Prefix of every URL Depot returns. (env DEPOT_PUBLIC_URL, default http://HOST:PORT)")
    var publicURL: String?
    @Option(name: .customLong("max-file-size"), help: "Largest object in bytes. (env DEPOT_MAX_FILE_SIZE, default 10485760 = 10 MiB)")
    var maxFileSize: Int64?
    @Option(
        name: .customLong("allowed-types"),
        help: "Comma-separated media types, decided by the file's bytes. (env DEPOT_ALLOWED_TYPES, default image/png,image/jpeg,image/webp,image/gif)"
    )
    var allowedTypes: String?
    @Option(
        name: .customLong("signed-url-ttl"),
        help: "Default signed-URL lifetime in seconds; requests may ask 1 s … --max-signed-url-ttl. (env DEPOT_SIGNED_URL_TTL, default 3600)")
    var signedURLTTL: Int64?
    @Option(
        name: .customLong("max-signed-url-ttl"),
        help:
            "Longest signed-URL lifetime a request may ask for, in seconds (raise it for apps that sign year-long Supabase links; links still die when their object is moved, replaced or deleted). (env DEPOT_MAX_SIGNED_URL_TTL, default 604800 = 7 days)"
    )
    var maxSignedURLTTL: Int64?
    @Option(
        name: .customLong("upload-url-ttl"),
        help:
            "Lifetime in seconds of upload URLs: the Assets API's presigned uploads and the Storage API's signed upload URLs. (env DEPOT_UPLOAD_URL_TTL, default 300)"
    )
    var uploadURLTTL: Int64?
    @Option(
        name: .customLong("resumable-ttl"),
        help:
            "Seconds a resumable (TUS) upload may take from its creation; past it the upload answers 404 and garbage collection removes its bytes (60 … 2592000). (env DEPOT_RESUMABLE_TTL, default 86400)"
    )
    var resumableTTL: Int64?
    @Option(name: .customLong("private-bucket"), help: "Bucket for private objects. (env DEPOT_PRIVATE_BUCKET, default assets)")
    var privateBucket: String?
    @Option(name: .customLong("public-bucket"), help: "Bucket for public objects. (env DEPOT_PUBLIC_BUCKET, default public-assets)")
    var publicBucket: String?
    @Option(
        name: .customLong("public-cache-control"),
        help: "Cache-Control of public objects. (env DEPOT_PUBLIC_CACHE_CONTROL, default 'public, max-age=31536000')")
    var publicCacheControl: String?
    @Option(
        name: .customLong("cors-origins"),
        help:
            "Comma-separated origins allowed by CORS, on both APIs. Unset: any origin ('*') on the Storage API and its object URLs (/storage/v1/..., as Supabase's gateway: callers send bearer tokens, never cookies), none on the Assets API (/v1/...). (env DEPOT_CORS_ORIGINS)"
    )
    var corsOrigins: String?
    @Option(
        name: .customLong("gc-interval"), help: "Seconds between garbage-collection passes; 0 turns them off. (env DEPOT_GC_INTERVAL, default 600)")
    var gcInterval: Int?
    @Option(
        name: .customLong("gc-grace"),
        help: "Age in seconds before an orphan blob, temp file or expired upload intent is removed. (env DEPOT_GC_GRACE, default 900)")
    var gcGrace: Int?
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical. (env DEPOT_LOG_LEVEL, default info)")
    var logLevel: String?
    @Option(
        name: .customLong("jwks"),
        help:
            "A JWKS file or http(s) URL of the public keys that sign user tokens with RS256, ES256 or EdDSA (Supabase Auth's asymmetric keys, e.g. https://PROJECT.supabase.co/auth/v1/.well-known/jwks.json), accepted besides HS256 tokens of the project secret. Read at start (a failure is logged and retried, never fatal), every --jwks-refresh, and when a token names an unknown kid. (env DEPOT_JWKS, default none)"
    )
    var jwks: String?
    @Option(
        name: .customLong("jwks-refresh"),
        help: "Seconds between reads of the --jwks keys, 60 … 86400. (env DEPOT_JWKS_REFRESH, default 600)")
    var jwksRefresh: Int?
    @Option(
        name: .customLong("policies"),
        help:
            "A YAML (or JSON) file of access rules for the Storage API: who (anon, authenticated, claim tests) may do what (read, list, insert, update, delete, sign, bucket_admin) in which buckets and paths ({sub}/**, teams/{claims.team_id}/**). It replaces the built-in rule (a user under its own user id); service_role is never limited. A mistake stops serve with its line. (env DEPOT_POLICIES, default the built-in rule; docs/access-rules.md)"
    )
    var policies: String?

    struct Resolved {
        var host: String
        var port: Int
        var settings: StorageSettings
        var corsObjectOrigins: [String]
        var corsAPIOrigins: [String]
        var gcInterval: Int
        var logLevel: String
        var jwks: SigningKeySource?
        var jwksRefresh: Int
        /// The rules file, when one is given.
        var policies: String?
    }

    /// The longest period a setting in seconds may name: a year.
    static let maxSeconds = 366 * 86_400

    func resolve() throws -> Resolved {
        func int<T: FixedWidthInteger>(_ flag: T?, _ env: String, _ def: T) throws -> T {
            if let flag { return flag }
            guard let s = setting(nil, env) else { return def }
            guard let v = T(s) else { throw ValidationError("\(env) must be a whole number, got '\(s)'") }
            return v
        }
        let host = setting(host, "DEPOT_HOST") ?? "127.0.0.1"
        let port = try int(port, "DEPOT_PORT", 8080)
        guard (0...65535).contains(port) else { throw ValidationError("the port must be 0 … 65535") }
        if port == 0, setting(publicURL, "DEPOT_PUBLIC_URL") == nil {
            throw ValidationError("with port 0 (any free port) Depot cannot know the URLs it returns: give --public-url too")
        }
        var s = StorageSettings()
        s.publicBaseURL = setting(publicURL, "DEPOT_PUBLIC_URL") ?? "http://\(host):\(port)"
        while s.publicBaseURL.hasSuffix("/") { s.publicBaseURL.removeLast() }
        s.maxFileSize = try int(maxFileSize, "DEPOT_MAX_FILE_SIZE", s.maxFileSize)
        if let types = setting(allowedTypes, "DEPOT_ALLOWED_TYPES") {
            s.allowedTypes = types.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        s.maxSignedURLTTL = try int(maxSignedURLTTL, "DEPOT_MAX_SIGNED_URL_TTL", s.maxSignedURLTTL)
        s.signedURLTTL = try int(signedURLTTL, "DEPOT_SIGNED_URL_TTL", s.signedURLTTL)
        s.uploadURLTTL = try int(uploadURLTTL, "DEPOT_UPLOAD_URL_TTL", s.uploadURLTTL)
        s.resumableTTL = try int(resumableTTL, "DEPOT_RESUMABLE_TTL", s.resumableTTL)
        s.privateBucket = setting(privateBucket, "DEPOT_PRIVATE_BUCKET") ?? s.privateBucket
        s.publicBucket = setting(publicBucket, "DEPOT_PUBLIC_BUCKET") ?? s.publicBucket
        s.publicCacheControl = setting(publicCacheControl, "DEPOT_PUBLIC_CACHE_CONTROL") ?? s.publicCacheControl
        let grace = try int(gcGrace, "DEPOT_GC_GRACE", 900)
        guard (0...Self.maxSeconds).contains(grace) else { throw ValidationError("--gc-grace must be 0 … \(Self.maxSeconds) seconds") }
        s.gcGracePeriod = TimeInterval(grace)
        do { try s.validate() } catch { throw ValidationError(error.message) }
        let origins = setting(corsOrigins, "DEPOT_CORS_ORIGINS").map {
            $0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        let level = (setting(logLevel, "DEPOT_LOG_LEVEL") ?? "info").lowercased()
        guard Logger.Level(rawValue: level) != nil else {
            throw ValidationError("the log level must be trace, debug, info, notice, warning, error or critical, got '\(level)'")
        }
        let interval = try int(gcInterval, "DEPOT_GC_INTERVAL", 600)
        guard (0...Self.maxSeconds).contains(interval) else {
            throw ValidationError("--gc-interval must be 0 … \(Self.maxSeconds) seconds")
        }
        let jwksRefresh = try int(jwksRefresh, "DEPOT_JWKS_REFRESH", 600)
        guard (60...86_400).contains(jwksRefresh) else { throw ValidationError("--jwks-refresh must be 60 … 86400 seconds") }
        let jwks = setting(jwks, "DEPOT_JWKS").map(SigningKeySource.init)
        if case .url(let url) = jwks, URL(string: url)?.host == nil { throw ValidationError("--jwks: '\(url)' is not a URL") }
        if case .file(let path) = jwks, path.contains("://") {
            throw ValidationError("--jwks: '\(path)' is neither a file nor an http(s):// URL")
        }
        return Resolved(
            host: host, port: port, settings: s, corsObjectOrigins: origins ?? ["*"], corsAPIOrigins: origins ?? [],
            gcInterval: interval, logLevel: level, jwks: jwks, jwksRefresh: jwksRefresh, policies: setting(policies, "DEPOT_POLICIES"))
    }
}
