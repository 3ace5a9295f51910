import Depot
import DepotCore
import Foundation
import Testing

/// The access rules on their own: what each rule allows, how templates match names (as bytes,
/// segment by segment), what a listing must scan, and the line and reason of every mistake in a
/// rules file.
@Suite("Access rules")
struct AccessPolicyTests {
    static let alice = Identity(subject: "alice", role: .authenticated)
    static let anon = Identity(subject: nil, role: .anon)
    static let service = Identity.service

    static func policy(_ yaml: String) throws -> AccessPolicy { try AccessRulesFile.parse(yaml, source: "test") }

    static func name(_ s: String) throws -> ObjectPath { try ObjectPath(s) }

    @Test func theBuiltInRuleIsTheTenantRule() throws {
        let p = AccessPolicy.builtIn
        for op in AccessOperation.allCases where op != .bucketAdmin {
            #expect(p.allows(Self.alice, op, bucket: "any", path: try Self.name("alice/a.png")), "\(op)")
            #expect(p.allows(Self.alice, op, bucket: "any", path: try Self.name("alice/deep/er/a.png")), "\(op)")
            #expect(!p.allows(Self.alice, op, bucket: "any", path: try Self.name("bob/a.png")), "\(op)")
            #expect(!p.allows(Self.alice, op, bucket: "any", path: try Self.name("alice")), "an object named like the user is not inside its folder")
            #expect(!p.allows(Self.alice, op, bucket: "any", path: try Self.name("alicex/a.png")), "\(op)")
            #expect(!p.allows(Self.anon, op, bucket: "any", path: try Self.name("alice/a.png")), "\(op)")
            #expect(p.allows(Self.service, op, bucket: "any", path: try Self.name("bob/a.png")), "\(op)")
        }
        #expect(!p.allowsBucketAdmin(Self.alice, bucket: "any") && !p.allowsBucketAdmin(Self.anon, bucket: "any"))
        #expect(p.allowsBucketAdmin(Self.service, bucket: "any"))
    }

    /// docs/access-rules.md shows the built-in rule as a file: it must be exactly that.
    @Test func theDocumentedDefaultFileIsTheBuiltInRule() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let file = try AccessRulesFile.load(root.appendingPathComponent("docs/access-rules/default.yaml").path)
        #expect(file.rules == AccessPolicy.builtIn.rules)
    }

    /// Every YAML example of docs/access-rules.md compiles (the error example aside).
    @Test func theDocumentedExamplesCompile() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let doc = try String(contentsOfFile: root.appendingPathComponent("docs/access-rules.md").path, encoding: .utf8)
        let blocks = doc.components(separatedBy: "```yaml\n").dropFirst().map { $0.components(separatedBy: "```")[0] }
        #expect(blocks.count >= 3)
        for block in blocks {
            #expect(throws: Never.self, "\(block)") { try Self.policy(block) }
        }
    }

    @Test(
        arguments: [
            // template, name, sub, claims, matches
            ("public/**", "public/a.png", nil, [:], true),
            ("public/**", "public/x/y/z.png", nil, [:], true),
            ("public/**", "public", nil, [:], false),
            ("public/**", "publicity/a.png", nil, [:], false),
            ("public/*", "public/x/y.png", nil, [:], false),
            ("*/avatar.png", "bob/avatar.png", nil, [:], true),
            ("*/avatar.png", "bob/x/avatar.png", nil, [:], false),
            ("readme.txt", "readme.txt", nil, [:], true),
            ("readme.txt", "readme.txt.bak", nil, [:], false),
            ("{sub}/**", "alice/a", "alice", [:], true),
            ("{sub}/**", "Alice/a", "alice", [:], false),
            ("teams/{claims.team_id}/**", "teams/t1/a.png", "u", ["team_id": "t1"], true),
            ("teams/{claims.team_id}/**", "teams/t2/a.png", "u", ["team_id": "t1"], false),
            ("teams/{claims.team_id}/**", "teams/t1/a.png", "u", [:], false),
            ("teams/{claims.team_id}/**", "teams/t1/x/a.png", "u", ["team_id": "t1/x"], false),
            ("teams/{claims.team_id}/**", "teams//a.png", "u", ["team_id": ""], false),
            // Bytes, not canonical equivalence: "café" precomposed in the rule, decomposed in the name.
            ("caf\u{E9}/**", "cafe\u{301}/a.png", nil, [:], false),
            ("caf\u{E9}/**", "caf\u{E9}/a.png", nil, [:], true),
            ("{claims.app_metadata.org}/*", "acme/a", "u", ["app_metadata.org": "acme"], true),
        ] as [(String, String, String?, [String: String], Bool)])
    func templatesMatchSegmentsAsBytes(_ template: String, _ name: String, _ sub: String?, _ claims: [String: String], _ expected: Bool)
        throws
    {
        let t = try PathTemplate(template)
        let who = Identity(subject: sub, role: .authenticated, claims: claims)
        #expect(t.matches(name, for: who) == expected, "\(template) ~ \(name)")
    }

    @Test func foldersShowWhenSomethingInsideMayMatch() throws {
        let who = Identity(subject: "alice", role: .authenticated, claims: ["team_id": "t1"])
        let t = try PathTemplate("teams/{claims.team_id}/**")
        #expect(t.mayMatchInside(folder: "teams/", for: who))
        #expect(t.mayMatchInside(folder: "teams/t1/", for: who))
        #expect(t.mayMatchInside(folder: "teams/t1/deep/", for: who))
        #expect(!t.mayMatchInside(folder: "teams/t2/", for: who))
        #expect(!t.mayMatchInside(folder: "other/", for: who))
        #expect(!(try PathTemplate("a")).mayMatchInside(folder: "a/", for: who))
        #expect(try PathTemplate("a/b.txt").mayMatchInside(folder: "a/", for: who))
    }

    @Test func claimTestsRolesAndBuckets() throws {
        let p = try Self.policy(
            """
            rules:
              - name: editors write
                buckets: [team, shared]
                roles: authenticated
                when:
                  - claims.app_role == "editor"
                  - claims.level != 0
                allow: write
                paths: "**"
              - buckets: "*"
                roles: [anon, authenticated]
                allow: [read]
                paths: ["open/**"]
            """)
        let editor = Identity(subject: "e", role: .authenticated, claims: ["app_role": "editor", "level": "3"])
        let zero = Identity(subject: "z", role: .authenticated, claims: ["app_role": "editor", "level": "0"])
        let viewer = Identity(subject: "v", role: .authenticated, claims: ["app_role": "viewer"])
        let noLevel = Identity(subject: "n", role: .authenticated, claims: ["app_role": "editor"])
        let x = try Self.name("x/y.png")
        #expect(p.allows(editor, .insert, bucket: "team", path: x) && p.allows(editor, .update, bucket: "shared", path: x))
        #expect(!p.allows(editor, .delete, bucket: "team", path: x), "write is insert and update")
        #expect(!p.allows(editor, .insert, bucket: "teams", path: x), "bucket names compare whole")
        #expect(!p.allows(zero, .insert, bucket: "team", path: x) && !p.allows(viewer, .insert, bucket: "team", path: x))
        #expect(p.allows(noLevel, .insert, bucket: "team", path: x), "a missing claim is unequal to every value")
        #expect(!p.allows(Identity(subject: nil, role: .anon, claims: ["app_role": "editor"]), .insert, bucket: "team", path: x))
        let open = try Self.name("open/a")
        #expect(p.allows(Self.anon, .read, bucket: "any", path: open) && !p.allows(Self.anon, .list, bucket: "any", path: open))
        let all = try Self.policy("rules:\n  - {buckets: '*', roles: anon, allow: all, paths: '**'}")
        #expect(all.allows(Self.anon, .delete, bucket: "b", path: open) && !all.allowsBucketAdmin(Self.anon, bucket: "b"), "all: objects only")
    }

    @Test func aListingScansOnlyWhereRulesReach() throws {
        let p = try Self.policy(
            """
            rules:
              - {buckets: "*", roles: authenticated, allow: list, paths: ["{sub}/**", "teams/{claims.team_id}/**"]}
              - {buckets: "*", roles: anon, allow: list, paths: ["public/**"]}
            """)
        let member = Identity(subject: "alice", role: .authenticated, claims: ["team_id": "t1"])
        #expect(p.listScan(Self.anon, bucket: "b", prefix: "") == "public/")
        #expect(p.listScan(Self.anon, bucket: "b", prefix: "public/x") == "public/x")
        #expect(p.listScan(Self.anon, bucket: "b", prefix: "private/") == nil)
        #expect(p.listScan(member, bucket: "b", prefix: "teams/") == "teams/t1/")
        #expect(p.listScan(member, bucket: "b", prefix: "") == "", "two disjoint prefixes: their common beginning")
        #expect(p.listScan(Identity(subject: "alice", role: .authenticated), bucket: "b", prefix: "") == "alice/")
        #expect(p.listScan(Self.service, bucket: "b", prefix: "z") == "z")
        #expect(AccessPolicy.builtIn.listScan(Self.anon, bucket: "b", prefix: "") == nil)
    }

    @Test(
        arguments: [
            ("rules: [", 2, "not valid YAML"),
            ("- a\n- b", 1, "must be a map"),
            ("rulez: []", 1, "unknown key 'rulez'"),
            ("other: 1\n", 1, "unknown key"),
            ("rules: {a: 1}", 1, "'rules' must be a list"),
            ("rules:\n  - buckets: '*'\n    roles: anon\n    allow: [read, fly]\n    paths: '**'", 4, "unknown operation 'fly'"),
            ("rules:\n  - buckets: '*'\n    roles: [anon, admin]\n    allow: read\n    paths: '**'", 3, "unknown role 'admin'"),
            ("rules:\n  - buckets: '*'\n    roles: service_role\n    allow: read\n    paths: '**'", 3, "never limited"),
            ("rules:\n  - buckets: '*'\n    allow: read\n    paths: '**'", 2, "'roles' is missing"),
            ("rules:\n  - buckets: '*'\n    roles: anon\n    paths: '**'", 2, "'allow' is missing"),
            ("rules:\n  - roles: anon\n    allow: read\n    paths: '**'", 2, "'buckets' is missing"),
            ("rules:\n  - buckets: '*'\n    roles: anon\n    allow: read", 2, "'paths' is missing"),
            ("rules:\n  - buckets: '*'\n    roles: anon\n    allow: read\n    paths: ['**/x']", 5, "'**' may only be the last"),
            ("rules:\n  - buckets: '*'\n    roles: anon\n    allow: read\n    paths: ['*.png']", 5, "whole segments only"),
            ("rules:\n  - buckets: '*'\n    roles: anon\n    allow: read\n    paths: ['a/../b']", 5, "not a valid name segment"),
            ("rules:\n  - buckets: '*'\n    roles: anon\n    allow: read\n    paths: ['{user}/**']", 5, "unknown variable"),
            ("rules:\n  - buckets: '*'\n    roles: anon\n    allow: read\n    paths: ['{claims.a b}/**']", 5, "not a claim name"),
            ("rules:\n  - buckets: '*'\n    roles: anon\n    when: app_role == 'x'\n    allow: read\n    paths: '**'", 4, "claims.NAME"),
            ("rules:\n  - buckets: '*'\n    roles: anon\n    when: claims.role == editor\n    allow: read\n    paths: '**'", 4, "double-quoted"),
            ("rules:\n  - buckets: [ok, 'Bad/Name']\n    roles: anon\n    allow: read\n    paths: '**'", 2, "not a bucket name"),
            ("rules:\n  - buckets: '*'\n    roles: anon\n    allow: bucket_admin\n    paths: '**'", 2, "no meaning for bucket_admin"),
            ("rules:\n  - buckets: '*'\n    roles: anon\n    allow: read\n    paths: '**'\n    colour: red", 6, "unknown key 'colour'"),
            (AccessPolicyTests.aliasBomb, 0, "too many values"),
            ("rules:\n  - buckets: '*'\n    roles: anon\n    roles: authenticated\n    allow: read\n    paths: '**'", 3, "twice"),
            ("rules:\n  - buckets: '*'\n    roles: anon\n    allow: {read: 1}\n    paths: '**'", 4, "not a map"),
            // Rules that could never match, or would reach further than they say.
            (
                "rules:\n  - buckets: '*'\n    roles: anon\n    allow: all\n    paths: '**'\n  - {buckets: '*', roles: anon, allow: [read, bucket_admin], paths: '**'}",
                6, "a rule of its own"
            ),
            ("rules:\n  - buckets: []\n    roles: anon\n    allow: read\n    paths: '**'", 2, "'buckets' is empty"),
            ("rules:\n  - buckets: ['*', teams]\n    roles: anon\n    allow: read\n    paths: '**'", 2, "no wildcards"),
            ("rules:\n  - buckets: team*\n    roles: anon\n    allow: read\n    paths: '**'", 2, "no wildcards"),
            ("rules:\n  - buckets: null\n    roles: anon\n    allow: read\n    paths: '**'", 2, "missing (null)"),
            ("rules:\n  - buckets: '*'\n    roles: anon\n    when: []\n    allow: read\n    paths: '**'", 4, "'when' is empty"),
            ("rules:\n  - buckets: '*'\n    roles: anon\n    allow: read\n    paths: 'cafe\u{301}/**'", 5, "not in Unicode NFC"),
            ("rules:\n  - buckets: '*'\n    roles: anon\n    allow: read\n    paths: '{sub}/**'", 2, "{sub} never matches for anon"),
            ("[[rules]]\nbuckets = \"*\"\n", 2, "TOML is not read"),
        ] as [(String, Int, String)])
    func mistakesNameTheirLineAndReason(_ yaml: String, _ line: Int, _ reason: String) throws {
        #expect {
            try Self.policy(yaml)
        } throws: { error in
            guard let e = error as? AccessRuleError else { return false }
            return (line == 0 || e.line == line) && e.reason.contains(reason)
        }
    }

    /// Six lines standing for 10⁶ values through aliases.
    static let aliasBomb = """
        rules:
          - &a [x, x, x, x, x, x, x, x, x, x]
          - &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
          - &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
          - &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
          - &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
          - [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
        """

    @Test func anEmptyListAllowsOnlyTheServiceRole() throws {
        let p = try Self.policy("rules: []")
        #expect(!p.allows(Self.alice, .read, bucket: "b", path: try Self.name("alice/a")))
        #expect(p.allows(Self.service, .delete, bucket: "b", path: try Self.name("alice/a")))
    }
}
