import DepotCore
import Testing

@Suite("Numbers and ranges read from requests")
struct RequestNumberTests {
    @Test func numbersAreDigitsThatFit() {
        #expect(RequestNumber.parse("0") == 0)
        #expect(RequestNumber.parse("0009") == 9)
        #expect(RequestNumber.parse("9223372036854775807") == .max)
        for bad in ["", "9223372036854775808", "99999999999999999999", "-1", "+1", " 1", "1 ", "1.0", "1e3", "0x10", "١"] {
            #expect(RequestNumber.parse(bad) == nil, "\(bad)")
        }
        #expect(RequestNumber.parse(String(repeating: "0", count: 33)) == nil)
        #expect(RequestNumber.saturatingAdd(.max, 1) == .max)
        #expect(RequestNumber.saturatingAdd(5, 7) == 12)
    }

    @Test func rangesClipOrIgnoreAnyNumber() {
        let size: Int64 = 1000
        #expect(ByteRangeRequest.parse("bytes=0-9223372036854775807", size: size) == .range(0..<1000))
        #expect(ByteRangeRequest.parse("bytes=10-19", size: size) == .range(10..<20))
        #expect(ByteRangeRequest.parse("bytes=990-", size: size) == .range(990..<1000))
        #expect(ByteRangeRequest.parse("bytes=-9223372036854775807", size: size) == .range(0..<1000))
        #expect(ByteRangeRequest.parse("bytes=-10", size: size) == .range(990..<1000))
        #expect(ByteRangeRequest.parse("bytes=9223372036854775807-", size: size) == .unsatisfiable)
        #expect(ByteRangeRequest.parse("bytes=1000-", size: size) == .unsatisfiable)
        #expect(ByteRangeRequest.parse("bytes=-0", size: size) == .unsatisfiable)
        #expect(ByteRangeRequest.parse("bytes=0-0", size: 0) == .unsatisfiable)
        #expect(ByteRangeRequest.parse("bytes=0-9223372036854775807", size: .max) == .range(0..<Int64.max))
        for ignored in [
            "bytes=5-1", "bytes=0-99999999999999999999", "bytes=-9223372036854775808", "bytes=+1-2", "bytes=1-2,3-4",
            "items=1-2", "bytes=a-b", "bytes=", "bytes=-", "bytes=1-0x10", String(repeating: "bytes=1-2", count: 40),
        ] {
            #expect(ByteRangeRequest.parse(ignored, size: size) == .none, "\(ignored)")
        }
    }
}
