import DepotCore
import Foundation
import Testing

@Suite("Object records")
struct ObjectRecordTests {
    static func record() throws -> ObjectRecord {
        ObjectRecord(
            bucket: "b", path: try ObjectPath("alice/job/a.png"), owner: "alice", blobID: BlobID.random(), size: 10,
            contentType: "image/png", sha256: String(repeating: "ab", count: 32), cacheControl: "max-age=60",
            metadata: #"{"k":1}"#, generation: 5, createdAt: Date(timeIntervalSince1970: 1_000))
    }

    /// A row's fields sit behind one shared reference: a change to a copy is the copy's alone, and
    /// equality is by fields, whichever copies are compared.
    @Test func aChangedCopyLeavesTheOriginalAsItWas() throws {
        let original = try Self.record()
        var copy = original
        #expect(copy == original)
        copy.generation = 6
        copy.contentType = "image/webp"
        copy.cacheControl = nil
        #expect(original.generation == 5 && original.contentType == "image/png" && original.cacheControl == "max-age=60")
        #expect(copy.generation == 6 && copy.contentType == "image/webp" && copy.cacheControl == nil)
        #expect(copy != original)
        // Built apart with the same fields: equal.
        var again = try Self.record()
        again.blobID = original.blobID
        #expect(again == original)
        again.updatedAt = Date(timeIntervalSince1970: 2_000)
        #expect(again != original && original.updatedAt == original.createdAt)
        // A copy changed twice (no longer shared the second time) keeps both changes.
        var twice = original
        twice.size = 11
        twice.size += 1
        #expect(twice.size == 12 && original.size == 10)
    }

    /// A record is described by its fields (a failed expectation shows them), not by the
    /// reference they sit behind.
    @Test func describedByItsFields() throws {
        let text = String(describing: try Self.record())
        #expect(text.hasPrefix("ObjectRecord("))
        #expect(text.contains("generation: 5") && text.contains("contentType: \"image/png\""))
        #expect(!text.contains("box"))
    }
}
