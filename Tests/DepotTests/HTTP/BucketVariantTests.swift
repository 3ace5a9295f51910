import DepotCore
import DepotImages
import Foundation
import HTTPTypes
import NIOCore
import Testing

/// Variants configured per bucket for the Storage API (`variants` in a bucket's settings): made
/// after an upload, carried by a move (and completed for the new bucket's sizes), deleted with
/// their image; bad settings refused with nothing changed.
@Suite("Per-bucket variants", .enabled(if: VipsImageRenderer.isBuiltIn, "built without libvips"))
struct BucketVariantTests {
    /// The names in a bucket.
    func names(_ env: TestEnvironment, _ bucket: String) async throws -> [String] {
        try await env.service.metadata.listObjects(in: bucket, prefix: "", after: nil, limit: 100).map(\.path.string)
    }

    /// Polls until the bucket holds exactly `expected` (10 s at most).
    func waitFor(_ expected: [String], in bucket: String, _ env: TestEnvironment) async throws -> [String] {
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            let now = try await names(env, bucket)
            if now == expected || ContinuousClock.now > deadline { return now }
            try await Task.sleep(for: .milliseconds(30))
        }
    }

    func pixels(_ env: TestEnvironment, _ bucket: String, _ name: String) async throws -> [Int]? {
        guard let record = try await env.service.metadata.object(at: ObjectKey(bucket: bucket, path: try ObjectPath(name))) else { return nil }
        var bytes: [UInt8] = []
        try await env.service.read(record) { bytes += $0.readableBytesView }
        return VipsImageRenderer.header(of: bytes).map { [$0.width, $0.height] }
    }

    @Test(arguments: VariantTests.Backend.testable)
    func aBucketsVariantsAreMadeMovedAndDeleted(_ backend: VariantTests.Backend) async throws {
        try await VariantTests().withWorkers(backend) { env, client in
            let service: HTTPFields = [.authorization: "Bearer \(try await env.token("svc", role: .serviceRole))"]
            let alice = try await env.auth("alice")
            let made = try await client.json(.post, "/storage/v1/bucket", headers: service, ["name": "emotes", "variants": ["112x112", "56x56"]])
            #expect(made.status == .ok, "\(made.text)")
            _ = try await client.json(.post, "/storage/v1/bucket", headers: service, ["name": "thumbs", "variants": ["32x32"]])
            let shown = try await client.request(.get, "/storage/v1/bucket/emotes", headers: service)
            #expect(shown.json["variants"] as? [String] == ["112x112", "56x56"])

            var headers = alice
            headers[.contentType] = "image/png"
            let up = try await client.request(
                .post, "/storage/v1/object/emotes/alice/e.png", headers: headers, body: ImageFixture.png(width: 300, height: 200))
            #expect(up.status == .ok)
            let all = ["alice/e.png", "alice/e_112x112.png", "alice/e_56x56.png"]
            #expect(try await waitFor(all, in: "emotes", env) == all)
            #expect(try await pixels(env, "emotes", "alice/e_112x112.png") == [112, 112])
            #expect(try await pixels(env, "emotes", "alice/e_56x56.png") == [56, 56])
            // A variant is an object like any other: readable by the image's tenant.
            let v = try await client.request(.get, "/storage/v1/object/authenticated/emotes/alice/e_56x56.png", headers: alice)
            #expect(v.status == .ok && v.headers[.contentType] == "image/png")

            // Renamed: the variants follow.
            let move = try await client.json(
                .post, "/storage/v1/object/move", headers: alice, ["bucketId": "emotes", "sourceKey": "alice/e.png", "destinationKey": "alice/f.png"])
            #expect(move.status == .ok)
            #expect(try await names(env, "emotes") == ["alice/f.png", "alice/f_112x112.png", "alice/f_56x56.png"])
            // To a bucket with other sizes: these come along, and its own are made.
            let across = try await client.json(
                .post, "/storage/v1/object/move", headers: alice,
                ["bucketId": "emotes", "sourceKey": "alice/f.png", "destinationKey": "alice/f.png", "destinationBucket": "thumbs"])
            #expect(across.status == .ok)
            #expect(try await names(env, "emotes").isEmpty)
            let moved = ["alice/f.png", "alice/f_112x112.png", "alice/f_32x32.png", "alice/f_56x56.png"]
            #expect(try await waitFor(moved, in: "thumbs", env) == moved)
            #expect(try await pixels(env, "thumbs", "alice/f_32x32.png") == [32, 32])

            // Moved onto a name whose variant is there already (the client's own): that one stays,
            // and the moved image's old variant does not linger where its image no longer is.
            _ = try await client.request(
                .post, "/storage/v1/object/thumbs/alice/own_32x32.png", headers: headers, body: ImageFixture.png(width: 5, height: 5))
            let onto = try await client.json(
                .post, "/storage/v1/object/move", headers: alice,
                ["bucketId": "thumbs", "sourceKey": "alice/f.png", "destinationKey": "alice/own.png"])
            #expect(onto.status == .ok)
            let after = ["alice/own.png", "alice/own_112x112.png", "alice/own_32x32.png", "alice/own_56x56.png"]  // all its sizes carried
            #expect(try await waitFor(after, in: "thumbs", env) == after)
            #expect(try await pixels(env, "thumbs", "alice/own_32x32.png") == [5, 5])
            _ = try await client.json(
                .post, "/storage/v1/object/move", headers: alice,
                ["bucketId": "thumbs", "sourceKey": "alice/own.png", "destinationKey": "alice/f.png"])
            #expect(try await waitFor(moved, in: "thumbs", env) == moved)

            // Deleted: its variants go with it (every size beside it, also those brought from emotes).
            #expect(try await client.request(.delete, "/storage/v1/object/thumbs/alice/f.png", headers: alice).status == .ok)
            #expect(try await names(env, "thumbs").isEmpty)

            // Bad settings: refused, nothing changed.
            for bad in [["0x10"], ["112x"], ["5000x10"], (1...9).map { "\($0)x\($0)" }] as [[String]] {
                let r = try await client.json(.put, "/storage/v1/bucket/emotes", headers: service, ["variants": bad])
                #expect(r.status == .badRequest && r.text.contains("variants"), "\(bad): \(r.text)")
            }
            let notList = try await client.json(.put, "/storage/v1/bucket/emotes", headers: service, ["variants": "112x112"])
            #expect(notList.status == .badRequest)
            #expect(
                try await client.request(.get, "/storage/v1/bucket/emotes", headers: service).json["variants"] as? [String] == ["112x112", "56x56"])
            // Cleared: later images get none.
            #expect(try await client.json(.put, "/storage/v1/bucket/emotes", headers: service, ["variants": []]).status == .ok)
            #expect(try await client.request(.get, "/storage/v1/bucket/emotes", headers: service).json["variants"] == nil)
            _ = try await client.request(
                .post, "/storage/v1/object/emotes/alice/g.png", headers: headers, body: ImageFixture.png(width: 20, height: 20))
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await names(env, "emotes") == ["alice/g.png"])
            let counts = try await env.service.jobs!.jobCounts()
            #expect(counts[.dead] == 0 && counts[.queued] == 0 && counts[.running] == 0)
        }
    }
}
