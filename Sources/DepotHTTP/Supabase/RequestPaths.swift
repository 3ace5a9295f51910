import DepotCore
import Hummingbird

extension Request {
    /// The raw URI path after `prefix` (not yet percent-decoded).
    func rawRest(after prefix: String) throws(StorageError) -> Substring {
        let raw = uri.path
        guard raw.hasBytePrefix(prefix) else { throw .invalidPath("the path is missing") }
        return raw.dropBytePrefix(prefix)
    }

    /// A single percent-encoded segment after `prefix`, e.g. a bucket id.
    func segment(after prefix: String) throws(StorageError) -> String {
        let rest = try rawRest(after: prefix)
        let segment = Substring(rest.utf8.prefix { $0 != UInt8(ascii: "/") })
        guard let decoded = PercentEncoding.decode(segment), !decoded.isEmpty else { throw .invalidRequest("the bucket id is missing") }
        return decoded
    }
}
