public import RgateModel

/// "rjson": R values as JSON in the layout of `jsonlite::serializeJSON`, without its losses.
///
/// Any R client reads rgate's rjson with `jsonlite::unserializeJSON(body)`, and
/// `identical(x, jsonlite::unserializeJSON(body))` holds for every data value; rgate reads it
/// back (and reads `serializeJSON`'s own output) with ``decode(_:maximumDepth:)``.
///
/// ## Nodes
/// Every R value is an object `{"type": T, "attributes": {…}, "value": V}`, written in that
/// order without whitespace; `T` is R's `typeof()`:
///
/// | type | value |
/// |---|---|
/// | `"NULL"` | none: the node is `{"type":"NULL"}` |
/// | `"logical"` | `[true, false, null]`: `null` is NA |
/// | `"integer"` | `[1, -2, "NA"]` |
/// | `"double"` | `[1.5, 100, 1e16, "NA", "NaN", "Inf", "-Inf"]` |
/// | `"complex"` | `["1.5-2i", "0+1e-300i", "NaN+Infi", "NA"]`: strings `as.complex()` reads |
/// | `"character"` | `["a", null]`: `null` is NA, `"NA"` is the two-letter string |
/// | `"raw"` | `"AAEC"`: one base64 string (RFC 4648, padded, no line breaks) |
/// | `"list"`, `"pairlist"` | `[node, …]` |
/// | `"symbol"` | `["name"]`: the name itself (not deparsed, so `` `a b` `` survives) |
/// | `"language"` | `["f(x, y = 1L)"]`: the call as prefix-form R source (``RLanguageText``) |
///
/// `"attributes"` is an object from attribute name to node, in R's order (`names`, `dim`,
/// `dimnames`, `class`, `levels`, `tzone`, `row.names`, anything else); JSON objects keep
/// order, and `unserializeJSON` sets them in that order (R's `identical()` does not compare
/// it). So a factor is an integer node with `levels` and `class`, a Date a double node with
/// `class`, a POSIXct one with `class` and `tzone`, a matrix any vector with `dim` (and
/// `dimnames`), a data frame a list with `names`, `class` and `row.names`. Row names are
/// written as the value holds them: R's compact automatic form `["NA", -n]` (which R keeps
/// compact when it sets it) or a character vector; `serializeJSON` writes them expanded
/// (`[1, 2, …]`), which both readers also accept.
///
/// ## Numbers
/// Doubles are JSON numbers in the shortest form that reads back as the same double
/// (``ShortestDouble``: `0.1`, `0.30000000000000004`, `5e-324`, `1.7976931348623157e308`;
/// integral doubles without `.0`; negative zero as `-0.0`, which jsonlite keeps negative), so
/// they round-trip bit for bit, through `unserializeJSON` too (yajl reads numbers with
/// `strtod`), unlike `serializeJSON`'s 15 significant digits. Integers are plain JSON integers
/// in ±2147483647. Non-finite doubles and NA are strings, as in `serializeJSON`: NA (R's NA bit
/// pattern, `nil` in ``RValue``) is `"NA"`, any other NaN is `"NaN"` (other NaN payloads are
/// not kept), and `"Inf"`, `"-Inf"`.
///
/// Complex parts, and numbers inside calls, are read by R's own number reader (`as.complex`,
/// `parse`), which is not correctly rounded for short digit strings, so they are written with
/// 17 significant digits (`%.17g`: `1.5+2i`, `0.10000000000000001+0i`), which it reads exactly
/// (see ``RDouble``). A complex element with an NA part is `"NA"` (R's `is.na`), as RgateEngine
/// converts it.
///
/// ## Strings
/// UTF-8 JSON strings; `"`, `\` and control characters are escaped, everything else is
/// written as is. NA is `null`. One case `unserializeJSON` cannot read back: a character
/// vector whose elements are all `"NA"`, `"NaN"`, `"Inf"` or `"-Inf"` (or NA), such as
/// `c("NA", "Inf")`, is turned into a double vector by jsonlite's reader before `as.character`,
/// so R gets `c(NA, "Inf")`. rgate's decoder goes by the node's `"type": "character"` and
/// recreates the strings exactly; rjson for such a vector is the same as serializeJSON's.
///
/// ## What is not data
/// Symbols and calls are written (see above). A call whose constants R source cannot express
/// (a negative number, a vector of length 2, a function definition) is refused with
/// ``RJSONError/Code/unsupportedLanguage``. Closures, environments, S4 objects, external
/// pointers, builtins and other non-data objects (``RPayload/opaque(type:description:)``)
/// are refused with ``RJSONError/Code/unsupportedType``; so are such nodes in the input
/// (`"closure"`, `"environment"`, ...), which `serializeJSON` writes but rgate does not
/// recreate. Errors carry the path to the node, e.g. `$model@class` or `$a[[2]]`.
///
/// ## Reading
/// ``decode(_:maximumDepth:)`` is the boundary for untrusted bodies: strict JSON, at most
/// `maximumDepth` nested containers (two per level of R nesting), valid UTF-8 without
/// lone surrogates or NUL, numbers bounded, time and memory linear in the input (a node's
/// `"type"` must precede its `"value"`, as serializeJSON writes them; see ``RJSONReader``). It
/// also accepts what `unserializeJSON` accepts from jsonlite: `null` for NA in numeric vectors,
/// `"name"` for `"symbol"`, a missing `"attributes"`, expanded row names, base64 with line breaks.
public enum RJSON {
    /// The default nesting limit of ``encode(_:maximumDepth:)`` and ``decode(_:maximumDepth:)``.
    public static let defaultMaximumDepth = 512

    /// Writes `value` as rjson (UTF-8 JSON bytes).
    ///
    /// - Parameters:
    ///   - value: any data value; opaque objects and inexpressible calls throw.
    ///   - maximumDepth: the most nested JSON containers to write; deeper values throw
    ///     ``RJSONError/Code/tooDeep`` (so whatever this writes, ``decode(_:maximumDepth:)``
    ///     with the same limit reads).
    public static func encode(_ value: RValue, maximumDepth: Int = defaultMaximumDepth) throws(RJSONError) -> [UInt8] {
        var writer = RJSONWriter(maximumDepth: maximumDepth)
        try writer.node(value, depth: 1)
        return writer.out
    }

    /// Reads rjson (or `jsonlite::serializeJSON` output) into an R value.
    ///
    /// - Parameters:
    ///   - bytes: the whole JSON text, UTF-8.
    ///   - maximumDepth: the most nested JSON containers to accept. The reader recurses once
    ///     per level, bounded by this: at the default it needs about 100 KB of stack in release
    ///     builds (measured; unoptimised builds need about 2 MB).
    /// - Throws: ``RJSONError`` with a code, the byte offset and the node's path.
    public static func decode(_ bytes: some Collection<UInt8>, maximumDepth: Int = defaultMaximumDepth) throws(RJSONError) -> RValue {
        let result: Result<RValue, RJSONError>? = bytes.withContiguousStorageIfAvailable { buffer in
            var reader = RJSONReader(bytes: buffer, maximumDepth: maximumDepth)
            return Result { () throws(RJSONError) in try reader.document() }
        }
        if let result { return try result.get() }
        let copy = Array(bytes)
        return try copy.withUnsafeBufferPointer { buffer throws(RJSONError) in
            var reader = RJSONReader(bytes: buffer, maximumDepth: maximumDepth)
            return try reader.document()
        }
    }
}
