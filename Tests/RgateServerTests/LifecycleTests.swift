import Foundation
import Glibc
import Testing

@Suite("Limits and lifecycle, each on its own server", .timeLimit(.minutes(2)))
struct LifecycleTests {
    /// The pid of the process serving `c` and of its parent (the zygote).
    func pids(_ c: RawConnection) throws -> (session: Int32, zygote: Int32) {
        let text = try #require(c.evaluate("cat(Sys.getpid(), strsplit(readLines('/proc/self/stat'), ' ')[[1]][4])"))
        let f = text.split(separator: " ").compactMap { Int32($0) }
        return (f[0], f[1])
    }

    @Test func deadlineInterruptsRunawayCodeAndTheSessionGoesOn() throws {
        let server = try ServerProcess(["--eval-timeout", "1"])
        defer { server.stop() }
        let c = try RawConnection(port: server.textPort)
        _ = c.evaluate("keep <- 'still here'")
        let start = Date()
        let text = c.evaluate("repeat {}")
        #expect(Date().timeIntervalSince(start) < 4)
        #expect(text?.contains("ran longer than the limit of 1 s") == true)
        #expect(c.evaluate("keep") == "[1] \"still here\"\n")
    }

    @Test func memoryBombIsAnOrdinaryRError() throws {
        let server = try ServerProcess(["--memory-limit", "1G"])
        defer { server.stop() }
        let c = try RawConnection(port: server.textPort)
        #expect(c.evaluate("x <- numeric(5e8)") == "Error: cannot allocate vector of size 3.7 Gb\n")
        #expect(c.evaluate("length(numeric(1e7))") == "[1] 10000000\n")
    }

    @Test func outputFloodIsCutWithANote() throws {
        let server = try ServerProcess(["--max-output-size", "64K"])
        defer { server.stop() }
        let c = try RawConnection(port: server.textPort)
        let text = try #require(c.evaluate("for (i in 1:1e5) cat('0123456789')"))
        #expect(text.utf8.count < 70_000)
        #expect(text.contains("[rgate: output truncated at 65536 bytes]"))
        #expect(c.evaluate("1") == "[1] 1\n")
    }

    @Test func admissionControlRefusesBeyondMaxSessionsThenRecovers() throws {
        let server = try ServerProcess(["--max-sessions", "2", "--session-wait", "0.5"])
        defer { server.stop() }
        let a = try RawConnection(port: server.textPort)
        let b = try RawConnection(port: server.textPort)
        #expect(a.evaluate("1") == "[1] 1\n")
        #expect(b.evaluate("2") == "[1] 2\n")
        let start = Date()
        let c = try RawConnection(port: server.textPort)
        #expect(c.replyText()?.contains("the server is busy") == true)
        #expect(Date().timeIntervalSince(start) < 3)
        // A waiting connection gets the slot as soon as a session ends.
        let d = try RawConnection(port: server.textPort)
        d.request("3")
        shutdown(a.fd, Int32(SHUT_RDWR))
        #expect(d.replyText() == "[1] 3\n")
    }

    @Test func fortySimultaneousClientsOnASmallPool() async throws {
        let server = try ServerProcess(["--max-sessions", "8", "--workers", "2"])
        defer { server.stop() }
        let port = server.textPort
        let answers = await withTaskGroup(of: String?.self) { group in
            for i in 0..<40 {
                group.addTask { (try? RawConnection(port: port))?.evaluate("Sys.sleep(0.1); \(i)") }
            }
            var all: [String?] = []
            for await a in group { all.append(a) }
            return all
        }
        #expect(answers.count == 40)
        #expect(answers.allSatisfy { $0?.hasPrefix("[1] ") == true })
    }

    @Test func uninterruptibleCodeIsKilledAfterTheGraceAndTheClientIsTold() throws {
        let server = try ServerProcess(["--eval-timeout", "1", "--kill-grace", "0.5"])
        defer { server.stop() }
        let c = try RawConnection(port: server.textPort)
        let start = Date()
        // R cannot be interrupted here, like a long BLAS call or package C code.
        let text = c.evaluate("suspendInterrupts(Sys.sleep(30))")
        #expect(Date().timeIntervalSince(start) < 5)
        #expect(text?.contains("the R session was lost") == true)
        #expect(text?.contains("ran past its time limit") == true)
        let other = try RawConnection(port: server.textPort)
        #expect(other.evaluate("1") == "[1] 1\n")
    }

    @Test func aLongBLASCallIsKilledAfterTheGrace() throws {
        let server = try ServerProcess(["--eval-timeout", "1", "--kill-grace", "0.5"])
        defer { server.stop() }
        let c = try RawConnection(port: server.textPort)
        // One dgemm of two 3000x3000 matrices: ~54 GFLOP in R's reference BLAS (tens of
        // seconds here), which never checks for interrupts.
        let start = Date()
        let text = c.evaluate("x <- matrix(runif(9e6), 3000); y <- x %*% x; 'finished'")
        #expect(Date().timeIntervalSince(start) < 8)
        #expect(text?.contains("finished") == false)
        #expect(text?.contains("ran past its time limit") == true)
        #expect(try RawConnection(port: server.textPort).evaluate("1") == "[1] 1\n")
    }

    @Test func theZygoteEnforcesTheHardLimitOfEverySessionWithoutAThreadInAny() async throws {
        let server = try ServerProcess(["--eval-timeout", "1", "--kill-grace", "0.5"])
        defer { server.stop() }
        let c = try RawConnection(port: server.textPort)
        // One thread (R's), no watchdog; exactly one deadline page mapped (its own), and no
        // descriptor of the memfd that holds every session's page.
        #expect(c.evaluate("cat(grep('^Threads:', readLines('/proc/self/status'), value = TRUE))") == "Threads:\t1")
        #expect(c.evaluate("cat(sum(grepl('rgate-deadlines', readLines('/proc/self/maps'))))") == "1")
        let fds = try #require(c.evaluate("cat(Sys.readlink(list.files('/proc/self/fd', full.names = TRUE)), sep = '\\n')"))
        #expect(!fds.contains("rgate-deadlines"))
        #expect(!fds.isEmpty)
        // Two uninterruptible sessions at once: each killed on its own deadline, each told why,
        // while a third session without a request goes on.
        let idle = try RawConnection(port: server.textPort)
        #expect(idle.evaluate("1") == "[1] 1\n")
        let port = server.textPort
        // Each task times its own request (tasks share a small pool with other suites' blocking
        // tests, so a task may start late).
        let answers = await withTaskGroup(of: (text: String?, seconds: Double).self) { group in
            for _ in 0..<2 {
                group.addTask {
                    let c = try? RawConnection(port: port)
                    let start = Date()
                    let text = c?.evaluate("suspendInterrupts(Sys.sleep(30))")
                    return (text, Date().timeIntervalSince(start))
                }
            }
            var all: [(text: String?, seconds: Double)] = []
            for await a in group { all.append(a) }
            return all
        }
        #expect(answers.count == 2)
        for answer in answers {
            #expect(answer.text?.contains("ran past its time limit") == true)
            #expect(answer.seconds < 8) // 1.5 s and a 50 ms scan, not the 30 s asked for
        }
        #expect(idle.evaluate("2") == "[1] 2\n")
        // A request that ends in time disarms its deadline: the session stays past the limit.
        #expect(c.evaluate("Sys.sleep(0.3); 'ok'") == "[1] \"ok\"\n")
        usleep(2_000_000)
        #expect(c.evaluate("'still here'") == "[1] \"still here\"\n")
    }

    @Test(.enabled(if: getuid() == 0, "needs root to switch users"))
    func asRootEachSessionIsItsOwnUserWithAProcessLimit() throws {
        let server = try ServerProcess(["--max-processes", "8"])
        defer { server.stop() }
        let supervisor = server.process.processIdentifier
        let a = try RawConnection(port: server.textPort)
        let b = try RawConnection(port: server.textPort)
        let ua = try #require(a.evaluate("cat(system('id -u', intern = TRUE), tempdir())"))
        let ub = try #require(b.evaluate("cat(system('id -u', intern = TRUE), tempdir())"))
        let (uidA, dirA) = (ua.split(separator: " ")[0], ua.split(separator: " ")[1])
        #expect(uidA != ub.split(separator: " ")[0])
        #expect(uidA != "0")
        // Another session's files, the server process and root's files are out of reach.
        #expect(b.evaluate("cat(file.access('\(dirA)', 4), tools::pskill(\(supervisor), 0L), file.access('/root', 2))") == "-1 FALSE -1")
        // A fork bomb stops at the limit; the session goes on.
        let refused = try #require(a.evaluate("p <- lapply(1:20, function(i) try(parallel::mcparallel(Sys.sleep(2)), silent = TRUE)); cat(sum(sapply(p, inherits, 'try-error')))"))
        #expect((Int(refused) ?? 0) >= 10)
        #expect(a.evaluate("1") == "[1] 1\n")
    }

    @Test func idleConnectionsAreClosed() throws {
        let server = try ServerProcess(["--idle-timeout", "0.5"])
        defer { server.stop() }
        let c = try RawConnection(port: server.textPort)
        #expect(c.evaluate("1") == "[1] 1\n")
        let start = Date()
        #expect(c.isClosed())
        #expect(Date().timeIntervalSince(start) < 5)
    }

    @Test func sharedSessionModeKeepsOneR() throws {
        let server = try ServerProcess(["--shared-session"])
        defer { server.stop() }
        do {
            let a = try RawConnection(port: server.textPort)
            #expect(a.evaluate("counter <- 1") == "")
        }
        let b = try RawConnection(port: server.textPort)
        #expect(b.evaluate("counter + 1") == "[1] 2\n")
    }

    @Test func sigtermStopsEverythingAndLeavesNoProcess() throws {
        let server = try ServerProcess()
        let c = try RawConnection(port: server.textPort)
        let (session, zygote) = try pids(c)
        #expect(processExists(session))
        #expect(processExists(zygote))
        let status = server.stop()
        #expect(status == 0)
        usleep(100_000)
        #expect(!processExists(session))
        #expect(!processExists(zygote))
    }

    @Test func killedSupervisorLeavesNoOrphans() throws {
        let server = try ServerProcess()
        let c = try RawConnection(port: server.textPort)
        let (session, zygote) = try pids(c)
        kill(server.process.processIdentifier, SIGKILL)
        server.process.waitUntilExit()
        let deadline = Date().addingTimeInterval(3)
        while (processExists(session) || processExists(zygote)) && Date() < deadline { usleep(20_000) }
        #expect(!processExists(session))
        #expect(!processExists(zygote))
    }

    @Test func theZygoteOutlivesSIGTERMAndSIGINTSentToTheWholeGroup() throws {
        let server = try ServerProcess()
        defer { server.stop() }
        let c = try RawConnection(port: server.textPort)
        let (session, zygote) = try pids(c)
        // What a group-wide signal (systemd, docker stop, Ctrl-C) delivers to these processes.
        kill(zygote, SIGTERM)
        kill(zygote, SIGINT)
        kill(session, SIGINT)
        usleep(300_000)
        #expect(processExists(zygote))
        #expect(c.evaluate("1 + 1") == "[1] 2\n") // the session took no harm from SIGINT
        let other = try RawConnection(port: server.textPort)
        #expect(try pids(other).zygote == zygote) // served by the same zygote: nothing restarted
    }

    @Test func killedZygoteIsReplaced() throws {
        let server = try ServerProcess()
        defer { server.stop() }
        let c = try RawConnection(port: server.textPort)
        let (_, zygote) = try pids(c)
        kill(zygote, SIGKILL)
        let deadline = Date().addingTimeInterval(10)
        var answer: String?
        while answer != "[1] 1\n" && Date() < deadline {
            usleep(100_000)
            answer = (try? RawConnection(port: server.textPort))?.evaluate("1")
        }
        #expect(answer == "[1] 1\n")
    }
}
