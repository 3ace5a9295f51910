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
/// built once per version and kept for the hot objects. Cleared when full: it holds at most
/// `capacity` small header lists.
final class ObjectHeaderCache: Sendable {
    private struct Version: Hashable {
        let blob: BlobID
        let generation: Int64
        let updatedAt: Date
    }
    private let table = Mutex<[Version: HTTPHeaders]>([:])
    let capacity = 10_000

    func headers(for object: ObjectRecord, size: Int) -> HTTPHeaders {
        let version = Version(blob: object.blobID, generation: object.generation, updatedAt: object.updatedAt)
        if let hit = table.withLock({ $0[version] }) { return hit }
        // The router's headers for the object (validated by swift-http-types on the way), as NIO's.
        // Cache-Control is per request (a signed URL's remaining lifetime): added by the caller.
        var fields = DownloadResponder.headers(for: object, cacheControl: "", disposition: nil)
        fields[.cacheControl] = nil
        fields[.contentType] = object.contentType
        fields[.contentLength] = String(size)
        let headers = HTTPHeaders(fields.map { ($0.name.rawName, $0.value) })
        table.withLock { t in
            if t.count >= capacity { t.removeAll(keepingCapacity: true) }
            t[version] = headers
        }
        return headers
    }
}
