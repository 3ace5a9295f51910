import DepotCore
import DepotTesting
import Foundation
import NIOCore
import Testing

/// The Storage API's listings and open upload intents over every metadata store: the folder view
/// skips a sub-folder with a cursor just past `folder/` (U+10FFFF), which each store must order
/// bytewise like the others.
@Suite("Storage API over every metadata store")
struct StorageAPIListingConformanceTests {
    func service(_ kind: MetadataStoreKind) async throws -> (StorageService, @Sendable () -> Void) {
        let (store, cleanup) = try await kind.make()
        let service = StorageService(
            blobs: InMemoryBlobStore(), metadata: store, settings: StorageSettings(),
            keys: .derived(fromProjectSecret: "listing-conformance-secret-0123456789"))
        try await service.bootstrap()
        try await service.createBucket(as: .service, name: "docs", isPublic: false, fileSizeLimit: nil, allowedMimeTypes: nil)
        return (service, cleanup)
    }

    func body(_ text: String) -> AsyncStream<ByteBuffer> {
        AsyncStream { c in
            c.yield(ByteBuffer(string: text))
            c.finish()
        }
    }

    func put(_ service: StorageService, _ name: String, as identity: Identity = .service) async throws {
        _ = try await service.writeObject(
            as: identity, at: ObjectKey(bucket: "docs", path: try ObjectPath(name)), ObjectWrite(contentType: "text/plain"),
            body: body(name))
    }

    @Test(arguments: MetadataStoreKind.testable)
    func folderViewsAndPages(_ kind: MetadataStoreKind) async throws {
        let (service, cleanup) = try await service(kind)
        defer { cleanup() }
        let names = [
            "alice/a.txt", "alice/b/1.txt", "alice/b/2.txt", "alice/b/c/3.txt", "alice/b~.txt", "alice/bz.txt",
            "alice/é.txt", "alice/Z.txt", "bob/x.txt", "top.txt",
        ]
        for n in names { try await put(service, n) }

        let root = try await service.listFolder(as: .service, bucket: "docs", prefix: "")
        #expect(root.map(\.name) == ["alice", "bob", "top.txt"])
        #expect(root.map { $0.object == nil } == [true, true, false])
        let alice = try await service.listFolder(as: .service, bucket: "docs", prefix: "alice")
        // Bytewise: "b/…" < "bz" < "b~", "Z" < "a", "é" last.
        #expect(alice.map(\.name) == ["Z.txt", "a.txt", "b", "bz.txt", "b~.txt", "é.txt"])
        #expect(try await service.listFolder(as: .service, bucket: "docs", prefix: "alice/", limit: 2, offset: 2).map(\.name) == ["b", "bz.txt"])
        #expect(try await service.listFolder(as: .service, bucket: "docs", prefix: "alice", search: "B").map(\.name) == ["b", "bz.txt", "b~.txt"])

        // A user sees only its own folder, at any level.
        let bob = Identity(subject: "bob", role: .authenticated)
        #expect(try await service.listFolder(as: bob, bucket: "docs", prefix: "").map(\.name) == ["bob"])
        #expect(try await service.listFolder(as: bob, bucket: "docs", prefix: "alice").isEmpty)
        #expect(try await service.listFolder(as: Identity(subject: nil, role: .anon), bucket: "docs", prefix: "").isEmpty)

        // v2: full names in pages, folders collapsed on request.
        var seen: [String] = []
        var cursor: String? = nil
        repeat {
            let page = try await service.listObjects(as: .service, bucket: "docs", prefix: "alice/", cursor: cursor, limit: 3)
            seen += page.entries.map(\.name)
            cursor = page.nextCursor
        } while cursor != nil
        #expect(seen == names.filter { $0.hasPrefix("alice/") }.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) })
        let collapsed = try await service.listObjects(as: .service, bucket: "docs", prefix: "alice/", limit: 4, delimiter: true)
        #expect(collapsed.entries.map(\.name) == ["alice/Z.txt", "alice/a.txt", "alice/b/", "alice/bz.txt"])
        let rest = try await service.listObjects(as: .service, bucket: "docs", prefix: "alice/", cursor: collapsed.nextCursor, delimiter: true)
        #expect(rest.entries.map(\.name) == ["alice/b~.txt", "alice/é.txt"] && rest.nextCursor == nil)
    }

    @Test(arguments: MetadataStoreKind.testable)
    func openUploadIntentsAreSingleUse(_ kind: MetadataStoreKind) async throws {
        let (service, cleanup) = try await service(kind)
        defer { cleanup() }
        let alice = Identity(subject: "alice", role: .authenticated)
        let key = ObjectKey(bucket: "docs", path: try ObjectPath("alice/direct.txt"))
        let token = try await service.createUploadToken(as: alice, at: key, upsert: false)
        let intent = try await service.uploadIntent(bucket: "docs", path: key.path, token: token)
        #expect(intent.isOpen && intent.owner == "alice")
        let record = try await service.completeUpload(
            intent, declaration: UploadDeclaration(contentType: "text/plain"), cacheControl: "max-age=60", userMetadata: #"{"k":1}"#,
            body: body("direct bytes"))
        #expect(record.size == 12 && record.cacheControl == "max-age=60" && record.owner == "alice")
        let stored = try #require(try await service.metadata.object(at: key))
        #expect(stored.metadata == #"{"k":1}"# && stored.contentType == "text/plain")
        let again = try await service.uploadIntent(bucket: "docs", path: key.path, token: token)
        await #expect(throws: StorageError.self) {
            _ = try await service.completeUpload(again, declaration: UploadDeclaration(), body: body("x"))
        }
        #expect(try await service.metadata.object(at: key)?.size == 12)
    }
}
