import Crypto
import Foundation
import NIOCore

/// A resumable upload (TUS) under way: where its object goes, who may continue it, and until when.
/// Its bytes so far are the store's (``ResumableStore``); its offset is how many of them are
/// durable.
public struct ResumableUpload: Sendable, Codable, Equatable {
    /// Random, 32 lowercase hex digits; the last segment of the upload's URL.
    public var id: String
    public var bucket: String
    public var path: String
    /// Who the object is charged to (``Identity/owner``); only a caller with the same owner and
    /// role continues the upload.
    public var owner: String?
    public var role: String
    public var upsert: Bool
    /// The declared `Upload-Length`: the object's exact size.
    public var length: Int64
    public var contentType: String?
    public var cacheControl: String?
    public var userMetadata: String?
    public var createdAt: Date
    public var expiresAt: Date
    /// The upload URL intent whose token (`x-signature`) alone continues this upload; nil for one
    /// created by a caller's token (then only the same owner and role continue it).
    public var intentID: String?
    /// The Assets API's rule: the bytes must be exactly `contentType` (sniffed), not whatever the
    /// bucket accepts. Nil for the Storage API's uploads.
    public var exactType: Bool?
    /// The SHA-256 hex the whole object must match, when declared.
    public var checksum: String?
    /// Set once the object is committed: the record stays (without bytes) until it expires, so
    /// that a client asking again learns the upload is complete.
    public var finishedAt: Date?

    public init(
        id: String, bucket: String, path: String, owner: String?, role: String, upsert: Bool, length: Int64,
        contentType: String?, cacheControl: String?, userMetadata: String?, createdAt: Date, expiresAt: Date,
        intentID: String? = nil, exactType: Bool? = nil, checksum: String? = nil
    ) {
        self.id = id
        self.bucket = bucket
        self.path = path
        self.owner = owner
        self.role = role
        self.upsert = upsert
        self.length = length
        self.contentType = contentType
        self.cacheControl = cacheControl
        self.userMetadata = userMetadata
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.intentID = intentID
        self.exactType = exactType
        self.checksum = checksum
    }

    /// The id of the upload an upload URL's intent may have: one per intent, so that its
    /// single-use token starts at most one upload.
    public static func id(forIntent intent: String) -> String {
        String(SHA256.hash(data: Data(("resumable:" + intent).utf8)).hexString.prefix(32))
    }

    /// Whether `id` has the form ids are made in (checked before it names a file).
    public static func isValidID(_ id: String) -> Bool {
        id.utf8.count == 32 && id.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    public static func newID() -> String {
        var g = SystemRandomNumberGenerator()
        return (0..<2).map { _ in
            let s = String(g.next() as UInt64, radix: 16)
            return String(repeating: "0", count: 16 - s.utf8.count) + s
        }.joined()
    }
}

/// The staged bytes of resumable uploads, until the finished upload is ingested as an object.
///
/// Durability: ``append(id:at:limit:body:observe:)`` returns only once the appended bytes are on
/// disk, so an acknowledged offset survives a crash; the record itself is durable once
/// ``create(_:)`` returns. One append at a time per upload: a second one while the first runs is
/// refused with `.conflict`.
public protocol ResumableStore: Sendable {
    /// Stores a new upload (its place held by ``reserve(_:most:now:)``).
    /// - Throws: `.conflict` when an upload with its id exists.
    func create(_ upload: ResumableUpload) async throws
    /// The upload and its durable offset (its length once finished), or nil when there is none.
    func upload(id: String) async throws -> (upload: ResumableUpload, offset: Int64)?
    /// Appends `body` at `offset`, which must be the upload's current offset (else `.conflict`),
    /// refusing past `limit` bytes in all (`.payloadTooLarge`, nothing of this body kept).
    /// `observe` sees every chunk before it is written; what it throws ends the append with
    /// nothing of this body kept. A body that fails (the client went away) keeps what was
    /// written of it when `keepPartial` (durable), else nothing; the append then throws
    /// `.invalidRequest`.
    /// - Returns: the new offset, durable.
    func append<Body: AsyncSequence>(
        id: String, at offset: Int64, limit: Int64, keepPartial: Bool, body: Body, observe: (ByteBuffer) async throws -> Void
    ) async throws -> Int64 where Body.Element == ByteBuffer
    /// The staged bytes' file, when they are one local file (a blob store on the same file system
    /// may then take it without a copy: ``BlobFiles/adopt(file:as:)``).
    func localFile(id: String) -> String?
    /// The first `count` bytes staged (fewer when fewer are there).
    func head(id: String, count: Int) async throws -> ByteBuffer
    /// Drops what was appended past `offset` (a body whose checksum did not match).
    func truncate(id: String, to offset: Int64) async throws
    /// Streams the staged bytes in order, in bounded chunks.
    func read(id: String, into consume: (ByteBuffer) async throws -> Void) async throws
    /// Marks the upload finished (its object is committed) and drops its bytes; the record stays
    /// until it expires, and no longer counts in ``openUploads(owner:now:)``.
    func finish(id: String, at date: Date) async throws
    /// Removes the upload and its bytes; a missing one is not an error.
    func delete(id: String) async throws
    /// Ids of uploads that expired before `date` (for garbage collection).
    func expired(before date: Date) async throws -> [String]
    /// Holds `upload`'s place among its owner's unfinished uploads, before ``create(_:)``, and
    /// returns the bytes they declare with it; atomic, so uploads created at once are counted one
    /// after the other. ``release(_:)`` gives the place back when the upload is not created.
    /// - Throws: `.rateLimited` when the owner has `most` (0: no limit) unexpired ones.
    func reserve(_ upload: ResumableUpload, most: Int, now: Date) async throws -> Int64
    func release(_ upload: ResumableUpload) async
    /// How many unfinished, unexpired uploads `owner` has, and the bytes they declared.
    func openUploads(owner: String?, now: Date) async -> (count: Int, bytes: Int64)
}
