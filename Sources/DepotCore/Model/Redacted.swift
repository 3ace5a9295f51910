/// A value that holds key material. Its description, debug description and mirror show its name
/// and what is safe to show, never the key: logs print values whole (ServiceLifecycle's debug lines
/// print each service with every stored property, down to a signing key's HMAC state).
public protocol Redacted: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// What may be shown, e.g. `KeyRing.Key(id: k1)`; the default is the type's name.
    var redactedDescription: String { get }
}

extension Redacted {
    public var redactedDescription: String { "\(Self.self)" }
    public var description: String { redactedDescription + " (key material redacted)" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }
}
