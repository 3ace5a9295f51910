// swift-tools-version:6.1
// In-process micro-benchmarks (ordo-one/benchmark): token mint and verify, path validation,
// sniffing, SHA-256. Run with `scripts/bench --micro` or, here, `swift package benchmark`.
import PackageDescription

let package = Package(
    name: "DepotMicroBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: "DepotPackage"),  // a link to the repository root, so the identity is fixed
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
    ],
    targets: [
        .executableTarget(
            name: "DepotMicro",
            dependencies: [
                .product(name: "Depot", package: "DepotPackage"),
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Benchmarks/DepotMicro",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    ]
)
