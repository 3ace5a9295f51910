import DepotCore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import Synchronization

/// The GET answers of the current second by request target: a hot URL (an avatar on a busy page,
/// an image a feed shows to everyone) is verified, looked up and given its headers once per second,
/// not once per request. An answer is reused only in the second it was built (its `Date` and a
/// signed link's `max-age` are that second's; a link that has expired since was still valid in
/// it) and while the caches' epoch is unchanged, so any write (an object replaced, moved, revoked,
/// deleted, made private) ends its reuse at once.
///
/// Each event loop keeps its own answers (``PerLoop``): no loop waits for another's lock, and
/// the answers a loop built are released by that loop when its second ends.
/// One shared table released thousands of answers in one burst each second, most of them
/// allocated by the other loop — every `free` then took that loop's `malloc` arena lock while it
/// allocated (the gallery's one source of `futex` waits). A URL asked for on two loops is worked
/// out once a second on each. A loop's table holds answers of one second only, at most
/// ``Budget/loop`` of them (the threads that are no event loop, ``Budget/shared``); a loop that
/// starts a new second also drops what another loop, no longer asked, still keeps from before
/// the last second. A server that goes quiet keeps each loop's last second until it is asked
/// again — within the budget, whose bodies, counted in it, may be ones the blob cache has let go.
///
/// An answer is kept on its target's second ask in a second, not its first (``Asks``; nginx's
/// `open_file_cache_min_uses`): a gallery whose every image is asked for about once a second
/// would otherwise keep, and free a second later, an answer for each request and reuse none.
///
/// An answer whose bytes are in memory may also keep its head as the bytes it is on the wire (as
/// NIO's encoder writes it), which ``RecentAnswerFront`` sends, with the body's bytes (shared with
/// the blob cache, never copied), before any HTTP decoding.
final class RecentAnswers: Sendable {
    /// A request target with its hash, worked out once for the lookup and the keep that may
    /// follow (a signed URL is ~150 bytes to hash).
    struct Key: Hashable, Sendable {
        let target: String
        let hash: Int
        init(_ target: String) {
            self.target = target
            hash = target.hashValue
        }
        func hash(into hasher: inout Hasher) { hasher.combine(hash) }
        /// Targets are compared as bytes (two that are canonically equivalent are not the same URL).
        static func == (a: Key, b: Key) -> Bool { a.hash == b.hash && a.target.bytesEqual(b.target) }
    }

    /// An answer as ``RecentAnswerFront`` sends it: its head's wire bytes, then the body's bytes
    /// (shared with the blob cache, never copied).
    struct Wire: Sendable {
        let head: ByteBuffer
        let body: ByteBuffer
        /// The route's `depot_http_requests_total` counter for a 200.
        let requests: LoopCounter
        /// The body was read from its file for this answer (not yet in memory before it).
        let fromFile: Bool
    }

    /// What is kept for a target: the answer as the decoded path gives it (`nil` when only the
    /// front asked: it needs the wire bytes alone), and the wire form when its bytes are in memory.
    struct Kept: Sendable {
        let answer: PipelineDownloads.Answer?
        let wire: Wire?

        /// The bytes it holds, counted against a table's budget: its body's (in memory; shared
        /// with the blob cache while that keeps them) and its wire head's.
        var bytes: Int {
            if let wire { return wire.head.readableBytes + wire.body.readableBytes }
            if case .bytes(let body) = answer?.body { return body.readableBytes }
            return 0
        }
    }

    private struct Recent {
        let kept: Kept
        let epoch: UInt64
    }
    private struct State {
        var second: Int64 = .min
        var answers: [Key: Recent] = [:]
        /// The bytes of the answers' bodies and wire heads.
        var bytes = 0
        let budget: Budget
        var asks: Asks

        init(budget: Budget) {
            self.budget = budget
            asks = Asks(slots: budget.answers * 2)
        }
    }

    /// The targets asked for in the current second and not found, by hash: a table of pairs of
    /// slots (a target's pair chosen by its hash), each slot holding a target's hash with its low
    /// bit set after one ask, clear after two or more. Three targets that share a pair may push
    /// one another out (a keep put off while their asks alternate), or, sharing a hash, let each
    /// other in one ask early: the table only decides whether an answer is kept, never which
    /// answer a target gets.
    struct Asks {
        private var slots: [Int]
        private var second: Int64 = .min

        /// `slots`: rounded up to a power of two.
        init(slots: Int) {
            self.slots = [Int](repeating: 0, count: 1 << (Int.bitWidth - (max(slots, 2) - 1).leadingZeroBitCount))
        }

        /// Notes an ask for `key` in `second` that found no answer (one of an earlier second is
        /// not noted: the table holds the latest second's).
        mutating func note(_ key: Key, second: Int64) {
            if second != self.second {
                guard second > self.second else { return }
                self.second = second
                slots.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
            }
            let (once, twice) = (key.hash | 1, key.hash & ~1)
            let i = key.hash & (slots.count - 1)
            let j = i ^ 1
            if slots[i] == once || slots[i] == twice {
                slots[i] = twice
            } else if slots[j] == once || slots[j] == twice {
                slots[j] = twice
            } else {
                // An empty slot, else one asked for once, else the first.
                slots[slots[i] == 0 || (slots[j] != 0 && slots[i] & 1 == 1) ? i : j] = once
            }
        }

        /// Whether `key` was asked for at least twice in `second` (the ask just noted included).
        func askedTwice(_ key: Key, second: Int64) -> Bool {
            let i = key.hash & (slots.count - 1)
            return second == self.second && (slots[i] == key.hash & ~1 || slots[i ^ 1] == key.hash & ~1)
        }
    }

    /// What one table may hold: answers and the bytes of their bodies and wire heads.
    struct Budget {
        let answers: Int
        let bytes: Int

        /// An event loop's: enough for a gallery of several thousand images each asked for
        /// several times a second (1,024 answers kept a fifth of a 5,000-image gallery: the rest
        /// was worked out again on every request), as each loop sees every URL — 16,384 answers
        /// and 64 MiB (a default blob cache's worth) shared by the loops, at least 1,024 and
        /// 4 MiB each: 8,192 answers and 32 MiB each on two cores.
        static let loop = Budget(
            answers: max(1024, 16384 / LoopThread.loopSlots), bytes: max(4 << 20, (64 << 20) / LoopThread.loopSlots))
        /// The threads' that are no event loop (the downloads' answers are built on the loops).
        static let shared = Budget(answers: 1024, bytes: 4 << 20)
    }

    /// The calling event loop's answers (``PerLoop``). Besides the bytes counted, an answer's
    /// headers as fields take up to ~1.5 KiB: a table holds at most ~88 MiB (64 MiB counted,
    /// 16,384 answers' fields) on machines of up to 16 cores, and 1,024 answers' and 4 MiB a
    /// loop more beyond; the threads' table ~6 MiB more.
    private let state = PerLoop { shared in State(budget: shared ? .shared : .loop) }
    /// Whether answers keep their wire head (only those ``RecentAnswerFront`` may send).
    let keepsWireHeads: Bool

    init(keepsWireHeads: Bool) {
        self.keepsWireHeads = keepsWireHeads
    }

    /// The decoded path's answer kept for `target` in `second` while the caches' epoch is `epoch`.
    func answer(to target: String, second: Int64, epoch: UInt64) -> PipelineDownloads.Answer? {
        kept(for: Key(target), second: second, epoch: epoch)?.answer
    }

    /// What is kept for `key` in `second` while the caches' epoch is `epoch`; when nothing is,
    /// the ask is noted (``Asks``).
    func kept(for key: Key, second: Int64, epoch: UInt64) -> Kept? {
        state.withLock { s in
            if s.second == second, let recent = s.answers[key], recent.epoch == epoch { return recent.kept }
            s.asks.note(key, second: second)
            return nil
        }
    }

    /// Keeps the decoded path's `answer` (with its wire form, when this cache keeps them and its
    /// bytes are in memory).
    func keep(_ answer: PipelineDownloads.Answer, for target: String, second: Int64, epoch: UInt64) {
        keep(answer, for: Key(target), second: second, epoch: epoch)
    }

    func keep(_ answer: PipelineDownloads.Answer, for key: Key, second: Int64, epoch: UInt64) {
        var wire: Wire? = nil
        if keepsWireHeads, let head = Self.wireHead(of: answer), case .bytes(let body) = answer.body {
            wire = Wire(head: head, body: body, requests: answer.requests, fromFile: false)
        }
        keep(Kept(answer: answer, wire: wire), for: key, second: second, epoch: epoch)
    }

    /// Keeps an answer written by the front (``PipelineDownloads/frontAnswer(to:)``), unless the
    /// decoded path's answer is kept already.
    func keep(_ wire: Wire, for key: Key, second: Int64, epoch: UInt64) {
        keep(Kept(answer: nil, wire: wire), for: key, second: second, epoch: epoch, replacing: false)
    }

    private func keep(_ kept: Kept, for key: Key, second: Int64, epoch: UInt64, replacing: Bool = true) {
        // The last second's answers, freed when this returns: after the lock, so thousands of
        // answers are not released while the other event loop waits for it.
        var released: [Key: Recent] = [:]
        let newSecond = state.withLock { s -> Bool in
            var newSecond = false
            if s.second != second {
                // Only the latest second's answers are reusable: the rest goes.
                guard second > s.second else { return false }
                s.second = second
                swap(&released, &s.answers)
                s.answers.reserveCapacity(released.count)
                s.bytes = 0
                newSecond = true
            }
            let bytes = kept.bytes
            var freed = 0
            if let old = s.answers[key] {
                // Never over one kept under a later epoch (read by a request that began after
                // a write this one did not see); the front's never over the decoded path's.
                guard epoch > old.epoch || (replacing && epoch == old.epoch) else { return newSecond }
                freed = old.kept.bytes
            } else if s.answers.count >= s.budget.answers || !s.asks.askedTwice(key, second: second) {
                return newSecond
            }
            guard s.bytes - freed + bytes <= s.budget.bytes else { return newSecond }
            s.answers[key] = Recent(kept: kept, epoch: epoch)
            s.bytes += bytes - freed
            return newSecond
        }
        if newSecond { dropIdleAnswers(before: second - 1) }
    }

    /// Drops the answers other loops keep from before `second` (a loop no longer asked keeps its
    /// last second's until it is asked again); a loop that holds its lock now is skipped, not
    /// waited for, and the answers are released after its lock. At most once a second per loop.
    private func dropIdleAnswers(before second: Int64) {
        let dropped = state.forEachOther { s -> [Key: Recent] in
            var taken: [Key: Recent] = [:]
            if s.second < second, !s.answers.isEmpty {
                swap(&taken, &s.answers)
                s.bytes = 0
            }
            return taken
        }
        _ = dropped
    }

    /// The head of a GET's answer whose bytes are in memory, written as NIO's response encoder
    /// writes it: status line, each header as `name: value`, a blank line. The object version's
    /// headers, first in the list, are copied as the header cache keeps them on the wire.
    static func wireHead(of answer: PipelineDownloads.Answer) -> ByteBuffer? {
        guard case .bytes = answer.body, answer.head.version == .http1_1 else { return nil }
        let head = answer.head
        let version = answer.versionFields
        var out = ByteBuffer()
        out.reserveCapacity(160 + (version?.wire.readableBytes ?? 480))
        if head.status == .ok {
            out.writeStaticString("HTTP/1.1 200 OK\r\n")
        } else {
            out.writeString("HTTP/1.1 \(head.status.code) \(head.status.reasonPhrase)\r\n")
        }
        if let version {
            out.writeImmutableBuffer(version.wire)
            ObjectHeaderCache.write(head.headers.dropFirst(version.count), to: &out)
        } else {
            ObjectHeaderCache.write(head.headers, to: &out)
        }
        out.writeStaticString("\r\n")
        return out
    }
}
