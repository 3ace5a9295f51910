import DepotCore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// A JSON request body read the way upstream's schema validation reads it: numeric strings count
/// as integers, `"true"`/`"false"` as booleans, unknown fields are ignored, and an empty body is `{}`.
struct SupabaseBody {
    let fields: [String: Any]

    static func read(_ request: Request, limit: Int = JSONBodyLimit.small) async throws -> SupabaseBody {
        let buffer = try await request.collectBody(upTo: limit)
        if buffer.readableBytes == 0 { return SupabaseBody(fields: [:]) }
        guard let object = try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as? [String: Any] else {
            throw StorageError.invalidRequest("body must be a JSON object")
        }
        return SupabaseBody(fields: object)
    }

    init(fields: [String: Any]) { self.fields = fields }

    func has(_ key: String) -> Bool { fields[key] != nil }
    func isNull(_ key: String) -> Bool { fields[key] is NSNull }

    func string(_ key: String) throws(StorageError) -> String? {
        guard let v = fields[key], !(v is NSNull) else { return nil }
        guard let s = v as? String else { throw .invalidRequest("body/\(key) must be string") }
        return s
    }

    func requiredString(_ key: String) throws(StorageError) -> String {
        guard let s = try string(key) else { throw .invalidRequest("body must have required property '\(key)'") }
        return s
    }

    func int(_ key: String) throws(StorageError) -> Int64? {
        guard let v = fields[key], !(v is NSNull) else { return nil }
        if let s = v as? String, let n = Int64(s.trimmingCharacters(in: .whitespaces)) { return n }
        if let n = v as? NSNumber, !Self.isBool(n), n.doubleValue == n.doubleValue.rounded(), abs(n.doubleValue) < 9e15 {
            return n.int64Value
        }
        throw .invalidRequest("body/\(key) must be integer")
    }

    func bool(_ key: String) throws(StorageError) -> Bool? {
        guard let v = fields[key], !(v is NSNull) else { return nil }
        if let s = v as? String {
            switch s {
            case "true": return true;
            case "false": return false;
            default: break
            }
        } else if let n = v as? NSNumber, Self.isBool(n) || n == 0 || n == 1 {
            return n.boolValue
        }
        throw .invalidRequest("body/\(key) must be boolean")
    }

    func strings(_ key: String) throws(StorageError) -> [String]? {
        guard let v = fields[key], !(v is NSNull) else { return nil }
        guard let a = v as? [Any], let s = a as? [String] else { throw .invalidRequest("body/\(key) must be array of strings") }
        return s
    }

    func object(_ key: String) -> SupabaseBody? {
        (fields[key] as? [String: Any]).map(SupabaseBody.init(fields:))
    }

    private static func isBool(_ n: NSNumber) -> Bool {
        #if canImport(Darwin)
            return CFGetTypeID(n) == CFBooleanGetTypeID()
        #else
            return String(cString: n.objCType) == "c" || type(of: n) == type(of: NSNumber(value: true))
        #endif
    }
}

/// Supabase's wire shapes, written with ``JSONWriter`` so key order and explicit nulls are exact.
enum SupabaseJSON {
    /// An object's `id`: its blob id laid out as a UUID (a new one on every overwrite).
    static func uuid(_ id: BlobID) -> String {
        let h = Array(id.rawValue.utf8)
        guard h.count == 32 else { return id.rawValue }
        func part(_ r: Range<Int>) -> String { String(decoding: h[r], as: UTF8.self) }
        return "\(part(0..<8))-\(part(8..<12))-\(part(12..<16))-\(part(16..<20))-\(part(20..<32))"
    }

    static func response(_ build: (inout JSONWriter) -> Void) -> Response {
        var json = JSONWriter(capacity: 512)
        build(&json)
        return JSONResponse.make(json: json.buffer)
    }

    /// A flat object of string members, in the given order.
    static func object(_ members: KeyValuePairs<String, String>) -> Response {
        response { json in
            json.beginObject()
            for (k, v) in members {
                json.key(k)
                json.string(v)
            }
            json.endObject()
        }
    }

    static func message(_ text: String) -> Response { object(["message": text]) }

    static func bucket(_ b: BucketRecord, into json: inout JSONWriter, withType: Bool) {
        json.beginObject()
        json.key("id"); json.string(b.name)
        json.key("name"); json.string(b.name)
        json.key("owner"); json.string(b.owner ?? "")
        json.key("public"); json.bool(b.isPublic)
        json.key("file_size_limit"); json.int(b.fileSizeLimit)
        json.key("allowed_mime_types")
        if let types = b.allowedMimeTypes {
            json.beginArray()
            for t in types { json.string(t) }
            json.endArray()
        } else {
            json.null()
        }
        if !b.variants.isEmpty {
            json.key("variants")
            json.beginArray()
            for v in b.variants { json.string(v.description) }
            json.endArray()
        }
        // Depot's: the bucket's own access rules (kept as checked, sorted JSON).
        if let rules = b.rules {
            json.key("rules")
            json.raw(rules.utf8)
        }
        json.key("created_at"); json.string(HTTPDate.iso8601(b.createdAt))
        json.key("updated_at"); json.string(HTTPDate.iso8601(b.updatedAt))
        if withType { json.key("type"); json.string("STANDARD") }
        json.endObject()
    }

    /// Upstream's system metadata of an object.
    static func systemMetadata(_ r: ObjectRecord, into json: inout JSONWriter) {
        json.beginObject()
        json.key("eTag"); json.string(r.etag)
        json.key("size"); json.int(r.size)
        json.key("mimetype"); json.string(r.contentType)
        json.key("cacheControl"); json.string(r.cacheControl ?? "no-cache")
        json.key("lastModified"); json.string(HTTPDate.iso8601(r.updatedAt))
        json.key("contentLength"); json.int(r.size)
        json.key("httpStatusCode"); json.int(200)
        json.endObject()
    }

    /// User metadata (a JSON object stored as text), or null.
    static func userMetadata(_ r: ObjectRecord, into json: inout JSONWriter) {
        if let m = r.metadata { json.raw(Array(m.utf8)) } else { json.null() }
    }

    /// A listing entry: an object's fields, or a folder's name with nulls.
    static func entry(name: String, _ r: ObjectRecord?, key: String? = nil, into json: inout JSONWriter) {
        json.beginObject()
        json.key("name"); json.string(name)
        if let key { json.key("key"); json.string(key) }
        if let r {
            let updated = HTTPDate.iso8601(r.updatedAt)
            json.key("id"); json.string(uuid(r.blobID))
            json.key("updated_at"); json.string(updated)
            json.key("created_at"); json.string(HTTPDate.iso8601(r.createdAt))
            json.key("last_accessed_at"); json.string(updated)
            json.key("metadata"); systemMetadata(r, into: &json)
        } else {
            for k in ["id", "updated_at", "created_at", "last_accessed_at", "metadata"] {
                json.key(k); json.null()
            }
        }
        json.endObject()
    }

    /// A deleted row, as `remove` returns it.
    static func row(_ r: ObjectRecord, into json: inout JSONWriter) {
        json.beginObject()
        json.key("name"); json.string(r.path.string)
        json.key("bucket_id"); json.string(r.bucket)
        // What anon wrote is charged to `Identity.anonymousOwner`; upstream shows no owner.
        let owner = r.owner.flatMap { $0 == Identity.anonymousOwner ? nil : $0 } ?? ""
        json.key("owner"); json.string(owner)
        json.key("owner_id"); json.string(owner)
        json.key("version"); json.string(uuid(r.blobID))
        json.key("id"); json.string(uuid(r.blobID))
        json.key("updated_at"); json.string(HTTPDate.iso8601(r.updatedAt))
        json.key("created_at"); json.string(HTTPDate.iso8601(r.createdAt))
        json.key("last_accessed_at"); json.string(HTTPDate.iso8601(r.updatedAt))
        json.key("metadata"); systemMetadata(r, into: &json)
        json.key("user_metadata"); userMetadata(r, into: &json)
        json.endObject()
    }
}

extension JSONWriter {
    mutating func int(_ value: Int64?) {
        guard let value else { return null() }
        raw(Array(String(value).utf8))
    }

    mutating func int(_ value: Int) { int(Int64(value)) }

    mutating func bool(_ value: Bool) { raw(Array((value ? "true" : "false").utf8)) }

    mutating func null() { raw(Array("null".utf8)) }

    mutating func optionalString(_ value: String?) {
        if let value { string(value) } else { null() }
    }
}
