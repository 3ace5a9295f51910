import DepotCore
@testable import DepotHTTP

/// Signed-URL tokens: `URLSigner.verify` (`d.<kid>.<exp>.<generation>.<mac>`,
/// `u.<kid>.<exp>.<intent>.<mac>`), `Base64URL.decode`, and the fast path's reading of `token=`
/// from a query (`PipelineDownloads.token(in:)`).
/// Input: `TOKEN[\nPATH[\nQUERY]]` — the token is verified for PATH (default `alice/job-1/a.png`)
/// in bucket `assets` with the key ring below; QUERY (default: the first line) is read as a
/// download URL's query.
enum URLTokenTarget {
    /// Secrets of the seed tokens in fuzz/corpus/url-token (made by fuzz/make-seeds).
    static let signer = URLSigner(
        keys: try! KeyRing(keys: [
            .init(id: "k1", secret: Array("depot-fuzz-url-key-one".utf8)),
            .init(id: "k2", secret: Array("depot-fuzz-url-key-two".utf8)),
        ]))
    static let now: Int64 = 1_800_000_000
    static let defaultPath = try! ObjectPath("alice/job-1/a.png")

    static func run(_ input: FuzzInput) {
        let fields = input.lines(maxSplits: 2)
        let token = fields[0]
        let path = fields.count > 1 ? (try? ObjectPath(percentEncoded: fields[1][...])) ?? defaultPath : defaultPath
        for scope in [URLSigner.Scope.download, .upload] {
            do {
                let claims = try signer.verify(token, scope: scope, bucket: "assets", path: path, now: now)
                check(claims.expiresAt > now && claims.scope == scope, "accepted an expired or wrong-scope token")
                check(!claims.binding.isEmpty && claims.binding.utf8.count <= 64, "binding out of bounds")
            } catch {
                check(error.code == .signatureInvalid || error.code == .urlExpired, "verify threw \(error.code)")
            }
        }

        // base64url: one spelling per value.
        for text in [token, token.split(separator: ".").last.map(String.init) ?? ""] {
            if let bytes = Base64URL.decode(text[...]) {
                check(Base64URL.encode(bytes) == text, "\(text.debugDescription) decodes but is not canonical")
            }
        }

        // A query's token, as the download fast path reads it.
        let query = fields.count > 2 ? fields[2] : token
        if let found = PipelineDownloads.token(in: query[...]), !found.isEmpty {
            check(
                !found.utf8.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "&") }), "token with escapes")
        }

        // Minted tokens verify, for this binding and path; any one changed byte does not.
        // (Bindings are server-made: a generation or an intent id, never with a `.` byte.)
        let binding = token.utf8.count <= 64 && !token.isEmpty && !token.utf8.contains(UInt8(ascii: ".")) ? token : "7"
        let expiry = now + Int64(input.hash % 1_000_000) + 1
        let minted = signer.mint(scope: .download, bucket: "assets", path: path, binding: binding, expiresAt: expiry)
        let claims: URLSigner.Claims?
        var failure = ""
        do { claims = try signer.verify(minted, scope: .download, bucket: "assets", path: path, now: now) } catch {
            claims = nil
            failure = "\(error)"
        }
        check(
            claims?.scope == .download && claims?.expiresAt == expiry && claims?.binding == binding,
            "a minted token does not verify: \(minted.debugDescription) for binding \(binding.debugDescription), path \(path.string.debugDescription): \(failure) \(String(describing: claims))"
        )
        check(
            (try? signer.verify(minted, scope: .upload, bucket: "assets", path: path, now: now)) == nil,
            "a download token verifies as an upload token")
        var bytes = Array(minted.utf8)
        let i = Int(input.hash % UInt64(bytes.count))
        bytes[i] = bytes[i] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        let tampered = String(decoding: bytes, as: UTF8.self)
        check(
            (try? signer.verify(tampered, scope: .download, bucket: "assets", path: path, now: now)) == nil,
            "a changed token still verifies: \(tampered)")
    }
}
