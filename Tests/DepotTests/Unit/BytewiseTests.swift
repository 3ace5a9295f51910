import DepotCore
import Foundation
import Testing

/// The `memcmp` comparisons of names agree with walking the UTF-8 bytes, on native strings and
/// substrings, ASCII and not, equal, prefixed, and canonically equal but different bytes.
@Suite("Bytewise comparisons")
struct BytewiseTests {
    static let samples: [String] = [
        "", "a", "ab", "abc", "b", "alice/", "alice/x.png", "alice", "alicf", "Kate", "\u{212A}ate", "≮", "<\u{0338}",
        "é", "e\u{0301}", "日本/写真.png", "日本", "\u{10FFFF}", "a\u{0}b", "a\u{0}", "zz", "z",
    ]

    @Test func agreeWithTheByteWalk() {
        var rng = SystemRandomNumberGenerator()
        var all = Self.samples
        for _ in 0..<300 {
            let scalars = (0..<Int.random(in: 0...6, using: &rng)).map { _ in
                ["a", "b", "/", "é", "\u{0301}", "日", "\u{212A}", "K"].randomElement(using: &rng)!
            }
            all.append(scalars.joined())
        }
        for a in all {
            for b in all {
                #expect(a.bytesEqual(b) == a.utf8.elementsEqual(b.utf8), "\(a.debugDescription) \(b.debugDescription)")
                #expect(a.bytesPrecede(b) == a.utf8.lexicographicallyPrecedes(b.utf8), "\(a.debugDescription) \(b.debugDescription)")
                #expect(a.hasBytePrefix(b) == a.utf8.starts(with: b.utf8), "\(a.debugDescription) \(b.debugDescription)")
                // Substrings (not starting at the storage's first byte) too; cut by bytes, as a
                // leading combining mark would join the dropped character.
                let sa = Substring(("x" + a).utf8.dropFirst()), sb = Substring(("yy" + b).utf8.dropFirst(2))
                #expect(sa.utf8.elementsEqual(a.utf8) && sb.utf8.elementsEqual(b.utf8))
                #expect(sa.bytesEqual(sb) == a.utf8.elementsEqual(b.utf8))
                #expect(sa.bytesPrecede(sb) == a.utf8.lexicographicallyPrecedes(b.utf8))
                #expect(sa.hasBytePrefix(sb) == a.utf8.starts(with: b.utf8))
            }
        }
        // Canonically equal, different bytes: not equal here (Swift's == says equal).
        #expect("\u{212A}ate" == "Kate" && !"\u{212A}ate".bytesEqual("Kate"))
        #expect("<\u{0338}" == "≮" && !"<\u{0338}".bytesEqual("≮"))
    }
}
