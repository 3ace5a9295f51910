/// Runs `body`, then `close` — also when `body` throws (async work cannot go in a `defer`).
public func closing<T>(_ close: @Sendable () async -> Void, _ body: () async throws -> T) async throws -> T {
    let result: T
    do { result = try await body() } catch {
        await close()
        throw error
    }
    await close()
    return result
}

/// Runs `body`; runs `close` only when `body` throws (for a resource opened before it that the
/// caller keeps on success).
public func closingOnFailure<T>(_ close: @Sendable () async -> Void, _ body: () async throws -> T) async throws -> T {
    do { return try await body() } catch {
        await close()
        throw error
    }
}
