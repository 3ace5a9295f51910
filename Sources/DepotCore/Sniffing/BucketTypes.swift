import Foundation

/// A bucket's `allowed_mime_types`: entries `type/subtype` (parameters ignored) or patterns ending
/// in `*` (`image/*`, `*`). Checked against what the bytes are when the sniffer recognises them,
/// so a renamed file does not pass as an allowed type.
public struct BucketTypes: Sendable, Equatable {
    public let entries: [String]

    /// Validates the entries as a client sent them; empty strings are dropped.
    /// - Throws: `.unsupportedMediaType` naming the first malformed entry.
    public init(validating raw: [String]) throws(StorageError) {
        var kept: [String] = []
        for entry in raw {
            let t = entry.trimmingCharacters(in: .whitespaces)
            if t.isEmpty { continue }
            guard t.utf8.count <= 255, Self.isWellFormed(t) else {
                throw StorageError(.unsupportedMediaType, "invalid mime type '\(entry)'")
            }
            kept.append(t)
        }
        entries = kept
    }

    /// Entries already validated (read back from a store).
    public init(stored: [String]) { entries = stored }

    private static func isWellFormed(_ t: String) -> Bool {
        if t.hasSuffix("*") { return !t.contains(" ") }
        let essence = MediaSniffer.canonical(t)
        let halves = essence.split(separator: "/", omittingEmptySubsequences: false)
        return halves.count == 2 && !halves[0].isEmpty && !halves[1].isEmpty && !essence.contains(" ")
    }

    /// Whether `type` (any case, parameters ignored) matches an entry.
    public func accepts(_ type: String) -> Bool {
        let essence = MediaSniffer.canonical(type)
        return entries.contains { entry in
            if entry.hasSuffix("*") {
                let stem = entry.dropLast().lowercased()
                return stem.isEmpty || stem == "*/" || essence.hasPrefix(stem)
            }
            return MediaSniffer.canonical(entry) == essence
        }
    }

    /// The type to store for bytes the sniffer calls `sniffed` (nil: unrecognised) that the client
    /// declared as `declared`:
    /// - no list: the declared type, as given (Supabase's behaviour);
    /// - recognised bytes: they must be of an allowed type; the declared type is kept when it
    ///   agrees, else the sniffed one is stored;
    /// - unrecognised bytes: the declared type must be allowed and must not be one the sniffer
    ///   would have recognised (a PDF renamed `.png` and declared `image/png` is refused).
    public static func decide(sniffed: String?, declared: String?, allowed: BucketTypes?) throws(StorageError) -> String {
        let declared = declared.flatMap { $0.isEmpty ? nil : $0 }
        guard let allowed else { return declared ?? sniffed ?? "application/octet-stream" }
        if let sniffed {
            guard allowed.accepts(sniffed) else {
                throw StorageError(.unsupportedMediaType, "mime type \(sniffed) is not supported (the bytes are \(sniffed))")
            }
            if let declared, MediaSniffer.canonical(declared) == sniffed { return declared }
            return sniffed
        }
        let type = declared ?? "application/octet-stream"
        if MediaSniffer.fileExtension(for: MediaSniffer.canonical(type)) != nil {
            throw StorageError(.mediaTypeMismatch, "the bytes are not \(MediaSniffer.canonical(type))")
        }
        guard allowed.accepts(type) else { throw StorageError(.unsupportedMediaType, "mime type \(type) is not supported") }
        return type
    }
}
