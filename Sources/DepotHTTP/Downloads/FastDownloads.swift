import DepotCore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// What the fast path may serve, and the answer it gives.
struct FastDownloads: Sendable {
    struct Answer {
        enum Body {
            /// HEAD: the headers alone.
            case none
            case bytes(ByteBuffer)
            /// A local file of exactly `size` bytes, sent with `sendfile`.
            case file(path: String, size: Int64)
        }
        var head: HTTPResponseHead
        var body: Body
        var route: String
    }

    static let signPrefix = "/storage/v1/object/sign/"
    static let publicPrefix = "/storage/v1/object/public/"

    let service: StorageService
    let metrics: DepotMetrics
    let serverName: String?
    let dates = DateHeader()
    let objectHeaders = ObjectHeaderCache()
    /// Opens files off the event loop.
    let fileIO = NonBlockingFileIO(threadPool: .singleton)

    func answer(_ request: HTTPRequestHead) -> Answer? {
        let isGet = request.method == .GET
        guard isGet || request.method == .HEAD, request.version == .http1_1, request.isKeepAlive else { return nil }
        let target = request.uri
        let fields = request.headers
        // Only plain requests: everything conditional, ranged or cross-origin takes the full path.
        guard !fields.contains(name: "range"), !fields.contains(name: "if-none-match"), !fields.contains(name: "if-range"),
            !fields.contains(name: "if-modified-since"),
            !fields.contains(name: "origin"), !fields.contains(name: "expect")
        else { return nil }
        let query = target.utf8.firstIndex(of: UInt8(ascii: "?"))
        let path = target[..<(query ?? target.endIndex)]
        let download: CachedDownload
        let cacheControl: String
        let route: String
        if path.utf8.starts(with: Self.signPrefix.utf8) {
            guard let query, let token = Self.token(in: target[target.index(after: query)...]),
                let (bucket, objectPath) = try? Request.bucketAndPath(path.dropFirst(Self.signPrefix.count)),
                let hit = service.cachedSignedDownload(bucket: bucket, path: objectPath, token: token)
            else { return nil }
            download = hit
            cacheControl = ObjectRoutesController.signedCacheControl(hit.expiresAt ?? 0, service)
            route = ObjectRoutesController.signedRoute
        } else if path.utf8.starts(with: Self.publicPrefix.utf8) {
            guard query.map({ Self.token(in: target[target.index(after: $0)...]) == "" }) ?? true,
                let (bucket, objectPath) = try? Request.bucketAndPath(path.dropFirst(Self.publicPrefix.count)),
                let hit = service.cachedPublicDownload(bucket: bucket, path: objectPath)
            else { return nil }
            download = hit
            cacheControl = ObjectRoutesController.publicCacheControl(hit.object, service)
            route = ObjectRoutesController.publicRoute
        } else {
            return nil
        }
        let object = download.object
        // Active content is sent as an attachment: the full path writes that header.
        guard !MediaSniffer.isActiveContent(object.contentType) else { return nil }
        let body: Answer.Body
        let size: Int
        switch download.body {
        case .bytes(let bytes):
            size = bytes.readableBytes
            body = isGet ? .bytes(bytes) : .none
        case .file(let path):
            size = Int(object.size)
            body = isGet ? .file(path: path, size: object.size) : .none
        }
        var headers = objectHeaders.headers(for: object, size: size)
        headers.add(name: "Cache-Control", value: cacheControl)
        headers.add(name: "Date", value: dates.current())
        if let serverName { headers.add(name: "Server", value: serverName) }
        return Answer(head: HTTPResponseHead(version: .http1_1, status: .ok, headers: headers), body: body, route: route)
    }

    /// Counts an answer as it is sent.
    func record(_ answer: Answer) {
        metrics.recordRequest(route: answer.route, status: 200)
        switch answer.body {
        case .none: metrics.recordMemoryDownload()
        case .bytes(let bytes):
            metrics.recordMemoryDownload()
            metrics.recordBytesOut(bytes.readableBytes)
        case .file(_, let size):
            metrics.recordFileDownload()
            metrics.recordBytesOut(Int(size))
        }
    }

    /// The `token` of a query holding nothing the full path would act on (no `download`), written
    /// without escapes. `""` when there is no token; `nil` when the query is not that simple.
    static func token(in query: Substring) -> String? {
        var query = query
        return query.withUTF8 { bytes -> String? in
            var token: Slice<UnsafeBufferPointer<UInt8>>? = nil
            var start = 0
            while start < bytes.count {
                var end = start
                while end < bytes.count && bytes[end] != UInt8(ascii: "&") { end += 1 }
                let item = bytes[start..<end]
                start = end + 1
                if item.starts(with: "token=".utf8) {
                    let value = item.dropFirst(6)
                    guard token == nil, !value.isEmpty,
                        !value.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") })
                    else { return nil }
                    token = value
                } else if item.starts(with: "download".utf8) {
                    return nil
                }
            }
            return token.map { String(decoding: UnsafeBufferPointer(rebasing: $0), as: UTF8.self) } ?? ""
        }
    }
}

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
        var fields = DownloadResponder.headers(for: object, cacheControl: "", download: nil)
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

/// The `Date` header's value, formatted once per second.
final class DateHeader: Sendable {
    private let cached = Mutex<(second: Int64, value: String)>((-1, ""))

    func current() -> String {
        let now = Date()
        let second = Int64(now.timeIntervalSince1970)
        return cached.withLock { c in
            if c.second != second { c = (second, HTTPDate.format(now)) }
            return c.value
        }
    }
}
