import Crypto
import DepotCore
import Foundation
import Testing

@Suite("Sniffing")
struct SnifferTests {
    @Test func recognisesImages() {
        #expect(MediaSniffer.sniff(Fixture.png(32)) == "image/png")
        #expect(MediaSniffer.sniff(Fixture.jpeg(32)) == "image/jpeg")
        #expect(MediaSniffer.sniff(Fixture.gif(32)) == "image/gif")
        #expect(MediaSniffer.sniff(Fixture.webp(32)) == "image/webp")
    }

    @Test func recognisesVideos() {
        #expect(MediaSniffer.sniff(Fixture.mp4(200)) == "video/mp4")
        #expect(MediaSniffer.sniff(Fixture.bytes(Fixture.quickTimeMagic, size: 200)) == "video/quicktime")
        #expect(MediaSniffer.sniff(Fixture.bytes(Fixture.webmMagic, size: 200)) == "video/webm")
        #expect(MediaSniffer.fileExtension(for: "video/mp4") == "mp4")
        #expect(MediaSniffer.fileExtension(for: "video/quicktime") == "mov")
        #expect(MediaSniffer.fileExtension(for: "video/webm") == "webm")
        // Other ISO media brands (HEIF, AVIF, audio-only M4A, 3GP) are not videos we know, even
        // when they list an MP4 brand; an unknown major brand that lists one is MP4.
        func ftyp(_ major: String, _ compatible: [String], size: Int? = nil) -> [UInt8] {
            let body = Array("ftyp\(major)".utf8) + [0, 0, 0, 0] + compatible.flatMap { Array($0.utf8) }
            let n = size ?? body.count + 4
            return [UInt8(n >> 24 & 0xFF), UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)] + body + [0, 0, 0, 8] + Array("free".utf8)
        }
        for major in ["heic", "avif", "M4A ", "mif1", "3gp4", "3g2a"] {
            #expect(MediaSniffer.sniff(ftyp(major, [major, "isom"])) == nil, "\(major)")
        }
        #expect(MediaSniffer.sniff(ftyp("cmfc", ["cmfc", "iso6"])) == "video/mp4")
        #expect(MediaSniffer.sniff(ftyp("mp42", ["mp42", "isom"])) == "video/mp4")
        #expect(MediaSniffer.sniff(ftyp("abcd", ["efgh"])) == nil, "no MP4 brand named")
        // A box that is not one: brands that are not letters or digits, a size that is not a box's
        // (too small, past 4096, not whole in the bytes), markup with `ftyp` at offset 4.
        #expect(MediaSniffer.sniff(ftyp("<scr", ["isom"])) == nil)
        #expect(MediaSniffer.sniff(ftyp("isom", ["<scr"])) == nil)
        for size in [0, 4, 12, 18, 5000, 0xFFFF_FFFF, 1000] {
            #expect(MediaSniffer.sniff(ftyp("isom", ["isom"], size: size)) == nil, "size \(size)")
        }
        #expect(MediaSniffer.sniff(Array("<htmftypisom<script>alert(1)</script>".utf8)) == nil)
        #expect(MediaSniffer.sniff(Array("<p> ftypqt  <script>alert(1)</script><h1>hi</h1>".utf8)) == nil)
        #expect(MediaSniffer.sniff([0, 0, 0, 0x18] + Array("ftypisom".utf8)) == nil, "a 12-byte 'video'")
        // QuickTime without `ftyp` starts with a well-formed movie, media, `wide` or `pnot` box.
        let pad = [UInt8](repeating: 7, count: 16)
        #expect(MediaSniffer.sniff([0, 0, 0, 8] + Array("wide".utf8) + [0, 1, 0, 8] + Array("mdat".utf8) + pad) == "video/quicktime")
        #expect(MediaSniffer.sniff([0, 0, 0x10, 0] + Array("moov".utf8) + [0, 0, 0, 0x6C] + Array("mvhd".utf8) + pad) == "video/quicktime")
        #expect(MediaSniffer.sniff([0, 0, 0, 9] + Array("wide".utf8) + [0, 0, 0, 8] + Array("mdat".utf8) + pad) == nil)
        #expect(MediaSniffer.sniff(Array("The mdat file".utf8)) == nil, "text is not a movie")
        #expect(MediaSniffer.sniff(Array("\u{0}\u{0}\u{0}\u{4}moov".utf8)) == nil, "a box smaller than its header")
        // WebM: the EBML header whole (its size field read), then a Segment; a header alone,
        // one declaring more bytes than it has, or followed by something else is not a video.
        #expect(MediaSniffer.sniff(Array(Fixture.webmMagic.prefix(36))) == nil, "the header alone")
        var wrongSize = Fixture.webmMagic
        wrongSize[4] = 0xFF  // 127 bytes declared, 35 there
        #expect(MediaSniffer.sniff(wrongSize) == nil)
        var noSegment = Fixture.bytes(Fixture.webmMagic, size: 200)
        noSegment[36] = 0
        #expect(MediaSniffer.sniff(noSegment) == nil)
        let eightByteSize: [UInt8] = [0x1A, 0x45, 0xDF, 0xA3, 0x01, 0, 0, 0, 0, 0, 0, 31] + Array(Fixture.webmMagic[5...])
        #expect(MediaSniffer.sniff(eightByteSize) == "video/webm", "an 8-byte size field")
        #expect(MediaSniffer.sniff([0x1A, 0x45, 0xDF, 0xA3, 0x87, 0x42, 0x82, 0x84] + Array("webm".utf8)) == nil, "12 bytes")
        // A file that is its `ftyp` alone, or a tiny QuickTime, is no movie.
        #expect(MediaSniffer.sniff(Array(Fixture.mp4Magic.prefix(32))) == nil, "ftyp alone")
        // …or followed by anything but a box header (a size under 8, a type that is not one), or
        // an old-style movie box followed by markup.
        for next: [UInt8] in [
            [0, 0, 0, 0, 0, 0, 0, 0] + [9], [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], Array("AAAAAAAA".utf8),
            [0, 0, 0, 4] + Array("free".utf8), Array("<html><b>".utf8),
        ] {
            #expect(MediaSniffer.sniff(Array(Fixture.mp4Magic.prefix(32)) + next + [UInt8](repeating: 0x41, count: 40)) == nil, "\(next)")
        }
        #expect(MediaSniffer.sniff([0, 0, 0, 8] + Array("mdat<html><script>alert(1)</script></html>".utf8)) == nil)
        #expect(MediaSniffer.sniff([0, 0, 0, 40] + Array("moov<html><script>alert(1)</script></html>".utf8)) == nil)
        #expect(MediaSniffer.sniff([0, 0, 0, 16] + Array("ftypisom".utf8) + [0, 0, 0, 0]) == nil)
        #expect(MediaSniffer.sniff([0, 0, 0, 8] + Array("wide".utf8) + [0, 0, 0, 8] + Array("mdat".utf8)) == nil, "16 bytes")
        var matroska = Fixture.webmMagic
        matroska.replaceSubrange(24..<28, with: Array("mkvx".utf8))
        #expect(MediaSniffer.sniff(matroska) == nil)
        // Cut short: the EBML magic alone, or `ftyp` without its brand, decide nothing (and do not trap).
        for n in 0..<28 { #expect(MediaSniffer.sniff(Array(Fixture.webmMagic.prefix(n))) == nil) }
        #expect(MediaSniffer.sniff(Array(Fixture.mp4Magic.prefix(11))) == nil)
        // The DocType past the sniffed prefix is not looked for.
        let late = [0x1A, 0x45, 0xDF, 0xA3] + [UInt8](repeating: 0xEC, count: MediaSniffer.prefixLength) + [0x42, 0x82, 0x84] + Array("webm".utf8)
        #expect(MediaSniffer.sniff(late) == nil)
    }

    @Test func refusesEverythingElse() {
        #expect(MediaSniffer.sniff(Fixture.textFile) == nil)
        #expect(MediaSniffer.sniff(Fixture.svg) == nil)
        #expect(MediaSniffer.sniff(Fixture.html) == nil)
        #expect(MediaSniffer.sniff([UInt8]()) == nil)
        #expect(MediaSniffer.sniff(Array(Fixture.pngMagic.prefix(7))) == nil)
        // RIFF without WEBP (a WAV file) is not WebP.
        #expect(MediaSniffer.sniff(Array("RIFF\u{0}\u{0}\u{0}\u{0}WAVEfmt ".utf8)) == nil)
    }

    @Test func canonicalTypes() throws {
        #expect(MediaSniffer.canonical("IMAGE/PNG; charset=binary") == "image/png")
        #expect(MediaSniffer.canonical("image/jpg") == "image/jpeg")
        // Inline only from an allow-list; everything else is an attachment.
        for inline in [
            "image/png", "image/jpeg", "image/webp", "image/avif", "IMAGE/PNG; charset=x", "video/mp4", "audio/mpeg", "text/plain",
            "text/plain; charset=utf-8",
        ] {
            #expect(MediaType.servesInline(inline), "\(inline)")
        }
        for attachment in [
            "image/svg+xml", "text/html; charset=utf-8", "text/plain, text/html", "text/plain,text/html", "application/rss+xml",
            "application/vnd.evil+xml", "text/xsl", "application/pdf", "application/xhtml+xml", "text/javascript", "",
            "image/png\u{0}", "image/png junk", "text/plain; charset=\"utf-8", "application/octet-stream",
        ] {
            #expect(!MediaType.servesInline(attachment), "\(attachment)")
        }
        #expect(try MediaType.normalize(" Text/Plain ;Charset=UTF-8 ") == "text/plain; charset=UTF-8")
        #expect(try MediaType.normalize("image/png;") == "image/png")
        #expect(try MediaType.normalize("text/plain; name=\"a;b\\\"c\"") == "text/plain; name=\"a;b\\\"c\"")
        for bad in [
            "text/plain, text/html", "text/plain,text/html", "text", "/png", "image/", "image/png; =x", "image/png; a", "image/png x",
            "image/png; a=\"open", "image/pngé", String(repeating: "a", count: 300) + "/png",
        ] {
            #expect(throws: StorageError.self, "\(bad)") { try MediaType.normalize(bad) }
        }
    }
}

@Suite("URL signing")
struct SignerTests {
    let signer = URLSigner(keys: .derived(fromProjectSecret: "secret-one-0123456789-0123456789"))
    let path = try! ObjectPath("alice/job/a.png")

    @Test func roundTrip() throws {
        let t = signer.mint(scope: .download, bucket: "assets", path: path, binding: "42", expiresAt: 2000)
        let c = try signer.verify(t, scope: .download, bucket: "assets", path: path, now: 1000)
        #expect(c.binding == "42")
        #expect(c.expiresAt == 2000)
    }

    @Test func malformedTokensAreInvalidNotCrashes() throws {
        let t = signer.mint(scope: .download, bucket: "assets", path: path, binding: "42", expiresAt: 2000)
        let parts = t.split(separator: ".").map(String.init)
        let mac = parts[4]
        let malformed = [
            "", ".", "....", "d", "d.k1", "d.k1.2000.42", t + ".", t + ".x", "." + t, "dd.k1.2000.42.\(mac)",
            "d.k1.+2000.42.\(mac)", "d.k1.-2000.42.\(mac)", "d.k1.2000 .42.\(mac)", "d.k1.99999999999999999999.42.\(mac)",
            "d.k1.2000..\(mac)", "d.k1.2000.\(String(repeating: "9", count: 65)).\(mac)", "d.k2.2000.42.\(mac)",
            "d..2000.42.\(mac)", "d.k1.2000.42.\(mac.dropLast())", "d.k1.2000.42.\(mac)A", "d.k1.2000.42.\(mac.dropLast())=",
            "d.k1.2000.42.\(mac.dropLast())é", "u.k1.2000.42.\(mac)",
        ]
        for bad in malformed {
            #expect(throws: StorageError.self, "\(bad)") {
                _ = try signer.verify(bad, scope: .download, bucket: "assets", path: path, now: 1000)
            }
            do {
                _ = try signer.verify(bad, scope: .download, bucket: "assets", path: path, now: 1000)
            } catch {
                #expect(error.code == .signatureInvalid, "\(bad)")
            }
        }
        #expect(parts.count == 5)
        #expect(try signer.verify(t, scope: .download, bucket: "assets", path: path, now: 1000).binding == "42")
    }

    @Test func boundToBucketPathScopeAndKey() throws {
        let t = signer.mint(scope: .download, bucket: "assets", path: path, binding: "42", expiresAt: 2000)
        func code(_ body: () throws -> Void) -> StorageError.Code? {
            do { try body(); return nil } catch let e as StorageError { return e.code } catch { return nil }
        }
        #expect(code { _ = try signer.verify(t, scope: .upload, bucket: "assets", path: path, now: 1000) } == .signatureInvalid)
        #expect(code { _ = try signer.verify(t, scope: .download, bucket: "public-assets", path: path, now: 1000) } == .signatureInvalid)
        #expect(
            code { _ = try signer.verify(t, scope: .download, bucket: "assets", path: try ObjectPath("alice/job/b.png"), now: 1000) }
                == .signatureInvalid)
        #expect(code { _ = try signer.verify(t, scope: .download, bucket: "assets", path: path, now: 2000) } == .urlExpired)
        let other = URLSigner(keys: .derived(fromProjectSecret: "secret-two-0123456789-0123456789"))
        #expect(code { _ = try other.verify(t, scope: .download, bucket: "assets", path: path, now: 1000) } == .signatureInvalid)
        // Tampering with any field (here: a later expiry, another generation) breaks the MAC.
        let parts = t.split(separator: ".").map(String.init)
        let later = [parts[0], parts[1], "3000", parts[3], parts[4]].joined(separator: ".")
        #expect(code { _ = try signer.verify(later, scope: .download, bucket: "assets", path: path, now: 1000) } == .signatureInvalid)
        let regen = [parts[0], parts[1], parts[2], "43", parts[4]].joined(separator: ".")
        #expect(code { _ = try signer.verify(regen, scope: .download, bucket: "assets", path: path, now: 1000) } == .signatureInvalid)
        #expect(code { _ = try signer.verify("garbage", scope: .download, bucket: "assets", path: path, now: 1000) } == .signatureInvalid)
        #expect(code { _ = try signer.verify("", scope: .download, bucket: "assets", path: path, now: 1000) } == .signatureInvalid)
    }

    @Test(arguments: ["some-key", String(repeating: "k", count: 64), String(repeating: "long-key-", count: 12)])
    func macsFromTheKeyedPrototypeMatchSwiftCryptosHMAC(secret: String) throws {
        // Our HMAC (keyed once, copied per token) against swift-crypto's, for short, block-sized
        // and hashed-down (> 64 bytes) keys; copies must not share state.
        let ring = try KeyRing(keys: [.init(id: "k9", secret: Array(secret.utf8))])
        let signer = URLSigner(keys: ring)
        for i in 0..<3 {
            let t = signer.mint(scope: .download, bucket: "b", path: path, binding: "\(i)", expiresAt: 2000)
            let mac = Base64URL.decode(t.split(separator: ".")[4])!
            let fresh = HMAC<SHA256>.authenticationCode(
                for: Array("d\nk9\n2000\n\(i)\nb\n\(path.string)".utf8), using: SymmetricKey(data: Array(secret.utf8)))
            #expect(mac == Array(fresh))
        }
    }

    @Test func rotationKeepsOldKeysVerifying() throws {
        let old = try KeyRing(keys: [.init(id: "k1", secret: Array("old-key".utf8))])
        let rotated = try KeyRing(keys: [.init(id: "k2", secret: Array("new-key".utf8)), .init(id: "k1", secret: Array("old-key".utf8))])
        let retired = try KeyRing(keys: [.init(id: "k2", secret: Array("new-key".utf8))])
        let t = URLSigner(keys: old).mint(scope: .download, bucket: "b", path: path, binding: "1", expiresAt: 2000)
        _ = try URLSigner(keys: rotated).verify(t, scope: .download, bucket: "b", path: path, now: 1000)
        #expect(throws: StorageError.self) { try URLSigner(keys: retired).verify(t, scope: .download, bucket: "b", path: path, now: 1000) }
    }
}

@Suite("Encodings")
struct EncodingTests {
    @Test func base64URLRoundTripsAndMatchesFoundation() {
        for n in 0..<70 {
            let bytes = (0..<n).map { UInt8(($0 * 37 + n) & 0xFF) }
            let ours = Base64URL.encode(bytes)
            let foundation = Data(bytes).base64EncodedString()
                .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
            #expect(ours == foundation)
            #expect(Base64URL.decode(ours[...]) == bytes)
        }
        #expect(Base64URL.decode("a"[...]) == nil)
        #expect(Base64URL.decode("ab=="[...]) == nil)
        #expect(Base64URL.decode("a+b/"[...]) == nil)
        #expect(Base64URL.decode("AB"[...]) == nil)  // non-canonical trailing bits
    }
}
