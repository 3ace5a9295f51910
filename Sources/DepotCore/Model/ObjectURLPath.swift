/// The paths of the URLs Depot hands out, in Supabase's shapes, written once: the service builds
/// URLs from them, the HTTP layer routes and reads requests by them.
public enum ObjectURLPath {
    /// `GET|HEAD …/sign/{bucket}/{path}?token=` — a signed download.
    public static let signed = "/storage/v1/object/sign/"
    /// `GET|HEAD …/public/{bucket}/{path}` — an object of a public bucket.
    public static let `public` = "/storage/v1/object/public/"
    /// `GET|HEAD …/authenticated/{bucket}/{path}` — a download with a JWT.
    public static let authenticated = "/storage/v1/object/authenticated/"
    /// `PUT …/upload/sign/{bucket}/{path}?token=` — an upload URL.
    public static let signedUpload = "/storage/v1/object/upload/sign/"
    /// `GET|HEAD …/render/image/sign/{bucket}/{path}?token=` — a signed transformed image.
    public static let renderSigned = "/storage/v1/render/image/sign/"
    /// `GET|HEAD …/render/image/public/{bucket}/{path}?width=…` — from a public bucket.
    public static let renderPublic = "/storage/v1/render/image/public/"
    /// `GET|HEAD …/render/image/authenticated/{bucket}/{path}?width=…` — with a JWT.
    public static let renderAuthenticated = "/storage/v1/render/image/authenticated/"

    /// `prefix` + `{bucket}/{path}`, percent-encoded as a URL path.
    public static func of(_ prefix: String, bucket: String, path: ObjectPath) -> String {
        prefix + PercentEncoding.encodeSegment(bucket) + "/" + path.percentEncoded
    }
}
