import Foundation

/// Real images made in the test (no binary files in the repository): PNGs written by hand
/// (stored deflate blocks), and hostile variants of them.
enum ImageFixture {
    /// A `width` × `height` RGB PNG with a gradient (so crops and scales differ).
    static func png(width: Int, height: Int) -> [UInt8] {
        var raw: [UInt8] = []
        raw.reserveCapacity((width * 3 + 1) * height)
        for y in 0..<height {
            raw.append(0)  // filter: none
            for x in 0..<width {
                raw += [UInt8(truncatingIfNeeded: x * 255 / max(1, width - 1)), UInt8(truncatingIfNeeded: y * 255 / max(1, height - 1)), 128]
            }
        }
        return png(ihdr: ihdr(width: width, height: height), idat: zlibStored(raw))
    }

    /// A PNG whose header claims `width` × `height` but whose data is a few random bytes (a
    /// decompression bomb's header: refused on the header, before any decoding).
    static func claimingPNG(width: Int, height: Int) -> [UInt8] {
        png(ihdr: ihdr(width: width, height: height), idat: zlibStored((0..<64).map { _ in UInt8.random(in: 0...255) }))
    }

    /// The first half of a real PNG.
    static func truncatedPNG() -> [UInt8] {
        let whole = png(width: 256, height: 256)
        return Array(whole.prefix(whole.count / 2))
    }

    /// A PDF's first bytes in a file called .png.
    static let pdf: [UInt8] = Array("%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n".utf8)

    /// Width and height from a PNG's IHDR.
    static func pngSize(_ bytes: [UInt8]) -> (Int, Int)? {
        guard bytes.count >= 24, bytes[12..<16].elementsEqual(Array("IHDR".utf8)) else { return nil }
        func be32(_ i: Int) -> Int { bytes[i..<i + 4].reduce(0) { $0 << 8 | Int($1) } }
        return (be32(16), be32(20))
    }

    private static func ihdr(width: Int, height: Int) -> [UInt8] {
        be32(width) + be32(height) + [8, 2, 0, 0, 0]  // 8-bit RGB
    }

    private static func png(ihdr: [UInt8], idat: [UInt8]) -> [UInt8] {
        [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", ihdr) + chunk("IDAT", idat) + chunk("IEND", [])
    }

    private static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let body = Array(type.utf8) + data
        return be32(data.count) + body + be32(Int(crc32(body)))
    }

    private static func zlibStored(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]
        var i = 0
        repeat {
            let n = min(65535, data.count - i)
            let last: UInt8 = i + n == data.count ? 1 : 0
            out += [last, UInt8(n & 0xff), UInt8(n >> 8), UInt8(~n & 0xff), UInt8((~n >> 8) & 0xff)]
            out += data[i..<i + n]
            i += n
        } while i < data.count
        var a: UInt32 = 1
        var b: UInt32 = 0
        for byte in data {
            a = (a + UInt32(byte)) % 65521
            b = (b + a) % 65521
        }
        return out + be32(Int(b << 16 | a))
    }

    private static func be32(_ v: Int) -> [UInt8] { [UInt8(v >> 24 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }

    private static let crcTable: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    private static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = crcTable[Int((c ^ UInt32(b)) & 0xff)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }
}
