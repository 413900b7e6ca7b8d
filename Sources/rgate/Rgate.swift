import ArgumentParser

/// The `rgate` command line.
struct Rgate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rgate",
        abstract: "A fast, secure R evaluation server.",
        subcommands: [Serve.self, Eval.self, User.self, Worker.self]
    )
}

/// Listed for completeness; `main.swift` handles it before parsing.
struct Worker: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Internal: the R worker process started by `rgate serve`.",
        shouldDisplay: false
    )
}
