import ArgumentParser
import Foundation
import RgateAuth

/// `rgate user add|list|remove`: manages the users file (scrypt hashes, never passwords).
struct User: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage rgate users (a users file the server reads at each login).",
        subcommands: [Add.self, List.self, Remove.self]
    )

    struct FileOption: ParsableArguments {
        @Option(name: .customLong("users-file"), help: "The users file (as users_file in the server's config). [$RGATE_USERS_FILE]")
        var usersFile: String?

        var path: String {
            get throws {
                if let usersFile { return usersFile }
                if let env = ProcessInfo.processInfo.environment["RGATE_USERS_FILE"], !env.isEmpty { return env }
                throw ValidationError("name the users file with --users-file (or RGATE_USERS_FILE)")
            }
        }

        func load() throws -> UserDatabase {
            let path = try path
            guard FileManager.default.fileExists(atPath: path) else { return UserDatabase() }
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw ValidationError("cannot read \(path)") }
            do { return try UserDatabase(text: text, source: path) } catch { throw ValidationError("\(error)") }
        }

        /// Replaces the file atomically (write a temporary file, then rename), mode 0600.
        func save(_ database: UserDatabase) throws {
            let path = try path
            let temporary = path + ".tmp.\(getpid())"
            let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw ValidationError("cannot write \(temporary): \(String(cString: strerror(errno)))") }
            let bytes = Array(database.text.utf8)
            let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            let synced = fsync(fd)
            close(fd)
            guard written == bytes.count, synced == 0, rename(temporary, path) == 0 else {
                unlink(temporary)
                throw ValidationError("cannot write \(path): \(String(cString: strerror(errno)))")
            }
        }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a user, or change a user's role and password.",
            discussion: "The password is read from standard input (one line), or asked for twice on a terminal."
        )

        @Argument(help: "The user name (letters, digits, . _ - @).")
        var name: String

        @Option(help: "The user's role: admin, analyst, caller or one defined in the config.")
        var role: String

        @OptionGroup var file: FileOption

        func run() throws {
            guard UserDatabase.isValidName(name) else { throw ValidationError("'\(name)' is not a valid user name (letters, digits, . _ - @; at most 64)") }
            guard !role.isEmpty, !role.contains(":"), !role.contains("\n") else { throw ValidationError("'\(role)' is not a valid role name") }
            let password = try readPassword()
            guard !password.isEmpty else { throw ValidationError("the password is empty") }
            var database = try file.load()
            let existed = database.user(named: name) != nil
            try database.set(name, role: role, password: password)
            try file.save(database)
            print("\(existed ? "updated" : "added") user \(name) (role \(role)) in \(try file.path)")
        }

        private func readPassword() throws -> String {
            if isatty(0) == 1 {
                guard let first = getpass("Password for \(name): ").map({ String(cString: $0) }),
                      let second = getpass("Again: ").map({ String(cString: $0) }) else { throw ValidationError("no password given") }
                guard first == second else { throw ValidationError("the passwords differ") }
                return first
            }
            guard var line = Swift.readLine(strippingNewline: true) else { throw ValidationError("no password on standard input") }
            if line.hasSuffix("\r") { line.removeLast() }
            return line
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List users and their roles (never their password hashes).")

        @OptionGroup var file: FileOption

        func run() throws {
            for user in try file.load().users { print("\(user.name)\t\(user.role)") }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a user.")

        @Argument(help: "The user name.")
        var name: String

        @OptionGroup var file: FileOption

        func run() throws {
            var database = try file.load()
            guard database.remove(name) else { throw ValidationError("no user named \(name) in \(try file.path)") }
            try file.save(database)
            print("removed user \(name)")
        }
    }
}
