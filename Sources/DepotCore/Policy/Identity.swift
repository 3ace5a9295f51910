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
    /// The token's own claims (not `sub`, `role`, `exp` and the other registered ones), by dotted
    /// name (`app_metadata.team_id`), as text (numbers and booleans as JSON spells them): what
    /// access rules test and name in paths.
    public var claims: [String: String]

    public init(subject: String?, role: Role, claims: [String: String] = [:]) {
        self.subject = subject
        self.role = role
        self.claims = claims
    }

    public static let service = Identity(subject: nil, role: .serviceRole)

    /// The owner recorded for what the `anon` role writes without a `sub`: every anonymous caller
    /// together is one tenant for the quotas. A `/` makes it a name no `sub` can take (a `sub` is
    /// one path segment).
    public static let anonymousOwner = "role/anon"

    /// Who a write is charged to (the quotas' tenant and the object's `owner`): for `anon`
    /// (with or without a `sub`: the rules treat both alike) ``anonymousOwner``; else the `sub`,
    /// nobody for the service role without one.
    public var owner: String? { role == .anon ? Self.anonymousOwner : subject }

    /// The tenant rule of the Assets API: `service_role` may act on any name; an `authenticated`
    /// caller only on names whose first segment is its own `sub`; `anon` on none. Compares parsed
    /// segments. (The Storage API asks the access rules, ``AccessPolicy``.)
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
}
