import DepotCore
import DepotHTTP
import Foundation
import Testing

/// The `depot` executable's commands as a person runs them: help, the project secret, keys and
/// tokens, and settings refused at start.
@Suite("depot commands")
struct CLITests {
    static func scratch(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("depot-cli-\(name)-\(UUID().uuidString)").path
    }

    /// The environment without a project secret, so the data directory's is used.
    static let noSecret = ["DEPOT_JWT_SECRET": ""]

    /// The claims of a JWT as the raw JSON text of its payload.
    static func payloadText(_ jwt: String) throws -> String {
        let part = jwt.split(separator: ".")
        try #require(part.count == 3)
        var b64 = part[1].replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while b64.count % 4 != 0 { b64 += "=" }
        return String(decoding: try #require(Data(base64Encoded: b64)), as: UTF8.self)
    }

    /// `"name":` followed by digits only (no fraction), as every JWT Supabase issues.
    static func hasWholeSeconds(_ payload: String, _ name: String) -> Bool {
        guard let r = payload.range(of: "\"\(name)\":") else { return false }
        let value = payload[r.upperBound...].prefix { $0 != "," && $0 != "}" }
        return !value.isEmpty && value.allSatisfy(\.isNumber)
    }

    @Test func helpExplainsEveryOptionOnce() async throws {
        let help = try await DepotProcess.run(["serve", "--help"])
        #expect(help.status == 0)
        for option in [
            "--host", "--port", "--data-dir", "--public-url", "--max-file-size", "--allowed-types", "--signed-url-ttl",
            "--upload-url-ttl", "--private-bucket", "--public-bucket", "DEPOT_PORT", "DEPOT_MAX_FILE_SIZE", "default 8080",
            "--quota-bytes", "--quota-objects", "--max-open-uploads", "--rate-limit", "--rate-burst", "DEPOT_RATE_LIMIT",
            "--header-timeout", "--idle-timeout", "--min-upload-rate", "--max-connections",
            "--variants", "DEPOT_VARIANTS", "--job-workers", "--job-queue-limit", "--job-tenant-limit", "--job-lease",
        ] {
            #expect(help.output.contains(option), "serve --help should mention \(option)")
        }
        // The connection limits, each with its variable and default (the help may wrap anywhere).
        let words = help.output.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        for text in [
            "DEPOT_HEADER_TIMEOUT, default 10)", "DEPOT_IDLE_TIMEOUT, default 60)", "DEPOT_MIN_UPLOAD_RATE, default 1024)",
            "DEPOT_MAX_CONNECTIONS, default 4096)", "DEPOT_MAX_CONNECTIONS_PER_ADDRESS, default 512)",
        ] {
            #expect(words.contains(text), "serve --help should say \(text)")
        }
        let token = try await DepotProcess.run(["token", "--help"])
        #expect(token.status == 0)
        #expect(!token.output.contains("(default authenticated)"), "the default is printed once, by the parser")
        #expect(!token.output.contains("(default 3600)"))
        #expect(token.output.contains("(default: 3600)"))
        let gc = try await DepotProcess.run(["gc", "--help"])
        #expect(gc.status == 0)
        #expect(gc.output.contains("multipart"))
        #expect(try await DepotProcess.run(["keys", "--help"]).status == 0)
    }

    @Test(arguments: [["keys"], ["token", "--sub", "alice"]])
    func keysAndTokenRefuseToInventASecret(_ command: [String]) async throws {
        let dir = Self.scratch("nosecret")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let result = try await DepotProcess.run(command + ["--data-dir", dir], environment: Self.noSecret)
        #expect(result.status != 0)
        #expect(result.output.contains("no project secret"), "\(result.output)")
        #expect(result.output.contains(dir + "/jwt-secret"), "says where it looked: \(result.output)")
        #expect(!result.output.contains("eyJ"), "prints no key")
        #expect(!FileManager.default.fileExists(atPath: dir), "creates nothing")
    }

    @Test func serveCreatesTheSecretAndKeysAreStable() async throws {
        let dir = Self.scratch("secret")
        defer {
            try? FileManager.default.removeItem(atPath: dir)
            try? FileManager.default.removeItem(atPath: dir + ".log")
        }
        // Only `serve` generates the secret: 0600 in a 0700 data directory.
        let server = DepotProcess(dataDir: dir)
        try await server.start(environment: Self.noSecret)
        server.stop()
        let fm = FileManager.default
        #expect((try fm.attributesOfItem(atPath: dir)[.posixPermissions] as? Int) == 0o700)
        #expect((try fm.attributesOfItem(atPath: dir + "/jwt-secret")[.posixPermissions] as? Int) == 0o600)
        let secret = try String(contentsOfFile: dir + "/jwt-secret", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let jwt = await ProjectJWT(secret: secret)

        let t1 = try await DepotProcess.run(["token", "--data-dir", dir, "--sub", "alice"], environment: Self.noSecret)
        #expect(t1.status == 0)
        let token = t1.output.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try await jwt.verify(token) == Identity(subject: "alice", role: .authenticated))
        let claims = try Self.payloadText(token)
        #expect(Self.hasWholeSeconds(claims, "exp") && Self.hasWholeSeconds(claims, "iat"), "\(claims)")

        // The keys are the same strings on every call, with whole-second claims.
        let first = try await DepotProcess.run(["keys", "--data-dir", dir], environment: Self.noSecret)
        try await Task.sleep(for: .milliseconds(1100))
        let second = try await DepotProcess.run(["keys", "--data-dir", dir], environment: Self.noSecret)
        #expect(first.status == 0)
        #expect(first.output == second.output)
        func key(_ role: String) throws -> String {
            let line = try #require(first.output.split(separator: "\n").first { $0.hasPrefix(role + ":") })
            return String(try #require(line.split(separator: " ").last))
        }
        #expect(try await jwt.verify(try key("service_role")).role == .serviceRole)
        #expect(try await jwt.verify(try key("anon")).role == .anon)
        let keyClaims = try Self.payloadText(try key("anon"))
        #expect(Self.hasWholeSeconds(keyClaims, "exp") && Self.hasWholeSeconds(keyClaims, "iat"), "\(keyClaims)")
        // Reading the secret changed nothing.
        #expect(try String(contentsOfFile: dir + "/jwt-secret", encoding: .utf8).contains(secret))
    }

    @Test func badSettingsFailFastWithAReadableMessage() async throws {
        let dir = Self.scratch("bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let bad = try await DepotProcess.run(["serve", "--data-dir", dir, "--signed-url-ttl", "0"])
        #expect(bad.status != 0)
        #expect(bad.output.contains("signed URL lifetime"))
        let badType = try await DepotProcess.run(["serve", "--data-dir", dir, "--allowed-types", "text/html"])
        #expect(badType.status != 0)
        #expect(badType.output.contains("text/html"))
        // Numbers near Int64.max are refused, not overflowed.
        let rules = dir + "-rules.yaml"
        try "rules:\n  - buckets: '*'\n    roles: anon\n    allow: [read, fly]\n    paths: '**'\n".write(
            toFile: rules, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: rules) }
        let huge = try await DepotProcess.run(["serve", "--data-dir", dir, "--max-file-size", "9223372036854775807"])
        #expect(huge.status != 0 && huge.output.contains("max file size"), "\(huge.output)")
        let badEnv = try await DepotProcess.run(["serve", "--data-dir", dir], environment: ["DEPOT_QUOTA_BYTES": "-1"])
        #expect(badEnv.status != 0 && badEnv.output.contains("DEPOT_QUOTA_BYTES"), "\(badEnv.output)")
        // The connection limits: whole numbers in range, from the flag or the environment.
        for (arguments, environment, message) in [
            (["--max-connections", "99999999"], [:], "--max-connections must be 0 … 1048576"),
            ([], ["DEPOT_MAX_CONNECTIONS_PER_ADDRESS": "-1"], "--max-connections-per-address must be 0 … 1048576"),
            ([], ["DEPOT_PUBLIC_CACHE_CONTROL": "public\r\nX-Evil: 1"], "Cache-Control must be 1 … 256 visible ASCII"),
            (["--header-timeout", "86401"], [:], "--header-timeout must be 0 … 86400"),
            ([], ["DEPOT_IDLE_TIMEOUT": "soon"], "DEPOT_IDLE_TIMEOUT must be a whole number"),
            ([], ["DEPOT_MIN_UPLOAD_RATE": "99999999999999999999999"], "DEPOT_MIN_UPLOAD_RATE must be a whole number"),
            (["--min-upload-rate", "99999999999999999999999"], [:], "min-upload-rate"),
            (["--send-timeout", "86401"], [:], "--send-timeout must be 0 … 86400"),
            ([], ["DEPOT_SHUTDOWN_TIMEOUT": "later"], "DEPOT_SHUTDOWN_TIMEOUT must be a whole number"),
            // Port 0 picks any free port: the URLs Depot returns would name port 0.
            (["--port", "0"], [:], "give --public-url too"),
            (["--log-level", "bogus"], [:], "the log level must be"),
            (["--gc-interval", "9223372036854775807"], [:], "--gc-interval must be 0 …"),
            ([], ["DEPOT_GC_GRACE": "99999999999"], "--gc-grace must be 0 …"),
            ([], ["DEPOT_LOG_LEVEL": "nope"], "got 'nope'"),
            // Variants and jobs.
            (["--variants", "112x112,big"], [:], "'big' is not a size WxH"),
            (["--variants", "0x56"], [:], "'0x56' is not a size"),
            ([], ["DEPOT_VARIANTS": "99999x1"], "'99999x1' is not a size"),
            (["--job-workers", "0"], [:], "DEPOT_JOB_WORKERS must be 1 … 256"),
            ([], ["DEPOT_JOB_LEASE": "forever"], "DEPOT_JOB_LEASE must be a whole number"),
            (["--job-queue-limit", "99999999999999999999"], [:], "job-queue-limit"),
            // Access rules: a file with a mistake stops serve with its line and reason.
            (["--policies", dir + "-none.yaml"], [:], "--policies \(dir)-none.yaml: cannot read the file (no such file)"),
            (["--policies", rules], [:], "line 4: rule 1: unknown operation 'fly'"),
            ([], ["DEPOT_POLICIES": rules], "line 4: rule 1: unknown operation 'fly'"),
        ] {
            let result = try await DepotProcess.run(["serve", "--data-dir", dir] + arguments, environment: environment)
            #expect(result.status != 0)
            #expect(result.output.contains(message), "\(result.output)")
        }
        #expect(!FileManager.default.fileExists(atPath: dir), "refused before the data directory is created")
    }

    /// Started with a soft open-file limit of 256, `depot serve` raises it to what its connection
    /// cap needs (2 per connection + 256), up to the hard limit, which it says when it is too low.
    @Test func serveRaisesTheOpenFileLimitForTheCap() async throws {
        func softAndHard(_ server: DepotProcess) throws -> (UInt64, UInt64) {
            let pid = try #require(server.process?.pid)
            let limits = try String(contentsOfFile: "/proc/\(pid)/limits", encoding: .utf8)
            let line = try #require(limits.split(separator: "\n").first { $0.hasPrefix("Max open files") })
            let numbers = line.split(separator: " ").compactMap { UInt64($0) }
            try #require(numbers.count == 2, "\(line)")
            return (numbers[0], numbers[1])
        }
        for cap in [1000, 1_000_000] {
            let dir = Self.scratch("nofile")
            defer {
                try? FileManager.default.removeItem(atPath: dir)
                try? FileManager.default.removeItem(atPath: dir + ".log")
            }
            let server = DepotProcess(dataDir: dir)
            server.openFileLimit = 256
            try await server.start(extra: ["--max-connections", "\(cap)", "--gc-interval", "0"])
            let (soft, hard) = try softAndHard(server)
            server.stop()
            let need = UInt64(cap * 2 + 256)
            #expect(soft == min(need, hard), "cap \(cap): soft \(soft), hard \(hard)")
            let log = try String(contentsOfFile: dir + ".log", encoding: .utf8)
            #expect(log.contains("open-file limit") == (hard < need), "\(log)")
        }
    }

    /// `depot token` refuses what the server would refuse (a sub that is not one NFC path
    /// segment) and mints anon tokens too; `depot --version` says the version.
    @Test func tokenChecksItsSubAndVersionPrints() async throws {
        let env = ["DEPOT_JWT_SECRET": DepotProcess.secret]
        for sub in ["alice/x", "..", "Jose\u{0301}", "alice\u{200B}"] {
            let refused = try await DepotProcess.run(["token", "--sub", sub], environment: env)
            #expect(refused.status != 0 && refused.output.contains("--sub must be one path segment"), "\(sub): \(refused.output)")
        }
        let anon = try await DepotProcess.run(["token", "--sub", "visitor", "--role", "anon"], environment: env)
        #expect(anon.status == 0)
        let identity = try await ProjectJWT(secret: DepotProcess.secret).verify(anon.output.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(identity.role == .anon && identity.subject == "visitor")
        let nobody = try await DepotProcess.run(["token", "--role", "anon"], environment: env)
        #expect(nobody.status == 0)
        #expect(
            try await ProjectJWT(secret: DepotProcess.secret).verify(nobody.output.trimmingCharacters(in: .whitespacesAndNewlines)).subject == nil)
        let missing = try await DepotProcess.run(["token"], environment: env)
        #expect(missing.status != 0 && missing.output.contains("--sub is required"))
        let version = try await DepotProcess.run(["--version"])
        #expect(version.status == 0 && version.output.trimmingCharacters(in: .whitespacesAndNewlines) == DepotVersion.string)
    }

    /// `depot migrate` on a data directory that does not exist yet makes it (SQLite), as `serve`
    /// would; `serve` on a data directory other users can read says so.
    @Test func migrateMakesTheDataDirectoryAndServeWarnsOfLooseModes() async throws {
        let dir = Self.scratch("migrate")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let migrated = try await DepotProcess.run(["migrate", "--data-dir", dir], environment: Self.noSecret)
        #expect(migrated.status == 0 && migrated.output.contains("up to date"), "\(migrated.output)")
        #expect(FileManager.default.fileExists(atPath: dir + "/depot.sqlite"))
        #expect((try FileManager.default.attributesOfItem(atPath: dir)[.posixPermissions] as? Int) == 0o700)

        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dir)
        let server = DepotProcess(dataDir: dir)
        try await server.start(environment: Self.noSecret)
        server.stop()
        let log = try String(contentsOfFile: server.logPath, encoding: .utf8)
        #expect(log.contains("has mode 755: other local users can read (or change) it"), "\(log)")
        try? FileManager.default.removeItem(atPath: server.logPath)
    }
}
