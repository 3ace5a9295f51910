import Foundation

/// Whether an asset is served by public URL or only by signed URL.
public enum Visibility: String, Sendable, Codable {
    case `private`
    case `public`

    /// `public` or `private`, else `.invalidRequest`.
    public static func parse(_ s: String) throws(StorageError) -> Visibility {
        guard let v = Visibility(rawValue: s) else { throw .invalidRequest("visibility must be 'public' or 'private'") }
        return v
    }
}

/// An object as the Assets API shows it.
public struct Asset: Sendable, Codable, Equatable {
    public var path: String
    /// A signed URL (private) or the public URL.
    public var url: String
    public var fileSize: Int64
    public var contentType: String
    /// SHA-256 hex of the bytes.
    public var checksum: String
    public var visibility: Visibility
    /// When `url` stops working; `nil` for public URLs.
    public var expiresAt: Date?
    public var createdAt: Date
    public var updatedAt: Date
    /// The image's variants and their states (upload responses and `GET /v1/assets/{path}`,
    /// for images when variants are made); absent otherwise.
    public var variants: [AssetVariant]? = nil
    /// For an object named as one of the server's variants (`{stem}_{W}x{H}{.ext}`, a `--variants`
    /// size): the name of the image it would be a variant of. Absent otherwise.
    public var variantOf: String? = nil
}

/// A presigned upload: the client PUTs exactly the declared bytes to `uploadUrl`.
public struct PresignedUpload: Sendable, Codable, Equatable {
    public var uploadUrl: String
    public var method: String
    public var headers: [String: String]
    public var path: String
    public var expiresAt: Date
}

/// The result of a batch signing request.
public struct SignedURLBatch: Sendable {
    public var urls: [String: String]
    public var expiresAt: Date
    public var errors: [String: StorageError]
}

/// The result of a batch delete.
public struct DeleteBatch: Sendable {
    public var deleted: [String]
    public var errors: [String: StorageError]
}

/// One page of a listing.
public struct AssetPage: Sendable {
    public var items: [Asset]
    public var nextCursor: String?
}

/// What the client said about an upload's body.
public struct UploadDeclaration: Sendable {
    /// The `Content-Type` the client declared, if any.
    public var contentType: String?
    /// The `Content-Length`, when known before reading.
    public var contentLength: Int64?
    /// A SHA-256 hex the bytes must match.
    public var sha256: String?

    public init(contentType: String? = nil, contentLength: Int64? = nil, sha256: String? = nil) {
        self.contentType = contentType
        self.contentLength = contentLength
        self.sha256 = sha256
    }
}

extension Asset {
    enum CodingKeys: String, CodingKey {
        case path, url, fileSize, contentType, checksum, visibility, expiresAt, createdAt, updatedAt, variants, variantOf
    }

    /// Encodes `expiresAt` as an explicit `null` for public assets, as the contract shows it.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(path, forKey: .path)
        try c.encode(url, forKey: .url)
        try c.encode(fileSize, forKey: .fileSize)
        try c.encode(contentType, forKey: .contentType)
        try c.encode(checksum, forKey: .checksum)
        try c.encode(visibility, forKey: .visibility)
        if let expiresAt { try c.encode(expiresAt, forKey: .expiresAt) } else { try c.encodeNil(forKey: .expiresAt) }
        try c.encode(createdAt, forKey: .createdAt)
        try c.encode(updatedAt, forKey: .updatedAt)
        try c.encodeIfPresent(variants, forKey: .variants)
        try c.encodeIfPresent(variantOf, forKey: .variantOf)
    }
}
