@_spi(Testing) import DepotHTTP
import Testing

/// The current second's answers (`RecentAnswers`): which answer is kept for a target when the
/// front and the decoded path both keep one, under which epoch, in which second.
@Suite("The current second's answers")
struct RecentAnswersTests {
    /// An answer is never replaced by one read under an older epoch (a request that began before
    /// a write it did not see); the front's never replaces the decoded path's of the same epoch;
    /// the decoded path's does, and so does any of a later epoch.
    @Test func anAnswerOfALaterEpochIsNeverReplacedByAnOlderOne() {
        let answers = RecentAnswersProbe()
        let target = "/storage/v1/object/sign/assets/a.png?token=t"
        answers.keepDecoded("a", for: target, second: 10, epoch: 5)
        answers.keepFront("b", for: target, second: 10, epoch: 4)
        #expect(answers.kept(for: target, second: 10, epoch: 5) == "a")
        #expect(answers.kept(for: target, second: 10, epoch: 4) == nil)
        answers.keepDecoded("c", for: target, second: 10, epoch: 3)
        #expect(answers.kept(for: target, second: 10, epoch: 5) == "a")
        answers.keepFront("d", for: target, second: 10, epoch: 5)
        #expect(answers.kept(for: target, second: 10, epoch: 5) == "a")
        answers.keepDecoded("e", for: target, second: 10, epoch: 5)
        #expect(answers.kept(for: target, second: 10, epoch: 5) == "e")
        answers.keepFront("f", for: target, second: 10, epoch: 6)
        #expect(answers.kept(for: target, second: 10, epoch: 6) == "f")
        #expect(answers.kept(for: target, second: 10, epoch: 5) == nil)
    }

    /// Only the latest second's answers are found; a keep from an earlier second is dropped.
    @Test func onlyTheLatestSecondsAnswersAreFound() {
        let answers = RecentAnswersProbe()
        answers.keepDecoded("a", for: "/x", second: 10, epoch: 1)
        #expect(answers.kept(for: "/x", second: 11, epoch: 1) == nil)
        answers.keepDecoded("b", for: "/x", second: 11, epoch: 1)
        answers.keepDecoded("c", for: "/x", second: 10, epoch: 1)
        #expect(answers.kept(for: "/x", second: 11, epoch: 1) == "b")
        #expect(answers.kept(for: "/x", second: 10, epoch: 1) == nil)
    }

    /// Targets are compared as bytes: two canonically equivalent spellings are two URLs.
    @Test func targetsAreComparedAsBytes() {
        let answers = RecentAnswersProbe()
        let composed = "/storage/v1/object/public/assets/caf\u{E9}.png"
        let decomposed = "/storage/v1/object/public/assets/cafe\u{301}.png"
        #expect(composed == decomposed)  // as Swift compares strings
        answers.keepDecoded("a", for: composed, second: 1, epoch: 1)
        #expect(answers.kept(for: decomposed, second: 1, epoch: 1) == nil)
        #expect(answers.kept(for: composed, second: 1, epoch: 1) == "a")
        answers.keepDecoded("b", for: decomposed, second: 1, epoch: 1)
        #expect(answers.kept(for: composed, second: 1, epoch: 1) == "a")
        #expect(answers.kept(for: decomposed, second: 1, epoch: 1) == "b")
    }

    /// Each event loop keeps its own answers: one kept on this thread is not found on another
    /// (that answer is worked out again there), unless the two threads share a slot.
    @Test func eachThreadKeepsItsOwnAnswers() async {
        let answers = RecentAnswersProbe()
        var sawAnotherSlot = false
        for _ in 0..<16 {
            // Kept and found on this thread (no suspension between them), its slot noted.
            answers.keepDecoded("a", for: "/x", second: 10, epoch: 1)
            #expect(answers.kept(for: "/x", second: 10, epoch: 1) == "a")
            let mine = RecentAnswersProbe.slot
            let other = await answers.keptOnAnotherThread(for: "/x", second: 10, epoch: 1)
            #expect(other.tag == (other.slot == mine ? "a" : nil))
            if other.slot != mine {
                sawAnotherSlot = true
                break
            }
        }
        #expect(sawAnotherSlot)
    }
}
