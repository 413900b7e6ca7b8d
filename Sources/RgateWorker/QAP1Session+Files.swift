import NIOCore
import RgateQAP1
#if canImport(Glibc)
import Glibc
#endif

/// Files in the session's own directory (one open file at a time, ``QAP1Session/openFile``).
extension QAP1Session {
    func file(_ command: QAP1Command, _ parameters: [QAP1Parameter]) -> Bool {
        switch command {
        case .openFile, .createFile, .removeFile:
            guard let name = parameters.first?.stringValue, !name.isEmpty else { return respond(error: .invalidParameter) }
            guard !name.hasPrefix("/"), !name.split(separator: "/").contains("..") else { return respond(error: .accessDenied) }
            if command == .removeFile { return unlink(name) == 0 ? respondOK() : respond(error: .ioError) }
            if let openFile { fclose(openFile); self.openFile = nil }
            guard let f = fopen(name, command == .openFile ? "rb" : "wb") else { return respond(error: .ioError) }
            openFile = f
            return respondOK()
        case .closeFile:
            if let openFile { fclose(openFile); self.openFile = nil }
            return respondOK()
        case .readFile:
            guard let openFile else { return respond(error: .notOpen) }
            var size = 32768
            if case .int(let n)? = parameters.first, n > 0 { size = Int(min(n, Int32(assignment.maxRequestBytes > Int32.max ? UInt64(Int32.max) : assignment.maxRequestBytes))) }
            var data = [UInt8](repeating: 0, count: size)
            let n = fread(&data, 1, size, openFile)
            return respond(.responseOK, payload: ByteBuffer(bytes: data[0..<n]))
        case .writeFile:
            guard let openFile else { return respond(error: .notOpen) }
            guard case .bytes(let body)? = parameters.first else { return respond(error: .invalidParameter) }
            let bytes = Array(body.readableBytesView)
            return fwrite(bytes, 1, bytes.count, openFile) == bytes.count ? respondOK() : respond(error: .ioError)
        default:
            return respond(error: .invalidCommand)
        }
    }
}
