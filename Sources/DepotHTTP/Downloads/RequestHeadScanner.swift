/// Frames HTTP/1 request heads in raw bytes, strictly, for ``RecentAnswerFront``: a `GET` or `HEAD`
/// without a body whose every line is well formed is framed here (its length is known and a hot
/// `GET` is recognised); anything else — another method, a body (`Content-Length`,
/// `Transfer-Encoding`), `Upgrade`, a line this grammar does not take (obs-fold, a bare LF, a space
/// before a colon, a control byte) — is left to NIO's decoder for the rest of the connection, which
/// then frames and refuses exactly as it does without this scanner.
///
/// The grammar is a subset of what the decoder accepts (the `request-head` fuzz target checks that
/// the decoder reads every head framed here as one request of the same length, method, target and
/// version):
///
///     request-line = ("GET" / "HEAD") SP "/" *VCHAR SP "HTTP/1." ("0" / "1") CRLF
///     header-line  = 1*tchar ":" *(HTAB / SP / VCHAR / obs-text) CRLF
///     head         = request-line *header-line CRLF
enum RequestHeadScanner {
    enum Outcome: Equatable {
        /// No blank line yet, within the limit: wait for more bytes.
        case incomplete
        /// Not framed here: the decoder takes these bytes and the rest of the connection.
        case unframed
        /// A head of `length` bytes with no body. `hotTarget`: the request target's byte range, when
        /// the request is a plain HTTP/1.1 keep-alive `GET` (no `Range`, no condition, no `Origin`,
        /// no `Expect`, no `Connection` or `Proxy-Connection`) that an answer in memory may answer.
        case request(length: Int, hotTarget: Range<Int>?)
    }

    /// The longest head framed here, and the most header lines; a longer head goes to the decoder
    /// and its limits (Hummingbird's: 1,000 lines, 80 KiB).
    static let maxHead = 8 * 1024
    static let maxHeaderLines = 100

    /// Scans `bytes` from their start; `searched` bytes of them were already searched for the
    /// blank line by an earlier call (its value is updated, so a head arriving in pieces is
    /// searched once).
    static func scan(_ bytes: UnsafeRawBufferPointer, searched: inout Int) -> Outcome {
        let count = bytes.count
        var i = max(0, searched - 3)
        var end = -1
        while i + 3 < count {
            if bytes[i] == CR, bytes[i + 1] == LF, bytes[i + 2] == CR, bytes[i + 3] == LF {
                end = i + 4
                break
            }
            i += 1
        }
        guard end > 0 else {
            searched = count
            return count > maxHead ? .unframed : .incomplete
        }
        guard end <= maxHead else { return .unframed }
        return parse(UnsafeRawBufferPointer(rebasing: bytes[0..<end]))
    }

    /// Parses one whole head, ending with its blank line.
    private static func parse(_ head: UnsafeRawBufferPointer) -> Outcome {
        var p = 0
        // Request line.
        let isGet: Bool
        if starts(head, at: 0, with: "GET ") {
            isGet = true
            p = 4
        } else if starts(head, at: 0, with: "HEAD ") {
            isGet = false
            p = 5
        } else {
            return .unframed
        }
        let targetStart = p
        guard p < head.count, head[p] == UInt8(ascii: "/") else { return .unframed }
        while p < head.count, head[p] > 0x20, head[p] < 0x7F { p += 1 }
        let target = targetStart..<p
        guard starts(head, at: p, with: " HTTP/1."), p + 11 <= head.count else { return .unframed }
        let minor = head[p + 8]
        guard minor == UInt8(ascii: "0") || minor == UInt8(ascii: "1"), head[p + 9] == CR, head[p + 10] == LF else {
            return .unframed
        }
        p += 11
        var plain = isGet && minor == UInt8(ascii: "1")
        // Header lines, up to the blank line.
        var lines = 0
        while true {
            guard p + 1 < head.count, lines <= maxHeaderLines else { return .unframed }
            lines += 1
            if head[p] == CR {
                guard head[p + 1] == LF, p + 2 == head.count else { return .unframed }
                return .request(length: head.count, hotTarget: plain ? target : nil)
            }
            let nameStart = p
            while p < head.count, isTokenByte(head[p]) { p += 1 }
            guard p > nameStart, p < head.count, head[p] == UInt8(ascii: ":") else { return .unframed }
            let name = UnsafeRawBufferPointer(rebasing: head[nameStart..<p])
            p += 1
            while p < head.count, isValueByte(head[p]) { p += 1 }
            guard p + 1 < head.count, head[p] == CR, head[p + 1] == LF else { return .unframed }
            p += 2
            switch classify(name) {
            case .framing: return .unframed
            case .notPlain: plain = false
            case .harmless: break
            }
        }
    }

    private enum HeaderKind { case framing, notPlain, harmless }

    /// Headers that change a request's framing end framing here; those a cached answer does not
    /// reflect make the request not plain (the full path answers it).
    private static func classify(_ name: UnsafeRawBufferPointer) -> HeaderKind {
        for framing: StaticString in ["content-length", "transfer-encoding", "upgrade"] where equalsIgnoringCase(name, framing) {
            return .framing
        }
        if name.count >= 3, equalsIgnoringCase(UnsafeRawBufferPointer(rebasing: name[0..<3]), "if-") { return .notPlain }
        for other: StaticString in ["range", "origin", "expect", "connection", "proxy-connection"] where equalsIgnoringCase(name, other) {
            return .notPlain
        }
        return .harmless
    }

    private static let CR = UInt8(ascii: "\r")
    private static let LF = UInt8(ascii: "\n")

    private static func starts(_ bytes: UnsafeRawBufferPointer, at offset: Int, with text: StaticString) -> Bool {
        let n = text.utf8CodeUnitCount
        guard offset + n <= bytes.count else { return false }
        let expected = UnsafeRawBufferPointer(start: text.utf8Start, count: n)
        for k in 0..<n where bytes[offset + k] != expected[k] { return false }
        return true
    }

    /// `name` equals `lowercase`, a lowercase ASCII name, ignoring ASCII case.
    private static func equalsIgnoringCase(_ name: UnsafeRawBufferPointer, _ lowercase: StaticString) -> Bool {
        let n = lowercase.utf8CodeUnitCount
        guard name.count == n else { return false }
        let expected = UnsafeRawBufferPointer(start: lowercase.utf8Start, count: n)
        for k in 0..<n {
            var b = name[k]
            if b >= UInt8(ascii: "A"), b <= UInt8(ascii: "Z") { b |= 0x20 }
            if b != expected[k] { return false }
        }
        return true
    }

    /// RFC 9110 `tchar`.
    private static func isTokenByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
            UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
            UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    /// HTAB, SP, VCHAR, obs-text.
    private static func isValueByte(_ b: UInt8) -> Bool {
        b == 0x09 || (b >= 0x20 && b != 0x7F)
    }
}
