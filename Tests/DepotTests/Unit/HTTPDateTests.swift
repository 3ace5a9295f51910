import DepotHTTP
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
}
