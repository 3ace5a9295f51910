// swift-tools-version:6.1
import Foundation
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

// Fuzzing (`scripts/fuzz`, fuzz/README.md): with DEPOT_FUZZ=1 in the environment the manifest adds
// the `depot-fuzz` executable (libFuzzer) and compiles the targets it reaches (DepotCore,
// CDepotCrypto, DepotS3, DepotHTTP) with libFuzzer's coverage and AddressSanitizer. Dependencies
// stay uninstrumented, so switching only recompiles Depot's own modules in the same `.build`.
// Without the variable nothing here changes the build.
let fuzzing = Context.environment["DEPOT_FUZZ"] == "1"
/// libvips (Debian's `libvips-dev`) makes image variants and renditions. Without its headers
/// Depot still builds, and reports image work as off (`DEPOT_VIPS=0` builds without it anyway).
/// SwiftPM caches this manifest by its text: after installing libvips-dev, remove
/// `~/.cache/org.swift.swiftpm/manifests` so that it is evaluated again.
let vips = Context.environment["DEPOT_VIPS"] != "0" && FileManager.default.fileExists(atPath: "/usr/include/vips/vips.h")
let fuzzSwiftFlags: [SwiftSetting] = fuzzing ? [.unsafeFlags(["-sanitize=fuzzer,address"])] : []
let fuzzCFlags: [CSetting] = fuzzing ? [.unsafeFlags(["-fsanitize=fuzzer-no-link,address"])] : []
/// The settings of the targets the fuzzers reach.
let fuzzedSwiftSettings = swiftSettings + fuzzSwiftFlags

let package = Package(
    name: "Depot",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Depot", targets: ["Depot"]),
        .executable(name: "depot", targets: ["depot"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.7.1"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-async-algorithms.git", from: "1.1.4"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
    ],
    targets: [
        // Domain: paths, sniffing, signing, policy, errors, the two seams and StorageService.
        // No HTTP, SQL or S3 code.
        .target(
            name: "DepotCore",
            dependencies: [
                "CDepotCrypto",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: fuzzedSwiftSettings
        ),
        // Two Linux system calls the Glibc module does not export (syncfs, sync_file_range).
        .target(name: "CDepotSystem"),
        // libvips through pkg-config, used only by CDepotImages when it is installed.
        .systemLibrary(name: "CVips", path: "Sources/CVips", pkgConfig: "vips", providers: [.apt(["libvips-dev"])]),
        // One-shot image work in C (libvips' calls are variadic and macros); stubs without libvips.
        .target(
            name: "CDepotImages",
            dependencies: vips ? ["CVips"] : [],
            cSettings: vips ? [.define("DEPOT_VIPS")] : []
        ),
        // The image renderer (variants, renditions) on its own threads, off Swift's cooperative pool.
        .target(
            name: "DepotImages",
            dependencies: [
                "DepotCore", "CDepotImages",
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // HMAC-SHA256 for short messages (URL tokens), with the SHA extensions where the CPU has them.
        .target(name: "CDepotCrypto", cSettings: fuzzCFlags),
        // The embedded backends: files on local disk and SQLite (GRDB).
        .target(
            name: "DepotLocal",
            dependencies: [
                "DepotCore", "CDepotSystem",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // S3-compatible object storage: a BlobStore over async-http-client with our own Signature V4.
        .target(
            name: "DepotS3",
            dependencies: [
                "DepotCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: fuzzedSwiftSettings
        ),
        // PostgreSQL metadata, for several servers sharing one database.
        .target(
            name: "DepotPostgres",
            dependencies: [
                "DepotCore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The composition root and the library product: `DepotServer` (a typed configuration →
        // backends → service → HTTP application), which `depot serve` and the tests run, and
        // `StorageService.local` for Swift programs that embed the storage core alone. It reads
        // the access rules file (YAML, with Yams).
        .target(
            name: "Depot",
            dependencies: [
                "DepotCore", "DepotLocal", "DepotHTTP", "DepotS3", "DepotPostgres", "DepotImages",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        // Hummingbird application: middleware, controllers, the Assets API and download routes.
        .target(
            name: "DepotHTTP",
            dependencies: [
                "DepotCore", "CDepotSystem",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "AsyncAlgorithms", package: "swift-async-algorithms"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: fuzzedSwiftSettings
        ),
        // In-memory stores for unit tests and the helpers the test suites share.
        .target(
            name: "DepotTesting",
            dependencies: ["DepotCore", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        // The thin executable: configuration, composition root, commands.
        .executableTarget(
            name: "depot",
            dependencies: [
                "Depot", "DepotCore", "DepotLocal", "DepotHTTP", "DepotS3", "DepotPostgres", "CDepotSystem",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "DepotTests",
            dependencies: [
                "DepotCore", "DepotLocal", "DepotHTTP", "DepotTesting", "Depot", "DepotS3", "DepotPostgres", "CDepotCrypto", "DepotImages",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)

if fuzzing {
    package.targets.append(
        // One libFuzzer executable for every parser that reads request bytes: `depot-fuzz
        // --target=NAME [libFuzzer options] [corpus dirs]` (fuzz/README.md).
        .executableTarget(
            name: "depot-fuzz",
            dependencies: [
                "DepotCore", "DepotHTTP", "DepotS3",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "fuzz/Sources",
            swiftSettings: fuzzedSwiftSettings + [.unsafeFlags(["-parse-as-library"])],
            // lld: SwiftPM points `main` at the module's entry point with --defsym, which gold
            // refuses beside libFuzzer's own `main`.
            linkerSettings: [.unsafeFlags(["-sanitize=fuzzer,address", "-use-ld=lld"])]
        )
    )
}
