import ArgumentParser
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

    @Option(help: "Server's text-protocol port.")
    var port = 8080

    @Option(help: "Encoding to send the code in.")
    var encoding = "UTF-8"

    @Argument(help: "R code.")
    var code: String?

    func run() async throws {
        var source = code ?? ""
        if code == nil {
            while let line = readLine(strippingNewline: false) { source += line }
        }
        let result: TextClient.Result
        do {
            result = try await TextClient.evaluate(source, host: host, port: port, encoding: encoding)
        } catch {
            var err = StandardError()
            print("rgate eval: \(error)", to: &err)
            throw ExitCode(2)
        }
        print(result.text, terminator: "")
        if !result.succeeded { throw ExitCode(1) }
    }
}

struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        var bytes = Array(string.utf8)
        _ = bytes.withUnsafeMutableBytes { Glibc.write(2, $0.baseAddress, $0.count) }
    }
}
