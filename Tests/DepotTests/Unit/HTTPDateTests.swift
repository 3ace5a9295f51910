import DepotCore
import Foundation
import Testing

@Suite("HTTP dates")
struct HTTPDateTests {
    @Test func matchesDateFormatter() {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        for t in [0.0, 784_111_777, 951_782_400, 1_795_933_880.7, 4_102_444_800, 1_709_164_800] {
            let d = Date(timeIntervalSince1970: t)
            #expect(HTTPDate.format(d) == f.string(from: d), "\(t)")
        }
        #expect(HTTPDate.format(Date(timeIntervalSince1970: 784_111_777)) == "Sun, 06 Nov 1994 08:49:37 GMT")
    }

    @Test func iso8601WithMillisecondsMatchesDateFormatter() {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'"
        for t in [0.0, 784_111_777.25, 951_782_400.5, 1_795_933_880.125, 4_102_444_800, -1.5] {
            let d = Date(timeIntervalSince1970: t)
            #expect(HTTPDate.iso8601(d) == f.string(from: d), "\(t)")
        }
        #expect(HTTPDate.iso8601(Date(timeIntervalSince1970: 1_704_067_200)) == "2024-01-01T00:00:00.000Z")
    }

    @Test func parsesWhatItFormats() {
        for t in [0.0, 784_111_777, 951_782_400, 1_795_933_880, 4_102_444_800, 1_709_164_800] {
            let d = Date(timeIntervalSince1970: t)
            #expect(HTTPDate.parse(HTTPDate.format(d)) == d, "\(t)")
        }
        #expect(HTTPDate.parse("Sunday, 06-Nov-94 08:49:37 GMT") == nil)
        #expect(HTTPDate.parse("Sun, 06 Foo 1994 08:49:37 GMT") == nil)
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 25:49:37 GMT") == nil)
    }

    /// list-v2 cursors carry times as upstream writes them; whole milliseconds both ways (a `Date`
    /// of `….123` is `….12299…`, which must not come back as `….122`).
    @Test func iso8601MillisecondsReadBack() {
        for ms: Int64 in [0, 1_700_000_000_123, 1_700_000_000_999, 951_782_400_500, 4_102_444_800_001] {
            #expect(HTTPDate.parseISO8601(HTTPDate.iso8601(milliseconds: ms)) == ms, "\(ms)")
        }
        #expect(HTTPDate.parseISO8601("2023-11-14T22:13:20Z") == 1_700_000_000_000)
        #expect(HTTPDate.parseISO8601("2023-11-14T22:13:20.1Z") == 1_700_000_000_100)
        #expect(HTTPDate.parseISO8601("2023-11-14T22:13:20.12Z") == 1_700_000_000_120)
        for bad in [
            "", "2023-11-14", "2023-11-14T22:13:20.123", "2023-11-14T22:13:20.1234Z", "2023-11-14T22:13:20.Z", "2023-13-14T22:13:20Z",
            "2023-11-14T24:13:20Z", "2023-11-14 22:13:20Z", "+023-11-14T22:13:20Z", "1969-12-31T23:59:59Z", "2023-11-14T22:13:20+01:00",
            "２０23-11-14T22:13:20Z",
        ] {
            #expect(HTTPDate.parseISO8601(bad) == nil, "\(bad)")
        }
    }
}
