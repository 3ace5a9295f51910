/// A failure reported to the user as one readable line (a setting that cannot work, a backend
/// that refuses to start).
public struct DepotFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
