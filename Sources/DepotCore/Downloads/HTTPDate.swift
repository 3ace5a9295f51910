import Foundation

/// IMF-fixdate formatting (RFC 9110 §5.6.7), without a DateFormatter (one per request is slow).
public enum HTTPDate {
    private static let days = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]  // 1970-01-01 was a Thursday
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    public static func format(_ date: Date) -> String {
        let (c, day, secs) = civil(Int64(date.timeIntervalSince1970.rounded(.down)))
        let weekday = days[Int(((day % 7) + 7) % 7)]
        return "\(weekday), \(two(c.d)) \(months[Int(c.m - 1)]) \(c.y) \(two(secs / 3600)):\(two(secs % 3600 / 60)):\(two(secs % 60)) GMT"
    }

    /// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the form clients send back; nil
    /// for anything else (the header is then ignored, as RFC 9110 asks).
    public static func parse(_ s: String) -> Date? {
        let parts = s.split(separator: " ")
        guard parts.count == 6, parts[5] == "GMT", let d = Int64(parts[1]), let y = Int64(parts[3]),
            let monthIndex = months.firstIndex(of: String(parts[2])), (1...31).contains(d), (1970...9999).contains(y)
        else { return nil }
        let hms = parts[4].split(separator: ":").compactMap { Int64($0) }
        guard hms.count == 3, (0..<24).contains(hms[0]), (0..<60).contains(hms[1]), (0..<61).contains(hms[2]) else { return nil }
        let days = daysFromCivil(y, Int64(monthIndex + 1), d)
        return Date(timeIntervalSince1970: TimeInterval(days * 86400 + hms[0] * 3600 + hms[1] * 60 + hms[2]))
    }

    /// Parses what ``iso8601(milliseconds:)`` writes, `2024-01-01T00:00:00.123Z` (milliseconds
    /// optional, 1 to 3 digits; UTC only), as milliseconds since the epoch; nil for anything else.
    public static func parseISO8601(_ s: String) -> Int64? {
        let b = Array(s.utf8)
        guard b.count == 20 || (22...24).contains(b.count), b.last == UInt8(ascii: "Z") else { return nil }
        func number(_ from: Int, _ count: Int) -> Int64? {
            var v: Int64 = 0
            for i in from..<from + count {
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b[i]) else { return nil }
                v = v * 10 + Int64(b[i] - UInt8(ascii: "0"))
            }
            return v
        }
        let separators: [(Int, Character)] = [(4, "-"), (7, "-"), (10, "T"), (13, ":"), (16, ":")]
        guard separators.allSatisfy({ b[$0.0] == UInt8(ascii: $0.1.unicodeScalars.first!) }),
            let y = number(0, 4), let m = number(5, 2), let d = number(8, 2), let hh = number(11, 2), let mm = number(14, 2),
            let ss = number(17, 2), (1970...9999).contains(y), (1...12).contains(m), (1...31).contains(d), hh < 24, mm < 60, ss < 61
        else { return nil }
        var millis: Int64 = 0
        if b.count > 20 {
            let digits = b.count - 21
            guard b[19] == UInt8(ascii: "."), let f = number(20, digits) else { return nil }
            millis = digits == 1 ? f * 100 : digits == 2 ? f * 10 : f
        }
        return (daysFromCivil(y, m, d) * 86400 + hh * 3600 + mm * 60 + ss) * 1000 + millis
    }

    /// Days since the epoch of a civil date (the inverse of `civil`). Callers bound the year.
    private static func daysFromCivil(_ y: Int64, _ m: Int64, _ d: Int64) -> Int64 {
        let yy = m <= 2 ? y - 1 : y
        let era = (yy >= 0 ? yy : yy - 399) / 400
        let yoe = yy - era * 400
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// ISO 8601 in UTC with milliseconds, `2024-01-01T00:00:00.000Z` (Supabase's timestamps).
    public static func iso8601(_ date: Date) -> String {
        iso8601(milliseconds: Int64((date.timeIntervalSince1970 * 1000).rounded(.down)))
    }

    /// The same, of a time in whole milliseconds since the epoch.
    public static func iso8601(milliseconds ms: Int64) -> String {
        let (c, _, secs) = civil(ms >= 0 ? ms / 1000 : (ms - 999) / 1000)
        let milli = ((ms % 1000) + 1000) % 1000
        let m3 = milli < 10 ? "00\(milli)" : milli < 100 ? "0\(milli)" : "\(milli)"
        return "\(c.y)-\(two(c.m))-\(two(c.d))T\(two(secs / 3600)):\(two(secs % 3600 / 60)):\(two(secs % 60)).\(m3)Z"
    }

    private static func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }

    /// The civil date of a unix time, its day number and the seconds into that day.
    private static func civil(_ t: Int64) -> ((y: Int64, m: Int64, d: Int64), day: Int64, secs: Int64) {
        var day = t / 86400
        var secs = t % 86400
        if secs < 0 { secs += 86400; day -= 1 }
        // Civil date from days since the epoch (Howard Hinnant's algorithm).
        let z = day + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        return ((y, m, d), day, secs)
    }
}
