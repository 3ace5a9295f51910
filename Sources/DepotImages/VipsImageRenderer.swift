import CDepotImages
import DepotCore
import Foundation
import NIOPosix

/// ``ImageRenderer`` on libvips (through the C shim `CDepotImages`), on a thread pool of its own
/// so decoding never blocks Swift's cooperative pool or an event loop. Each image is checked on
/// its header before its pixels are decoded (``maxPixels``); only PNG, JPEG, WebP and GIF are read.
public final class VipsImageRenderer: ImageRenderer {
    public let isAvailable: Bool
    /// The most pixels (width × height of one frame) an image may have to be decoded.
    public let maxPixels: Int
    private let pool: NIOThreadPool

    /// Whether this build has libvips.
    public static var isBuiltIn: Bool { depot_images_available() == 1 }

    private static let started: Bool = depot_images_start() == 0

    /// - Parameter threads: images decoded at once.
    public init(threads: Int, maxPixels: Int = 40_000_000) {
        self.isAvailable = Self.isBuiltIn && Self.started
        self.maxPixels = maxPixels
        pool = NIOThreadPool(numberOfThreads: max(1, threads))
        pool.start()
    }

    deinit { pool.shutdownGracefully { _ in } }

    public func render(_ source: [UInt8], _ request: ImageRequest) async throws -> [UInt8] {
        guard isAvailable else {
            throw ImageError("image processing is off: Depot was built without libvips (apt-get install libvips-dev, then rebuild)", permanent: false)
        }
        let maxPixels = self.maxPixels
        return try await pool.runIfActive { try Self.renderNow(source, request, maxPixels: maxPixels) }
    }

    private static func renderNow(_ source: [UInt8], _ r: ImageRequest, maxPixels: Int) throws -> [UInt8] {
        var header = depot_image_header()
        var out: UnsafeMutableRawPointer? = nil
        var length = 0
        let rc = source.withUnsafeBytes { bytes in
            depot_images_render(
                bytes.baseAddress, bytes.count, Int32(r.width), Int32(r.height), fit(r.fit), format(r.format), Int32(r.quality),
                maxPixels, &header, &out, &length)
        }
        guard rc == 0, let out else { throw lastError(tooLarge: rc == -2) }
        defer { depot_images_free(out) }
        // Copied with the unsafeUninitializedCapacity form: Swift 6.3.1 -O miscompiles
        // Array(UnsafeRawBufferPointer(...)) in loops.
        return [UInt8](unsafeUninitializedCapacity: length) { dst, n in
            if length > 0 { dst.baseAddress!.initialize(from: out.assumingMemoryBound(to: UInt8.self), count: length) }
            n = length
        }
    }

    /// An image's format and size from its header (pixels not decoded), or nil when libvips cannot
    /// read it.
    public static func header(of bytes: [UInt8]) -> (loader: String, width: Int, height: Int, frames: Int)? {
        guard isBuiltIn, started else { return nil }
        var h = depot_image_header()
        let rc = bytes.withUnsafeBytes { depot_images_probe($0.baseAddress, $0.count, &h) }
        if let p = depot_images_error() { depot_images_free(p) }
        guard rc == 0 else { return nil }
        let loader = withUnsafeBytes(of: h.loader) { raw in String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self) }
        return (loader, Int(h.width), Int(h.height), Int(h.pages))
    }

    private static func lastError(tooLarge: Bool) -> ImageError {
        let p = depot_images_error()
        defer { if let p { depot_images_free(p) } }
        let text = (p.map { String(cString: $0) } ?? "").split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
            .map { $0.hasPrefix("depot: ") ? String($0.dropFirst(7)) : $0 }.joined(separator: "; ")
        // libvips fails some garbage (random bytes after a PNG signature) with no message at all.
        return ImageError(text.isEmpty ? "the image cannot be read" : text, permanent: true)
    }

    private static func fit(_ f: ImageFit) -> Int32 {
        switch f {
        case .cover: Int32(DEPOT_FIT_COVER)
        case .contain: Int32(DEPOT_FIT_CONTAIN)
        case .fill: Int32(DEPOT_FIT_FILL)
        }
    }

    private static func format(_ f: ImageFormat) -> Int32 {
        switch f {
        case .jpeg: Int32(DEPOT_FORMAT_JPEG)
        case .png: Int32(DEPOT_FORMAT_PNG)
        case .webp: Int32(DEPOT_FORMAT_WEBP)
        case .gif: Int32(DEPOT_FORMAT_GIF)
        }
    }
}
