import NIOCore
import RgateEngine
import RgateIPC
import RgateText
#if canImport(Glibc)
import Glibc
#endif

/// Serves the seed's text protocol on one connection: requests in a row, each evaluated like
/// the R console, each answered with the console transcript.
struct TextSession {
    /// Role (the configuration's anonymous role: the text protocol has no login), limits, records.
    var runtime: SessionRuntime
    let client: ClientConnection
    private var cachedEncoding: TextEncoding = .utf8
    var engine: REngine { runtime.engine }
    var assignment: SessionAssignment { runtime.assignment }

    init(engine: REngine, client: ClientConnection, assignment: SessionAssignment, control: ControlSocket, access: SessionAccess? = nil) {
        runtime = SessionRuntime(engine: engine, assignment: assignment, control: control, access: access)
        self.client = client
    }

    mutating func serve() -> SessionEndReason {
        engine.cancelWhenPeerCloses(client.descriptor)
        defer {
            engine.cancelWhenPeerCloses(nil)
            runtime.sendTally()
        }
        var decoder = TextRequestDecoder(maximumCodeBytes: Int(clamping: assignment.maxRequestBytes))
        var buffer = ByteBuffer.fresh(capacity: 64 << 10)
        while true {
            // Decode everything already buffered before reading more.
            do {
                while let request = try decoder.decode(buffer: &buffer) {
                    guard handle(request) else { return .ioError }
                }
            } catch let error as TextProtocolError {
                reject(error, encoding: .utf8, status: false)
                return .protocolError
            } catch {
                return .protocolError
            }
            buffer.discardReadBytes()
            switch client.read(into: &buffer) {
            case .data:
                continue
            case .timedOut:
                return .idleTimeout
            case .failed:
                return .ioError
            case .eof:
                do {
                    if let request = try decoder.decodeLast(buffer: &buffer, seenEOF: true) {
                        _ = handle(request)
                    }
                } catch let error as TextProtocolError {
                    reject(error, encoding: .utf8, status: false)
                    WorkerLog.info("session \(assignment.sessionID): \(error)")
                    return .protocolError
                } catch {}
                return .clientClosed
            }
        }
    }

    /// Evaluates one request and writes its reply; false when the client cannot be written to.
    private mutating func handle(_ request: TextRequest) -> Bool {
        let encoding: TextEncoding
        if request.encodingName == cachedEncoding.canonicalName {
            encoding = cachedEncoding
        } else {
            do {
                encoding = try TextEncoding(named: request.encodingName)
                cachedEncoding = encoding
            } catch {
                return reject(error, encoding: .utf8, status: request.wantsStatus)
            }
        }
        let code: [UInt8]
        do {
            code = try encoding.decodeToUTF8(request.code)
        } catch {
            return reject(error, encoding: encoding, status: request.wantsStatus)
        }

        let options = runtime.options(printVisible: true)
        let client = self.client
        let wantsStatus = request.wantsStatus
        let control = runtime.control
        engine.onQuit = { [engine] _ in
            // q() from R: answer the request with what was printed, then end the session.
            var text = ""
            for chunk in engine.pendingOutput() { text += chunk.text }
            text += "[rgate: the R session ended because the code called q(); connect again for a new session]\n"
            if wantsStatus { text = TextReply.statusPrefix + "session-ended\n" + text }
            var out = ByteBuffer.fresh()
            TextReply(body: encoding.encode(text)).encode(into: &out)
            client.writeAll(out)
            shutdown(client.descriptor, Int32(SHUT_RDWR))
            try? control.send(.ended(reason: .quit))
        }
        let start = ContinuousClock.now
        let evaluation = code.withUnsafeBytes { bytes in
            // Roles that run any code need no value kept; a caller's gate returns one anyway.
            runtime.access?.isCaller == true ? runtime.evaluate(code: bytes, options: options).0
                : runtime.withHardLimit { engine.evaluate(utf8: bytes, options: options) }
        }
        code.withUnsafeBytes { runtime.report(command: "text", code: $0, evaluation: evaluation, since: start) }
        runtime.count(evaluation, since: start)
        engine.onQuit = nil

        var text = evaluation.transcript
        if wantsStatus {
            text = TextReply.statusPrefix + (evaluation.error?.code.rawValue ?? "ok") + "\n" + text
        }
        var out = ByteBuffer.fresh()
        TextReply(body: encoding.encode(text)).encode(into: &out)
        return client.writeAll(out)
    }

    /// Serves a few requests over a socketpair inside the zygote, so that the Swift side of a
    /// session (decoding, encodings, replies; lazy symbol binding and type metadata) is set up
    /// once before forking rather than in every session.
    static func warmUp(engine: REngine, full: Bool = true) {
        var requests = ByteBuffer()
        let samples = [("UTF-8", "1+1"), ("latin1", "'caf\u{e9}'"), ("UTF-8;status", "stop('x')")]
        for (encoding, code) in full ? samples : Array(samples.prefix(1)) {
            TextRequest(encodingName: encoding, options: [], code: ByteBuffer(string: code)).encode(into: &requests)
        }
        guard let (client, peer) = ClientConnection.warmUpPair(requests: requests) else { return }
        defer { close(client.descriptor); close(peer) }
        var session = TextSession(
            engine: engine, client: client, assignment: ClientConnection.warmUpAssignment(.text), control: ControlSocket(descriptor: -1))
        _ = session.serve()
    }

    /// Answers a request the server cannot evaluate; returns whether the reply was written.
    @discardableResult
    private func reject(_ error: TextProtocolError, encoding: TextEncoding, status: Bool) -> Bool {
        var text = "Error: rgate: \(error.message)\n"
        if status { text = TextReply.statusPrefix + "protocol-error\n" + text }
        var out = ByteBuffer.fresh()
        TextReply(body: encoding.encode(text)).encode(into: &out)
        return client.writeAll(out)
    }
}
