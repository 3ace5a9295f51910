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
/// `minimumGap`) when a token names a `kid` it lacks. A JWKS that cannot be read is one log line
/// and a retry every `retry` — never a crash: HS256 tokens keep working, and tokens signed with
/// the missing keys are refused (401) until it loads.
final class SigningKeyRefresher: Service, Sendable, CustomStringConvertible {
    let source: SigningKeySource
    let jwt: ProjectJWT
    let interval: Duration
    let retry: Duration
    let minimumGap: Duration
    let logger: Logger
    private let state = Mutex(State())

    private struct State {
        var lastAttempt: ContinuousClock.Instant?
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

    /// The first load, before the server listens (a failure is logged, not thrown).
    func loadAtStart() async {
        jwt.onUnknownKey { [weak self] in await self?.refreshForUnknownKey() }
        _ = await fetch(unlessTriedWithin: nil)?.value
    }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                let failing = self.state.withLock { $0.failing }
                try? await Task.sleep(for: failing ? self.retry : self.interval)
                if Task.isCancelled { break }
                _ = await self.fetch(unlessTriedWithin: nil)?.value
            }
        }
    }

    /// A token named a `kid` the JWKS lacks: fetch again unless that was tried within `minimumGap`
    /// (tokens with made-up `kid`s must not make the server hammer the JWKS's host), or wait for
    /// the fetch under way.
    func refreshForUnknownKey() async {
        _ = await fetch(unlessTriedWithin: minimumGap)?.value
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
                defer { s.failing = false }
                return s.failing
            }
            if changed || recovered {
                logger.info("signing keys (JWKS) loaded from \(source): kid \(keys.kids.joined(separator: ", "))")
            }
            for note in keys.skipped { logger.warning("JWKS from \(source): skipped \(note)") }
            return true
        } catch {
            let first = state.withLock { s in
                defer { s.failing = true }
                return !s.failing
            }
            let level: Logger.Level = first ? .error : .debug
            logger.log(
                level: level,
                "cannot load the signing keys (JWKS) from \(source): \(error); tokens signed with its keys are refused until it loads; retrying every \(retry)"
            )
            return false
        }
    }

    /// The document's bytes: a file, or a GET of the URL (200, at most ``SigningKeys/maxBytes``,
    /// within 10 s).
    static func read(_ source: SigningKeySource) async throws -> [UInt8] {
        switch source {
        case .file(let path):
            guard let data = FileManager.default.contents(atPath: path) else {
                throw StorageError.unavailable("cannot read \(path)")
            }
            return Array(data)
        case .url(let url):
            var request = HTTPClientRequest(url: url)
            request.headers.add(name: "Accept", value: "application/json")
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
            guard response.status == .ok else { throw StorageError.unavailable("GET \(url) answered \(response.status.code)") }
            let body = try await response.body.collect(upTo: SigningKeys.maxBytes)
            return Array(body.readableBytesView)
        }
    }
}
