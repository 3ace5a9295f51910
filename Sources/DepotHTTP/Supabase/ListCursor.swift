import DepotCore
import Foundation

/// `list-v2`'s cursor, spelled as upstream spells it: base64 of lines `l:<where the page ended>`,
/// `o:<asc|desc>`, `c:<name|created_at|updated_at>` and, in a time order, `a:<ISO time>`.
/// Opaque to clients; read back strictly (anything else is a 400, never a guess).
struct ListCursor: Equatable {
    var position: ListPosition
    /// The order the listing was in; nil when the cursor does not say (upstream's cursors may not).
    var order: ListOrder?

    /// The longest cursor read (base64): a name is at most 1,024 bytes.
    static let maxLength = 4096

    func encoded() -> String {
        var lines = ["l:" + position.name]
        if let order {
            lines.append("o:" + (order.descending ? "desc" : "asc"))
            lines.append("c:" + order.column.rawValue)
        }
        if let ms = position.milliseconds { lines.append("a:" + HTTPDate.iso8601(milliseconds: ms)) }
        return Data(lines.joined(separator: "\n").utf8).base64EncodedString()
    }

    static func decode(_ opaque: String) throws(StorageError) -> ListCursor {
        let invalid = StorageError.invalidRequest("invalid cursor")
        guard opaque.utf8.count <= maxLength, let data = Data(base64Encoded: opaque), let text = String(data: data, encoding: .utf8)
        else { throw invalid }
        var fields: [String: String] = [:]
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            guard line.utf8.count >= 2, line.utf8.dropFirst().first == UInt8(ascii: ":") else { throw invalid }
            let name = String(line.prefix(1))
            guard ["l", "o", "c", "a"].contains(name), fields[name] == nil else { throw invalid }
            fields[name] = String(line.dropFirst(2))
        }
        guard let last = fields["l"] else { throw invalid }
        var milliseconds: Int64? = nil
        if let a = fields["a"] {
            guard let ms = HTTPDate.parseISO8601(a) else { throw invalid }
            milliseconds = ms
        }
        var order: ListOrder? = nil
        if fields["o"] != nil || fields["c"] != nil {
            let column = FolderSort(rawValue: fields["c"] ?? "name")
            guard let column, [.name, .createdAt, .updatedAt].contains(column), ["asc", "desc"].contains(fields["o"] ?? "asc") else {
                throw invalid
            }
            order = ListOrder(column: column, descending: fields["o"] == "desc")
        }
        return ListCursor(position: ListPosition(name: last, milliseconds: milliseconds), order: order)
    }
}
