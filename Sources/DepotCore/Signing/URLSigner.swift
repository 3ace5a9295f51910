import Crypto
import Foundation

/// Mints and verifies compact URL tokens: HMAC-SHA256 over (scope, key id, expiry, binding, bucket,
/// path), base64url. Minting needs no database round trip. Download tokens carry the object's
/// generation, upload tokens the intent id, render tokens the generation and the transformation; a
/// token of one scope never verifies as another.
///
/// Shape: `d.<kid>.<expiry>.<generation>.<mac>`, `u.<kid>.<expiry>.<intent>.<mac>` and
/// `r.<kid>.<expiry>.<generation>~<transform>.<mac>`.
public struct URLSigner: Sendable {
    public enum Scope: String, Sendable {
        /// An object's bytes (binding: its generation).
        case download = "d"
        /// A single-use upload (binding: the intent id).
        case upload = "u"
        /// A transformed image (binding: `<generation>~<transform>`, ``ImageTransform/compact``).
        case render = "r"
        var byte: UInt8 { rawValue.utf8.first! }
    }

    public struct Claims: Sendable, Equatable {
        public var scope: Scope
        public var expiresAt: Int64
        /// The generation (download) or the intent id (upload).
        public var binding: String
    }

    public let keys: KeyRing
    public init(keys: KeyRing) { self.keys = keys }

    public func mint(scope: Scope, bucket: String, path: ObjectPath, binding: String, expiresAt: Int64) -> String {
        let key = keys.active
        var exp = String(expiresAt)
        var binding = binding
        return exp.withUTF8 { exp in
            binding.withUTF8 { binding in
                withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { mac in
                    Self.mac(key: key, scope: scope, exp: exp, binding: binding, bucket: bucket, path: path.string, into: mac)
                    // `<scope>.<kid>.<exp>.<binding>.<mac>` written in place: one allocation for the token.
                    let length = 5 + key.idBytes.count + exp.count + binding.count + Base64URL.encodedLength(32)
                    return String(unsafeUninitializedCapacity: length) { out in
                        out[0] = scope.byte
                        out[1] = UInt8(ascii: ".")
                        var i = Self.copy(key.idBytes, into: out, at: 2)
                        out[i] = UInt8(ascii: ".")
                        i = Self.copy(exp, into: out, at: i + 1)
                        out[i] = UInt8(ascii: ".")
                        i = Self.copy(binding, into: out, at: i + 1)
                        out[i] = UInt8(ascii: ".")
                        return i + 1 + Base64URL.encode(UnsafeBufferPointer(mac), into: UnsafeMutableBufferPointer(rebasing: out[(i + 1)...]))
                    }
                }
            }
        }
    }

    /// Copies `bytes` into `out` at `i`; returns the index after them.
    @inline(__always)
    static func copy(_ bytes: some Collection<UInt8>, into out: UnsafeMutableBufferPointer<UInt8>, at i: Int) -> Int {
        _ = UnsafeMutableBufferPointer(rebasing: out[i..<(i + bytes.count)]).initialize(from: bytes)
        return i + bytes.count
    }

    /// Checks signature, scope and expiry, in constant time for the signature.
    /// - Throws: `.signatureInvalid` for a malformed, tampered or wrong-scope token, or an unknown key;
    ///   `.urlExpired` when it has expired.
    public func verify(_ token: String, scope: Scope, bucket: String, path: ObjectPath, now: Int64) throws(StorageError) -> Claims {
        var token = token
        // Parsed as bytes: `<scope>.<kid>.<exp>.<binding>.<mac>`.
        let parsed: (exp: Int64, binding: String)? = token.withUTF8 { t in
            var dots: [Int] = []
            dots.reserveCapacity(4)
            for (i, byte) in t.enumerated() where byte == UInt8(ascii: ".") {
                dots.append(i)
                if dots.count > 4 { return nil }
            }
            guard dots.count == 4, dots[0] == 1, t[0] == scope.byte else { return nil }
            let kid = UnsafeBufferPointer(rebasing: t[(dots[0] + 1)..<dots[1]])
            let expBytes = UnsafeBufferPointer(rebasing: t[(dots[1] + 1)..<dots[2]])
            let binding = UnsafeBufferPointer(rebasing: t[(dots[2] + 1)..<dots[3]])
            let macText = UnsafeBufferPointer(rebasing: t[(dots[3] + 1)...])
            guard let key = kid.elementsEqual(keys.active.idBytes) ? keys.active : keys.key(id: Substring(decoding: kid, as: UTF8.self)),
                let exp = RequestNumber.parse(bytes: expBytes), !binding.isEmpty, binding.count <= 64,
                macText.count == Base64URL.encodedLength(32)
            else { return nil }
            let valid = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 64) { buffer in
                let given = UnsafeMutableBufferPointer(rebasing: buffer[0..<32])
                let expected = UnsafeMutableBufferPointer(rebasing: buffer[32..<64])
                guard Base64URL.decode(macText, into: given) == 32 else { return false }
                Self.mac(key: key, scope: scope, exp: expBytes, binding: binding, bucket: bucket, path: path.string, into: expected)
                return Self.constantTimeEqual(UnsafeBufferPointer(given), UnsafeBufferPointer(expected))
            }
            return valid ? (exp, String(decoding: binding, as: UTF8.self)) : nil
        }
        guard let parsed else { throw StorageError(.signatureInvalid, "the URL's token is not valid") }
        guard parsed.exp > now else { throw StorageError(.urlExpired, "the URL has expired") }
        return Claims(scope: scope, expiresAt: parsed.exp, binding: parsed.binding)
    }

    /// HMAC-SHA256 of `scope \n kid \n exp \n binding \n bucket \n path` into `out` (32 bytes), the
    /// message laid out in one stack buffer.
    static func mac(
        key: KeyRing.Key, scope: Scope, exp: UnsafeBufferPointer<UInt8>, binding: UnsafeBufferPointer<UInt8>,
        bucket: String, path: String, into out: UnsafeMutableBufferPointer<UInt8>
    ) {
        var bucket = bucket
        var path = path
        bucket.withUTF8 { bucket in
            path.withUTF8 { path in
                let length = 6 + key.idBytes.count + exp.count + binding.count + bucket.count + path.count
                withUnsafeTemporaryAllocation(of: UInt8.self, capacity: length) { message in
                    message[0] = scope.byte
                    var i = 1
                    func field(_ part: some Collection<UInt8>) {
                        message[i] = UInt8(ascii: "\n")
                        i = copy(part, into: message, at: i + 1)
                    }
                    field(key.idBytes)
                    field(exp)
                    field(binding)
                    field(bucket)
                    field(path)
                    key.prototype.authenticate(UnsafeRawBufferPointer(UnsafeMutableBufferPointer(rebasing: message[..<i])), into: out)
                }
            }
        }
    }

    static func constantTimeEqual(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for i in 0..<a.count { diff |= a[i] ^ b[i] }
        return diff == 0
    }
}
