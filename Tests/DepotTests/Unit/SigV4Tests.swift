import Crypto
import DepotS3
import Foundation
import Testing

/// Signature V4 test vectors: values computed with botocore 1.44.8, and AWS's published examples.
@Suite("S3 Signature V4")
struct SigV4Tests {
    let signer = SigV4Signer(
        credentials: .init(accessKey: "AKIAIOSFODNN7EXAMPLE", secretKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        region: "us-east-1")
    let jan2024 = Date(timeIntervalSince1970: 1_705_321_800)  // 2024-01-15T12:30:00Z
    let may2013 = Date(timeIntervalSince1970: 1_369_353_600)  // 2013-05-24T00:00:00Z

    func signature(_ headers: [(name: String, value: String)]) -> String? {
        headers.first { $0.name == "Authorization" }?.value.components(separatedBy: "Signature=").last
    }

    @Test func signingKeys() {
        let hex = { (k: SymmetricKey) in k.withUnsafeBytes { $0.map { String(format: "%02x", $0) }.joined() } }
        #expect(hex(signer.signingKey(day: "20240115")) == "b3561ed98303d4f5d28b6c09e1f0d7221ee39ebcb4d28e83b695050c848662d6")
        #expect(hex(signer.signingKey(day: "20130524")) == "dbb893acc010964918f1fd433add87c70e8b0db6be30c1fbeafefa5ec6ba8378")
        #expect(SigV4Signer.amzDate(jan2024) == "20240115T123000Z")
    }

    @Test func encodingKeepsOnlyUnreservedBytes() {
        #expect(
            SigV4Signer.uriEncode("/my-bucket/photos/2024/a b+c~ü(1).jpg", encodeSlash: false)
                == "/my-bucket/photos/2024/a%20b%2Bc~%C3%BC%281%29.jpg")
        #expect(SigV4Signer.uriEncode("a/b=c", encodeSlash: true) == "a%2Fb%3Dc")
        #expect(SigV4Signer.uriEncode("/a//b/./../c", encodeSlash: false) == "/a//b/./../c")
    }

    @Test func v1PresignedGetWithAnAwkwardKey() {
        let q = signer.presignedQuery(
            method: "GET", host: "127.0.0.1:9000", path: "/my-bucket/photos/2024/a b+c~ü(1).jpg", expires: 3600, date: jan2024)
        #expect(
            q
                == "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20240115%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20240115T123000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=589541bb64d74999bda9a9af3e9d33c8a6da0e4c69f84c78d62d91d5d47db49d"
        )
    }

    @Test func v2PresignedPutSigningTheContentType() {
        let q = signer.presignedQuery(
            method: "PUT", host: "127.0.0.1:9000", path: "/my-bucket/uploads/report.pdf",
            headers: [("Content-Type", "application/pdf")], expires: 900, date: jan2024)
        #expect(
            q.hasSuffix("&X-Amz-SignedHeaders=content-type%3Bhost&X-Amz-Signature=c03cfaac4981df548f21a79d816e40db22beee62c4e5174ac6ddb6f7ef45ac72"))
    }

    @Test func v3HeaderSignedPut() {
        let headers = signer.sign(
            method: "PUT", path: "/my-bucket/dir/hello.txt",
            headers: [("Host", "127.0.0.1:9000"), ("Content-Type", "text/plain"), ("x-amz-meta-owner", "alice")],
            payloadHash: "911158d6968f71fdcc5df899b1977bb616b1d24be85cfbb699e9e706f03486c3", date: jan2024)
        #expect(
            headers.first { $0.name == "Authorization" }?.value
                == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20240115/us-east-1/s3/aws4_request, SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-meta-owner, Signature=b3937482e1ff6c8b6d95d3ce28179a54d4dd76e837b5a576f223f03a05f6bb06"
        )
        #expect(headers.contains { $0.name == "x-amz-date" && $0.value == "20240115T123000Z" })
    }

    @Test func v4ListWithAwkwardQueryValues() {
        let headers = signer.sign(
            method: "GET", path: "/my-bucket",
            query: [("list-type", "2"), ("prefix", "photos/2024/"), ("max-keys", "2"), ("continuation-token", "a+b/c=="), ("encoding-type", "url")],
            headers: [("Host", "127.0.0.1:9000")], payloadHash: SigV4Signer.unsignedPayload, date: jan2024)
        #expect(signature(headers) == "edcacd7efbbd058c72e6fe91f77592340cdb417edf7bbfcb6319e15b5a2582ad")
    }

    /// Header names are lowercased, grouped and sorted as bytes (S3 sorts by character code):
    /// names Swift's `String` takes as equal (canonically equivalent) stay two names, and the
    /// payload hash ends the request byte for byte (the fuzzer's input had a name ending in CR,
    /// which `String` joins with the next line's LF into one character).
    @Test func headerNamesAreComparedAsBytes() {
        let (request, signed) = SigV4Signer.canonicalRequest(
            method: "GET", path: "/b/k", query: [],
            headers: [("X-Amz-Meta-\u{E9}", "1"), ("x-amz-meta-e\u{301}", "2"), ("x-amz-meta-a\r", "3"), ("Host", "h")],
            payloadHash: SigV4Signer.unsignedPayload)
        #expect(Array(signed.utf8) == Array("host;x-amz-meta-a\r;x-amz-meta-e\u{301};x-amz-meta-\u{E9}".utf8))
        #expect(Array(request.utf8.suffix(17)) == Array("\nUNSIGNED-PAYLOAD".utf8))
    }

    @Test func awsPublishedVectors() {
        let aws = "examplebucket.s3.amazonaws.com"
        let v0 = signer.presignedQuery(method: "GET", host: aws, path: "/test.txt", expires: 86400, date: may2013)
        #expect(v0.hasSuffix("X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"))

        let v5 = signer.sign(
            method: "GET", path: "/test.txt", headers: [("Host", aws), ("Range", "bytes=0-9")],
            payloadHash: SigV4Signer.emptyPayloadHash, date: may2013)
        #expect(signature(v5) == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")

        let v6 = signer.sign(
            method: "PUT", path: "/test$file.text",
            headers: [("Host", aws), ("Date", "Fri, 24 May 2013 00:00:00 GMT"), ("x-amz-storage-class", "REDUCED_REDUNDANCY")],
            payloadHash: "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072", date: may2013)
        #expect(signature(v6) == "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd")
    }
}
