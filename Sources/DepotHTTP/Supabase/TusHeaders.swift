import DepotCore
import Foundation
import HTTPTypes

/// The TUS 1.0 request headers Depot reads, parsed as bytes with bounded, overflow-safe numbers.
enum TusHeaders {
    static let version = "1.0.0"
    static let extensions = "creation,creation-with-upload,termination,expiration,checksum"
    static let maxMetadataPairs = 32
    static let maxMetadataBytes = 64 * 1024

    /// `Upload-Length` / `Upload-Offset`: ASCII decimal digits that fit an `Int64` (``RequestNumber``).
    static func number(_ value: String?, name: String) throws(StorageError) -> Int64? {
        guard let value else { return nil }
        guard let n = RequestNumber.parse(value) else {
            throw .invalidRequest("\(name) must be a non-negative integer")
        }
        return n
    }

    /// `Upload-Metadata`: comma-separated `key` or `key base64(value)` pairs. Keys are unique,
    /// printable ASCII without spaces or commas; values are base64 of UTF-8 text.
    static func metadata(_ header: String?) throws(StorageError) -> [String: String] {
        guard let header, !header.isEmpty else { return [:] }
        guard header.utf8.count <= maxMetadataBytes else { throw .invalidRequest("Upload-Metadata is larger than \(maxMetadataBytes) bytes") }
        var result: [String: String] = [:]
        for pair in header.split(separator: ",", omittingEmptySubsequences: false) {
            let parts = pair.split(separator: " ", omittingEmptySubsequences: true)
            guard let key = parts.first, parts.count <= 2,
                key.utf8.allSatisfy({ (0x21...0x7E).contains($0) && $0 != UInt8(ascii: ",") })
            else { throw .invalidRequest("Upload-Metadata must be comma-separated 'key base64value' pairs") }
            var value = ""
            if parts.count == 2 {
                guard let data = Data(base64Encoded: String(parts[1])), let text = String(data: data, encoding: .utf8) else {
                    throw .invalidRequest("the Upload-Metadata value of '\(key)' is not base64 of UTF-8 text")
                }
                value = text
            }
            guard result.updateValue(value, forKey: String(key)) == nil else {
                throw .invalidRequest("Upload-Metadata names '\(key)' twice")
            }
            guard result.count <= maxMetadataPairs else { throw .invalidRequest("Upload-Metadata has more than \(maxMetadataPairs) pairs") }
        }
        return result
    }

    static let checksumAlgorithms = "sha1,sha256"

    /// `Upload-Checksum: <sha1|sha256> <base64 digest>`.
    /// - Throws: `.invalidRequest` for another algorithm or a malformed digest.
    static func checksum(_ header: String?) throws(StorageError) -> StorageService.BodyChecksum? {
        guard let header else { return nil }
        let parts = header.split(separator: " ", omittingEmptySubsequences: true)
        let algorithm = parts.first?.lowercased()
        guard parts.count == 2, algorithm == "sha256" || algorithm == "sha1" else {
            throw .invalidRequest("Upload-Checksum must be '<sha1|sha256> <base64 digest>'")
        }
        let size = algorithm == "sha256" ? 32 : 20
        guard let digest = Data(base64Encoded: String(parts[1])), digest.count == size else {
            throw .invalidRequest("the Upload-Checksum digest must be \(size) bytes in base64")
        }
        return algorithm == "sha256" ? .sha256([UInt8](digest)) : .sha1([UInt8](digest))
    }
}

extension HTTPField.Name {
    static let tusResumable = Self("Tus-Resumable")!
    static let tusVersion = Self("Tus-Version")!
    static let tusExtension = Self("Tus-Extension")!
    static let tusMaxSize = Self("Tus-Max-Size")!
    static let tusChecksumAlgorithm = Self("Tus-Checksum-Algorithm")!
    static let uploadLength = Self("Upload-Length")!
    static let uploadOffset = Self("Upload-Offset")!
    static let uploadMetadata = Self("Upload-Metadata")!
    static let uploadChecksum = Self("Upload-Checksum")!
    static let uploadExpires = Self("Upload-Expires")!
    static let uploadDeferLength = Self("Upload-Defer-Length")!
    static let uploadConcat = Self("Upload-Concat")!
}
