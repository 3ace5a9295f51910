import DepotCore
import DepotS3
import Foundation

/// AWS Signature V4 canonical requests (`SigV4Signer.canonicalRequest`, `uriEncode`,
/// `canonicalQuery`) and the two signing forms built on them (`sign`, `presignedQuery`), with
/// arbitrary paths, query items and header values — an object's name reaches the path, and
/// a client's Range or Content-Type reaches signed headers. Input: `METHOD\nPATH\nQUERY\nHEADERS…`
/// — QUERY as `name=value&…` (percent-decoded), one `name: value` header per line.
enum SigV4Target {
    static let signer = SigV4Signer(
        credentials: .init(accessKey: "AKIDEXAMPLE", secretKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"), region: "us-east-1")
    static let date = Date(timeIntervalSince1970: 1_800_000_000)

    static func run(_ input: FuzzInput) {
        let lines = input.lines()
        let method = lines[0]
        let path = lines.count > 1 ? lines[1] : ""
        let query: [(name: String, value: String)] = (lines.count > 2 ? lines[2] : "").split(separator: "&").map { item in
            let kv = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = PercentEncoding.decodeQueryComponent(kv[0]) ?? String(kv[0])
            let value = kv.count > 1 ? PercentEncoding.decodeQueryComponent(kv[1]) ?? String(kv[1]) : ""
            return (name, value)
        }
        let headers: [(name: String, value: String)] = lines.dropFirst(3).map { line in
            guard let colon = line.firstIndex(of: ":") else { return (line, "") }
            return (String(line[..<colon]), String(line[line.index(after: colon)...]))
        }

        // UriEncode: only unreserved characters and escapes, and it decodes back.
        for (s, slash) in [(path, false), (path, true), (method, true)] {
            let encoded = SigV4Signer.uriEncode(s, encodeSlash: slash)
            check(
                encoded.utf8.allSatisfy { PercentEncoding.isUnreservedOrEscape($0) || (!slash && $0 == UInt8(ascii: "/")) },
                "uriEncode left \(encoded.debugDescription)")
            check(PercentEncoding.decode(encoded[...]) == s, "uriEncode does not round-trip \(s.debugDescription)")
        }
        // The canonical query does not depend on the items' order.
        let canonical = SigV4Signer.canonicalQuery(query)
        check(SigV4Signer.canonicalQuery(query.reversed()) == canonical, "canonicalQuery depends on order")
        var random = SplitMix64(state: input.hash)
        var shuffled = query
        shuffled.shuffle(using: &random)
        check(SigV4Signer.canonicalQuery(shuffled) == canonical, "canonicalQuery depends on order")

        let (request, signedHeaders) = SigV4Signer.canonicalRequest(
            method: method, path: path, query: query, headers: headers, payloadHash: SigV4Signer.unsignedPayload)
        check(request.utf8.reversed().starts(with: ("\n" + SigV4Signer.unsignedPayload).utf8.reversed()), "the payload hash is not last")
        check(
            signedHeaders.bytesEqual(
                Set(headers.map { Array($0.name.lowercased().utf8) }).sorted { $0.lexicographicallyPrecedes($1) }
                    .map { String(decoding: $0, as: UTF8.self) }.joined(separator: ";")),
            "signed headers \(signedHeaders.debugDescription)")

        let signed = signer.sign(method: method, path: path, query: query, headers: headers, payloadHash: SigV4Signer.emptyPayloadHash, date: date)
        check(signed.last?.name == "Authorization" && signed.last!.value.hasPrefix("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"), "no Authorization")
        let presigned = signer.presignedQuery(
            method: method, host: "bucket.example.com", path: path, query: query, headers: headers, expires: 60, date: date)
        let signature = presigned.split(separator: "&").last ?? ""
        check(signature.hasPrefix("X-Amz-Signature=") && signature.utf8.count == 16 + 64, "presigned query ends with \(signature)")
    }
}

extension PercentEncoding {
    /// An RFC 3986 unreserved byte, `%` or an uppercase hex digit (what an escape is made of).
    static func isUnreservedOrEscape(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "%"):
            return true
        default: return false
        }
    }
}
