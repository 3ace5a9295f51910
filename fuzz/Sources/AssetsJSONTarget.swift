import DepotCore
@testable import DepotHTTP
import HTTPTypes
import Hummingbird
import NIOCore

/// The Assets API's JSON bodies, decoded as its controllers decode them (`Request.decodeJSON`,
/// with their size limits): `SignRequest` (`POST /v1/signed-urls`), `PresignRequest`
/// (`POST /v1/presigned-uploads`, with `FlexibleInt`), `Paths` (batch delete, revoke) and
/// `VisibilityChange` (`PATCH /v1/assets/…`), then the checks the service runs on their fields.
/// Input: the body, decoded as each of the four.
enum AssetsJSONTarget {
    static func run(_ input: FuzzInput) {
        let bytes = input.bytes
        @Sendable func request() -> Request {
            Request(
                head: HTTPRequest(method: .post, scheme: "http", authority: "depot", path: "/v1/signed-urls"),
                body: RequestBody(buffer: ByteBuffer(bytes: bytes)))
        }
        runToCompletion {
            if let sign = await accepted({ try await request().decodeJSON(SigningController.SignRequest.self, limit: JSONBodyLimit.batch) }) {
                for p in sign.paths.prefix(8) { _ = try? ObjectPath(p) }
                _ = sign.expiresIn?.value
            }
            if let presign = await accepted({ try await request().decodeJSON(SigningController.PresignRequest.self) }) {
                _ = try? StorageService.validate(jobId: presign.jobId)
                _ = try? StorageService.validate(suffix: presign.suffix ?? "")
                _ = try? MediaType.normalize(presign.contentType)
                _ = try? Visibility.parse(presign.visibility ?? "private")
                _ = presign.size.value
            }
            if let paths = await accepted({ try await request().decodeJSON(AssetsController.Paths.self, limit: JSONBodyLimit.batch) }) {
                for p in paths.paths.prefix(8) { _ = try? ObjectPath(p) }
            }
            if let change = await accepted({ try await request().decodeJSON(AssetsController.VisibilityChange.self) }) {
                _ = try? Visibility.parse(change.visibility)
            }
        }
    }

    /// The decoded body, or nil after checking that the refusal is a client error.
    static func accepted<T>(_ decode: () async throws -> T) async -> T? {
        do {
            return try await decode()
        } catch let e as StorageError {
            check(e.code == .invalidRequest || e.code == .payloadTooLarge, "decodeJSON threw \(e.code)")
        } catch {
            check(false, "decodeJSON threw \(error)")
        }
        return nil
    }
}
