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

    final class Made: Sendable {
        let n: Int
        init(_ n: Int) { self.n = n }
    }
    final class Other: Sendable {}

    /// A value derived from a row (the HTTP layer's headers) is made once and kept with it, for
    /// every copy that shares it; a copy changed since — shared or not — starts without it, and a
    /// value of another type is made each time, never kept in its place.
    @Test func aDerivedValueIsKeptWithTheRowUntilItChanges() throws {
        let original = try Self.record()
        var made = 0
        let make = { () -> Made in
            made += 1
            return Made(made)
        }
        let first = original.derived(Made.self, orMake: make)
        let copy = original
        #expect(copy.derived(Made.self, orMake: make) === first && original.derived(Made.self, orMake: make) === first)
        #expect(made == 1)
        // Another type: made, not kept; the first is still there.
        _ = original.derived(Other.self) { Other() }
        _ = original.derived(Other.self) { Other() }
        #expect(original.derived(Made.self, orMake: make) === first && made == 1)
        // A changed copy (shared until then): its own.
        var changed = original
        changed.generation = 9
        #expect(changed.derived(Made.self, orMake: make).n == 2 && original.derived(Made.self, orMake: make) === first)
        // Changed again while not shared: what was kept for it goes.
        changed.contentType = "image/webp"
        #expect(changed.derived(Made.self, orMake: make).n == 3)
        #expect(changed.derived(Made.self, orMake: make).n == 3 && made == 3)
    }

    /// Threads racing to derive a value all get the one that was kept.
    @Test func racingDerivationsAgreeOnOneValue() async throws {
        let record = try Self.record()
        let values = await withTaskGroup(of: ObjectIdentifier.self) { group in
            for i in 0..<16 { group.addTask { ObjectIdentifier(record.derived(Made.self) { Made(i) }) } }
            return await group.reduce(into: Set<ObjectIdentifier>()) { $0.insert($1) }
        }
        #expect(values.count == 1)
        #expect(values.first == ObjectIdentifier(record.derived(Made.self) { Made(-1) }))
    }

    /// A derived value is released with its row, and when the row is changed in place.
    @Test func derivedValuesAreReleasedWithTheirRow() throws {
        weak var first: Made?
        weak var second: Made?
        do {
            var record = try Self.record()
            first = record.derived(Made.self) { Made(1) }
            #expect(first != nil)
            record.size = 11  // not shared: changed in place, what was kept for it goes
            #expect(first == nil)
            second = record.derived(Made.self) { Made(2) }
            #expect(second?.n == 2)
        }
        #expect(second == nil)
    }
}
