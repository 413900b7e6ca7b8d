/// Where the encoder or decoder is in the tree of R values, rendered for errors in R's notation:
/// `$a` (a list element with a syntactic name), `[[2]]` (by position, 1-based, or when the name
/// is not syntactic: `[["my col"]]`) and `@names` (an attribute). The top-level value is `""`.
/// For example `$df@row.names` or `$a[[2]]`.
struct RJSONPath {
    enum Component {
        case element(Int, name: String?)
        case attribute(String)
    }

    private(set) var components: [Component] = []

    mutating func push(_ component: Component) { components.append(component) }
    mutating func pop() { components.removeLast() }

    var rendered: String {
        var text = ""
        for component in components {
            switch component {
            case .element(_, let name?) where !name.isEmpty:
                text += RLanguageText.isSyntacticName(name) ? "$\(name)" : "[[\(RLanguageText.quoted(name))]]"
            case .element(let index, _):
                text += "[[\(index + 1)]]"
            case .attribute(let name):
                text += RLanguageText.isSyntacticName(name) ? "@\(name)" : "@\(RLanguageText.backquoted(name))"
            }
        }
        return text
    }
}
