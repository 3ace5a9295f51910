import Foundation
import Logging
import Synchronization

/// Loggers for the in-process servers of the tests. Many tests break things on purpose (a blob
/// removed, a store made to fail) and the server rightly logs errors about them; those lines go to
/// one file per test run, named once on stderr, so a passing run's output holds only results.
/// `DEPOT_TEST_LOG=stderr` sends them to stderr instead.
enum TestLogging {
    static func logger(_ label: String, level: Logger.Level = .warning) -> Logger {
        var logger = Logger(label: label) { label -> any LogHandler in
            if ProcessInfo.processInfo.environment["DEPOT_TEST_LOG"] == "stderr" { return StreamLogHandler.standardError(label: label) }
            return FileLogHandler(label: label)
        }
        logger.logLevel = level
        return logger
    }

    /// `$TMPDIR/depot-test-server-<pid>.log`, opened (and announced) on first use.
    static let file: FileHandle? = {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent(
            "depot-test-server-\(ProcessInfo.processInfo.processIdentifier).log"
        ).path
        guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
            return nil
        }
        FileHandle.standardError.write(Data("(the in-process test servers log to \(path); DEPOT_TEST_LOG=stderr shows them here)\n".utf8))
        return handle
    }()

    static let lock = Mutex(())
}

/// One line per message, like `StreamLogHandler`, appended to ``TestLogging/file``.
struct FileLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let all = metadata.merging(event.metadata ?? [:]) { $1 }
        let fields = all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let line = "\(Date().formatted(.iso8601)) \(event.level) \(label): \(event.message) \(fields)\n"
        TestLogging.lock.withLock { _ in TestLogging.file?.write(Data(line.utf8)) }
    }
}
