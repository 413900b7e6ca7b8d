import RgateModel
import Testing

@Suite("The RValue model without R")
struct RValueTests {
    @Test func naAndNaNAreDifferentAndNaNEqualsItself() {
        #expect(RValue.double([nil]) != .double([.nan]))
        #expect(RValue.double([.nan]) == .double([.nan]))
        #expect(RValue.double([0.0]) != .double([-0.0]), "doubles compare by bit pattern")
        #expect(RValue.complex([RComplex(.nan, 0)]) == .complex([RComplex(.nan, 0)]))
    }

    @Test func equalValuesHashEqually() {
        let a = RValue.double([.nan, 1], names: ["a", "b"])
        let b = RValue.double([.nan, 1], names: ["a", "b"])
        #expect(a == b)
        #expect(Set([a, b]).count == 1)
    }

    @Test func attributeOrderMatters() {
        let ab = RValue(.integer([1]), attributes: [
            RAttribute(name: "a", value: .null), RAttribute(name: "b", value: .null),
        ])
        let ba = RValue(.integer([1]), attributes: [
            RAttribute(name: "b", value: .null), RAttribute(name: "a", value: .null),
        ])
        #expect(ab != ba)
    }

    @Test func attributeSubscriptSetsReplacesAndRemoves() {
        var value = RValue.integer([1, 2])
        value[attribute: "names"] = .character(["a", "b"])
        value[attribute: "class"] = .character(["thing"])
        #expect(value.attributes.map(\.name) == ["names", "class"])
        value[attribute: "names"] = .character(["x", "y"])
        #expect(value.names == ["x", "y"])
        #expect(value.attributes.map(\.name) == ["names", "class"], "replacing keeps the position")
        value[attribute: "names"] = nil
        #expect(value.names == nil)
        #expect(value.classNames == ["thing"])
    }

    @Test func factorStringsAreLabels() {
        let f = RValue.factor(codes: [2, nil, 1, 3, 0], levels: ["a", "b"])
        #expect(f.classNames == ["factor"])
        #expect(f.strings == ["b", nil, "a", nil, nil], "NA and out-of-range codes have no label")
        #expect(RValue.integer([1]).strings == nil, "a plain integer vector has no labels")
    }

    @Test func doublesWidenNumericAndLogical() {
        #expect(RValue.integer([1, nil]).doubles == [1, nil])
        #expect(RValue.logical([true, false, nil]).doubles == [1, 0, nil])
        #expect(RValue.character(["1"]).doubles == nil)
    }

    @Test func dataFrameHasCompactRowNamesAndColumns() throws {
        let df = RValue.dataFrame([("a", .integer([1, 2, 3])), ("b", .character(["x", "y", nil]))])
        #expect(df.attributes.map(\.name) == ["names", "class", "row.names"])
        #expect(df[attribute: "row.names"] == .integer([nil, -3]))
        let columns = try #require(df.columns)
        #expect(columns.map(\.name) == ["a", "b"])
        #expect(columns[1].value == .character(["x", "y", nil]))
        #expect(RValue.list([.integer([1])], names: ["a"]).columns == nil, "a plain list is not a data frame")
    }

    @Test func matrixHasIntegerDim() {
        let m = RValue.matrix(.double([1, 2, 3, 4, 5, 6]), rows: 3, columns: 2)
        #expect(m[attribute: "dim"] == .integer([3, 2]))
        #expect(m.count == 6)
    }

    @Test func countsAndTypeNames() {
        #expect(RValue.null.count == 0)
        #expect(RValue.null.payload.typeName == "NULL")
        #expect(RValue(.opaque(type: "closure", description: "function (x) x")).count == 0)
        #expect(RValue(.opaque(type: "closure", description: "")).payload.typeName == "closure")
        #expect(RValue.raw([1, 2, 3]).payload.typeName == "raw")
        #expect(RValue.list([.null, .null]).count == 2)
    }
}
