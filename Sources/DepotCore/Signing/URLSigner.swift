import CDepotCrypto
import Crypto
import Foundation

/// Signing keys by key id. The first key signs; every key verifies, so rotating means putting a new
/// key first and, once old links may die, removing the retired one.
public struct KeyRing: Sendable {
    public struct Key: Sendable {
        public let id: String
        /// HMAC-SHA256 already keyed; each MAC starts from a copy.
        let prototype: KeyedHMACSHA256
        public init(id: String, secret: [UInt8]) {
            self.id = id
            self.prototype = KeyedHMACSHA256(key: secret)
        }
    }

    public let active: Key
    private let byID: [String: Key]

    public init(keys: [Key]) throws(StorageError) {
        guard let first = keys.first else { throw .internal("a key ring needs at least one key") }
        for k in keys where k.id.isEmpty || k.id.contains(".") {
            throw .internal("key id '\(k.id)' must be non-empty and contain no '.'")
        }
        active = first
        byID = Dictionary(keys.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
    }

    /// A ring with one key derived from the project secret (so URL signing keys are never the JWT
    /// secret itself).
    public static func derived(fromProjectSecret secret: String, keyID: String = "k1") -> KeyRing {
        let mac = HMAC<SHA256>.authenticationCode(
            for: Array("depot url signing v1".utf8), using: SymmetricKey(data: Array(secret.utf8)))
        // A single derived key cannot fail validation.
        return try! KeyRing(keys: [Key(id: keyID, secret: Array(mac))])
    }

    func key(id: Substring) -> Key? { byID[String(id)] }
}

/// Mints and verifies compact URL tokens: HMAC-SHA256 over (scope, key id, expiry, binding, bucket,
/// path), base64url. Minting needs no database round trip. Download tokens carry the object's
/// generation, upload tokens the intent id; a token of one scope never verifies as the other.
///
/// Shape: `d.<kid>.<expiry>.<generation>.<mac>` and `u.<kid>.<expiry>.<intent>.<mac>`.
public struct URLSigner: Sendable {
    public enum Scope: String, Sendable { case download = "d", upload = "u" }

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
        let exp = String(expiresAt)
        let mac = Self.mac(key: key, scope: scope, exp: exp, binding: binding, bucket: bucket, path: path.string)
        // `<scope>.<kid>.<exp>.<binding>.<mac>` written in place: one allocation for the token.
        let length = 5 + key.id.utf8.count + exp.utf8.count + binding.utf8.count + Base64URL.encodedLength(mac.count)
        return String(unsafeUninitializedCapacity: length) { out in
            out[0] = UInt8(ascii: scope == .download ? "d" : "u")
            out[1] = UInt8(ascii: ".")
            var i = Self.copy(key.id, into: out, at: 2)
            out[i] = UInt8(ascii: ".")
            i = Self.copy(exp, into: out, at: i + 1)
            out[i] = UInt8(ascii: ".")
            i = Self.copy(binding, into: out, at: i + 1)
            out[i] = UInt8(ascii: ".")
            return i + 1 + Base64URL.encode(mac, into: UnsafeMutableBufferPointer(rebasing: out[(i + 1)...]))
        }
    }

    /// Copies `s`'s UTF-8 into `out` at `i`; returns the index after it.
    @inline(__always)
    static func copy(_ s: String, into out: UnsafeMutableBufferPointer<UInt8>, at i: Int) -> Int {
        var s = s
        return s.withUTF8 { src in
            UnsafeMutableRawBufferPointer(UnsafeMutableBufferPointer(rebasing: out[i..<(i + src.count)]))
                .copyMemory(from: UnsafeRawBufferPointer(src))
            return i + src.count
        }
    }

    /// Checks signature, scope and expiry, in constant time for the signature.
    /// - Throws: `.signatureInvalid` for a malformed, tampered or wrong-scope token, or an unknown key;
    ///   `.urlExpired` when it has expired.
    public func verify(_ token: String, scope: Scope, bucket: String, path: ObjectPath, now: Int64) throws(StorageError) -> Claims {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 5, parts[0] == scope.rawValue, let key = keys.key(id: parts[1]),
            let exp = Int64(parts[2]), !parts[3].isEmpty, parts[3].utf8.count <= 64,
            let mac = Base64URL.decode(parts[4]), mac.count == 32
        else { throw StorageError(.signatureInvalid, "the URL's token is not valid") }
        let expected = Self.mac(
            key: key, scope: scope, exp: String(parts[2]), binding: String(parts[3]), bucket: bucket, path: path.string)
        guard Self.constantTimeEqual(expected, mac) else {
            throw StorageError(.signatureInvalid, "the URL's token is not valid")
        }
        guard exp > now else { throw StorageError(.urlExpired, "the URL has expired") }
        return Claims(scope: scope, expiresAt: exp, binding: String(parts[3]))
    }

    /// HMAC-SHA256 of `scope \n kid \n exp \n binding \n bucket \n path`, the message laid out in
    /// one stack buffer and absorbed in one call.
    static func mac(key: KeyRing.Key, scope: Scope, exp: String, binding: String, bucket: String, path: String) -> [UInt8] {
        let length = 6 + key.id.utf8.count + exp.utf8.count + binding.utf8.count + bucket.utf8.count + path.utf8.count
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: length) { message in
            message[0] = UInt8(ascii: scope == .download ? "d" : "u")
            var i = 1
            func field(_ part: String) {
                message[i] = UInt8(ascii: "\n")
                i = copy(part, into: message, at: i + 1)
            }
            field(key.id)
            field(exp)
            field(binding)
            field(bucket)
            field(path)
            return key.prototype.authenticationCode(for: UnsafeRawBufferPointer(UnsafeMutableBufferPointer(rebasing: message[..<i])))
        }
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for i in 0..<a.count { diff |= a[i] ^ b[i] }
        return diff == 0
    }
}

/// HMAC-SHA256 (RFC 2104) keyed once: the inner and outer hashes start from states that have
/// already absorbed the padded key. Computed by `CDepotCrypto` (SHA extensions where the CPU has
/// them): through swift-crypto, generic `DataProtocol` paths and copy-on-write hash contexts cost
/// several times the hashing for messages this short. Tests check it against swift-crypto's HMAC.
struct KeyedHMACSHA256: Sendable {
    private let key: depot_hmac_sha256_key

    init(key secret: [UInt8]) {
        var key = depot_hmac_sha256_key()
        secret.withUnsafeBufferPointer { depot_hmac_sha256_init(&key, $0.baseAddress, $0.count) }
        self.key = key
    }

    func authenticationCode(for message: UnsafeRawBufferPointer) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: 32) { out, count in
            withUnsafePointer(to: key) { k in
                depot_hmac_sha256(k, message.baseAddress?.assumingMemoryBound(to: UInt8.self), message.count, out.baseAddress)
            }
            count = 32
        }
    }
}

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

    /// `nil` for characters outside the alphabet, padding, or an impossible length.
    public static func decode(_ s: Substring) -> [UInt8]? {
        let input = Array(s.utf8)
        guard input.count % 4 != 1 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(input.count * 3 / 4)
        var acc: UInt32 = 0
        var bits = 0
        for c in input {
            let v = reverse[Int(c)]
            guard v != 0xFF else { return nil }
            acc = acc << 6 | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: acc >> UInt32(bits)))
            }
        }
        // Leftover bits must be zero (canonical encoding), so one token has one spelling.
        guard acc & ((1 << UInt32(bits)) - 1) == 0 else { return nil }
        return out
    }
}
