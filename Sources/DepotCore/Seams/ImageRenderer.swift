/// Makes image renditions (variants, transformations). The implementation, `VipsImageRenderer`
/// (DepotImages), uses libvips on threads of its own; a build without libvips has one that is not
/// ``isAvailable`` and refuses every image.
public protocol ImageRenderer: Sendable {
    /// False when this build cannot make images (no libvips): image work reports itself off.
    var isAvailable: Bool { get }
    /// Renders the first frame of `source` as `request` says.
    /// - Throws: ``ImageError`` (a poison input is `permanent`: no retry will read it).
    func render(_ source: [UInt8], _ request: ImageRequest) async throws -> [UInt8]
}

/// How to fit an image into the requested box (Supabase's `resize`).
public enum ImageFit: String, Sendable, Hashable, CaseIterable {
    /// Fills the box, cropped around the centre.
    case cover
    /// Inside the box, aspect ratio kept.
    case contain
    /// Stretched to the box.
    case fill
}

/// The formats Depot reads and writes.
public enum ImageFormat: String, Sendable, Hashable, CaseIterable {
    case jpeg, png, webp, gif

    public init?(contentType: String) {
        switch contentType {
        case "image/jpeg": self = .jpeg
        case "image/png": self = .png
        case "image/webp": self = .webp
        case "image/gif": self = .gif
        default: return nil
        }
    }

    public var contentType: String { "image/\(rawValue)" }
}

public struct ImageRequest: Sendable, Hashable {
    /// Pixels; 0 follows the image's aspect ratio from the other side (both 0: the image's size).
    public var width: Int
    public var height: Int
    public var fit: ImageFit
    public var format: ImageFormat
    /// 1–100, for JPEG and WebP.
    public var quality: Int

    public init(width: Int, height: Int, fit: ImageFit = .cover, format: ImageFormat, quality: Int = 80) {
        self.width = width
        self.height = height
        self.fit = fit
        self.format = format
        self.quality = quality
    }
}

/// Why an image could not be rendered.
public struct ImageError: Error, CustomStringConvertible, Sendable {
    public var message: String
    /// True for the input's fault (unreadable, too large, not an allowed format): retrying the
    /// same bytes cannot help.
    public var permanent: Bool
    public init(_ message: String, permanent: Bool) {
        self.message = message
        self.permanent = permanent
    }
    public var description: String { message }
}
