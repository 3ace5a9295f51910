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
        // Days from the civil date (the inverse of `civil`).
        let m = Int64(monthIndex + 1)
        let yy = m <= 2 ? y - 1 : y
        let era = (yy >= 0 ? yy : yy - 399) / 400
        let yoe = yy - era * 400
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        return Date(timeIntervalSince1970: TimeInterval(days * 86400 + hms[0] * 3600 + hms[1] * 60 + hms[2]))
    }

    /// ISO 8601 in UTC with milliseconds, `2024-01-01T00:00:00.000Z` (Supabase's timestamps).
    public static func iso8601(_ date: Date) -> String {
        let ms = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
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
