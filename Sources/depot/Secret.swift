import Foundation

/// The project secret: `DEPOT_JWT_SECRET` when set; otherwise `<data-dir>/jwt-secret`, generated
/// (256 random bits, mode 0600) on first use and reused after.
enum ProjectSecret {
    static func load(dataDirectory: String) throws -> (secret: String, source: String) {
        if let env = ProcessInfo.processInfo.environment["DEPOT_JWT_SECRET"], !env.isEmpty {
            guard env.utf8.count >= 32 else {
                throw DepotFailure("DEPOT_JWT_SECRET must be at least 32 characters")
            }
            return (env, "DEPOT_JWT_SECRET")
        }
        let fm = FileManager.default
        try fm.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        let path = dataDirectory + "/jwt-secret"
        if let data = fm.contents(atPath: path), let s = String(data: data, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines), !s.isEmpty {
            return (s, path)
        }
        var g = SystemRandomNumberGenerator()
        let secret = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &g)) }.joined()
        guard fm.createFile(atPath: path, contents: Data((secret + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
            throw DepotFailure("cannot write \(path)")
        }
        return (secret, path + " (generated now)")
    }
}

/// A failure reported to the user as one readable line.
struct DepotFailure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}
