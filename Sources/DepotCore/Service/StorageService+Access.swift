import Synchronization

// MARK: - Access rules (the Storage API)
//
// Every object and bucket operation of the Storage API asks the access rules: the server's
// (``StorageSettings/accessPolicy``; Depot's built-in tenant rule unless `--policies` names a
// file) and, for its objects, a bucket's own (``BucketRecord/rules``, set by the service role).
// The Assets API keeps its fixed tenant rule (``Identity/authorize(_:)``): its names are made
// under the caller's own user id.

extension StorageService {
    /// The rules for objects of `bucket`: the server's, and the bucket's own when it has some
    /// (compiled once per text, kept).
    func policy(for bucket: BucketRecord?) -> AccessPolicy {
        guard let bucket, let text = bucket.rules else { return settings.accessPolicy }
        return bucketPolicies.policy(bucket: bucket.name, text: text) {
            let own = (try? AccessPolicy.bucketRules(text, bucket: bucket.name)) ?? []
            return AccessPolicy(rules: settings.accessPolicy.rules + own, source: "\(settings.accessPolicy.source) and bucket \(bucket.name)'s rules")
        }
    }

    /// ``policy(for:)`` of the bucket named `name` (the server's rules when there is none).
    func policy(forBucket name: String) async throws -> AccessPolicy {
        policy(for: try await metadata.bucket(named: name))
    }

    /// Throws `.forbidden` unless a rule lets `identity` do `op` to the object at `key`.
    func authorize(_ identity: Identity, _ op: AccessOperation, _ key: ObjectKey) async throws {
        if identity.role == .serviceRole { return }
        try authorize(identity, op, key, by: try await policy(forBucket: key.bucket))
    }

    /// ``authorize(_:_:_:)`` with the rules of the object's bucket at hand.
    func authorize(_ identity: Identity, _ op: AccessOperation, _ key: ObjectKey, by policy: AccessPolicy) throws(StorageError) {
        guard policy.allows(identity, op, bucket: key.bucket, path: key.path) else {
            throw .forbidden("no access rule allows you to \(op.name) this object")
        }
    }

    /// A write into `bucket` (nil: it does not exist; the server's rules answer first):
    /// `insert`, and `update` too when it may replace an object (upstream asks the same of an
    /// upsert).
    func authorizeWrite(_ identity: Identity, _ key: ObjectKey, upsert: Bool, in bucket: BucketRecord?) throws(StorageError) {
        let policy = policy(for: bucket)
        try authorize(identity, .insert, key, by: policy)
        if upsert { try authorize(identity, .update, key, by: policy) }
    }

    /// The bucket of `key` for a write ``authorizeWrite(_:_:upsert:in:)`` allows; the rules answer
    /// before a missing bucket does (`.bucketNotFound`).
    func writableBucket(_ identity: Identity, _ key: ObjectKey, upsert: Bool) async throws -> BucketRecord {
        let found = try await metadata.bucket(named: key.bucket)
        try authorizeWrite(identity, key, upsert: upsert, in: found)
        guard let bucket = found else { throw StorageError.bucketNotFound() }
        return bucket
    }

    /// Whether `identity` may read the object at `key` of `bucket`: anyone in a public bucket,
    /// else a rule.
    func mayRead(_ identity: Identity, _ key: ObjectKey, in bucket: BucketRecord) -> Bool {
        bucket.isPublic || policy(for: bucket).allows(identity, .read, bucket: key.bucket, path: key.path)
    }

    /// Throws `.forbidden` unless a rule lets `identity` manage `bucket` (the server's rules: a
    /// bucket's own rules speak only for its objects).
    func authorizeBucketAdmin(_ identity: Identity, bucket: String) throws(StorageError) {
        guard mayManageBucket(as: identity, named: bucket) else {
            throw .forbidden("only the service_role key (or an access rule allowing bucket_admin) may manage this bucket")
        }
    }
}

extension StorageService {
    /// Whether `identity` may create, change, empty, delete or see the bucket `name`.
    /// The Assets API's two buckets are the server's own: only the service role manages them,
    /// whatever the rules say (a `bucket_admin` rule on every bucket would otherwise let its
    /// callers make every tenant's private assets public).
    public func mayManageBucket(as identity: Identity, named name: String) -> Bool {
        if identity.role != .serviceRole, name.bytesEqual(settings.privateBucket) || name.bytesEqual(settings.publicBucket) { return false }
        return settings.accessPolicy.allowsBucketAdmin(identity, bucket: name)
    }
}

/// Buckets' own rules, compiled, by bucket name and the text they were compiled from.
final class BucketPolicyCache: Sendable {
    private let compiled = Mutex<[String: (text: String, policy: AccessPolicy)]>([:])

    func policy(bucket: String, text: String, compile: () -> AccessPolicy) -> AccessPolicy {
        if let hit = compiled.withLock({ $0[bucket] }), hit.text.utf8.elementsEqual(text.utf8) { return hit.policy }
        let policy = compile()
        compiled.withLock { cache in
            if cache.count > 10_000 { cache.removeAll() }
            cache[bucket] = (text, policy)
        }
        return policy
    }
}
