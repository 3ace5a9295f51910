import DepotCore
@testable import DepotHTTP
import HTTPTypes
import Hummingbird

/// Object paths and percent-decoding: `ObjectPath(percentEncoded:)` (URL paths),
/// `ObjectPath(_:)` (JSON strings), `PercentEncoding`, and `{bucket}/{path}` after a route prefix
/// as the Storage API's routes read it, and the download fast path's split of a target
/// (`PipelineDownloads.route(of:)`). Input: one raw path; a second line, when present, is a
/// second path to compare with the first (and to read as an access rule's path template).
enum PathTarget {
    static func run(_ input: FuzzInput) {
        let fields = input.lines(maxSplits: 1)
        let first = fields[0]
        let a = parse(first[...])
        _ = parse(input.text[...])
        if fields.count == 2, let a, let b = parse(fields[1][...]) {
            // Order and equality are the bytes'.
            check((a == b) == a.string.bytesEqual(b.string), "== is not byte equality")
            check(a == b || ((a < b) != (b < a)), "< is not a strict order")
            if a == b { check(a.hashValue == b.hashValue, "equal paths hash apart") }
            _ = a.isOwned(by: b.owner)
            checkAccessRules(a, b)
        }

        // The Storage API's `{bucket}/{path...}` and the Assets API's `/v1/assets/{path...}`,
        // read from a request's raw URI.
        if let (bucket, path) = try? Request.bucketAndPath(first[...]) {
            check((try? BucketRecord.validate(name: bucket)) != nil, "bucket \(bucket.debugDescription) accepted")
            check(ObjectPath(canonical: path.string) == path, "bucketAndPath gave a non-canonical path")
        }
        // The download fast path's split of a request target (route prefix, `{bucket}/{path}`,
        // query), on the raw input and under each of its routes: the parts are the target's bytes.
        for target in [first] + PipelineDownloads.Route.allCases.map({ $0.prefix + first }) {
            guard let (route, rest, query) = PipelineDownloads.route(of: target) else {
                check(!PipelineDownloads.Route.allCases.contains { target.hasBytePrefix($0.prefix) }, "route of \(target.debugDescription) not found")
                continue
            }
            let joined = route.prefix + rest + (query.map { "?" + $0 } ?? "")
            check(joined.bytesEqual(target), "route of \(target.debugDescription) split as \(route), \(rest), \(query as Any)")
            check(!rest.utf8.contains(UInt8(ascii: "?")), "a query inside the path of \(target.debugDescription)")
        }
        let request = Request(
            head: HTTPRequest(method: .get, scheme: "http", authority: "depot", path: "/v1/assets/" + first), body: RequestBody(buffer: .init()))
        _ = try? request.objectPath(after: "/v1/assets/")
        let storage = Request(
            head: HTTPRequest(method: .get, scheme: "http", authority: "depot", path: "/storage/v1/object/" + first),
            body: RequestBody(buffer: .init()))
        _ = try? storage.bucketAndPath(after: "/storage/v1/object/")
        _ = try? storage.segment(after: "/storage/v1/object/")
    }

    /// The access rules on request names: the built-in rule is the tenant rule; a template
    /// made of `b` (when it compiles) matches exactly what it says, its folders and listing scan
    /// hold every name it matches.
    static func checkAccessRules(_ a: ObjectPath, _ b: ObjectPath) {
        let user = Identity(subject: b.owner, role: .authenticated, claims: ["team": b.lastSegment])
        let owned = a.isOwned(by: b.owner) && a.segments.count > 1
        check(AccessPolicy.builtIn.allows(user, .read, bucket: "x", path: a) == owned, "the built-in rule is not the tenant rule for \(a)")
        guard let template = try? PathTemplate(b.string) else { return }
        let literal = !b.string.contains("*") && !b.string.contains("{")
        let matches = template.matches(a.string, for: user)
        if literal { check(matches == (a == b), "literal template \(b) matches \(a): \(matches)") }
        guard matches else { return }
        let segments = a.segments
        for n in 1..<segments.count {
            let folder = segments[..<n].joined(separator: "/") + "/"
            check(template.mayMatchInside(folder: folder, for: user), "\(b) matches \(a) but not inside \(folder)")
        }
        let policy = AccessPolicy(
            rules: [AccessRule(name: "fuzz", buckets: nil, roles: [.authenticated], operations: .objects, paths: [template])], source: "fuzz")
        let scan = policy.listScan(user, bucket: "x", prefix: "")
        check(scan.map { a.string.hasBytePrefix($0) } ?? false, "a listing of \(b) scans \(scan.debugDescription), missing \(a)")
    }

    /// Parses `raw` as a URL path and checks what holds for every accepted path.
    static func parse(_ raw: Substring) -> ObjectPath? {
        // Percent-decoding: whatever decodes re-encodes to something that decodes back.
        if let decoded = PercentEncoding.decode(raw) {
            let encoded = PercentEncoding.encodeSegment(decoded)
            check(PercentEncoding.decode(encoded[...]) == decoded, "encodeSegment does not round-trip \(decoded.debugDescription)")
        }
        _ = PercentEncoding.decodeQueryComponent(raw)

        // A decoded string: the one-pass ASCII check and the general validation agree.
        let plain = String(raw)
        let direct = try? ObjectPath(plain)
        let general = try? ObjectPath(
            segments: plain.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).map { String(Substring($0)) })
        check(direct == general, "ObjectPath(_:) and ObjectPath(segments:) disagree on \(plain.debugDescription)")

        guard let path = try? ObjectPath(percentEncoded: raw) else { return nil }
        // Canonical: its string and its URL form name the same path again.
        check(ObjectPath(canonical: path.string) == path, "\(path.string.debugDescription) is not canonical")
        check(
            (try? ObjectPath(percentEncoded: path.percentEncoded[...])) == path, "percentEncoded does not round-trip \(path.string.debugDescription)")
        check(path.string.utf8.count <= ObjectPath.maxBytes, "longer than maxBytes")
        let segments = path.segments
        check(
            !segments.isEmpty && segments.allSatisfy { (try? ObjectPath.validate(segment: $0)) != nil },
            "an invalid segment in \(path.string.debugDescription)")
        check(path.owner == segments[0] && path.lastSegment == segments[segments.count - 1], "owner or last segment wrong")
        check(path.isOwned(by: segments[0]), "not owned by its first segment")
        return path
    }
}

extension ObjectPath {
    /// The path `string` names, or nil.
    init?(canonical string: String) {
        guard let p = try? ObjectPath(string) else { return nil }
        self = p
    }
}
