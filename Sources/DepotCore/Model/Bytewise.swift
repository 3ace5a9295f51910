/// Names, prefixes, cursors and tenant ids are compared as UTF-8 bytes, everywhere — as SQLite and
/// PostgreSQL (`COLLATE "C"`) compare them. Swift's own `String` comparisons (`==`, `<`,
/// `hasPrefix`) follow Unicode canonical equivalence: `"\u{212A}ate" == "Kate"` and
/// `"<\u{0338}" == "≮"` are true there, so a bound or an owner check made with them can disagree
/// with the store and let one tenant's request reach another's names.
extension StringProtocol {
    /// Whether the UTF-8 bytes of `self` begin with those of `prefix`.
    @inline(__always)
    public func hasBytePrefix(_ prefix: some StringProtocol) -> Bool { utf8.starts(with: prefix.utf8) }

    /// Whether the UTF-8 bytes of `self` equal those of `other`.
    @inline(__always)
    public func bytesEqual(_ other: some StringProtocol) -> Bool { utf8.elementsEqual(other.utf8) }

    /// Whether `self` sorts before `other` byte by byte (the stores' order).
    @inline(__always)
    public func bytesPrecede(_ other: some StringProtocol) -> Bool { utf8.lexicographicallyPrecedes(other.utf8) }

    /// `self` without its first `prefix.utf8.count` bytes; call after ``hasBytePrefix(_:)``.
    public func dropBytePrefix(_ prefix: some StringProtocol) -> Substring {
        let s = Substring(self)
        return Substring(s.utf8.dropFirst(prefix.utf8.count))
    }
}

/// The larger of two strings in byte order.
public func bytewiseMax(_ a: String, _ b: String) -> String { a.bytesPrecede(b) ? b : a }
