import DepotCore
import NIOCore
import Testing

/// Chunks of a body are held while hashed and gathered for a write: a sparse one (a large socket
/// read that brought little) is copied small, a full one kept as it is.
@Suite("Body chunks held in memory")
struct CompactedChunkTests {
    @Test func aSparseReadIsCopiedToItsBytes() {
        var read = ByteBufferAllocator().buffer(capacity: 1024 * 1024)
        read.writeBytes([UInt8](repeating: 7, count: 100))
        let held = read.compactedIfSparse()
        #expect(held.storageCapacity < 4096)
        #expect(held == read)
    }

    @Test func aFullReadIsKeptAsItIs() {
        var read = ByteBufferAllocator().buffer(capacity: 1024 * 1024)
        read.writeBytes([UInt8](repeating: 1, count: 900 * 1024))
        let held = read.compactedIfSparse()
        #expect(held.storageCapacity == read.storageCapacity)
        #expect(held == read)
    }

    @Test func aSliceOfALargeReadIsJudgedByItsStorage() {
        var read = ByteBufferAllocator().buffer(capacity: 1024 * 1024)
        read.writeBytes([UInt8](repeating: 2, count: 1024 * 1024))
        let slice = read.getSlice(at: 10, length: 50)!
        let held = slice.compactedIfSparse()
        #expect(held.storageCapacity < 4096)
        #expect(held == slice)
    }

    @Test func smallBuffersAreNeverCopied() {
        var read = ByteBufferAllocator().buffer(capacity: 32 * 1024)
        read.writeBytes([3, 4, 5])
        #expect(read.compactedIfSparse().storageCapacity == read.storageCapacity)
    }
}
