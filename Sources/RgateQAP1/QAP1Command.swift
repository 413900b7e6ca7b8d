/// A QAP1 command code (the `cmd` field of a request header).
///
/// Unknown codes stay representable, so a server can answer them with `ERR_inv_cmd`.
public struct QAP1Command: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let login = QAP1Command(rawValue: 0x001)
    public static let voidEval = QAP1Command(rawValue: 0x002)
    public static let eval = QAP1Command(rawValue: 0x003)
    public static let shutdown = QAP1Command(rawValue: 0x004)
    public static let switchProtocol = QAP1Command(rawValue: 0x005)
    public static let keyRequest = QAP1Command(rawValue: 0x006)
    public static let secureLogin = QAP1Command(rawValue: 0x007)
    public static let ocCall = QAP1Command(rawValue: 0x00f)
    public static let openFile = QAP1Command(rawValue: 0x010)
    public static let createFile = QAP1Command(rawValue: 0x011)
    public static let closeFile = QAP1Command(rawValue: 0x012)
    public static let readFile = QAP1Command(rawValue: 0x013)
    public static let writeFile = QAP1Command(rawValue: 0x014)
    public static let removeFile = QAP1Command(rawValue: 0x015)
    public static let setSEXP = QAP1Command(rawValue: 0x020)
    public static let assignSEXP = QAP1Command(rawValue: 0x021)
    public static let detachSession = QAP1Command(rawValue: 0x030)
    public static let detachedVoidEval = QAP1Command(rawValue: 0x031)
    public static let attachSession = QAP1Command(rawValue: 0x032)
    public static let ctrlEval = QAP1Command(rawValue: 0x042)
    public static let ctrlShutdown = QAP1Command(rawValue: 0x044)
    public static let ctrlSource = QAP1Command(rawValue: 0x045)
    public static let setBufferSize = QAP1Command(rawValue: 0x081)
    public static let setEncoding = QAP1Command(rawValue: 0x082)
    public static let serEval = QAP1Command(rawValue: 0x0f5)
    public static let serAssign = QAP1Command(rawValue: 0x0f6)
    public static let serEEval = QAP1Command(rawValue: 0x0f7)

    /// Response codes (server → client).
    public static let response = QAP1Command(rawValue: 0x10000)
    public static let responseOK = QAP1Command(rawValue: 0x10001)
    public static let responseError = QAP1Command(rawValue: 0x10002)
    /// Out-of-band messages (server → client during an eval).
    public static let oobSend = QAP1Command(rawValue: 0x21000)
    public static let oobMessage = QAP1Command(rawValue: 0x22000)
    /// OCAP mode's first message ("RsOC").
    public static let ocInit = QAP1Command(rawValue: 0x434f_7352)

    /// Commands whose payload is raw bytes rather than DT parameters (`(cmd & 0xf0) == 0xf0`).
    public var hasRawPayload: Bool { rawValue & 0xf0 == 0xf0 && rawValue < 0x100 }

    public var description: String { "0x" + String(rawValue, radix: 16) }

    /// An error response with `status` in bits 24...30.
    public static func error(_ status: QAP1Status) -> QAP1Command {
        QAP1Command(rawValue: responseError.rawValue | (UInt32(status.rawValue & 0x7f) << 24))
    }

    /// The status of a response (bits 24...30).
    public var status: QAP1Status { QAP1Status(rawValue: UInt8((rawValue >> 24) & 0x7f)) }
    /// True for `RESP_OK` (any status bits).
    public var isOK: Bool { rawValue & 0xfffff == QAP1Command.responseOK.rawValue }
    /// True for `RESP_ERR`.
    public var isError: Bool { rawValue & 0xfffff == QAP1Command.responseError.rawValue }
    /// True for out-of-band messages.
    public var isOOB: Bool { rawValue & 0xf0000 == 0x20000 }
}

/// A QAP1 response status (the error code of `RESP_ERR`).
public struct QAP1Status: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// R's parse status: the code ends in an unfinished expression.
    public static let parseIncomplete = QAP1Status(rawValue: 2)
    /// R's parse status: the code is not valid R.
    public static let parseError = QAP1Status(rawValue: 3)
    /// R's parse status: end of file.
    public static let parseEOF = QAP1Status(rawValue: 4)
    /// An R evaluation error (Rserve's `-1 & 0x7f`).
    public static let rError = QAP1Status(rawValue: 0x7f)
    public static let authFailed = QAP1Status(rawValue: 0x41)
    public static let connectionBroken = QAP1Status(rawValue: 0x42)
    public static let invalidCommand = QAP1Status(rawValue: 0x43)
    public static let invalidParameter = QAP1Status(rawValue: 0x44)
    public static let rErrorUnused = QAP1Status(rawValue: 0x45)
    public static let ioError = QAP1Status(rawValue: 0x46)
    public static let notOpen = QAP1Status(rawValue: 0x47)
    public static let accessDenied = QAP1Status(rawValue: 0x48)
    public static let unsupportedCommand = QAP1Status(rawValue: 0x49)
    public static let unknownCommand = QAP1Status(rawValue: 0x4a)
    public static let dataOverflow = QAP1Status(rawValue: 0x4b)
    public static let objectTooBig = QAP1Status(rawValue: 0x4c)
    public static let outOfMemory = QAP1Status(rawValue: 0x4d)
    public static let controlClosed = QAP1Status(rawValue: 0x4e)
    public static let sessionBusy = QAP1Status(rawValue: 0x50)
    public static let detachFailed = QAP1Status(rawValue: 0x51)
    public static let disabled = QAP1Status(rawValue: 0x61)
    public static let unavailable = QAP1Status(rawValue: 0x62)
    public static let cryptError = QAP1Status(rawValue: 0x63)
    public static let securityClose = QAP1Status(rawValue: 0x64)

    public var description: String { "0x" + String(rawValue, radix: 16) }
}
