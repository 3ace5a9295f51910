import Hummingbird
import NIOCore

/// `GET /openapi.json`: the OpenAPI description of both APIs (``OpenAPIDocument``), open to anyone.
struct OpenAPIController: Sendable {
    private static let body = ByteBuffer(string: OpenAPIDocument.json)

    func addRoutes(to router: Router<DepotRequestContext>) {
        router.get("/openapi.json") { _, _ in JSONResponse.make(json: Self.body) }
    }
}
