import Foundation

/// Who asks for an object's bytes, and with what right.
public enum DownloadAccess: Sendable {
    /// A signed URL's `token` (signature, scope, expiry and the object's generation are checked).
    case signed(token: String)
    /// A public URL: the bucket must be public.
    case `public`
    /// `/object/authenticated/…`: a verified identity under the tenant rule (public buckets:
    /// anyone); never stored by shared caches.
    case authenticated(Identity)
    /// The Storage API's `GET /object/{bucket}/{path}`: the caller (`anon` without a token) under
    /// the tenant rule, with the object's stored cache policy.
    case caller(Identity)
}

/// The `Cache-Control` of each kind of download.
public enum CachePolicy {
    /// Signed links may be cached privately until they expire.
    public static func signed(expiresAt: Int64, now: Int64) -> String {
        "private, max-age=\(max(0, expiresAt - now))"
    }

    /// Public URLs: the object's stored policy, else the server's (`--public-cache-control`).
    public static func publicURL(_ object: ObjectRecord, _ settings: StorageSettings) -> String {
        object.cacheControl ?? settings.publicCacheControl
    }

    /// Authenticated URLs.
    public static let authenticated = "private, no-cache"

    /// The Storage API's policy: the stored one (`no-cache` when none); objects of private buckets
    /// are never stored by shared caches — their policy always says `private` (a stored `public`
    /// is dropped).
    public static func stored(_ object: ObjectRecord, in bucket: BucketRecord) -> String {
        let stored = object.cacheControl ?? "no-cache"
        if bucket.isPublic { return stored }
        let directives = stored.split(separator: ",").map { $0.trimmingSpaces() }.filter {
            !$0.isEmpty && $0.lowercased() != "public" && $0.lowercased() != "private"
        }
        return directives.isEmpty ? "private, no-cache" : "private, " + directives.joined(separator: ", ")
    }
}

/// The parts of a download request that change the answer, as the request wrote them (headers
/// and the `download=` query parameter). Parsed here, once, for every renderer.
public struct DownloadConditions: Sendable {
    public var range: String?
    public var ifNoneMatch: String?
    public var ifModifiedSince: String?
    public var ifRange: String?
    /// `download=`: serve as an attachment, under this name (empty: the object's own name).
    public var download: String?

    public init(range: String? = nil, ifNoneMatch: String? = nil, ifModifiedSince: String? = nil, ifRange: String? = nil, download: String? = nil) {
        self.range = range
        self.ifNoneMatch = ifNoneMatch
        self.ifModifiedSince = ifModifiedSince
        self.ifRange = ifRange
        self.download = download
    }

    /// The longest `download=` name taken (a header grows with it, and a long one would be
    /// dropped on the way).
    public static let maxDownloadName = 1024
}

/// What to answer to one download: which object, which status and bytes, which caching and
/// disposition. Decided once, in the core, from the stores (``StorageService/decideDownload``) or
/// from memory alone (``StorageService/decideDownloadFromMemory``); the HTTP layer only renders
/// it — streamed by the router, written in the pipeline, or as a redirect to the blob store.
public struct DownloadDecision: Sendable {
    public enum Outcome: Sendable, Equatable {
        /// 200 with the whole object.
        case whole
        /// 206 with one range of it.
        case partial(Range<Int64>)
        /// 304: the client's copy is current.
        case notModified
        /// 416: the range asked for lies past the end.
        case unsatisfiable
    }

    public let object: ObjectRecord
    public let outcome: Outcome
    /// `Cache-Control`: a signed URL's remaining lifetime, the object's or the server's public
    /// policy, or `private, no-cache` for identity downloads.
    public let cacheControl: String
    /// `Content-Disposition` when the object goes as an attachment (asked for with `download=`,
    /// or a type not served inline); `nil` when it is shown inline.
    public let disposition: String?

    /// The HTTP status code.
    public var status: Int {
        switch outcome {
        case .whole: return 200
        case .partial: return 206
        case .notModified: return 304
        case .unsatisfiable: return 416
        }
    }

    /// The bytes sent: the range, or the whole object (`nil` for 304 and 416).
    public var bytes: Range<Int64>? {
        switch outcome {
        case .whole: return 0..<object.size
        case .partial(let r): return r
        case .notModified, .unsatisfiable: return nil
        }
    }

    /// `Content-Range` for 206 and 416.
    public var contentRange: String? {
        switch outcome {
        case .partial(let r): return "bytes \(r.lowerBound)-\(r.upperBound - 1)/\(object.size)"
        case .unsatisfiable: return "bytes */\(object.size)"
        case .whole, .notModified: return nil
        }
    }

    /// Decides the answer about `object` (already resolved and allowed): conditional requests
    /// (If-None-Match, else If-Modified-Since; If-Range), one `bytes=` Range, the disposition.
    /// - Throws: `.invalidRequest` for a `download=` name longer than
    ///   ``DownloadConditions/maxDownloadName`` bytes.
    public static func decide(
        _ object: ObjectRecord, _ conditions: DownloadConditions, cacheControl: String, now: Date
    ) throws(StorageError) -> DownloadDecision {
        if let name = conditions.download, name.utf8.count > DownloadConditions.maxDownloadName {
            throw .invalidRequest("the download name is longer than \(DownloadConditions.maxDownloadName) bytes")
        }
        let disposition =
            conditions.download != nil || !MediaType.servesInline(object.contentType)
            ? ContentDisposition.attachment(download: conditions.download, path: object.path) : nil
        func decision(_ outcome: Outcome) -> DownloadDecision {
            DownloadDecision(object: object, outcome: outcome, cacheControl: cacheControl, disposition: disposition)
        }
        if let inm = conditions.ifNoneMatch {
            if etagMatches(inm, object.etag) { return decision(.notModified) }
        } else if let ims = conditions.ifModifiedSince.flatMap(HTTPDate.parse),
            object.updatedAt.timeIntervalSince1970.rounded(.down) <= ims.timeIntervalSince1970
        {
            // Only without If-None-Match (RFC 9110 §13.1.3), at the header's one-second precision.
            return decision(.notModified)
        }
        if let range = conditions.range, ifRangeAllows(conditions.ifRange, object, now: now) {
            switch ByteRangeRequest.parse(range, size: object.size) {
            case .none: break
            case .unsatisfiable: return decision(.unsatisfiable)
            case .range(let r): return decision(.partial(r))
            }
        }
        return decision(.whole)
    }

    /// Whether an `If-None-Match` list names `etag` (or is `*`); weak tags compare equal.
    public static func etagMatches(_ header: String, _ etag: String) -> Bool {
        header.split(separator: ",").contains { item in
            let t = item.trimmingSpaces()
            return t == "*" || t == etag || t == "W/" + etag
        }
    }

    /// `If-Range` (RFC 9110 §13.1.5): the range applies when the header is the object's ETag, or
    /// a date equal to its `Last-Modified` once that is a strong validator — at least 60 s old
    /// (§8.8.2.2), so that no second replacement within the same second can share it; anything
    /// else gets the whole object.
    static func ifRangeAllows(_ ifRange: String?, _ object: ObjectRecord, now: Date) -> Bool {
        guard let ifRange else { return true }
        if ifRange == object.etag { return true }
        let modified = object.updatedAt.timeIntervalSince1970.rounded(.down)
        guard now.timeIntervalSince1970 - modified >= 60, let date = HTTPDate.parse(ifRange) else { return false }
        return date.timeIntervalSince1970 == modified
    }
}

/// `Content-Disposition` values for downloads, as Supabase Storage writes them where a name is a
/// plain token, and correct (RFC 6266) where it is not.
public enum ContentDisposition {
    /// `attachment`, named after the `download=` name, or after the object's last segment when
    /// there is no `download=` (a type that is not shown inline). An empty `download=` names
    /// nothing: `attachment` (upstream writes `attachment;`, which RFC 6266 does not allow). A
    /// name is one file name: `/` and `\` become `_` (`../../etc/passwd` is `.._.._etc_passwd`).
    /// A plain name (letters, digits, `-._~`) goes unquoted, as upstream:
    /// `attachment; filename=report.pdf; filename*=UTF-8''report.pdf`. Any other name gets a
    /// quoted ASCII stand-in (`_` for what ASCII cannot say) and its UTF-8 form percent-encoded
    /// (upstream puts the percent-encoded form in both, which browsers show with its `%20`s when
    /// they read `filename`). Control and bidirectional characters are dropped: the name must
    /// not display as another.
    public static func attachment(download: String?, path: ObjectPath) -> String {
        let raw = download ?? path.lastSegment
        var name = ""
        name.unicodeScalars.append(
            contentsOf: raw.unicodeScalars.lazy.filter {
                $0.value >= 0x20 && $0.value != 0x7F && !ObjectPath.isBidiControl($0) && !ObjectPath.isHiddenControl($0)
            }.map { $0 == "/" || $0 == "\\" ? "_" : $0 })
        guard !name.isEmpty else { return "attachment" }
        let encoded = PercentEncoding.encodeSegment(name)
        if encoded == name { return "attachment; filename=\(name); filename*=UTF-8''\(name)" }
        let ascii = String(
            name.unicodeScalars.map { s -> Character in
                (s.isASCII && s.value >= 0x20 && s != "\"" && s != "\\" && s.value != 0x7F) ? Character(s) : "_"
            })
        return "attachment; filename=\"\(ascii)\"; filename*=UTF-8''\(encoded)"
    }
}
