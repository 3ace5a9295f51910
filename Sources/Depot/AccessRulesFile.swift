import DepotCore
import Foundation
import Yams

/// Reads a rules file (`--policies`, YAML; JSON is YAML too) into compiled ``AccessPolicy``.
public enum AccessRulesFile {
    /// Largest rules file read.
    public static let maxBytes = 1 << 20

    /// Reads and compiles the file at `path`.
    /// - Throws: ``AccessRuleError`` naming the line and what is wrong.
    public static func load(_ path: String) throws(AccessRuleError) -> AccessPolicy {
        guard let data = FileManager.default.contents(atPath: path) else {
            let reason =
                !FileManager.default.fileExists(atPath: path)
                ? "no such file" : FileManager.default.isReadableFile(atPath: path) ? "not a readable file" : "permission denied"
            throw AccessRuleError(line: nil, "cannot read the file (\(reason))")
        }
        guard data.count <= maxBytes else { throw AccessRuleError(line: nil, "the file is larger than 1 MiB") }
        guard let text = String(data: data, encoding: .utf8) else { throw AccessRuleError(line: nil, "the file is not UTF-8 text") }
        return try parse(text, source: path)
    }

    /// Compiles rules given as YAML text.
    public static func parse(_ text: String, source: String) throws(AccessRuleError) -> AccessPolicy {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw Self.describe(error)
        } catch {
            throw AccessRuleError(line: nil, "not YAML: \(error)")
        }
        guard let root else { throw AccessRuleError(line: nil, "the file is empty (it needs 'rules:')") }
        var budget = 100_000
        return try AccessPolicy(document: try node(root, budget: &budget), source: source)
    }

    /// The Yams tree as a ``RuleNode`` tree, refused past `budget` nodes (an alias repeats a
    /// subtree: a few lines could stand for millions of nodes).
    private static func node(_ n: Node, budget: inout Int) throws(AccessRuleError) -> RuleNode {
        let line = n.mark?.line
        budget -= 1
        guard budget >= 0 else { throw AccessRuleError(line: line, "too many values in the file") }
        switch n {
        case .scalar(let s):
            guard n.null == nil else { throw AccessRuleError(line: line, "a value is missing (null)") }
            return .scalar(s.string, line: line)
        case .sequence(let seq):
            var items: [RuleNode] = []
            for item in seq { items.append(try node(item, budget: &budget)) }
            return .list(items, line: line)
        case .mapping(let map):
            var pairs: [(key: String, value: RuleNode)] = []
            var seen: Set<String> = []
            for (k, v) in map {
                guard case .scalar(let key) = k else { throw AccessRuleError(line: k.mark?.line, "a key must be a plain word") }
                guard seen.insert(key.string).inserted else { throw AccessRuleError(line: k.mark?.line, "'\(key.string)' is given twice") }
                pairs.append((key.string, try node(v, budget: &budget)))
            }
            return .map(pairs, line: line)
        case .alias: throw AccessRuleError(line: line, "aliases (*) are not supported")
        }
    }

    private static func describe(_ error: YamlError) -> AccessRuleError {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
            return AccessRuleError(line: mark.line, "not valid YAML (a rules file is YAML or JSON; TOML is not read): \(problem)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            return AccessRuleError(line: context.mark.line, "a key is given twice: \(duplicates.joined(separator: ", "))")
        default:
            return AccessRuleError(line: nil, "not valid YAML: \(error)")
        }
    }
}
