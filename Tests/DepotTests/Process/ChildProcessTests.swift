import Testing

/// The test harness's own process spawning (Foundation's `Process` crashed the test run).
@Suite("Child processes of the tests")
struct ChildProcessTests {
    /// A child gets standard input, output and error only: a server started by one test never
    /// holds open a pipe another test reads to its end.
    @Test func aChildInheritsNoOtherDescriptor() async throws {
        let run = try ChildProcess.run(executable: "/bin/sh", arguments: ["-c", "ls /proc/$$/fd; exit 3"], environment: [:])
        #expect(run.status == 3)
        #expect(run.output.split(separator: "\n").sorted() == ["0", "1", "2"], "\(run.output)")
    }

    @Test func aSignalledChildReportsTheSignal() async throws {
        let run = try ChildProcess.run(executable: "/bin/sh", arguments: ["-c", "kill -9 $$"], environment: [:])
        #expect(run.status == 128 + 9)
    }
}
