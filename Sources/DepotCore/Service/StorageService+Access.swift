// MARK: - Access rules (the Storage API)
//
// Every object and bucket operation of the Storage API asks the server's access rules
// (``StorageSettings/accessPolicy``; Depot's built-in tenant rule unless `--policies` names a
// file). The Assets API keeps its fixed tenant rule (``Identity/authorize(_:)``): its names are
// made under the caller's own user id.

extension StorageService {
    /// Throws `.forbidden` unless a rule lets `identity` do `op` to the object at `key`.
    func authorize(_ identity: Identity, _ op: AccessOperation, _ key: ObjectKey) throws(StorageError) {
        guard settings.accessPolicy.allows(identity, op, bucket: key.bucket, path: key.path) else {
            throw .forbidden("no access rule allows you to \(op.name) this object")
        }
    }

    /// A write: `insert`, and `update` too when it may replace an object (upstream asks the same
    /// of an upsert).
    func authorizeWrite(_ identity: Identity, _ key: ObjectKey, upsert: Bool) throws(StorageError) {
        try authorize(identity, .insert, key)
        if upsert { try authorize(identity, .update, key) }
    }

    /// Whether `identity` may read the object at `key`: anyone in a public bucket, else a rule.
    func mayRead(_ identity: Identity, _ key: ObjectKey, inPublicBucket isPublic: Bool) -> Bool {
        isPublic || settings.accessPolicy.allows(identity, .read, bucket: key.bucket, path: key.path)
    }

    /// Whether `identity` may sign the object at `key`: anyone in a public bucket, else a rule.
    func maySign(_ identity: Identity, _ key: ObjectKey, inPublicBucket isPublic: Bool) -> Bool {
        isPublic || settings.accessPolicy.allows(identity, .sign, bucket: key.bucket, path: key.path)
    }

    /// Throws `.forbidden` unless a rule lets `identity` manage `bucket`.
    func authorizeBucketAdmin(_ identity: Identity, bucket: String) throws(StorageError) {
        guard settings.accessPolicy.allowsBucketAdmin(identity, bucket: bucket) else {
            throw .forbidden("only the service_role key (or an access rule allowing bucket_admin) may manage this bucket")
        }
    }
}

extension StorageService {
    /// Whether `identity` may create, change, empty, delete or see the bucket `name`.
    public func mayManageBucket(as identity: Identity, named name: String) -> Bool {
        settings.accessPolicy.allowsBucketAdmin(identity, bucket: name)
    }
}
