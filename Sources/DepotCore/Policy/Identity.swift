/// Who is calling: taken from a verified JWT, never from the request itself.
public struct Identity: Sendable, Equatable {
    public enum Role: String, Sendable, Codable {
        case anon
        case authenticated
        case serviceRole = "service_role"
    }

    /// The user id (`sub`); the tenant.
    public var subject: String?
    public var role: Role

    public init(subject: String?, role: Role) {
        self.subject = subject
        self.role = role
    }

    public static let service = Identity(subject: nil, role: .serviceRole)

    /// The tenant rule: `service_role` may act on any name; an `authenticated` caller only on names
    /// whose first segment is its own `sub`; `anon` on none. Compares parsed segments.
    public func authorize(_ path: ObjectPath) throws(StorageError) {
        switch role {
        case .serviceRole: return
        case .authenticated:
            guard let subject, path.isOwned(by: subject) else { throw .forbidden() }
        case .anon:
            throw .forbidden()
        }
    }

    /// The caller's own user id, validated as a path segment (needed to generate paths).
    public func tenant() throws(StorageError) -> String {
        guard role != .anon else {
            throw .forbidden(
                "this operation needs a user's token (role authenticated); an anon token (or one without a role) only reads public objects")
        }
        guard let subject, !subject.isEmpty else {
            throw .forbidden("this operation needs a user id (sub)")
        }
        do { try ObjectPath.validate(segment: subject) } catch {
            throw .forbidden("the token's sub is not usable as a user id")
        }
        return subject
    }

    /// Whether the caller may read `path`: anyone in a public bucket; otherwise the tenant rule.
    public func mayRead(_ path: ObjectPath, inPublicBucket isPublic: Bool) -> Bool {
        if isPublic || role == .serviceRole { return true }
        guard role == .authenticated, let subject else { return false }
        return path.isOwned(by: subject)
    }

    /// Buckets are the project's, not a tenant's: only `service_role` creates, changes, empties,
    /// deletes or lists them.
    public func authorizeBucketAdmin() throws(StorageError) {
        guard role == .serviceRole else { throw .forbidden("only the service_role key may manage buckets") }
    }

    /// The string prefix a listing may see of names starting with `prefix`, or nil when none:
    /// everything for `service_role`, `{sub}/…` for an `authenticated` caller, nothing for `anon`.
    public func visiblePrefix(within prefix: String) -> String? {
        switch role {
        case .serviceRole: return prefix
        case .anon: return nil
        case .authenticated:
            guard let subject, !subject.isEmpty else { return nil }
            let own = subject + "/"
            if prefix.hasBytePrefix(own) { return prefix }
            if own.hasBytePrefix(prefix) { return own }
            return nil
        }
    }
}
