import NIOCore

extension ByteBuffer {
    /// This buffer, or a copy of its readable bytes when it keeps far more memory alive than it
    /// holds (a socket read sized for a megabyte that brought a few bytes). Chunks of a body are
    /// held while they are hashed and gathered for a write; compacting the sparse ones bounds that
    /// memory by the bytes received, however a client paces its sending.
    public func compactedIfSparse() -> ByteBuffer {
        let stored = storageCapacity
        guard stored > 64 * 1024, readableBytes < stored / 4 else { return self }
        var copy = ByteBufferAllocator().buffer(capacity: readableBytes)
        copy.writeImmutableBuffer(self)
        return copy
    }
}
