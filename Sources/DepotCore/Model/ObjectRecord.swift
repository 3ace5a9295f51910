import Foundation
import Synchronization

/// The metadata row of one object. The object is visible only once this row is committed, and the
/// row always points at a blob that was made durable before the commit.
///
/// A value type whose fields live behind one reference (copied on write): a row goes from the
/// cache to the decision to the answer on every download, and copying it is one retain, not one
/// per string.
public struct ObjectRecord: Sendable, Equatable {
    private struct Fields: Equatable {
        var bucket: String
        var path: ObjectPath
        var owner: String?
        var blobID: BlobID
        var size: Int64
        var contentType: String
        var sha256: String
        var cacheControl: String?
        var metadata: String?
        var generation: Int64
        var createdAt: Date
        var updatedAt: Date
    }

    /// Mutated only while uniquely referenced (``write(_:)``), so shared copies never change.
    private final class Box: @unchecked Sendable {
        var fields: Fields
        /// A value derived from `fields` (``derived(_:orMake:)``), set once, retained here.
        let derived = Atomic<Unmanaged<Derived>?>(nil)
        init(_ fields: Fields) { self.fields = fields }
        deinit { derived.load(ordering: .acquiring)?.release() }

        func dropDerived() {
            derived.exchange(nil, ordering: .acquiringAndReleasing)?.release()
        }
    }

    /// What ``derived(_:orMake:)`` keeps, with its type.
    private final class Derived: Sendable {
        let type: ObjectIdentifier
        let value: any AnyObject & Sendable
        init(type: ObjectIdentifier, value: any AnyObject & Sendable) {
            self.type = type
            self.value = value
        }
    }

    private var box: Box

    private mutating func write(_ change: (inout Fields) -> Void) {
        if isKnownUniquelyReferenced(&box) {
            box.dropDerived()
        } else {
            box = Box(box.fields)
        }
        change(&box.fields)
    }

    /// A value a layer above works out from this version of the row alone (the HTTP layer's
    /// response headers), kept with the row for as long as the row is kept (in the row cache:
    /// found with one load, not looked up in a table of its own): `make`'s, the first time — or
    /// when a value of another type is kept, then not kept. A copy changed since starts without.
    public func derived<T: AnyObject & Sendable>(_ type: T.Type, orMake make: () -> T) -> T {
        let id = ObjectIdentifier(T.self)
        if let kept = box.derived.load(ordering: .acquiring)?.takeUnretainedValue() {
            return kept.type == id ? unsafeDowncast(kept.value, to: T.self) : make()
        }
        let value = make()
        let new = Unmanaged.passRetained(Derived(type: id, value: value))
        let (stored, current) = box.derived.compareExchange(expected: nil, desired: new, ordering: .acquiringAndReleasing)
        if !stored {
            // Another thread kept one first: that one is the row's.
            new.release()
            if let kept = current?.takeUnretainedValue(), kept.type == id { return unsafeDowncast(kept.value, to: T.self) }
        }
        return value
    }

    public var bucket: String {
        get { box.fields.bucket }
        set { write { $0.bucket = newValue } }
    }
    public var path: ObjectPath {
        get { box.fields.path }
        set { write { $0.path = newValue } }
    }
    public var owner: String? {
        get { box.fields.owner }
        set { write { $0.owner = newValue } }
    }
    public var blobID: BlobID {
        get { box.fields.blobID }
        set { write { $0.blobID = newValue } }
    }
    public var size: Int64 {
        get { box.fields.size }
        set { write { $0.size = newValue } }
    }
    public var contentType: String {
        get { box.fields.contentType }
        set { write { $0.contentType = newValue } }
    }
    /// Lowercase hex SHA-256 of the bytes.
    public var sha256: String {
        get { box.fields.sha256 }
        set { write { $0.sha256 = newValue } }
    }
    public var cacheControl: String? {
        get { box.fields.cacheControl }
        set { write { $0.cacheControl = newValue } }
    }
    /// User metadata as a JSON object string.
    public var metadata: String? {
        get { box.fields.metadata }
        set { write { $0.metadata = newValue } }
    }
    /// Changes on every flip, move and revoke; a download token is valid only while it matches.
    public var generation: Int64 {
        get { box.fields.generation }
        set { write { $0.generation = newValue } }
    }
    public var createdAt: Date {
        get { box.fields.createdAt }
        set { write { $0.createdAt = newValue } }
    }
    public var updatedAt: Date {
        get { box.fields.updatedAt }
        set { write { $0.updatedAt = newValue } }
    }

    public init(
        bucket: String, path: ObjectPath, owner: String?, blobID: BlobID, size: Int64,
        contentType: String, sha256: String, cacheControl: String? = nil, metadata: String? = nil,
        generation: Int64 = .newGeneration(), createdAt: Date, updatedAt: Date? = nil
    ) {
        box = Box(
            Fields(
                bucket: bucket, path: path, owner: owner, blobID: blobID, size: size, contentType: contentType, sha256: sha256,
                cacheControl: cacheControl, metadata: metadata, generation: generation, createdAt: createdAt,
                updatedAt: updatedAt ?? createdAt))
    }

    public static func == (a: ObjectRecord, b: ObjectRecord) -> Bool { a.box === b.box || a.box.fields == b.box.fields }

    public var key: ObjectKey { ObjectKey(bucket: bucket, path: path) }
    /// The strong ETag: the quoted SHA-256 prefix (unique per content).
    public var etag: String { "\"\(sha256.prefix(32))\"" }
}

extension ObjectRecord: CustomReflectable {
    /// Its fields, as a struct's (not the reference they sit behind): what a failed test and a
    /// `dump` show.
    public var customMirror: Mirror {
        Mirror(self, children: Mirror(reflecting: box.fields).children, displayStyle: .struct)
    }
}
