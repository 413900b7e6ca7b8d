import ArgumentParser
import Foundation
import RgateClient
#if canImport(Glibc)
import Glibc
#endif

struct Eval: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate R code on a server and print what R printed.",
        discussion: "Reads the code from standard input when CODE is absent. Exits 1 when R reported an error, 2 when the server could not be reached."
    )

    @Option(help: "Server address.")
    var host = "127.0.0.1"

    @Option(help: "Server port (default: 8080 for the text protocol, 6311 with --qap).")
    var port: Int?

    @Flag(help: "Use Rserve's QAP1 protocol instead of the text protocol; prints the returned value.")
    var qap = false

    @Option(help: "User name for a QAP1 login (the password is read from RGATE_PASSWORD).")
    var user: String?

    @Option(help: "Encoding to send the code in.")
    var encoding = "UTF-8"

    @Argument(help: "R code.")
    var code: String?

    func run() async throws {
        var source = code ?? ""
        if code == nil {
            while let line = readLine(strippingNewline: false) { source += line }
        }
        if qap {
            try await evaluateQAP(source)
            return
        }
        let result: TextClient.Result
        do {
            result = try await TextClient.evaluate(source, host: host, port: port ?? 8080, encoding: encoding)
        } catch {
            var err = StandardError()
            print("rgate eval: \(error)", to: &err)
            throw ExitCode(2)
        }
        print(result.text, terminator: "")
        if !result.succeeded { throw ExitCode(1) }
    }
}

extension Eval {
    func evaluateQAP(_ source: String) async throws {
        let password = ProcessInfo.processInfo.environment["RGATE_PASSWORD"]
        do {
            let value = try await QAP1Client.withConnection(host: host, port: port ?? 6311, user: user, password: password) { r in
                try await r.eval(source)
            }
            print(value.description)
        } catch let failure as QAP1Client.Failure {
            var err = StandardError()
            print(failure.message, to: &err)
            throw ExitCode(1)
        } catch {
            var err = StandardError()
            print("rgate eval: \(error)", to: &err)
            throw ExitCode(2)
        }
    }
}

struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        var bytes = Array(string.utf8)
        _ = bytes.withUnsafeMutableBytes { Glibc.write(2, $0.baseAddress, $0.count) }
    }
}
