import Crypto
import Foundation

/// base64url without padding (RFC 4648 §5).
public enum Base64URL {
    private static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    private static let reverse: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in alphabet.enumerated() { table[Int(c)] = UInt8(i) }
        return table
    }()

    public static func encode(_ bytes: some Collection<UInt8>) -> String {
        let input = Array(bytes)
        return String(unsafeUninitializedCapacity: encodedLength(input.count)) { out in
            input.withUnsafeBufferPointer { encode($0, into: out) }
        }
    }

    /// Characters needed for `count` bytes, without padding.
    public static func encodedLength(_ count: Int) -> Int { (count * 4 + 2) / 3 }

    /// Writes the encoding of `input` into `out` (at least ``encodedLength(_:)`` long); returns the
    /// number of bytes written.
    @discardableResult
    public static func encode(_ input: some RandomAccessCollection<UInt8>, into out: UnsafeMutableBufferPointer<UInt8>) -> Int {
        alphabet.withUnsafeBufferPointer { alphabet in
            var o = out.startIndex
            func put(_ v: UInt32) { out[o] = alphabet[Int(v & 63)]; o += 1 }
            var i = input.startIndex
            var left = input.count
            while left >= 3 {
                let v = UInt32(input[i]) << 16 | UInt32(input[input.index(i, offsetBy: 1)]) << 8 | UInt32(input[input.index(i, offsetBy: 2)])
                put(v >> 18); put(v >> 12); put(v >> 6); put(v)
                i = input.index(i, offsetBy: 3)
                left -= 3
            }
            if left == 1 {
                let v = UInt32(input[i]) << 16
                put(v >> 18); put(v >> 12)
            } else if left == 2 {
                let v = UInt32(input[i]) << 16 | UInt32(input[input.index(after: i)]) << 8
                put(v >> 18); put(v >> 12); put(v >> 6)
            }
            return o - out.startIndex
        }
    }

    /// Decodes into `out`; returns the number of bytes, or `nil` for characters outside the
    /// alphabet, padding, an impossible length, non-canonical trailing bits, or too small an `out`.
    public static func decode(_ s: Substring, into out: UnsafeMutableBufferPointer<UInt8>) -> Int? {
        var s = s
        return s.withUTF8 { decode($0, into: out) }
    }

    /// Decodes base64url text given as bytes (see ``decode(_:into:)``).
    public static func decode(_ input: UnsafeBufferPointer<UInt8>, into out: UnsafeMutableBufferPointer<UInt8>) -> Int? {
        guard input.count % 4 != 1, input.count * 3 / 4 <= out.count else { return nil }
        return reverse.withUnsafeBufferPointer { reverse -> Int? in
            var o = 0
            var acc: UInt32 = 0
            var bits = 0
            for c in input {
                let v = reverse[Int(c)]
                guard v != 0xFF else { return nil }
                acc = acc << 6 | UInt32(v)
                bits += 6
                if bits >= 8 {
                    bits -= 8
                    out[o] = UInt8(truncatingIfNeeded: acc >> UInt32(bits))
                    o += 1
                }
            }
            guard acc & ((1 << UInt32(bits)) - 1) == 0 else { return nil }
            return o
        }
    }

    /// `nil` for characters outside the alphabet, padding, an impossible length, or non-canonical
    /// trailing bits (so one token has one spelling).
    public static func decode(_ s: Substring) -> [UInt8]? {
        var failed = false
        let out = [UInt8](unsafeUninitializedCapacity: s.utf8.count * 3 / 4 + 1) { buffer, count in
            guard let n = decode(s, into: buffer) else {
                failed = true
                count = 0
                return
            }
            count = n
        }
        return failed ? nil : out
    }
}
