import DepotCore
import Testing

@Suite("Object paths")
struct ObjectPathTests {
    @Test("valid names keep their segments", arguments: ["alice/job/a.png", "alice/x", "bob/ünïcödé/ß.png", "a/b/c/d/e/f.gif"])
    func valid(_ raw: String) throws {
        let p = try ObjectPath(raw)
        #expect(p.string == raw)
        #expect(p.owner == String(raw.split(separator: "/")[0]))
    }

    @Test(
        "tricks are refused",
        arguments: [
            "", "/alice/a.png", "alice//a.png", "alice/a.png/", "alice/../bob/a.png", "alice/./a.png", "..", ".",
            "alice\\..\\bob", "alice/a\u{0}b", "alice/a\nb", "alice/a\u{7F}", "alice/\u{10FFFF}",
            "alice/" + String(repeating: "x", count: 256), String(repeating: "a/", count: 600) + "a",
        ])
    func refused(_ raw: String) {
        #expect(throws: StorageError.self) { try ObjectPath(raw) }
        do { _ = try ObjectPath(raw) } catch { #expect(error.code == .invalidPath) }
    }

    @Test(
        "percent-decoding happens once, then validation",
        arguments: [
            "alice/%2e%2e/bob/a.png", "alice/%2E%2E", "alice%2fbob/a.png", "alice/a%2Fb", "alice/%5c", "alice/%00",
            "alice/%zz", "alice/%C3", "alice/%252e%252e/../x",
        ])
    func encodedTricks(_ raw: String) {
        #expect(throws: StorageError.self) { try ObjectPath(percentEncoded: raw[...]) }
    }

    @Test func doubleEncodingIsALiteralName() throws {
        // "%252e" decodes once to the literal name "%2e", which is harmless.
        let p = try ObjectPath(percentEncoded: "alice/%252e%252e"[...])
        #expect(p.segments == ["alice", "%2e%2e"])
    }

    @Test func ownershipComparesSegments() throws {
        #expect(try ObjectPath("alice/a.png").isOwned(by: "alice"))
        #expect(try !ObjectPath("alice2/a.png").isOwned(by: "alice"))
        #expect(try !ObjectPath("alic/a.png").isOwned(by: "alice"))
    }

    @Test func canonicalEquivalentsNameOneObject() throws {
        let composed = try ObjectPath("alice/caf\u{E9}.png")
        let decomposed = try ObjectPath("alice/cafe\u{301}.png")
        #expect(composed.string.utf8.elementsEqual(decomposed.string.utf8))
    }

    @Test func percentEncodingRoundTrips() throws {
        let p = try ObjectPath("alice/a b/ü?#%.png")
        #expect(p.percentEncoded == "alice/a%20b/%C3%BC%3F%23%25.png")
        #expect(try ObjectPath(percentEncoded: p.percentEncoded[...]) == p)
    }

    @Test("identity: the tenant rule") func tenantRule() throws {
        let alice = Identity(subject: "alice", role: .authenticated)
        try alice.authorize(ObjectPath("alice/a.png"))
        #expect(throws: StorageError.self) { try alice.authorize(ObjectPath("alice2/a.png")) }
        #expect(throws: StorageError.self) { try alice.authorize(ObjectPath("bob/a.png")) }
        try Identity.service.authorize(ObjectPath("bob/a.png"))
        #expect(throws: StorageError.self) { try Identity(subject: nil, role: .anon).authorize(ObjectPath("bob/a.png")) }
        #expect(throws: StorageError.self) { try Identity(subject: "a/b", role: .authenticated).tenant() }
    }
}
