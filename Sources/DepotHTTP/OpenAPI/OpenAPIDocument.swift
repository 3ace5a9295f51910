/// The OpenAPI 3.1 description of both APIs, compiled into the binary (nothing to ship beside the
/// executable) and served at `GET /openapi.json`.
///
/// The file to edit is `docs/openapi.json`; `scripts/openapi-sync` writes it into the
/// `OpenAPIDocument+PartNN.swift` files (350 lines each at most), and `OpenAPITests` checks that the served bytes equal the file.
/// `scripts/api-check` checks the description against a running server with schemathesis.
enum OpenAPIDocument {
    /// The document without its final newline (``JSONResponse`` adds it, as to every JSON body).
    static let json = parts.joined(separator: "\n")
}
