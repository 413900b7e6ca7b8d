import NIOCore
import RgateQAP1
import Testing

@Suite("Message header, commands and the identification string")
struct HeaderTests {
    func bytes(_ header: QAP1Header) -> [UInt8] {
        var b = ByteBuffer()
        header.encode(into: &b)
        return Array(b.readableBytesView)
    }

    @Test("Header round trip", arguments: [
        QAP1Header(command: .eval, length: 0),
        QAP1Header(command: .responseOK, length: 12, messageID: 0),
        QAP1Header(command: .voidEval, length: 0xffff_ffff, messageID: 1234),
        QAP1Header(command: .responseOK, length: 0x1_0000_0000),
        QAP1Header(command: .responseOK, length: 0x0000_0005_8765_4321, messageID: 0xdead_beef),
        QAP1Header(command: QAP1Command(rawValue: 0xffff_ffff), length: .max, messageID: .max),
    ])
    func roundTrip(header: QAP1Header) {
        let encoded = bytes(header)
        #expect(encoded.count == QAP1Header.size)
        #expect(QAP1Header.peek(buffer(encoded)) == header)
    }

    @Test("A >4 GiB length is split into len (low 32 bits) and res (high 32 bits)")
    func largeLength() {
        let header = QAP1Header(command: .responseOK, length: 0x0000_0005_8765_4321)
        #expect(bytes(header) == hex("01 00 01 00 | 21 43 65 87 | 00 00 00 00 | 05 00 00 00"))
        #expect(QAP1Header.peek(buffer(hex("03 00 00 00 | 00 00 00 00 | 00 00 00 00 | 01 00 00 00")))?.length == 1 << 32)
    }

    @Test("peek needs 16 bytes, does not consume, and reads at the reader index")
    func peek() {
        #expect(QAP1Header.peek(buffer([UInt8](repeating: 0, count: 15))) == nil)
        var b = ByteBuffer(bytes: [0xff, 0xff] + hex("03 00 00 00 08 00 00 00 00 00 00 00 00 00 00 00"))
        b.moveReaderIndex(forwardBy: 2)
        #expect(QAP1Header.peek(b) == QAP1Header(command: .eval, length: 8))
        #expect(b.readableBytes == 16)
    }

    @Test("Live response headers from Rserve")
    func liveHeaders() {
        #expect(bytes(QAP1Header(command: .error(.rError), length: 0)) == hex("02 00 01 7f") + [UInt8](repeating: 0, count: 12))
        #expect(bytes(QAP1Header(command: .error(.parseIncomplete), length: 0)).prefix(4).elementsEqual(hex("02 00 01 02")))
        #expect(bytes(QAP1Header(command: .error(.parseError), length: 0)).prefix(4).elementsEqual(hex("02 00 01 03")))
        #expect(bytes(QAP1Header(command: .error(.invalidCommand), length: 0)).prefix(4).elementsEqual(hex("02 00 01 43")))
        #expect(bytes(QAP1Header(command: .error(.invalidParameter), length: 0)).prefix(4).elementsEqual(hex("02 00 01 44")))
        #expect(bytes(QAP1Header(command: .responseOK, length: 0)) == hex("01 00 01 00") + [UInt8](repeating: 0, count: 12))
    }

    @Test func errorCommandStatusBits() {
        #expect(QAP1Command.error(.rError).rawValue == 0x7f01_0002)
        #expect(QAP1Command.error(.invalidParameter).rawValue == 0x4401_0002)
        #expect(QAP1Command.error(QAP1Status(rawValue: 0xff)).rawValue == 0x7f01_0002, "the status is 7 bits")
        let error = QAP1Command(rawValue: 0x4c01_0002)
        #expect(error.isError && !error.isOK && !error.isOOB)
        #expect(error.status == .objectTooBig)
        #expect(QAP1Command.responseOK.isOK && !QAP1Command.responseOK.isError)
        #expect(QAP1Command.responseOK.status == QAP1Status(rawValue: 0))
        #expect(QAP1Command.oobSend.isOOB && QAP1Command.oobMessage.isOOB)
        #expect(QAP1Command(rawValue: 0x21000 | 0x10000).isOOB == false, "Rserve 1.7's CMD_RESP|OOB is masked by 0xf0000")
        #expect(QAP1Command.ocInit.rawValue.littleEndianBytes == Array("RsOC".utf8))
    }

    @Test("Commands with raw payloads are (cmd & 0xf0) == 0xf0", arguments: [
        (QAP1Command.serEval, true), (.serAssign, true), (.serEEval, true), (QAP1Command(rawValue: 0xf0), true),
        (.eval, false), (.voidEval, false), (.setEncoding, false), (.setBufferSize, false), (.login, false),
    ])
    func rawPayload(command: QAP1Command, raw: Bool) {
        #expect(command.hasRawPayload == raw)
    }

    @Test("The default identification")
    func defaultIdentification() {
        let expected = hex("52 73 72 76 30 31 30 33 51 41 50 31 0d 0a 0d 0a 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 0d 0a")
        #expect(QAP1Identification.make() == expected)
        #expect(QAP1Identification.make() == Array("Rsrv0103QAP1\r\n\r\n--------------\r\n".utf8))
    }

    @Test("Identification with auth (crypt, salt c1) and plaintext")
    func authIdentification() {
        let id = QAP1Identification.make(authRequired: true, plainText: true, salt: "c1")
        #expect(id == Array("Rsrv0103QAP1\r\n\r\nARucKc1 ARpt--\r\n".utf8))
        #expect(Array(id.suffix(16)) == hex("41 52 75 63 4b 63 31 20 41 52 70 74 2d 2d 0d 0a"))
        #expect(QAP1Identification.make(authRequired: true, plainText: false, salt: "c1") == Array("Rsrv0103QAP1\r\n\r\nARucKc1 ------\r\n".utf8))
    }

    @Test("Every identification is 32 bytes with Rsrv0103QAP1 first", arguments: [false, true], [false, true])
    func identificationShape(auth: Bool, tls: Bool) {
        for salt in [nil, "c1", "./"] as [String?] {
            let id = QAP1Identification.make(authRequired: auth, plainText: true, salt: salt, tls: tls)
            #expect(id.count == 32)
            #expect(Array(id.prefix(16)) == Array("Rsrv0103QAP1\r\n\r\n".utf8))
            if !tls { #expect(Array(id.suffix(2)) == [0x0d, 0x0a]) }
            #expect(tls == (0..<29).contains { Array(id[$0..<$0 + 4]) == Array("TLS\n".utf8) })
        }
    }
}

extension UInt32 {
    fileprivate var littleEndianBytes: [UInt8] { le32(self) }
}
