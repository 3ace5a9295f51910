import Foundation

/// A rule's name pattern, compiled once: `/`-separated segments, each a literal name, `{sub}`
/// (the caller's user id), `{claims.NAME}` (a claim of the caller's token), `*` (any one segment)
/// or, last, `**` (one or more segments). Matched against a name's bytes without allocating: a
/// variable matches a segment whose bytes equal the value, and a caller without that value
/// (no `sub`, no such claim) matches nothing.
public struct PathTemplate: Sendable, Equatable, CustomStringConvertible {
    enum Segment: Sendable, Equatable {
        case literal(String)
        case subject
        case claim(String)
        case anyOne
        case anyRest
    }

    let segments: [Segment]
    public let description: String

    /// Compiles `text`; the error says what is wrong with it.
    public init(_ text: String) throws(AccessRuleError.Reason) {
        guard !text.isEmpty, text.utf8.count <= ObjectPath.maxBytes else { throw .init("a path template is 1 … 1024 bytes") }
        var parts: [Segment] = []
        let raw = text.split(separator: "/", omittingEmptySubsequences: false)
        for (i, part) in raw.enumerated() {
            switch part {
            case "**":
                guard i == raw.count - 1 else { throw .init("'**' may only be the last segment of '\(text)'") }
                parts.append(.anyRest)
            case "*": parts.append(.anyOne)
            case "{sub}": parts.append(.subject)
            default:
                if part.hasPrefix("{") || part.hasSuffix("}") {
                    guard part.hasPrefix("{claims."), part.hasSuffix("}"), part.count > 9 else {
                        throw .init("unknown variable '\(part)' in '\(text)': use {sub} or {claims.NAME}")
                    }
                    let name = String(part.dropFirst(8).dropLast())
                    try ClaimTest.checkName(name)
                    parts.append(.claim(name))
                } else {
                    guard !part.contains("*") else {
                        throw .init("'\(part)' in '\(text)': '*' and '**' stand for whole segments only")
                    }
                    do { try ObjectPath.validate(segment: String(part)) } catch {
                        throw .init("'\(part)' in '\(text)' is not a valid name segment (\(error.message))")
                    }
                    guard part.utf8.elementsEqual(part.precomposedStringWithCanonicalMapping.utf8) else {
                        throw .init("'\(part)' in '\(text)' is not in Unicode NFC: names are stored in NFC, so it could never match")
                    }
                    parts.append(.literal(String(part)))
                }
            }
        }
        segments = parts
        description = text
    }

    /// Whether the template names `{sub}`.
    var namesSubject: Bool { segments.contains(.subject) }

    /// Whether `name` (a valid object name) matches, for this caller.
    public func matches(_ name: String, for identity: Identity) -> Bool {
        walk(name[...].utf8, for: identity, folder: false)
    }

    /// Whether some name inside the folder `folder` (ending in `/`) could match: what a listing
    /// shows as a folder entry is decided with this.
    public func mayMatchInside(folder: String, for identity: Identity) -> Bool {
        walk(folder[...].utf8.dropLast(), for: identity, folder: true)
    }

    /// Walks the segments of `name` against the template. With `folder`, `name` is a folder's
    /// segments and the template may go on past them.
    private func walk(_ name: Substring.UTF8View, for identity: Identity, folder: Bool) -> Bool {
        var rest = name
        var i = 0
        while i < segments.count {
            if case .anyRest = segments[i] { return folder || !rest.isEmpty }
            if rest.isEmpty { return folder }
            let end = rest.firstIndex(of: UInt8(ascii: "/")) ?? rest.endIndex
            let segment = rest[rest.startIndex..<end]
            guard matches(segments[i], segment, identity) else { return false }
            rest = end == rest.endIndex ? rest[end...] : rest[rest.index(after: end)...]
            // A trailing "/" would leave an empty last segment: names never have one.
            if end != name.endIndex, rest.isEmpty { return false }
            i += 1
        }
        return rest.isEmpty && !folder
    }

    private func matches(_ segment: Segment, _ bytes: Substring.UTF8View, _ identity: Identity) -> Bool {
        switch segment {
        case .literal(let text): return text.utf8.elementsEqual(bytes)
        case .subject: return identity.subject.map { !$0.isEmpty && $0.utf8.elementsEqual(bytes) } ?? false
        case .claim(let name): return identity.claims[name].map { !$0.isEmpty && $0.utf8.elementsEqual(bytes) } ?? false
        case .anyOne, .anyRest: return true
        }
    }

    /// The fixed beginning of every name the template matches for this caller: its segments up
    /// to the first wildcard, each followed by `/` (the whole name when it has no wildcard); nil
    /// when a variable has no value for this caller.
    public func fixedPrefix(for identity: Identity) -> String? {
        var out = ""
        for (i, segment) in segments.enumerated() {
            let value: String?
            switch segment {
            case .literal(let text): value = text
            case .subject: value = identity.subject
            case .claim(let name): value = identity.claims[name]
            case .anyOne, .anyRest: return out
            }
            guard let value, !value.isEmpty, !value.utf8.contains(UInt8(ascii: "/")) else { return nil }
            out += i == segments.count - 1 ? value : value + "/"
        }
        return out
    }
}
