import DepotCore
import Foundation
import NIOCore
import Testing

/// The core's form upload (``StorageService/uploadAsset(as:form:declaration:query:)``), fed parts
/// directly: the HTTP layer only reads the form; ingesting, checking, naming and committing — and
/// discarding the blob on every error — happen here.
@Suite("Form uploads in the core")
struct UploadFormTests {
    struct Form: UploadForm {
        var parts: [UploadFormPart<AsyncStream<ByteBuffer>>]
        mutating func nextPart() async throws -> UploadFormPart<AsyncStream<ByteBuffer>>? {
            parts.isEmpty ? nil : parts.removeFirst()
        }
    }

    static func file(_ bytes: [UInt8], type: String? = "image/png") -> UploadFormPart<AsyncStream<ByteBuffer>> {
        .file(
            contentType: type,
            body: AsyncStream { c in
                c.yield(ByteBuffer(bytes: bytes))
                c.finish()
            })
    }

    @Test func fieldsBeforeOrAfterTheFile() async throws {
        let env = try await TestEnvironment.make()
        let alice = Identity(subject: "alice", role: .authenticated)
        let asset = try await env.service.uploadAsset(
            as: alice,
            form: Form(parts: [
                .field(name: "suffix", value: "_56x56"), Self.file(Fixture.png(100)), .field(name: "jobId", value: "j1"),
                .field(name: "visibility", value: "public"),
            ]),
            declaration: UploadDeclaration(contentType: "multipart/form-data; boundary=x"), query: AssetUploadQuery())
        #expect(asset.path.hasPrefix("alice/j1/") && asset.path.hasSuffix("_56x56.png") && asset.visibility == .public)
        // The query wins over a field.
        let fromQuery = try await env.service.uploadAsset(
            as: alice, form: Form(parts: [Self.file(Fixture.png(100)), .field(name: "jobId", value: "ignored")]),
            declaration: UploadDeclaration(), query: AssetUploadQuery(jobId: "j2"))
        #expect(fromQuery.path.hasPrefix("alice/j2/"))
    }

    @Test func everyRefusalLeavesNothing() async throws {
        let env = try await TestEnvironment.make()
        let alice = Identity(subject: "alice", role: .authenticated)
        let before = try await env.snapshot()
        let cases: [(Form, AssetUploadQuery, StorageError.Code)] = [
            (Form(parts: [.field(name: "jobId", value: "j")]), AssetUploadQuery(), .invalidRequest),  // no file
            (Form(parts: [Self.file(Fixture.png(10)), Self.file(Fixture.png(10))]), AssetUploadQuery(jobId: "j"), .invalidRequest),
            (Form(parts: [Self.file(Fixture.png(10))]), AssetUploadQuery(), .invalidRequest),  // no job id
            (Form(parts: [Self.file(Fixture.png(10)), .field(name: "visibility", value: "secret")]), AssetUploadQuery(jobId: "j"), .invalidRequest),
            (Form(parts: [Self.file(Fixture.png(10)), .field(name: "suffix", value: "../x")]), AssetUploadQuery(jobId: "j"), .invalidRequest),
            (Form(parts: [Self.file(Array("<html>".utf8), type: "text/html")]), AssetUploadQuery(jobId: "j"), .unsupportedMediaType),
        ]
        for (form, query, code) in cases {
            await #expect(throws: StorageError.self) {
                do {
                    _ = try await env.service.uploadAsset(as: alice, form: form, declaration: UploadDeclaration(), query: query)
                } catch let e as StorageError {
                    #expect(e.code == code, "\(e)")
                    throw e
                }
            }
        }
        #expect(try await env.snapshot() == before)
        // No tenant, no upload.
        await #expect(throws: StorageError.self) {
            _ = try await env.service.uploadAsset(
                as: Identity(subject: nil, role: .serviceRole), form: Form(parts: [Self.file(Fixture.png(10))]),
                declaration: UploadDeclaration(), query: AssetUploadQuery(jobId: "j"))
        }
    }
}
