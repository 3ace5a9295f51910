import AsyncHTTPClient
import DepotCore
import DepotHTTP
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Synchronization

/// Where the JWKS of user tokens signed with asymmetric keys comes from (`--jwks`): a file, or an
/// `http(s)://` URL such as Supabase Auth's `…/auth/v1/.well-known/jwks.json`.
public enum SigningKeySource: Sendable, Equatable, CustomStringConvertible {
    case file(String)
    case url(String)

    /// `http://…` or `https://…` is a URL; anything else a file path.
    public init(_ value: String) {
        let lower = value.lowercased()
        self = lower.hasPrefix("https://") || lower.hasPrefix("http://") ? .url(value) : .file(value)
    }

    public var description: String {
        switch self {
        case .file(let path): return path
        case .url(let url): return url
        }
    }
}

/// Loads the JWKS into ``ProjectJWT`` at start and every `interval`, and again (at most once per
/// `minimumGap`) when a token names a `kid` it lacks. A JWKS that cannot be read is a log line
/// and a retry every `retry` — never a crash: the keys read before stay in use, HS256 tokens keep
/// working, and tokens signed with keys not loaded are refused (401). Nobody waits long for a
/// slow host: the server starts listening after at most `startWait`, and a request with an
/// unknown `kid` waits at most `requestWait` for the read it started (which goes on).
final class SigningKeyRefresher: Service, Sendable, CustomStringConvertible {
    let source: SigningKeySource
    let jwt: ProjectJWT
    let interval: Duration
    let retry: Duration
    let minimumGap: Duration
    let logger: Logger
    /// How long the start waits for the first read, and a request for the read its `kid` started.
    let startWait: Duration = .seconds(3)
    let requestWait: Duration = .seconds(2)
    /// The longest one read may take.
    static let readTimeout: Int64 = 5
    private let state = Mutex(State())

    private struct State {
        var lastAttempt: ContinuousClock.Instant?
        var lastLoaded: ContinuousClock.Instant?
        var inFlight: Task<Bool, Never>?
        var failing = false
    }

    var description: String { "SigningKeyRefresher(\(source))" }

    init(
        source: SigningKeySource, jwt: ProjectJWT, interval: Duration, retry: Duration = .seconds(30), minimumGap: Duration = .seconds(10),
        logger: Logger
    ) {
        self.source = source
        self.jwt = jwt
        self.interval = interval
        self.retry = retry
        self.minimumGap = minimumGap
        self.logger = logger
    }

    /// The first load, before the server listens: waited for at most `startWait` (a failure is
    /// logged, not thrown; a slower read goes on while the server starts).
    func loadAtStart() async {
        jwt.onUnknownKey { [weak self] in await self?.refreshForUnknownKey() }
        if case .file(let path) = source, let mode = (try? FileManager.default.attributesOfItem(atPath: path))?[.posixPermissions] as? Int,
            mode & 0o022 != 0
        {
            logger.warning("\(path) may be written by other users: whoever writes it can sign any user's token (chmod go-w)")
        }
        await wait(for: fetch(unlessTriedWithin: nil), atMost: startWait)
    }

    /// Every `retry`: a read when the last one failed, or when `interval` has passed since keys
    /// were last loaded.
    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: self.retry)
                if Task.isCancelled { break }
                let due = self.state.withLock { s in
                    s.failing || s.lastLoaded.map { ContinuousClock.now - $0 >= self.interval } ?? true
                }
                if due { _ = await self.fetch(unlessTriedWithin: nil)?.value }
            }
        }
    }

    /// A token named a `kid` the JWKS lacks: fetch again unless that was tried within `minimumGap`
    /// (tokens with made-up `kid`s must not make the server hammer the JWKS's host), or wait for
    /// the fetch under way.
    func refreshForUnknownKey() async {
        await wait(for: fetch(unlessTriedWithin: minimumGap), atMost: requestWait)
    }

    /// Waits for a read, but not past `limit`: the read goes on (a hanging host holds nobody).
    private func wait(for task: Task<Bool, Never>?, atMost limit: Duration) async {
        guard let task else { return }
        _ = try? await abandoningAfter(limit, { StorageError.unavailable("the JWKS read is taking longer") }) { await task.value }
    }

    /// The fetch under way, or a new one (nil when one was tried within `gap`); its value is true
    /// when keys were loaded.
    private func fetch(unlessTriedWithin gap: Duration?) -> Task<Bool, Never>? {
        state.withLock { s in
            if let inFlight = s.inFlight { return inFlight }
            if let gap, let last = s.lastAttempt, ContinuousClock.now - last < gap { return nil }
            s.lastAttempt = .now
            let task = Task { await self.fetchAndUse() }
            s.inFlight = task
            return task
        }
    }

    private func fetchAndUse() async -> Bool {
        defer { state.withLock { $0.inFlight = nil } }
        do {
            let keys = try await SigningKeys.parse(try await Self.read(source))
            let changed = Set(keys.kids) != Set(jwt.signingKeyIDs)
            jwt.useSigningKeys(keys)
            let recovered = state.withLock { s in
                defer {
                    s.failing = false
                    s.lastLoaded = .now
                }
                return s.failing
            }
            if changed || recovered {
                logger.info("signing keys (JWKS) loaded from \(source): kid \(keys.kids.map(\.debugDescription).joined(separator: ", "))")
            }
            for note in keys.skipped { logger.warning("JWKS from \(source): skipped \(note)") }
            return true
        } catch {
            let first = state.withLock { s in
                defer { s.failing = true }
                return !s.failing
            }
            let kept = jwt.signingKeyIDs
            let consequence =
                kept.isEmpty
                ? "no signing keys are loaded: tokens signed with RS256, ES256 or EdDSA are refused"
                : "the keys read before (kid \(kept.map(\.debugDescription).joined(separator: ", "))) stay in use"
            logger.log(
                level: first ? .error : .warning,
                "cannot load the signing keys (JWKS) from \(source): \(error); \(consequence); trying again in \(retry)")
            return false
        }
    }

    /// The document's bytes: a file, or a GET of the URL (200, at most ``SigningKeys/maxBytes``,
    /// within ``readTimeout`` seconds).
    static func read(_ source: SigningKeySource) async throws -> [UInt8] {
        switch source {
        case .file(let path):
            let attributes = try? FileManager.default.attributesOfItem(atPath: path)
            if let size = attributes?[.size] as? Int, size > SigningKeys.maxBytes {
                throw StorageError.invalidRequest("\(path) is larger than \(SigningKeys.maxBytes) bytes")
            }
            guard let data = FileManager.default.contents(atPath: path) else {
                throw StorageError.unavailable("cannot read \(path)")
            }
            return Array(data)
        case .url(let url):
            var request = HTTPClientRequest(url: url)
            request.headers.add(name: "Accept", value: "application/json")
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(readTimeout))
            guard response.status == .ok else { throw StorageError.unavailable("GET \(url) answered \(response.status.code)") }
            let body = try await response.body.collect(upTo: SigningKeys.maxBytes)
            return Array(body.readableBytesView)
        }
    }
}
