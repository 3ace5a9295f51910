/// What a caller does; each access rule allows some of these.
public enum AccessOperation: Int, Sendable, CaseIterable {
    /// Download an object, read its metadata, copy from it.
    case read
    /// See its name in a listing.
    case list
    /// Create an object where none is (upload, copy to, signed upload URL).
    case insert
    /// Replace an object (upsert) or move it (at its old name and its new one).
    case update
    /// Delete an object, or end its signed URLs.
    case delete
    /// Make a signed download URL for it.
    case sign
    /// Create, change, empty, delete or see a bucket.
    case bucketAdmin

    /// Its name in a rules file.
    public var name: String {
        switch self {
        case .read: "read"
        case .list: "list"
        case .insert: "insert"
        case .update: "update"
        case .delete: "delete"
        case .sign: "sign"
        case .bucketAdmin: "bucket_admin"
        }
    }
}

/// A set of operations, one bit each.
public struct AccessOperations: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public init(_ op: AccessOperation) { rawValue = 1 << UInt8(op.rawValue) }

    /// Every operation on objects (not ``AccessOperation/bucketAdmin``): what `all` means in a
    /// rules file.
    public static let objects: AccessOperations = [.init(.read), .init(.list), .init(.insert), .init(.update), .init(.delete), .init(.sign)]

    public func contains(_ op: AccessOperation) -> Bool { contains(AccessOperations(op)) }
}

/// A test of one claim of the caller's token: `claims.NAME == "value"` or `!=`. A missing claim
/// is unequal to every value.
public struct ClaimTest: Sendable, Equatable {
    public let claim: String
    public let value: String
    public let equal: Bool

    func holds(for identity: Identity) -> Bool {
        let same = identity.claims[claim].map { $0.utf8.elementsEqual(value.utf8) } ?? false
        return same == equal
    }

    /// A claim name: dotted words (`app_role`, `app_metadata.team_id`).
    static func checkName(_ name: String) throws(AccessRuleError.Reason) {
        let words = name.split(separator: ".", omittingEmptySubsequences: false)
        guard !name.isEmpty, name.utf8.count <= 128, words.count <= 4,
            words.allSatisfy({ w in !w.isEmpty && w.utf8.allSatisfy { $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") || isAlnum($0) } })
        else { throw .init("'\(name)' is not a claim name (letters, digits, '_' and '-', dotted for nested claims, at most 4 deep)") }
    }

    private static func isAlnum(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
    }
}

/// One rule: who (`roles`, claim tests), where (buckets, path templates) and what (operations).
/// Rules only ever allow; a request is allowed when any rule allows it.
public struct AccessRule: Sendable, Equatable {
    public var name: String
    /// Bucket names; nil: every bucket.
    public var buckets: [String]?
    public var roles: [Identity.Role]
    public var operations: AccessOperations
    public var when: [ClaimTest]
    public var paths: [PathTemplate]

    public init(
        name: String, buckets: [String]?, roles: [Identity.Role], operations: AccessOperations, when: [ClaimTest] = [], paths: [PathTemplate]
    ) {
        self.name = name
        self.buckets = buckets
        self.roles = roles
        self.operations = operations
        self.when = when
        self.paths = paths
    }

    /// Whether the rule speaks for this caller, operation and bucket (not yet the name).
    func applies(to identity: Identity, _ op: AccessOperation, bucket: String) -> Bool {
        guard operations.contains(op), roles.contains(identity.role) else { return false }
        if let buckets, !buckets.contains(where: { $0.utf8.elementsEqual(bucket.utf8) }) { return false }
        for test in when where !test.holds(for: identity) { return false }
        return true
    }
}

/// The access rules of a server: compiled once at start, checked on every request.
///
/// `service_role` is never limited by rules (as upstream, where it bypasses row level security).
/// Objects of a public bucket may be read (and signed) by anyone, whatever the rules say: that is
/// what making a bucket public means. Everything else needs a rule.
public struct AccessPolicy: Sendable, Equatable {
    public let rules: [AccessRule]
    /// Where each rule came from (line numbers in the rules file), for messages.
    public let source: String

    public init(rules: [AccessRule], source: String) {
        self.rules = rules
        self.source = source
    }

    /// Depot's built-in rule: a signed-in user may do everything to objects under its own
    /// user id (`{sub}/**`) in every bucket; anon nothing; buckets are managed by `service_role`.
    public static let builtIn = AccessPolicy(
        rules: [
            AccessRule(
                name: "own files", buckets: nil, roles: [.authenticated], operations: .objects,
                paths: [try! PathTemplate("{sub}/**")])
        ],
        source: "the built-in rules")

    /// Whether `identity` may do `op` to the object named `path` in `bucket`.
    public func allows(_ identity: Identity, _ op: AccessOperation, bucket: String, path: ObjectPath) -> Bool {
        allows(identity, op, bucket: bucket, name: path.string)
    }

    /// ``allows(_:_:bucket:path:)`` for a name as text.
    public func allows(_ identity: Identity, _ op: AccessOperation, bucket: String, name: String) -> Bool {
        if identity.role == .serviceRole { return true }
        for rule in rules where rule.applies(to: identity, op, bucket: bucket) {
            for template in rule.paths where template.matches(name, for: identity) { return true }
        }
        return false
    }

    /// Whether `identity` may create, change, empty, delete or see `bucket`.
    public func allowsBucketAdmin(_ identity: Identity, bucket: String) -> Bool {
        if identity.role == .serviceRole { return true }
        return rules.contains { $0.applies(to: identity, .bucketAdmin, bucket: bucket) }
    }

    /// Whether some name inside the folder `folder` (ending in `/`) could be one `identity` may
    /// do `op` to (a folder job refuses at once when none could).
    public func mayReachInside(_ identity: Identity, _ op: AccessOperation, bucket: String, folder: String) -> Bool {
        if identity.role == .serviceRole { return true }
        for rule in rules where rule.applies(to: identity, op, bucket: bucket) {
            for template in rule.paths where template.mayMatchInside(folder: folder, for: identity) { return true }
        }
        return false
    }

    /// The narrowest name prefix a listing of `prefix` must scan to find every name the caller
    /// may list there (then checked one by one), or nil when there can be none: the listed
    /// prefix narrowed by the fixed beginnings of the templates that allow listing.
    public func listScan(_ identity: Identity, bucket: String, prefix: String) -> String? {
        if identity.role == .serviceRole { return prefix }
        var scans: [String] = []
        for rule in rules where rule.applies(to: identity, .list, bucket: bucket) {
            for template in rule.paths {
                guard let fixed = template.fixedPrefix(for: identity) else { continue }
                if prefix.hasBytePrefix(fixed) {
                    scans.append(prefix)
                } else if fixed.hasBytePrefix(prefix) {
                    scans.append(fixed)
                }
            }
        }
        guard var common = scans.first else { return nil }
        for s in scans.dropFirst() { common = Self.commonBytePrefix(common, s) }
        return common
    }

    /// The longest common beginning of two strings, compared as bytes, cut at a character
    /// (scalar) boundary.
    static func commonBytePrefix(_ a: String, _ b: String) -> String {
        var n = 0
        for (x, y) in zip(a.utf8, b.utf8) {
            guard x == y else { break }
            n += 1
        }
        let bytes = Array(a.utf8.prefix(n))
        var end = bytes.count
        // Back off a cut inside a multi-byte scalar (continuation bytes are 10xxxxxx).
        if end < a.utf8.count { while end > 0, a.utf8[a.utf8.index(a.utf8.startIndex, offsetBy: end)] & 0xC0 == 0x80 { end -= 1 } }
        return String(decoding: bytes.prefix(end), as: UTF8.self)
    }
}

/// A mistake in a rules file: where (line) and what.
public struct AccessRuleError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What is wrong, without the place.
    public struct Reason: Error, Sendable, Equatable {
        public let text: String
        public init(_ text: String) { self.text = text }
    }

    public let line: Int?
    public let reason: String

    public init(line: Int?, _ reason: String) {
        self.line = line
        self.reason = reason
    }

    public var description: String { line.map { "line \($0): \(reason)" } ?? reason }
}
