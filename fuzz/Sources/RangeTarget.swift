import DepotCore

/// `Range` headers (`ByteRangeRequest.parse`) and request numbers (`RequestNumber.parse`).
/// Input: `SIZE\nHEADER` — the object's size as decimal digits (anything else: 1000), then the
/// header value; without a newline the whole input is the header.
enum RangeTarget {
    static func run(_ input: FuzzInput) {
        let fields = input.lines(maxSplits: 1)
        let size: Int64, header: String
        if fields.count == 2 {
            size = RequestNumber.parse(fields[0]) ?? 1000
            header = fields[1]
        } else {
            size = 1000
            header = fields[0]
        }
        for size in [size, 0, 1, Int64.max] {
            switch ByteRangeRequest.parse(header, size: size) {
            case .none, .unsatisfiable: break
            case .range(let r):
                check(!r.isEmpty && r.lowerBound >= 0 && r.upperBound <= size, "range \(r) outside 0..<\(size)")
            }
            switch ByteRangeRequest.parse(header[...], size: size) {
            case .range(let r): check(ByteRangeRequest.parse(header, size: size) == .range(r), "Substring and String disagree")
            default: break
            }
        }

        // Request numbers: every spelling of an Int64 in ASCII digits and nothing else.
        for text in [input.text, header] {
            let parsed = RequestNumber.parse(text)
            let digitsOnly = !text.utf8.isEmpty && text.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
            if let parsed {
                check(digitsOnly && text.utf8.count <= RequestNumber.maxDigits, "accepted \(text.debugDescription)")
                check(Int64(text) == parsed, "\(text.debugDescription) parsed as \(parsed)")
            } else if digitsOnly && text.utf8.count <= RequestNumber.maxDigits {
                check(Int64(text) == nil, "refused \(text.debugDescription), which fits an Int64")
            }
        }
        if let a = RequestNumber.parse(fields[0]), let b = RequestNumber.parse(fields.last!) {
            let sum = RequestNumber.saturatingAdd(a, b)
            check(sum >= max(a, b), "saturatingAdd(\(a), \(b)) = \(sum)")
        }
    }
}
