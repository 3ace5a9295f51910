import Foundation

/// What a folder job does to every object under a prefix.
public enum FolderOperation: String, Sendable, Codable {
    case delete, move
}

/// A folder job as queued (its payload): the operation, where, and the caller it acts for (the
/// access rules are asked for every object, as for that caller's own requests).
public struct FolderJobSpec: Codable, Sendable, Equatable {
    public var operation: FolderOperation
    /// `assets`: the Assets API's (its tenant rule, both of its buckets); `storage`: the Storage API's.
    public var api: String
    public var buckets: [String]
    /// Ends in `/`.
    public var prefix: String
    public var destinationBucket: String?
    public var destinationPrefix: String?
    public var sub: String?
    public var role: String
    public var claims: [String: String]

    var identity: Identity? {
        Identity.Role(rawValue: role).map { Identity(subject: sub, role: $0, claims: claims) }
    }
}

/// How far a folder job got: objects deleted or moved (`done`), left because the rules do not
/// allow the caller to touch them (`skipped`), and refused (`failed`, the first of them with
/// their reason in `errors`).
public struct FolderProgress: Codable, Sendable, Equatable {
    public struct Failure: Codable, Sendable, Equatable {
        public var name: String
        public var error: String
    }

    public var done = 0
    public var skipped = 0
    public var failed = 0
    public var errors: [Failure] = []

    public init() {}

    /// Most failures kept with their reason.
    static let maxErrors = 20
}

/// A folder job and how far it got.
public struct FolderJobStatus: Sendable {
    public var job: JobRecord
    public var spec: FolderJobSpec
    public var progress: FolderProgress
}

// MARK: - Folder operations (durable jobs)
//
// Deleting or moving everything under a prefix runs as a durable job (retried after a crash;
// what is done stays done, and a re-run finds only what is left). The job lists the prefix in
// name order, a page at a time, and acts on each object as its caller would: a name the rules do
// not let the caller delete (or move) is skipped and counted.

extension StorageService {
    public static let folderJobKind = "folder"
    /// A folder job resumes where the last attempt stopped: it is given many attempts.
    static let folderJobAttempts = 20
    /// Objects handled between two progress records.
    static let folderPage = 100

    /// Queues the deletion of every object under `prefix` (ending in `/`) in `bucket`.
    public func queueFolderDelete(as identity: Identity, bucket: String, prefix: String) async throws -> FolderJobStatus {
        let prefix = try Self.checkFolder(prefix, "prefix")
        let record = try await existingBucket(bucket)
        try requireSomeAccess(identity, .delete, in: record, folder: prefix)
        return try await queueFolderJob(
            FolderJobSpec(
                operation: .delete, api: "storage", buckets: [bucket], prefix: prefix, sub: identity.subject, role: identity.role.rawValue,
                claims: identity.claims), as: identity)
    }

    /// Queues moving every object under `prefix` in `bucket` to the same name under `destination`
    /// (in `destinationBucket`, by default the same bucket). The two folders may not overlap.
    public func queueFolderMove(
        as identity: Identity, bucket: String, prefix: String, destination: String, destinationBucket: String? = nil
    ) async throws -> FolderJobStatus {
        let prefix = try Self.checkFolder(prefix, "prefix")
        let destination = try Self.checkFolder(destination, "destination")
        let target = destinationBucket ?? bucket
        if target.bytesEqual(bucket), prefix.hasBytePrefix(destination) || destination.hasBytePrefix(prefix) {
            throw StorageError.invalidRequest("the folder and its destination overlap")
        }
        let source = try await existingBucket(bucket)
        let destinationRecord = try await existingBucket(target)
        try requireSomeAccess(identity, .update, in: source, folder: prefix)
        try requireSomeAccess(identity, .update, in: destinationRecord, folder: destination)
        return try await queueFolderJob(
            FolderJobSpec(
                operation: .move, api: "storage", buckets: [bucket], prefix: prefix, destinationBucket: target, destinationPrefix: destination,
                sub: identity.subject, role: identity.role.rawValue, claims: identity.claims), as: identity)
    }

    /// Queues the deletion of the caller's assets (both visibilities) under `prefix`, relative to
    /// `{userId}/` as in ``listAssets(as:prefix:limit:cursor:)`` (the service role without a user
    /// id: relative to the root).
    public func queueAssetFolderDelete(as identity: Identity, prefix: String) async throws -> FolderJobStatus {
        try Self.checkFolder(prefix, "prefix")
        let full = identity.role == .serviceRole && identity.subject == nil ? prefix : try identity.tenant() + "/" + prefix
        let folder = try Self.checkFolder(full, "prefix")
        return try await queueFolderJob(
            FolderJobSpec(
                operation: .delete, api: "assets", buckets: [settings.privateBucket, settings.publicBucket], prefix: folder,
                sub: identity.subject, role: identity.role.rawValue, claims: identity.claims), as: identity)
    }

    /// A folder job the caller queued (the service role: any); `.notFound` otherwise.
    public func folderJob(as identity: Identity, id: String) async throws -> FolderJobStatus {
        guard let jobs, let job = try await jobs.job(id: id), job.kind == Self.folderJobKind,
            let spec = try? JSONDecoder().decode(FolderJobSpec.self, from: Data(job.payload.utf8)),
            identity.role == .serviceRole || (spec.role == identity.role.rawValue && spec.sub == identity.subject && identity.subject != nil)
        else { throw StorageError(.notFound, "no such folder job") }
        let progress = try await jobs.jobProgress(id: id).flatMap { try? JSONDecoder().decode(FolderProgress.self, from: Data($0.utf8)) }
        return FolderJobStatus(job: job, spec: spec, progress: progress ?? FolderProgress())
    }

    /// A folder named for a folder job, `a/b/` (its segments valid names), as names are kept
    /// (Unicode NFC).
    @discardableResult
    static func checkFolder(_ folder: String, _ what: String) throws(StorageError) -> String {
        guard folder.hasSuffix("/"), folder.utf8.count >= 2, let path = try? ObjectPath(String(folder.dropLast())) else {
            throw .invalidRequest("the \(what) must be a folder: one or more valid segments ending in '/' (e.g. photos/2024/)")
        }
        return path.string + "/"
    }

    /// Refuses a folder job whose folders overlap those of an open one in the same bucket (two
    /// jobs on one folder would split it between them).
    private func refuseOverlap(_ spec: FolderJobSpec, _ jobs: any JobStore) async throws {
        func folders(_ s: FolderJobSpec) -> [(String, String)] {
            var out = s.buckets.map { ($0, s.prefix) }
            if let b = s.destinationBucket, let p = s.destinationPrefix { out.append((b, p)) }
            return out
        }
        let mine = folders(spec)
        for state in [JobState.queued, .running] {
            var after: String? = nil
            while true {
                let page = try await jobs.listJobs(state: state, after: after, limit: 500)
                for job in page where job.kind == Self.folderJobKind {
                    guard let other = try? JSONDecoder().decode(FolderJobSpec.self, from: Data(job.payload.utf8)) else { continue }
                    for (b1, p1) in mine {
                        for (b2, p2) in folders(other) where b1.bytesEqual(b2) && (p1.hasBytePrefix(p2) || p2.hasBytePrefix(p1)) {
                            // Another caller's job is not named: its folder may be one this caller cannot see.
                            let own = other.role == spec.role && other.sub != nil && other.sub == spec.sub
                            throw StorageError(
                                .conflict,
                                own
                                    ? "folder job \(job.id) is already at work on \(b2)/\(p2); wait for it to end"
                                    : "another folder job is at work on an overlapping folder of this bucket; retry once it ends")
                        }
                    }
                }
                after = page.last?.id
                if page.count < 500 { break }
            }
        }
    }

    /// Refuses at once a folder job whose caller could touch nothing there.
    private func requireSomeAccess(_ identity: Identity, _ op: AccessOperation, in record: BucketRecord, folder: String) throws(StorageError) {
        guard policy(for: record).mayReachInside(identity, op, bucket: record.name, folder: folder) else {
            throw .forbidden("no access rule allows you to \(op.name) objects in \(folder)")
        }
    }

    private func queueFolderJob(_ spec: FolderJobSpec, as identity: Identity) async throws -> FolderJobStatus {
        guard let jobs else { throw StorageError.unavailable("this server has no job queue") }
        try await refuseOverlap(spec, jobs)
        let payload = String(decoding: try JSONEncoder().encode(spec), as: UTF8.self)
        let new = NewJob(
            kind: Self.folderJobKind, key: "folder:\(UUID().uuidString.lowercased())", tenant: identity.subject, payload: payload,
            maxAttempts: Self.folderJobAttempts)
        let job = try await jobs.enqueue([new], limits: settings.jobLimits, now: now())[0]
        return FolderJobStatus(job: job, spec: spec, progress: FolderProgress())
    }

    /// Runs one attempt of a folder job (``FolderJobHandler``): from where the last one left off.
    func runFolderJob(_ job: JobRecord) async throws {
        guard let jobs, let worker = job.leaseOwner,
            let spec = try? JSONDecoder().decode(FolderJobSpec.self, from: Data(job.payload.utf8)), let identity = spec.identity
        else { throw PermanentJobFailure("the job's payload is not a folder job's") }
        var progress =
            try await jobs.jobProgress(id: job.id).flatMap { try? JSONDecoder().decode(FolderProgress.self, from: Data($0.utf8)) }
            ?? FolderProgress()
        // What was skipped or refused is still there: this attempt meets (and counts) it again.
        progress.skipped = 0
        progress.failed = 0
        progress.errors = []
        for bucket in spec.buckets {
            var after: String? = nil
            while true {
                let page = try await metadata.listObjects(in: bucket, prefix: spec.prefix, after: after, limit: Self.folderPage)
                // The rules of both buckets, read once a page (a bucket's own rules may change).
                let source = try await policy(forBucket: bucket)
                var destination = source
                if let other = spec.destinationBucket { destination = try await policy(forBucket: other) }
                for record in page {
                    after = record.path.string
                    guard record.path.string.hasBytePrefix(spec.prefix) else { continue }
                    try await folderStep(spec, identity, record, (source, destination), &progress)
                }
                let text = String(decoding: try JSONEncoder().encode(progress), as: UTF8.self)
                guard try await jobs.setJobProgress(id: job.id, worker: worker, progress: text, now: now()) else {
                    throw StorageError.unavailable("the job's lease was lost")
                }
                if page.count < Self.folderPage { break }
            }
        }
    }

    /// One object of a folder job.
    private func folderStep(
        _ spec: FolderJobSpec, _ identity: Identity, _ record: ObjectRecord, _ policies: (source: AccessPolicy, destination: AccessPolicy),
        _ progress: inout FolderProgress
    ) async throws {
        do {
            switch spec.operation {
            case .delete where spec.api == "assets":
                guard (try? identity.authorize(record.path)) != nil else { return progress.skipped += 1 }
                guard let removed = try await metadata.deleteObject(at: record.key) else { return }
                await discard(removed.blobID)
                await deleteVariants(of: record.path, in: record.bucket)
            case .delete:
                guard policies.source.allows(identity, .delete, bucket: record.bucket, path: record.path) else {
                    return progress.skipped += 1
                }
                try await deleteObject(as: identity, at: record.key)
            case .move:
                guard let destinationBucket = spec.destinationBucket, let destinationPrefix = spec.destinationPrefix else {
                    throw PermanentJobFailure("a move without a destination")
                }
                let to = ObjectKey(
                    bucket: destinationBucket, path: try ObjectPath(destinationPrefix + record.path.string.dropBytePrefix(spec.prefix)))
                guard policies.source.allows(identity, .update, bucket: record.bucket, path: record.path),
                    policies.destination.allows(identity, .update, bucket: to.bucket, path: to.path)
                else { return progress.skipped += 1 }
                _ = try await moveObject(as: identity, from: record.key, to: to)
            }
            progress.done += 1
        } catch let e as StorageError where e.code == .notFound {
            // Gone meanwhile (a variant taken along with its image, a concurrent delete).
        } catch let e as StorageError where e.code != .unavailable && e.code != .internalError {
            progress.failed += 1
            if progress.errors.count < FolderProgress.maxErrors {
                progress.errors.append(.init(name: record.path.string, error: e.message))
            }
        }
    }
}

/// Runs folder jobs (``StorageService/queueFolderDelete(as:bucket:prefix:)`` and the others).
public struct FolderJobHandler: JobHandler {
    let service: StorageService

    public init(service: StorageService) { self.service = service }

    public func run(_ job: JobRecord) async throws { try await service.runFolderJob(job) }
}
