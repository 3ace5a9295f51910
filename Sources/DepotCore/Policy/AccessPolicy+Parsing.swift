/// A rules document as a tree of scalars, lists and maps with the line each starts on: what the
/// YAML reader of the composition root (or a test) hands to ``AccessPolicy/init(document:source:)``.
public indirect enum RuleNode: Sendable {
    case scalar(String, line: Int?)
    case list([RuleNode], line: Int?)
    case map([(key: String, value: RuleNode)], line: Int?)

    var line: Int? {
        switch self {
        case .scalar(_, let line), .list(_, let line), .map(_, let line): line
        }
    }
}

extension AccessPolicy {
    /// Most rules in one file.
    public static let maxRules = 1000
    /// Most path templates in all rules together (a check may walk each).
    public static let maxTemplates = 1000

    /// Compiles a rules document:
    ///
    /// ```yaml
    /// rules:
    ///   - name: own files                  # optional, for messages
    ///     buckets: "*"                      # "*", a bucket name, or a list of names
    ///     roles: [authenticated]            # anon and/or authenticated
    ///     when: claims.app_role == "editor" # optional; one test or a list (all must hold)
    ///     allow: [read, list, insert, update, delete, sign]   # or "all", "write"
    ///     paths: ["{sub}/**"]               # templates (PathTemplate); not for bucket_admin alone
    /// ```
    /// - Throws: ``AccessRuleError`` with the line and the reason.
    public init(document: RuleNode, source: String) throws(AccessRuleError) {
        guard case .map(let top, let line) = document else { throw AccessRuleError(line: document.line, "the file must be a map with 'rules:'") }
        var rulesNode: RuleNode?
        for (key, value) in top {
            guard key == "rules" else { throw AccessRuleError(line: value.line, "unknown key '\(key)' (the file has only 'rules:')") }
            rulesNode = value
        }
        guard let rulesNode else { throw AccessRuleError(line: line, "the file has no 'rules:' list") }
        guard case .list(let items, _) = rulesNode else { throw AccessRuleError(line: rulesNode.line, "'rules' must be a list") }
        guard items.count <= Self.maxRules else { throw AccessRuleError(line: rulesNode.line, "more than \(Self.maxRules) rules") }
        var rules: [AccessRule] = []
        var templates = 0
        for (i, item) in items.enumerated() {
            let rule = try Self.rule(item, number: i + 1)
            templates += rule.paths.count
            guard templates <= Self.maxTemplates else {
                throw AccessRuleError(line: item.line, "\(rule.name): more than \(Self.maxTemplates) path templates in all rules")
            }
            rules.append(rule)
        }
        self.init(rules: rules, source: source)
    }

    private static func rule(_ node: RuleNode, number: Int) throws(AccessRuleError) -> AccessRule {
        guard case .map(let fields, let line) = node else { throw AccessRuleError(line: node.line, "rule \(number) must be a map") }
        var name = "rule \(number)"
        var buckets: [String]?? = nil
        var roles: [Identity.Role]?
        var operations: AccessOperations?
        var when: [ClaimTest] = []
        var paths: [PathTemplate]?
        for (key, value) in fields {
            func fail(_ reason: String) -> AccessRuleError { AccessRuleError(line: value.line, "\(name): \(reason)") }
            do throws(AccessRuleError.Reason) {
                switch key {
                case "name": name = try scalar(value).prefix(100).description
                case "buckets":
                    let list = try strings(value)
                    if list == ["*"] {
                        buckets = .some(nil)
                    } else {
                        guard !list.isEmpty else { throw .init("'buckets' is empty (name buckets, or \"*\" for every bucket)") }
                        for b in list { try checkBucketName(b) }
                        buckets = .some(list)
                    }
                case "roles": roles = try strings(value).map(role)
                case "allow":
                    var set = AccessOperations()
                    for text in try strings(value) { set.formUnion(try operationSet(text)) }
                    operations = set
                case "when":
                    when = try strings(value).map(claimTest)
                    guard !when.isEmpty else { throw .init("'when' is empty (leave it out to test no claim)") }
                case "paths": paths = try strings(value).map { t throws(AccessRuleError.Reason) in try PathTemplate(t) }
                default: throw .init("unknown key '\(key)' (a rule has name, buckets, roles, when, allow, paths)")
                }
            } catch {
                throw fail(error.text)
            }
        }
        func missing(_ key: String) -> AccessRuleError { AccessRuleError(line: line, "\(name): '\(key)' is missing") }
        guard let buckets else { throw missing("buckets") }
        guard let roles, !roles.isEmpty else { throw missing("roles") }
        guard let operations, !operations.isEmpty else { throw missing("allow") }
        let objectOps = !operations.intersection(.objects).isEmpty
        if objectOps, operations.contains(.bucketAdmin) {
            throw AccessRuleError(
                line: line,
                "\(name): give bucket_admin a rule of its own (it allows whole buckets — emptying, making public, deleting — whatever the paths say)")
        }
        if objectOps, paths?.isEmpty ?? true { throw missing("paths") }
        if !objectOps, paths != nil {
            throw AccessRuleError(line: line, "\(name): 'paths' has no meaning for bucket_admin (it allows whole buckets)")
        }
        if !roles.contains(.authenticated), paths?.contains(where: \.namesSubject) ?? false {
            throw AccessRuleError(line: line, "\(name): {sub} never matches for anon (an anon token has no user id)")
        }
        return AccessRule(name: name, buckets: buckets, roles: roles, operations: operations, when: when, paths: paths ?? [])
    }

    private static func scalar(_ node: RuleNode) throws(AccessRuleError.Reason) -> String {
        guard case .scalar(let s, _) = node else { throw .init("expected a single value") }
        return s
    }

    /// A scalar or a list of scalars.
    private static func strings(_ node: RuleNode) throws(AccessRuleError.Reason) -> [String] {
        switch node {
        case .scalar(let s, _): return [s]
        case .list(let items, _):
            guard items.count <= 1000 else { throw .init("a list of more than 1000 values") }
            var out: [String] = []
            for item in items {
                guard case .scalar(let s, _) = item else { throw .init("expected a list of values") }
                out.append(s)
            }
            return out
        case .map: throw .init("expected a value or a list of values, not a map")
        }
    }

    private static func role(_ text: String) throws(AccessRuleError.Reason) -> Identity.Role {
        switch text {
        case "anon": return .anon
        case "authenticated": return .authenticated
        case "service_role": throw .init("service_role is never limited by rules (it may do everything); name anon or authenticated")
        default: throw .init("unknown role '\(text)' (anon or authenticated)")
        }
    }

    private static func operationSet(_ text: String) throws(AccessRuleError.Reason) -> AccessOperations {
        if text == "all" { return .objects }
        if text == "write" { return [.init(.insert), .init(.update)] }
        guard let op = AccessOperation.allCases.first(where: { $0.name == text }) else {
            let names = AccessOperation.allCases.map(\.name).joined(separator: ", ")
            throw .init("unknown operation '\(text)' (\(names), write = insert and update, all)")
        }
        return AccessOperations(op)
    }

    private static func checkBucketName(_ name: String) throws(AccessRuleError.Reason) {
        guard !name.contains("*") else { throw .init("'\(name)': bucket names have no wildcards; \"*\" alone stands for every bucket") }
        do { try BucketRecord.validate(name: name) } catch {
            throw .init("'\(name)' is not a bucket name (\(error.message)); '*' stands for every bucket, alone")
        }
    }

    /// `claims.NAME == "value"` or `!=`; the value double-quoted, or a bare number, `true`, `false`.
    static func claimTest(_ text: String) throws(AccessRuleError.Reason) -> ClaimTest {
        let equal: Bool
        let parts: [Substring]
        if text.contains("!=") {
            parts = text.split(separator: "!=", maxSplits: 1, omittingEmptySubsequences: false).map { $0 }
            equal = false
        } else {
            parts = text.split(separator: "==", maxSplits: 1, omittingEmptySubsequences: false).map { $0 }
            equal = true
        }
        let usage = "a test reads claims.NAME == \"value\" (or !=), not '\(text)'"
        guard parts.count == 2 else { throw .init(usage) }
        let lhs = parts[0].trimmingSpaces()
        var rhs = parts[1].trimmingSpaces()
        guard lhs.hasPrefix("claims.") else { throw .init(usage) }
        let name = String(lhs.dropFirst(7))
        try ClaimTest.checkName(name)
        if rhs.count >= 2, rhs.hasPrefix("\""), rhs.hasSuffix("\"") {
            rhs = rhs.dropFirst().dropLast()
            guard !rhs.contains("\""), !rhs.contains("\\") else { throw .init("a quoted value may not hold \" or \\: '\(text)'") }
        } else {
            guard rhs == "true" || rhs == "false" || (Int64(rhs) != nil) else {
                throw .init("the value of '\(text)' must be double-quoted (or a whole number, true, false)")
            }
        }
        return ClaimTest(claim: name, value: String(rhs), equal: equal)
    }
}
