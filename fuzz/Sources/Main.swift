// depot-fuzz: libFuzzer targets for every parser that reads request bytes.
//
//   DEPOT_FUZZ=1 swift build --product depot-fuzz
//   .build/debug/depot-fuzz --target=range [libFuzzer options] [corpus dirs]
//
// `--target=` picks the parser family (libFuzzer ignores options that start with `--`, and passes
// them on to the processes it starts itself). scripts/fuzz runs them all; fuzz/README.md describes
// each target's input.

#if canImport(Glibc)
    import Glibc
#endif

/// libFuzzer's driver (compiler-rt, FuzzerDriver.cpp): runs the fuzzing loop with `callback`.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// Every target, by name.
let targets: [String: @Sendable (FuzzInput) -> Void] = [
    "range": RangeTarget.run,
    "path": PathTarget.run,
    "url-token": URLTokenTarget.run,
    "media-type": MediaTypeTarget.run,
    "upload-headers": UploadHeadersTarget.run,
    "multipart": MultipartTarget.run,
    "jwt": JWTTarget.run,
    "assets-json": AssetsJSONTarget.run,
    "supabase-json": SupabaseJSONTarget.run,
    "sigv4": SigV4Target.run,
    "request-head": RequestHeadTarget.run,
    "image-transform": ImageTransformTarget.run,
]

/// The target of this process, chosen once in `main` before libFuzzer calls in.
nonisolated(unsafe) var selected: @Sendable (FuzzInput) -> Void = { _ in }

/// libFuzzer's entry point: one input, 0 when it was handled (a crash or a failed `check` aborts).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    // Copied with `unsafeUninitializedCapacity` (Swift 6.3.1 at -O miscompiled
    // `Array(UnsafeRawBufferPointer(...))` in a loop).
    let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
        if let data, size > 0 { buffer.baseAddress!.initialize(from: data, count: size) }
        count = size
    }
    selected(FuzzInput(bytes))
    return 0
}

@main
enum DepotFuzz {
    static func main() {
        let names = CommandLine.arguments.compactMap { $0.hasPrefix("--target=") ? String($0.dropFirst(9)) : nil }
        guard names.count == 1, let target = targets[names[0]] else {
            let list = targets.keys.sorted().joined(separator: " ")
            writeToStandardError("usage: depot-fuzz --target=NAME [libFuzzer options] [corpus dirs]\ntargets: \(list)\n")
            exit(2)
        }
        selected = target
        // State a target builds once is built before the first input: libFuzzer's leak check
        // would otherwise count it against that input (and LeakSanitizer cannot follow every
        // Swift reference: an enum payload's pointer carries tag bits).
        if names[0] == "jwt" { _ = JWTTarget.jwt }
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, fuzzOneInput))
    }
}
