import Depot
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The project secret: `DEPOT_JWT_SECRET` when set; otherwise `<data-dir>/jwt-secret`, which only
/// `depot serve` creates (256 random bits, created with `O_EXCL` at mode 0600 in a 0700 data
/// directory) and every command reuses after. Commands that only read it (`token`, `keys`) refuse
/// to invent one: a secret made up in the wrong folder prints keys the running server rejects.
enum ProjectSecret {
    enum Mode {
        /// `depot serve`: create the data directory and the secret on first start.
        case createIfMissing
        /// Every other command: the secret must exist already.
        case mustExist
    }

    static func load(dataDirectory: String, mode: Mode) throws -> (secret: String, source: String) {
        if let env = ProcessInfo.processInfo.environment["DEPOT_JWT_SECRET"], !env.isEmpty {
            guard env.utf8.count >= 32 else {
                throw DepotFailure("DEPOT_JWT_SECRET must be at least 32 characters")
            }
            return (env, "DEPOT_JWT_SECRET")
        }
        let path = URL(fileURLWithPath: dataDirectory).appendingPathComponent("jwt-secret").standardizedFileURL.path
        if let existing = try read(path) { return (existing, path) }
        guard mode == .createIfMissing else {
            throw DepotFailure(
                """
                no project secret: DEPOT_JWT_SECRET is unset and \(path) does not exist.
                Give this command the server's data directory (--data-dir or DEPOT_DATA_DIR) or the \
                server's DEPOT_JWT_SECRET; `depot serve` creates the secret on its first start.
                """)
        }
        try DataDirectory.create(dataDirectory)
        var g = SystemRandomNumberGenerator()
        let secret = (0..<32).map { _ in UInt8.random(in: 0...255, using: &g) }.hexString
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if fd < 0 {
            // Another process created it between our read and open: use theirs.
            if errno == EEXIST, let existing = try read(path) { return (existing, path) }
            throw DepotFailure("cannot create \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        let bytes = Array((secret + "\n").utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count, fsync(fd) == 0 else {
            unlink(path)
            throw DepotFailure("cannot write \(path): \(String(cString: strerror(errno)))")
        }
        return (secret, path + " (generated now)")
    }

    private static func read(_ path: String) throws -> String? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        guard let s = String(data: data, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines), !s.isEmpty else {
            throw DepotFailure("\(path) is empty or not text; remove it to have `depot serve` generate a new secret")
        }
        return s
    }
}

/// The data directory: created with mode 0700 (blobs, the database and the secret are the
/// tenants' and the project's; other local users have no business there).
enum DataDirectory {
    static func create(_ path: String) throws {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        if fm.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw DepotFailure("\(path) exists and is not a directory") }
            return
        }
        try fm.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }

    /// One line per file of `path` that other local users may read (a data directory made before
    /// Depot set modes, or by hand): the directory should be 0700, the secret 0600.
    static func looseModes(_ path: String) -> [String] {
        let fm = FileManager.default
        var lines: [String] = []
        for (file, wanted) in [(path, "0700"), (path + "/jwt-secret", "0600")] {
            guard let mode = (try? fm.attributesOfItem(atPath: file))?[.posixPermissions] as? Int, mode & 0o077 != 0 else { continue }
            lines.append("\(file) has mode \(String(mode, radix: 8)): other local users can read (or change) it; `chmod \(wanted) \(file)`")
        }
        return lines
    }
}
