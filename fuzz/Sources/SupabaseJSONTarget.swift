import DepotCore
@testable import DepotHTTP
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The Storage API's JSON bodies: `SupabaseBody.read` (upstream's lenient reading: numeric strings
/// are integers, `"true"` is a boolean) and its accessors, as the bucket, object and listing
/// controllers call them — sizes (`file_size_limit`, `"10mb"`), `sortBy`, list-v2 cursors (`ListCursor`),
/// `metadata` overrides, object keys and bucket names. Input: the body.
enum SupabaseJSONTarget {
    static let keys = [
        "name", "id", "public", "file_size_limit", "allowed_mime_types", "prefixes", "bucketId", "destinationBucket",
        "sourceKey", "destinationKey", "copyMetadata", "metadata", "expiresIn", "paths", "prefix", "search", "limit",
        "offset", "cursor", "with_delimiter", "sortBy",
    ]

    static func run(_ input: FuzzInput) {
        let bytes = input.bytes
        runToCompletion {
            let request = Request(
                head: HTTPRequest(method: .post, scheme: "http", authority: "depot", path: "/storage/v1/bucket"),
                body: RequestBody(buffer: ByteBuffer(bytes: bytes)))
            let body: SupabaseBody
            do {
                body = try await SupabaseBody.read(request, limit: JSONBodyLimit.batch)
            } catch let e as StorageError {
                check(e.code == .invalidRequest || e.code == .payloadTooLarge, "read threw \(e.code)")
                return
            } catch {
                check(false, "read threw \(error)")
                return
            }
            visit(body, depth: 0)
            if let sizes = try? StorageBucketController.sizeLimit(body, "file_size_limit"), let n = sizes ?? nil {
                check(n >= 0, "negative file_size_limit \(n)")
            }
            for allowed in [[FolderSort.name], [.name, .createdAt, .updatedAt, .lastAccessedAt]] {
                if let (sort, _) = try? StorageListController.sortBy(body, allowed: allowed) { check(allowed.contains(sort), "sortBy \(sort)") }
            }
            // list-v2's cursor (upstream's `l:`/`o:`/`c:`/`a:` lines in base64): one that reads
            // writes back to one that reads the same.
            if let opaque = try? body.string("cursor"), let cursor = try? ListCursor.decode(opaque) {
                let again = try? ListCursor.decode(cursor.encoded())
                check(again == cursor, "cursor \(opaque) does not read back")
            }
            for key in ["name", "id", "bucketId", "destinationBucket"] {
                if let s = try? body.string(key) { _ = try? BucketRecord.validate(name: s) }
            }
            for key in ["sourceKey", "destinationKey", "prefix"] {
                if let s = try? body.string(key) { _ = try? ObjectPath(s) }
            }
            if let overrides = body.object("metadata") {
                for key in ["cacheControl", "mimetype"] {
                    if let s = try? overrides.string(key) { _ = SupabaseUpload.headerValue(s) }
                }
                if let s = try? overrides.string("cacheControl") { _ = SupabaseUpload.cacheControl(field: s) }
            }
            _ = SupabaseUpload.jsonObjectText(Data(bytes))
        }
    }

    /// Every accessor on every key (the known ones and the body's own), into nested objects.
    static func visit(_ body: SupabaseBody, depth: Int) {
        for key in Set(keys + body.fields.keys.prefix(32)) {
            _ = body.has(key)
            _ = body.isNull(key)
            accessor { try body.string(key) }
            accessor { try body.requiredString(key) }
            accessor { try body.int(key) }
            accessor { try body.bool(key) }
            accessor { try body.strings(key) }
            if let s = try? body.string(key) {
                if let n = StorageBucketController.parseSize(s) { check(n >= 0, "parseSize(\(s.debugDescription)) = \(n)") }
                _ = SupabaseUpload.cacheControl(field: s)
            }
            if depth < 4, let inner = body.object(key) { visit(inner, depth: depth + 1) }
        }
    }

    static func accessor<T>(_ get: () throws -> T) {
        do {
            _ = try get()
        } catch let e as StorageError {
            check(e.code == .invalidRequest, "accessor threw \(e.code)")
        } catch {
            check(false, "accessor threw \(error)")
        }
    }
}
