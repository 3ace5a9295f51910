import ArgumentParser
import DepotHTTP

@main
struct DepotCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "depot",
        abstract: "Depot: a self-hosted, tenant-safe file storage service.",
        discussion: """
            Every option can also be set by the environment variable named in its help; a flag wins \
            over the environment, which wins over the default.
            """,
        version: DepotVersion.string,
        subcommands: [ServeCommand.self, TokenCommand.self, KeysCommand.self, GCCommand.self, JobsCommand.self, MigrateCommand.self],
        defaultSubcommand: nil)
}
