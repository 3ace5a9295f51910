import DepotCore
import NIOCore
import Testing

/// Writes `bytes` as a new blob in chunks of `chunk` bytes; checks the size `finish()` reports.
/// `sized`: the writer is made for a blob of that size (``BlobStore/makeWriter(for:size:)``).
func writeBlob(_ store: any BlobStore, _ bytes: [UInt8], chunk: Int = 100_000, sized: Bool = false) async throws -> BlobID {
    let id = BlobID.random()
    let writer = try await sized ? store.makeWriter(for: id, size: Int64(bytes.count)) : store.makeWriter(for: id)
    var i = 0
    while i < bytes.count {
        try await writer.write(ByteBuffer(bytes: bytes[i..<min(i + chunk, bytes.count)]))
        i += chunk
    }
    #expect(try await writer.finish() == Int64(bytes.count))
    return id
}

/// A blob's bytes (or a range of them), collected.
func readBlob(_ store: any BlobStore, _ id: BlobID, _ range: Range<Int64>? = nil) async throws -> [UInt8] {
    var out: [UInt8] = []
    try await store.read(id, range: range) { out += Array($0.readableBytesView) }
    return out
}
