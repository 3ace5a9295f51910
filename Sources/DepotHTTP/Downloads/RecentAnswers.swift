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
/// deleted, made private) ends its reuse at once. Holds at most `capacity` answers, all of one second.
///
/// An answer whose bytes are in memory may also keep its head as the bytes it is on the wire (as
/// NIO's encoder writes it), which ``RecentAnswerFront`` sends, with the body's bytes (shared with
/// the blob cache, never copied), before any HTTP decoding.
final class RecentAnswers: Sendable {
    private struct Recent {
        let answer: PipelineDownloads.Answer
        let wire: ByteBuffer?
        let epoch: UInt64
    }
    private struct State {
        var second: Int64 = .min
        var answers: [String: Recent] = [:]
    }
    private let state = Mutex(State())
    /// Enough for a gallery of several thousand images each asked for several times a second
    /// (1,024 kept a fifth of a 5,000-image gallery: the rest was worked out again on every
    /// request). An answer is ~2 KiB (its headers twice: as fields and on the wire; the body's
    /// bytes belong to the blob cache), so at most ~16 MiB.
    let capacity = 8192
    /// Whether answers keep their wire head (only those ``RecentAnswerFront`` may send).
    let keepsWireHeads: Bool

    init(keepsWireHeads: Bool) {
        self.keepsWireHeads = keepsWireHeads
    }

    func answer(to target: String, second: Int64, epoch: UInt64) -> PipelineDownloads.Answer? {
        kept(for: target, second: second, epoch: epoch)?.answer
    }

    /// The answer kept for `target` in `second` while the caches' epoch is `epoch`, and its wire
    /// form when it has one.
    func kept(for target: String, second: Int64, epoch: UInt64) -> (answer: PipelineDownloads.Answer, wire: ByteBuffer?)? {
        state.withLock { s in
            guard s.second == second, let recent = s.answers[target], recent.epoch == epoch else { return nil }
            return (recent.answer, recent.wire)
        }
    }

    /// Keeps `answer` (with its wire head, ``wireHead(of:)``, given or worked out here, when this
    /// cache keeps them).
    func keep(_ answer: PipelineDownloads.Answer, wire: ByteBuffer?? = nil, for target: String, second: Int64, epoch: UInt64) {
        let wire = keepsWireHeads ? wire ?? Self.wireHead(of: answer) : nil
        // The last second's answers, freed when this returns: after the lock, so thousands of
        // answers are not released while the other event loop waits for it.
        var released: [String: Recent] = [:]
        state.withLock { s in
            if s.second != second {
                // Only the latest second's answers are reusable: the rest goes.
                guard second > s.second else { return }
                s.second = second
                swap(&released, &s.answers)
                s.answers.reserveCapacity(released.count)
            }
            guard s.answers.count < capacity || s.answers[target] != nil else { return }
            s.answers[target] = Recent(answer: answer, wire: wire, epoch: epoch)
        }
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
