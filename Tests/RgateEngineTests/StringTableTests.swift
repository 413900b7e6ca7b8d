@testable import RgateEngine
import Testing

/// The bulk string table (what QAP1 encodes strings from) reads CHARSXPs directly when R's
/// layout was verified at start; it must give exactly what the per-element accessor gives.
@Suite struct StringTableTests {
    static let vectors = [
        "c('plain', NA, '', 'NA', 'caf\\u00e9 \\u20ac', '\\u65e5\\u672c')",
        "c(iconv('caf\\u00e9', 'UTF-8', 'latin1'), 'x', iconv('\\u00fc', 'UTF-8', 'latin1'))",
        "{ b <- 'caf\\xe9'; Encoding(b) <- 'bytes'; c(b, 'ascii', NA) }",
        "{ s <- 'na\\u00efve'; c(enc2native(s), enc2utf8(s), s) }",
        "as.character(1:2000)",
        "paste0(rep(c('\\u00e9', 'a'), 500), 1:1000)",
        "character(0)",
        "rep(NA_character_, 3)",
    ]

    @Test("bulk table equals the per-element path", arguments: vectors)
    func bulkMatchesPerElement(code: String) async throws {
        let (bulk, single) = await SharedEngine.run { engine -> ([String?], [String?]) in
            let (evaluation, object) = Array(code.utf8).withUnsafeBytes {
                engine.evaluateKeepingValue(utf8: $0, options: EvaluationOptions(printVisible: false, convertValue: false))
            }
            guard evaluation.error == nil, let object else { return (["error: \(String(describing: evaluation.error))"], []) }
            let view = object.view
            let bulk = (try? view.withStrings { pointers, lengths in
                (0..<pointers.count).map { i -> String? in
                    pointers[i].map { String(decoding: UnsafeBufferPointer(start: $0, count: Int(lengths[i])), as: UTF8.self) }
                }
            }) ?? ["withStrings threw"]
            let single = (0..<view.count).map { i in view.withString(i) { $0.map { String(decoding: $0, as: UTF8.self) } } }
            return (bulk, single)
        }
        #expect(bulk == single)
        #expect(!bulk.isEmpty || code.contains("character(0)"))
    }

    @Test func thisRsStringLayoutIsReadDirectly() async {
        let direct = await SharedEngine.run { _ in REngine.readsStringHeadersDirectly }
        #expect(direct, "R's CHARSXP layout did not match: strings go through R's accessors (slower, still correct)")
    }

    @Test func latin1AndBytesComeOutAsUTF8AndEscapes() async throws {
        let strings = await SharedEngine.run { engine -> [String?] in
            let code = "{ b <- 'caf\\xe9'; Encoding(b) <- 'bytes'; c(iconv('caf\\u00e9', 'UTF-8', 'latin1'), b, NA) }"
            let (_, object) = Array(code.utf8).withUnsafeBytes {
                engine.evaluateKeepingValue(utf8: $0, options: EvaluationOptions(printVisible: false, convertValue: false))
            }
            guard let object else { return [] }
            return (try? object.view.withStrings { pointers, lengths in
                (0..<pointers.count).map { i in pointers[i].map { String(decoding: UnsafeBufferPointer(start: $0, count: Int(lengths[i])), as: UTF8.self) } }
            }) ?? []
        }
        #expect(strings == ["café", "caf\\xe9", nil])
    }
}
