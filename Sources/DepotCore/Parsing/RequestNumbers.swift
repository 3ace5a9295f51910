/// Numbers read from requests (headers, query strings, JSON strings, tokens): non-negative
/// decimal integers written with ASCII digits only — no sign, space, fraction or exponent — that
/// fit an `Int64`. Every number Depot reads from a request goes through here, and everything
/// computed from one uses overflow-checked arithmetic: one header must never trap the process.
public enum RequestNumber {
    /// Longest accepted spelling (leading zeros included); `Int64.max` has 19 digits.
    public static let maxDigits = 32

    /// The value of `text`, or nil when it is not such a number or does not fit.
    public static func parse(_ text: some StringProtocol) -> Int64? {
        var copy = String(text)
        return copy.withUTF8 { parse(bytes: $0) }
    }

    /// The value of ASCII `bytes`, or nil.
    public static func parse(bytes: UnsafeBufferPointer<UInt8>) -> Int64? {
        guard !bytes.isEmpty, bytes.count <= maxDigits else { return nil }
        var value: Int64 = 0
        for byte in bytes {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (times10, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(Int64(byte &- UInt8(ascii: "0")))
            guard !o1, !o2 else { return nil }
            value = sum
        }
        return value
    }

    /// `a + b` for non-negative counts, saturating at `Int64.max` instead of trapping.
    @inline(__always)
    public static func saturatingAdd(_ a: Int64, _ b: Int64) -> Int64 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? (b > 0 ? .max : .min) : sum
    }
}

/// What one `Range` request header asks of an object of a given size (RFC 9110 §14.2).
public enum ByteRangeRequest: Equatable, Sendable {
    /// No usable range: several ranges, another unit, or a malformed header — send the whole body.
    case none
    /// A syntactically valid range that selects nothing of this object: 416.
    case unsatisfiable
    /// The bytes to send (never empty, always within the object).
    case range(Range<Int64>)

    /// Parses one `bytes=first-last`, `bytes=first-` or `bytes=-suffix` range (the unit in any
    /// case, RFC 9110 §14.1). Numbers of any size are safe: past the object they are clipped,
    /// past `Int64` the header is ignored.
    public static func parse(_ header: some StringProtocol, size: Int64) -> ByteRangeRequest {
        guard size >= 0, header.utf8.count <= 256 else { return .none }
        var spec = Substring(header)
        guard spec.utf8.count >= 6, spec.utf8.prefix(6).map({ $0 | 0x20 }).elementsEqual("bytes=".utf8.map { $0 | 0x20 }) else {
            return .none
        }
        spec = spec.dropFirst(6)
        while spec.first == " " || spec.first == "\t" { spec = spec.dropFirst() }
        while spec.last == " " || spec.last == "\t" { spec = spec.dropLast() }
        guard !spec.contains(","), let dash = spec.firstIndex(of: "-") else { return .none }
        let first = spec[..<dash], last = spec[spec.index(after: dash)...]
        if first.isEmpty {
            // The last `n` bytes.
            guard let n = RequestNumber.parse(last) else { return .none }
            if n == 0 || size == 0 { return .unsatisfiable }
            return .range((n >= size ? 0 : size - n)..<size)
        }
        guard let start = RequestNumber.parse(first) else { return .none }
        if start >= size { return .unsatisfiable }
        if last.isEmpty { return .range(start..<size) }
        guard let end = RequestNumber.parse(last), end >= start else { return .none }
        // `end` may be anything up to Int64.max: clip before adding one.
        return .range(start..<(end >= size - 1 ? size : end + 1))
    }
}
