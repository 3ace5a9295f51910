import DepotCore
import Foundation
import Testing

/// The one download decision (issue 15): every renderer (the router's streamed answer, the
/// pipeline's, a redirect) writes what this decides.
@Suite("Download decision")
struct DownloadDecisionTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func object(type: String = "image/png", age: TimeInterval = 3600, size: Int64 = 100, cacheControl: String? = nil) throws -> ObjectRecord {
        ObjectRecord(
            bucket: "b", path: try ObjectPath("alice/j/pic.png"), owner: "alice", blobID: .random(), size: size, contentType: type,
            sha256: String(repeating: "ab", count: 32), cacheControl: cacheControl, createdAt: now.addingTimeInterval(-age))
    }

    func decide(_ o: ObjectRecord, _ c: DownloadConditions) throws -> DownloadDecision {
        try DownloadDecision.decide(o, c, cacheControl: "private, max-age=60", now: now)
    }

    @Test func wholeRangeAndUnsatisfiable() throws {
        let o = try object()
        #expect(try decide(o, DownloadConditions()).outcome == .whole)
        #expect(try decide(o, DownloadConditions()).status == 200)
        let part = try decide(o, DownloadConditions(range: "bytes=10-19"))
        #expect(part.outcome == .partial(10..<20) && part.status == 206 && part.contentRange == "bytes 10-19/100")
        #expect(try decide(o, DownloadConditions(range: "BYTES=-5")).bytes == 95..<100)
        let past = try decide(o, DownloadConditions(range: "bytes=100-"))
        #expect(past.outcome == .unsatisfiable && past.status == 416 && past.contentRange == "bytes */100")
        // Not one `bytes=` range: the whole object.
        #expect(try decide(o, DownloadConditions(range: "bytes=0-1,5-6")).outcome == .whole)
        #expect(try decide(o, DownloadConditions(range: "items=0-1")).outcome == .whole)
        #expect(try decide(o, DownloadConditions(range: "bytes=0-9223372036854775807")).outcome == .partial(0..<100))
    }

    @Test func conditionalRequests() throws {
        let o = try object()
        for inm in [o.etag, "W/" + o.etag, "*", "\"x\", \(o.etag)"] {
            #expect(try decide(o, DownloadConditions(ifNoneMatch: inm)).outcome == .notModified, "\(inm)")
        }
        #expect(try decide(o, DownloadConditions(ifNoneMatch: "\"other\"")).outcome == .whole)
        let modified = HTTPDate.format(o.updatedAt)
        #expect(try decide(o, DownloadConditions(ifModifiedSince: modified)).outcome == .notModified)
        #expect(try decide(o, DownloadConditions(ifModifiedSince: HTTPDate.format(o.updatedAt.addingTimeInterval(-1)))).outcome == .whole)
        // If-None-Match wins over If-Modified-Since (RFC 9110 §13.1.3).
        #expect(try decide(o, DownloadConditions(ifNoneMatch: "\"other\"", ifModifiedSince: modified)).outcome == .whole)
        // If-Range: the ETag, or Last-Modified once it is at least 60 s old; else the whole object.
        #expect(try decide(o, DownloadConditions(range: "bytes=0-0", ifRange: o.etag)).outcome == .partial(0..<1))
        #expect(try decide(o, DownloadConditions(range: "bytes=0-0", ifRange: "\"other\"")).outcome == .whole)
        #expect(try decide(o, DownloadConditions(range: "bytes=0-0", ifRange: modified)).outcome == .partial(0..<1))
        let young = try object(age: 30)
        #expect(try decide(young, DownloadConditions(range: "bytes=0-0", ifRange: HTTPDate.format(young.updatedAt))).outcome == .whole)
    }

    @Test func dispositionAndDownloadNames() throws {
        #expect(try decide(try object(), DownloadConditions()).disposition == nil)
        // A type not shown inline goes as an attachment named after the object; a plain name unquoted, as upstream.
        #expect(
            try decide(try object(type: "text/html"), DownloadConditions()).disposition == "attachment; filename=pic.png; filename*=UTF-8''pic.png")
        #expect(try decide(try object(type: "image/svg+xml"), DownloadConditions()).disposition != nil)
        let named = try decide(try object(), DownloadConditions(download: "été\u{202E}.png"))
        #expect(named.disposition == "attachment; filename=\"_t_.png\"; filename*=UTF-8''%C3%A9t%C3%A9.png")
        // An empty `download=` names nothing (`attachment`: upstream's `attachment;` is not valid); names that need it are quoted.
        #expect(try decide(try object(), DownloadConditions(download: "")).disposition == "attachment")
        #expect(try decide(try object(), DownloadConditions(download: "\u{202E}")).disposition == "attachment")
        // One file name: no path in it.
        #expect(
            try decide(try object(), DownloadConditions(download: "../..\\etc/passwd")).disposition
                == "attachment; filename=.._.._etc_passwd; filename*=UTF-8''.._.._etc_passwd")
        #expect(
            try decide(try object(), DownloadConditions(download: "report-v2.pdf")).disposition
                == "attachment; filename=report-v2.pdf; filename*=UTF-8''report-v2.pdf")
        #expect(
            try decide(try object(), DownloadConditions(download: "my \"q\" file;.pdf")).disposition
                == "attachment; filename=\"my _q_ file;.pdf\"; filename*=UTF-8''my%20%22q%22%20file%3B.pdf")
        #expect(throws: StorageError.self) { try decide(try object(), DownloadConditions(download: String(repeating: "a", count: 1025))) }
        #expect(try decide(try object(), DownloadConditions(download: String(repeating: "a", count: 1024))).disposition != nil)
    }

    @Test func cachePolicies() throws {
        #expect(CachePolicy.signed(expiresAt: 1_000, now: 940) == "private, max-age=60")
        #expect(CachePolicy.signed(expiresAt: 1_000, now: 2_000) == "private, max-age=0")
        var settings = StorageSettings()
        settings.publicCacheControl = "public, max-age=5"
        #expect(CachePolicy.publicURL(try object(), settings) == "public, max-age=5")
        #expect(CachePolicy.publicURL(try object(cacheControl: "max-age=9"), settings) == "max-age=9")
        let privateBucket = BucketRecord(name: "b", isPublic: false, createdAt: now)
        let publicBucket = BucketRecord(name: "b", isPublic: true, createdAt: now)
        #expect(CachePolicy.stored(try object(cacheControl: "public, max-age=9"), in: privateBucket) == "private, max-age=9")
        #expect(CachePolicy.stored(try object(), in: privateBucket) == "private, no-cache")
        #expect(CachePolicy.stored(try object(cacheControl: "public, max-age=9"), in: publicBucket) == "public, max-age=9")
    }
}
