import Foundation

// MARK: - A bucket's own rules
//
// The service role may give a bucket rules of its own (`"rules": [...]` when it creates or
// changes the bucket): rules as in a rules file, without `buckets` (they speak for that bucket's
// objects only) and without `bucket_admin` (who manages buckets is the server's rules' to say).
// They are kept as JSON text with the bucket and apply besides the server's rules.

extension AccessPolicy {
    /// Most rules of one bucket.
    public static let maxBucketRules = 100

    /// Checks rules given as a JSON value (an array of rule objects) for `bucket`, and returns
    /// the text to keep (keys sorted), or nil for an empty array (no rules of its own).
    /// - Throws: ``AccessRuleError`` naming the rule and the reason (no line: JSON has none).
    public static func checkedBucketRules(_ value: Any, bucket: String) throws(AccessRuleError) -> String? {
        guard let list = value as? [Any] else { throw AccessRuleError(line: nil, "rules must be an array of rule objects") }
        guard list.count <= maxBucketRules else { throw AccessRuleError(line: nil, "a bucket has at most \(maxBucketRules) rules") }
        if list.isEmpty { return nil }
        _ = try compileBucketRules(list, bucket: bucket)
        guard let data = try? JSONSerialization.data(withJSONObject: list, options: [.sortedKeys, .withoutEscapingSlashes]) else {
            throw AccessRuleError(line: nil, "rules must be JSON")
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// Compiles a bucket's kept rules (``BucketRecord/rules``).
    public static func bucketRules(_ text: String, bucket: String) throws(AccessRuleError) -> [AccessRule] {
        guard let list = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [Any] else {
            throw AccessRuleError(line: nil, "the bucket's rules are not a JSON array")
        }
        return try compileBucketRules(list, bucket: bucket)
    }

    private static func compileBucketRules(_ list: [Any], bucket: String) throws(AccessRuleError) -> [AccessRule] {
        var items: [RuleNode] = []
        for (i, item) in list.enumerated() {
            guard let fields = item as? [String: Any] else { throw AccessRuleError(line: nil, "rule \(i + 1) must be an object") }
            guard fields["buckets"] == nil else {
                throw AccessRuleError(line: nil, "rule \(i + 1): a bucket's rules speak for it alone: leave out 'buckets'")
            }
            var pairs: [(key: String, value: RuleNode)] = [("buckets", .scalar(bucket, line: nil))]
            for key in fields.keys.sorted() { pairs.append((key, try node(fields[key]!, rule: i + 1, key: key))) }
            items.append(.map(pairs, line: nil))
        }
        let policy = try AccessPolicy(document: .map([("rules", .list(items, line: nil))], line: nil), source: "bucket \(bucket)")
        if policy.rules.contains(where: { $0.operations.contains(.bucketAdmin) }) {
            throw AccessRuleError(line: nil, "bucket_admin is not for a bucket's own rules (the server's rules file says who manages buckets)")
        }
        return policy.rules
    }

    /// A JSON value as a rules tree: strings, arrays of strings, objects.
    private static func node(_ value: Any, rule: Int, key: String) throws(AccessRuleError) -> RuleNode {
        if let s = value as? String { return .scalar(s, line: nil) }
        if let a = value as? [Any] {
            var items: [RuleNode] = []
            for v in a { items.append(try node(v, rule: rule, key: key)) }
            return .list(items, line: nil)
        }
        throw AccessRuleError(line: nil, "rule \(rule): '\(key)' must be a string or an array of strings")
    }
}
