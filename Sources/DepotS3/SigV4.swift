import Crypto
import DepotCore
import Foundation

/// AWS Signature Version 4 for S3 (AWS's "Signature Version 4 signing process"): header-signed
/// requests and presigned query URLs. Paths are given *decoded* and encoded here exactly once (S3
/// does not normalise them); query parameters are given decoded too. `SigV4Tests` holds test
/// vectors computed with botocore and AWS's published examples.
public struct SigV4Signer: Sendable {
    public struct Credentials: Sendable, Redacted {
        public var accessKey: String
        public var secretKey: String
        public var sessionToken: String?
        public init(accessKey: String, secretKey: String, sessionToken: String? = nil) {
            self.accessKey = accessKey
            self.secretKey = secretKey
            self.sessionToken = sessionToken
        }
    }

    public static let unsignedPayload = "UNSIGNED-PAYLOAD"
    public static let emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    public let credentials: Credentials
    public let region: String
    public let service: String

    public init(credentials: Credentials, region: String, service: String = "s3") {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    // MARK: Building blocks

    /// UriEncode: every byte but `A–Z a–z 0–9 - _ . ~` (and `/` unless `encodeSlash`) as `%XX`.
    public static func uriEncode(_ s: String, encodeSlash: Bool) -> String {
        var out = [UInt8]()
        out.reserveCapacity(s.utf8.count)
        let hex = Array("0123456789ABCDEF".utf8)
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.append(b)
            case UInt8(ascii: "/") where !encodeSlash:
                out.append(b)
            default:
                out += [UInt8(ascii: "%"), hex[Int(b >> 4)], hex[Int(b & 0xF)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The canonical query: names and values encoded, sorted by encoded name then value.
    public static func canonicalQuery(_ items: [(name: String, value: String)]) -> String {
        let encoded: [(String, String)] = items.map { item in
            (uriEncode(item.name, encodeSlash: true), uriEncode(item.value, encodeSlash: true))
        }
        let sorted = encoded.sorted { a, b in a.0.bytesEqual(b.0) ? a.1.bytesPrecede(b.1) : a.0.bytesPrecede(b.0) }
        return sorted.map { pair in pair.0 + "=" + pair.1 }.joined(separator: "&")
    }

    /// `yyyyMMdd'T'HHmmss'Z'` in UTC.
    public static func amzDate(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        func two(_ v: Int?) -> String { let v = v ?? 0; return v < 10 ? "0\(v)" : "\(v)" }
        return "\(c.year!)\(two(c.month))\(two(c.day))T\(two(c.hour))\(two(c.minute))\(two(c.second))Z"
    }

    /// kSigning for a day (`yyyyMMdd`).
    public func signingKey(day: String) -> SymmetricKey {
        func hmac(_ key: SymmetricKey, _ s: String) -> SymmetricKey {
            SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Data(s.utf8), using: key)))
        }
        let kDate = hmac(SymmetricKey(data: Data("AWS4\(credentials.secretKey)".utf8)), day)
        return hmac(hmac(hmac(kDate, region), service), "aws4_request")
    }

    func scope(day: String) -> String { "\(day)/\(region)/\(service)/aws4_request" }

    static func hex(_ bytes: some Sequence<UInt8>) -> String { bytes.hexString }

    static func sha256Hex(_ s: String) -> String { hex(SHA256.hash(data: Data(s.utf8))) }

    /// `trimall`: both ends trimmed, inner runs of whitespace made one space.
    static func trimAll(_ value: String) -> String {
        value.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ")
    }

    /// The canonical request (§3.1). `headers` are the headers to sign (any case; repeated names
    /// are joined with `,`).
    public static func canonicalRequest(
        method: String, path: String, query: [(name: String, value: String)], headers: [(name: String, value: String)],
        payloadHash: String
    ) -> (request: String, signedHeaders: String) {
        // Names grouped and sorted as bytes (S3 sorts by character code; Swift's `String`
        // equality and order would merge or reorder canonically equal names).
        var grouped: [[UInt8]: [String]] = [:]
        for (name, value) in headers { grouped[Array(name.lowercased().utf8), default: []].append(trimAll(value)) }
        let names = grouped.keys.sorted { $0.lexicographicallyPrecedes($1) }
        let canonicalHeaders = names.map { "\(String(decoding: $0, as: UTF8.self)):\(grouped[$0]!.joined(separator: ","))\n" }.joined()
        let signedHeaders = names.map { String(decoding: $0, as: UTF8.self) }.joined(separator: ";")
        let uri = path.isEmpty ? "/" : uriEncode(path, encodeSlash: false)
        let request = [method, uri, canonicalQuery(query), canonicalHeaders, signedHeaders, payloadHash].joined(separator: "\n")
        return (request, signedHeaders)
    }

    func signature(canonicalRequest: String, amzDate: String) -> String {
        let day = String(amzDate.prefix(8))
        let stringToSign = ["AWS4-HMAC-SHA256", amzDate, scope(day: day), Self.sha256Hex(canonicalRequest)].joined(separator: "\n")
        return Self.hex(HMAC<SHA256>.authenticationCode(for: Data(stringToSign.utf8), using: signingKey(day: day)))
    }

    // MARK: (a) Header-signed requests

    /// Signs a request. `headers` must hold `Host` (as sent on the wire) and whatever else is to be
    /// signed (`Content-Type`, `Range`, `x-amz-*`); `x-amz-date` and `x-amz-content-sha256` (and the
    /// session token) are added here. Returns the headers to send, `Authorization` included.
    public func sign(
        method: String, path: String, query: [(name: String, value: String)] = [], headers: [(name: String, value: String)],
        payloadHash: String, date: Date
    ) -> [(name: String, value: String)] {
        let amzDate = Self.amzDate(date)
        var signed = headers
        signed.append(("x-amz-date", amzDate))
        signed.append(("x-amz-content-sha256", payloadHash))
        if let token = credentials.sessionToken { signed.append(("x-amz-security-token", token)) }
        let (request, signedHeaders) = Self.canonicalRequest(
            method: method, path: path, query: query, headers: signed, payloadHash: payloadHash)
        let sig = signature(canonicalRequest: request, amzDate: amzDate)
        let credential = "\(credentials.accessKey)/\(scope(day: String(amzDate.prefix(8))))"
        signed.append(("Authorization", "AWS4-HMAC-SHA256 Credential=\(credential), SignedHeaders=\(signedHeaders), Signature=\(sig)"))
        return signed
    }

    // MARK: (b) Presigned URLs

    /// The query string (already encoded, signature last) of a presigned URL. `host` is signed
    /// always; `headers` adds more signed headers the caller of the URL must then send as given.
    public func presignedQuery(
        method: String, host: String, path: String, query: [(name: String, value: String)] = [],
        headers: [(name: String, value: String)] = [], expires: Int, date: Date
    ) -> String {
        let amzDate = Self.amzDate(date)
        let day = String(amzDate.prefix(8))
        let signedHeaders = (headers.map { $0.name.lowercased() } + ["host"]).sorted { $0.bytesPrecede($1) }.joined(separator: ";")
        var items = query
        items.append(("X-Amz-Algorithm", "AWS4-HMAC-SHA256"))
        items.append(("X-Amz-Credential", "\(credentials.accessKey)/\(scope(day: day))"))
        items.append(("X-Amz-Date", amzDate))
        items.append(("X-Amz-Expires", String(expires)))
        items.append(("X-Amz-SignedHeaders", signedHeaders))
        if let token = credentials.sessionToken { items.append(("X-Amz-Security-Token", token)) }
        let (request, _) = Self.canonicalRequest(
            method: method, path: path, query: items, headers: headers + [("host", host)], payloadHash: Self.unsignedPayload)
        let sig = signature(canonicalRequest: request, amzDate: amzDate)
        // botocore's order: operation parameters, then the X-Amz-* ones, the signature last.
        let encoded = items.map { "\(Self.uriEncode($0.name, encodeSlash: true))=\(Self.uriEncode($0.value, encodeSlash: true))" }
        return (encoded + ["X-Amz-Signature=\(sig)"]).joined(separator: "&")
    }
}
