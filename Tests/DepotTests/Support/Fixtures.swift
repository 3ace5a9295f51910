import Foundation
import NIOCore

/// Bytes that start with real magic numbers, padded with random bytes to a given size.
enum Fixture {
    static let pngMagic: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52]
    static let jpegMagic: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE0, 0, 16, 0x4A, 0x46, 0x49, 0x46, 0, 1, 1, 0, 0, 1]
    static let gifMagic: [UInt8] = Array("GIF89a".utf8) + [1, 0, 1, 0, 0x80, 0, 0, 0, 0, 0]
    static let webpMagic: [UInt8] = Array("RIFF".utf8) + [0x24, 0, 0, 0] + Array("WEBPVP8 ".utf8)
    /// An MP4's first box: `ftyp`, major brand `isom`, compatible brands.
    /// (Each followed by the next box's header: an empty `free` box.)
    static let mp4Magic: [UInt8] =
        [0, 0, 0, 0x20] + Array("ftypisom".utf8) + [0, 0, 2, 0] + Array("isomiso2avc1mp41".utf8) + [0, 0, 0, 8] + Array("free".utf8)
    static let quickTimeMagic: [UInt8] =
        [0, 0, 0, 0x14] + Array("ftypqt  ".utf8) + [0, 0, 2, 0] + Array("qt  ".utf8) + [0, 0, 0, 8] + Array("free".utf8)
    /// A WebM's EBML header (version 1, max ID 4, max size 8, DocType "webm", DocType version 4),
    /// then its Segment's ID.
    static let webmMagic: [UInt8] =
        [0x1A, 0x45, 0xDF, 0xA3, 0x9F, 0x42, 0x86, 0x81, 0x01, 0x42, 0xF7, 0x81, 0x01, 0x42, 0xF2, 0x81, 0x04, 0x42, 0xF3, 0x81, 0x08]
        + [0x42, 0x82, 0x84] + Array("webm".utf8) + [0x42, 0x87, 0x81, 0x04, 0x42, 0x85, 0x81, 0x02] + [0x18, 0x53, 0x80, 0x67]

    static func bytes(_ magic: [UInt8], size: Int) -> [UInt8] {
        // xorshift64*, seeded randomly: fast enough for tens of MiB in debug builds.
        var state = UInt64.random(in: 1...UInt64.max)
        return [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            var i = 0
            while i < size {
                state ^= state >> 12
                state ^= state << 25
                state ^= state >> 27
                var word = state &* 2685821657736338717
                for _ in 0..<8 where i < size {
                    buffer[i] = i < magic.count ? magic[i] : UInt8(truncatingIfNeeded: word)
                    word >>= 8
                    i += 1
                }
            }
            count = size
        }
    }

    static func png(_ size: Int = 1024) -> [UInt8] { bytes(pngMagic, size: size) }
    static func jpeg(_ size: Int = 1024) -> [UInt8] { bytes(jpegMagic, size: size) }
    static func gif(_ size: Int = 1024) -> [UInt8] { bytes(gifMagic, size: size) }
    static func webp(_ size: Int = 1024) -> [UInt8] { bytes(webpMagic, size: size) }
    static func mp4(_ size: Int = 1024) -> [UInt8] { bytes(mp4Magic, size: size) }

    /// A text file that merely says it is a PNG.
    static let textFile: [UInt8] = Array("hello, I am plain text pretending to be an image\n".utf8)
    static let svg: [UInt8] = Array("<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>".utf8)
    static let html: [UInt8] = Array("<!doctype html><html><script>alert(1)</script></html>".utf8)

    static func buffer(_ bytes: [UInt8]) -> ByteBuffer { ByteBuffer(bytes: bytes) }

    /// A multipart/form-data body with the given fields and one file part.
    static func multipart(
        boundary: String = "depot-boundary-1234", fields: [(String, String)] = [], fileField: String = "file",
        filename: String = "a.png", contentType: String? = "image/png", file: [UInt8]?, fieldsAfter: [(String, String)] = []
    ) -> [UInt8] {
        var out: [UInt8] = []
        func add(_ s: String) { out += Array(s.utf8) }
        for (k, v) in fields {
            add("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(k)\"\r\n\r\n\(v)\r\n")
        }
        if let file {
            add("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(fileField)\"; filename=\"\(filename)\"\r\n")
            if let contentType { add("Content-Type: \(contentType)\r\n") }
            add("\r\n")
            out += file
            add("\r\n")
        }
        for (k, v) in fieldsAfter {
            add("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(k)\"\r\n\r\n\(v)\r\n")
        }
        add("--\(boundary)--\r\n")
        return out
    }
}

extension Array where Element == UInt8 {
    var sha256Hex: String {
        // Computed with the same primitive clients would use.
        SHA256Hex.of(self)
    }
}

import Crypto

enum SHA256Hex {
    static func of(_ bytes: [UInt8]) -> String { SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined() }
}
