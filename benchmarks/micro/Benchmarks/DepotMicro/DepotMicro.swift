import Benchmark
import Crypto
import Depot
import Foundation

// In-process costs of the hot pieces, one core. `scripts/bench --micro` runs these and copies the
// table into benchmarks/RESULTS-micro.md. Throughput is reported per second (K = thousands).

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.throughput, .wallClock, .mallocCountTotal],
        warmupIterations: 10,
        maxDuration: .seconds(2),
        maxIterations: 10_000_000
    )

    let signer = URLSigner(keys: .derived(fromProjectSecret: "micro-benchmark-secret-micro-benchmark"))
    let path = try! ObjectPath("user-7f3a9c/job-2024-11-29/3f6b0e1c-8d2a-4b7e-9c1f-5a6d7e8f9a0b_112x112.png")
    let expires: Int64 = 4_102_444_800
    let token = signer.mint(scope: .download, bucket: "assets", path: path, binding: "1", expiresAt: expires)

    // Target: ≥ 1,000,000 per second on one core.
    Benchmark("mint download token", configuration: .init(scalingFactor: .kilo)) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(signer.mint(scope: .download, bucket: "assets", path: path, binding: "1", expiresAt: expires))
        }
    }

    Benchmark("verify download token", configuration: .init(scalingFactor: .kilo)) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try? signer.verify(token, scope: .download, bucket: "assets", path: path, now: 1_764_000_000))
        }
    }

    // Access rules (`--policies`): one check per object of a batch sign or listing; no allocation.
    let owner = Identity(subject: "user-7f3a9c", role: .authenticated)
    Benchmark("access rule check: the built-in rule", configuration: .init(scalingFactor: .kilo)) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(AccessPolicy.builtIn.allows(owner, .sign, bucket: "assets", path: path))
        }
    }
    let teams = try! AccessPolicy(
        document: .map(
            [
                (
                    "rules",
                    .list(
                        (0..<5).map { i in
                            .map(
                                [
                                    ("buckets", .scalar(i == 4 ? "*" : "bucket-\(i)", line: nil)),
                                    ("roles", .scalar("authenticated", line: nil)),
                                    ("when", .scalar("claims.app_role == \"editor\"", line: nil)),
                                    ("allow", .scalar("sign", line: nil)),
                                    ("paths", .list([.scalar("public/**", line: nil), .scalar("{claims.team}/*/**", line: nil)], line: nil)),
                                ], line: nil)
                        }, line: nil)
                )
            ], line: nil), source: "micro")
    let member = Identity(subject: "user-7f3a9c", role: .authenticated, claims: ["app_role": "editor", "team": "user-7f3a9c"])
    Benchmark("access rule check: 5 rules with claim tests and templates", configuration: .init(scalingFactor: .kilo)) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(teams.allows(member, .sign, bucket: "assets", path: path))
        }
    }

    let encoded = Substring(path.percentEncoded)
    Benchmark("parse + validate a URL path", configuration: .init(scalingFactor: .kilo)) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try? ObjectPath(percentEncoded: encoded))
        }
    }

    let unicode = Substring("user-7f3a9c/Gr%C3%BC%C3%9Fe/caf%C3%A9%20cr%C3%A8me_56x56.webp")
    Benchmark("parse + validate a non-ASCII URL path", configuration: .init(scalingFactor: .kilo)) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try? ObjectPath(percentEncoded: unicode))
        }
    }

    let heads: [[UInt8]] = [
        [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52],
        [0xFF, 0xD8, 0xFF, 0xE0, 0, 16, 0x4A, 0x46, 0x49, 0x46, 0, 1, 1, 0, 0, 1],
        Array("RIFF\u{0}\u{0}\u{0}\u{0}WEBPVP8 ".utf8),
        Array("not an image at all".utf8),
    ]
    Benchmark("sniff a 16-byte prefix", configuration: .init(scalingFactor: .kilo)) { benchmark in
        for i in benchmark.scaledIterations {
            blackHole(MediaSniffer.sniff(heads[i & 3]))
        }
    }

    // One iteration hashes 1 MiB: throughput × 1 MiB = bytes per second.
    let mebibyte = [UInt8](unsafeUninitializedCapacity: 1 << 20) { buffer, count in
        var x: UInt64 = 0x9E37_79B9_7F4A_7C15
        for i in 0..<buffer.count {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17
            buffer[i] = UInt8(truncatingIfNeeded: x)
        }
        count = buffer.count
    }
    Benchmark("SHA-256 of 1 MiB", configuration: .init(metrics: [.throughput, .wallClock])) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(SHA256.hash(data: mebibyte))
        }
    }
}
