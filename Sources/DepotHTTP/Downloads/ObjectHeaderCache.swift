import DepotCore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import Synchronization

/// The headers that depend on the object version alone (ETag, Last-Modified, type, length …),
/// built once per version and kept with the row (``ObjectRecord/derived(_:orMake:)``: a row in
/// the row cache finds them with one load) and in a table of the versions in use
/// (``BoundedCache``: as many small header lists as the row cache holds rows, about 450 bytes
/// each), for rows read again and for other lengths.
final class ObjectHeaderCache: Sendable {
    private struct Version: Hashable {
        let blob: BlobID
        let generation: Int64
        let updatedAt: Date
        /// The `Content-Length` written (the object's size, or a part's).
        let size: Int
        /// The generation alone (random, new with every version: ``Int64/newGeneration()``) is
        /// hashed; equality still compares all four.
        func hash(into hasher: inout Hasher) { hasher.combine(generation) }
    }
    /// A version's headers, and the same written as they are on the wire (`name: value` and CRLF
    /// each, as NIO's response encoder writes them).
    final class Fields: Sendable {
        let headers: HTTPHeaders
        let wire: ByteBuffer
        init(headers: HTTPHeaders, wire: ByteBuffer) {
            self.headers = headers
            self.wire = wire
        }
    }
    private let table = BoundedCache<Version, Fields>(capacity: 100_000)

    /// The version's headers on the wire alone (what ``RecentAnswerFront`` writes).
    func wire(for object: ObjectRecord, size: Int) -> ByteBuffer {
        headers(for: object, size: size).wire
    }

    func headers(for object: ObjectRecord, size: Int) -> Fields {
        guard size == object.size else { return versionHeaders(for: object, size: size) }
        return object.derived(Fields.self) { versionHeaders(for: object, size: size) }
    }

    private func versionHeaders(for object: ObjectRecord, size: Int) -> Fields {
        let version = Version(blob: object.blobID, generation: object.generation, updatedAt: object.updatedAt, size: size)
        if let hit = table.value(for: version) { return hit }
        // The router's headers for the object, as NIO's. Cache-Control is per request (a signed
        // URL's remaining lifetime): added by the caller.
        var headers = HTTPHeaders()
        headers.reserveCapacity(12)
        for (name, value) in DownloadResponder.versionFields(of: object) { headers.add(name: name.rawName, value: value) }
        // Through swift-http-types, as the router's: a value is never written with a line break.
        headers.add(name: HTTPField.Name.contentType.rawName, value: HTTPField(name: .contentType, value: object.contentType).value)
        headers.add(name: HTTPField.Name.contentLength.rawName, value: String(size))
        var wire = ByteBuffer()
        Self.write(headers, to: &wire)
        let fields = Fields(headers: headers, wire: wire)
        // A version is never invalidated: a new one is another key.
        table.insert(fields, for: version, ifVersion: 0)
        return fields
    }

    /// Writes each header as NIO's response encoder does: `name: value`, CRLF.
    static func write<S: Sequence<(name: String, value: String)>>(_ headers: S, to out: inout ByteBuffer) {
        for (name, value) in headers {
            out.writeString(name)
            out.writeStaticString(": ")
            out.writeString(value)
            out.writeStaticString("\r\n")
        }
    }
}
