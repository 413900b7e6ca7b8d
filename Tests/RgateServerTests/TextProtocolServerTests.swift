import Foundation
import Glibc
import RgateClient
import Testing

/// One server shared by the tests that do not need their own configuration.
enum SharedServer {
    static let server: ServerProcess = try! ServerProcess()
    static var port: Int { server.textPort }
}

@Suite("Text protocol against a real server", .timeLimit(.minutes(2)))
struct TextProtocolServerTests {
    @Test func seedClientWorksUnchanged() throws {
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        python.arguments = ["python3", ServerProcess.seedDirectory + "/rpyclient.py", "-p", String(SharedServer.port)]
        let input = Pipe(), output = Pipe()
        python.standardInput = input
        python.standardOutput = output
        try python.run()
        input.fileHandleForWriting.write(Data("x <- c(10, 20)\nmean(x) + 1\n".utf8))
        try input.fileHandleForWriting.close()
        python.waitUntilExit()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(python.terminationStatus == 0)
        #expect(text.contains("R output:\n[1] 16\n"))
    }

    @Test func replyIsTheConsoleTranscript() throws {
        let c = try RawConnection(port: SharedServer.port)
        let text = c.evaluate("f <- function() { warning('careful'); invisible(1) }\nf()\nprint('p')\nmessage('m')\n1:3")
        // As at the console: a top-level call's warnings are shown right after it.
        #expect(text == "Warning message:\nIn f() : careful\n[1] \"p\"\nm\n[1] 1 2 3\n")
    }

    @Test func errorsComeBackAsRPrintsThem() throws {
        let c = try RawConnection(port: SharedServer.port)
        #expect(c.evaluate("g <- function() stop('boom'); g()") == "Error in g() : boom\n")
        #expect(c.evaluate("x y") == "Error: unexpected symbol in \"x y\"\n")
        #expect(c.evaluate("1 +")?.hasPrefix("Error: unexpected end of input") == true)
        // The connection survives all of them.
        #expect(c.evaluate("2 * 21") == "[1] 42\n")
    }

    @Test func severalRequestsOnOneConnectionShareTheSession() throws {
        let c = try RawConnection(port: SharedServer.port)
        #expect(c.evaluate("x <- 41") == "")
        #expect(c.evaluate("x + 1") == "[1] 42\n")
    }

    @Test func connectionsAreIsolatedSessions() throws {
        let a = try RawConnection(port: SharedServer.port)
        let b = try RawConnection(port: SharedServer.port)
        #expect(a.evaluate("secret <- 'a'; Sys.setenv(RGATE_T = 'a'); options(rgate.t = 1); set.seed(1); writeLines('x', 'f.txt'); Sys.getpid()") != nil)
        let other = b.evaluate("cat(exists('secret'), Sys.getenv('RGATE_T'), is.null(getOption('rgate.t')), file.exists('f.txt'), exists('.Random.seed'), '\\n')")
        #expect(other == "FALSE  TRUE FALSE FALSE \n")
        let pa = a.evaluate("cat(Sys.getpid(), tempdir(), getwd())")!, pb = b.evaluate("cat(Sys.getpid(), tempdir(), getwd())")!
        let fa = pa.split(separator: " "), fb = pb.split(separator: " ")
        #expect(fa[0] != fb[0])
        #expect(fa[1] != fb[1])
        #expect(fa[1] == fa[2]) // each session works in its own temp dir
    }

    @Test func eightClientsAtOnce() async throws {
        let port = SharedServer.port
        let results = try await withThrowingTaskGroup(of: (Int, String?).self) { group in
            for i in 0..<8 {
                group.addTask {
                    let c = try RawConnection(port: port)
                    return (i, c.evaluate("Sys.sleep(0.3); cat(\(i) * 10, Sys.getpid())"))
                }
            }
            var all: [(Int, String?)] = []
            for try await r in group { all.append(r) }
            return all
        }
        #expect(results.count == 8)
        var pids = Set<Substring>()
        for (i, text) in results {
            let fields = try #require(text).split(separator: " ")
            #expect(fields.first == Substring(String(i * 10)))
            pids.insert(fields[1])
        }
        #expect(pids.count == 8)
    }

    @Test func latin1BothWays() throws {
        let c = try RawConnection(port: SharedServer.port)
        // "é" is 0xE9 in latin1; R sees UTF-8, counts one character, and the reply is latin1 again.
        c.request([0x78, 0x3C, 0x2D, 0x27, 0xE9, 0x27, 0x3B, 0x63, 0x61, 0x74, 0x28, 0x78, 0x2C, 0x20, 0x6E, 0x63, 0x68, 0x61, 0x72, 0x28, 0x78, 0x29, 0x29], encoding: "latin1")
        #expect(c.reply() == [0xE9, 0x20, 0x31])
    }

    @Test func unknownEncodingGetsAClearError() throws {
        let c = try RawConnection(port: SharedServer.port)
        c.request("1", encoding: "KLINGON-8")
        #expect(c.replyText()?.contains("unknown encoding \"KLINGON-8\"") == true)
        #expect(c.evaluate("1") == "[1] 1\n")
    }

    @Test func invalidUTF8GetsAClearError() throws {
        let c = try RawConnection(port: SharedServer.port)
        c.request([0x31, 0x2B, 0xC3, 0x28])
        #expect(c.replyText()?.contains("not valid UTF-8 (first bad byte at offset 2)") == true)
        #expect(c.evaluate("1") == "[1] 1\n")
    }

    @Test func oversizedLengthIsRefusedBeforeBuffering() throws {
        let c = try RawConnection(port: SharedServer.port)
        var bytes = Array("UTF-8\n".utf8)
        withUnsafeBytes(of: UInt64(1) << 40) { bytes += $0 }
        c.send(bytes)
        #expect(c.replyText()?.contains("this server accepts at most") == true)
        #expect(c.isClosed())
    }

    @Test func garbageIsRefused() throws {
        let c = try RawConnection(port: SharedServer.port)
        c.send(Array(repeating: 0x41, count: 1000))
        #expect(c.replyText()?.contains("expected a line naming the encoding") == true)
        #expect(c.isClosed())
    }

    @Test func binaryEncodingLineIsRefused() throws {
        let c = try RawConnection(port: SharedServer.port)
        c.send([0x00, 0xFF, 0x10, 0x0A] + Array(repeating: 0, count: 8))
        #expect(c.replyText()?.contains("printable ASCII") == true)
    }

    @Test func truncatedRequestDoesNotDisturbOthers() throws {
        do {
            let c = try RawConnection(port: SharedServer.port)
            var bytes = Array("UTF-8\n".utf8)
            withUnsafeBytes(of: UInt64(100).littleEndian) { bytes += $0 }
            c.send(bytes + Array("1+".utf8))
            shutdown(c.fd, Int32(SHUT_WR))
            #expect(c.replyText()?.contains("incomplete request") == true)
        }
        let other = try RawConnection(port: SharedServer.port)
        #expect(other.evaluate("1") == "[1] 1\n")
    }

    @Test func qQuitEndsOnlyThatSession() throws {
        let c = try RawConnection(port: SharedServer.port)
        let text = c.evaluate("cat('bye\\n'); q('no')")
        #expect(text?.hasPrefix("bye\n") == true)
        #expect(text?.contains("called q()") == true)
        #expect(c.isClosed())
        let other = try RawConnection(port: SharedServer.port)
        #expect(other.evaluate("1") == "[1] 1\n")
    }

    @Test func killedWorkerGivesItsClientAnErrorAtOnce() throws {
        let c = try RawConnection(port: SharedServer.port)
        let pidText = try #require(c.evaluate("cat(Sys.getpid())"))
        let pid = try #require(Int32(pidText))
        c.request("Sys.sleep(30)")
        usleep(200_000)
        let start = Date()
        kill(pid, SIGKILL)
        let text = c.replyText()
        #expect(Date().timeIntervalSince(start) < 1.0)
        #expect(text?.contains("the R session was lost") == true)
        let other = try RawConnection(port: SharedServer.port)
        #expect(other.evaluate("1") == "[1] 1\n")
    }

    @Test func disconnectingClientStopsItsEvaluation() throws {
        var c: RawConnection? = try RawConnection(port: SharedServer.port)
        let pidText = try #require(c!.evaluate("cat(Sys.getpid())"))
        let pid = try #require(Int32(pidText))
        c!.request("Sys.sleep(60)")
        usleep(200_000)
        c = nil // closes the socket
        let deadline = Date().addingTimeInterval(3)
        while processExists(pid) && Date() < deadline { usleep(20_000) }
        #expect(!processExists(pid))
    }

    @Test func segfaultingCodeIsContained() throws {
        let c = try RawConnection(port: SharedServer.port)
        // A real SIGSEGV in the session process, as a crashing package would raise.
        c.request("tools::pskill(Sys.getpid(), 11L); Sys.sleep(5)")
        let text = c.replyText()
        #expect(text?.contains("the R session was lost") == true)
        #expect(text?.contains("crashed (signal 11)") == true)
        let other = try RawConnection(port: SharedServer.port)
        #expect(other.evaluate("1") == "[1] 1\n")
    }

    @Test func swiftClientReportsStatus() async throws {
        let ok = try await TextClient.evaluate("sum(1:10)", host: "127.0.0.1", port: SharedServer.port)
        #expect(ok.succeeded)
        #expect(ok.text == "[1] 55\n")
        let failed = try await TextClient.evaluate("stop('no')", host: "127.0.0.1", port: SharedServer.port)
        #expect(failed.status == "r-error")
        #expect(failed.text == "Error: no\n")
        let parse = try await TextClient.evaluate("(", host: "127.0.0.1", port: SharedServer.port)
        #expect(parse.status == "parse-incomplete")
        let several = try await TextClient.withConnection(host: "127.0.0.1", port: SharedServer.port) { connection in
            _ = try await connection.evaluate("y <- 2")
            return try await connection.evaluate("y ^ 10")
        }
        #expect(several.text == "[1] 1024\n")
    }
}
