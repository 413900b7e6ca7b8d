import RgatePolicy
import Yams
#if canImport(Glibc)
import Glibc
#endif

/// The configuration file: YAML with top-level `key: value` settings and a `roles` mapping, read
/// with the line of every key so that errors can say `rgate.yaml:3: ...`.
extension ServerConfiguration {
    /// The top-level `key: scalar` pairs of a YAML document, with their lines, and the `roles`
    /// mapping (`name: {base, functions, source, eval_timeout, memory_limit, max_sessions, network}`).
    static func parseYAML(_ text: String, file: String) throws(ConfigurationError) -> (settings: [(String, String, Int)], roles: [Role]) {
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw ConfigurationError(origin: file, reason: "not valid YAML: \(error)")
        } catch {
            throw ConfigurationError(origin: file, reason: "not valid YAML: \(error)")
        }
        guard let node else { return ([], []) }
        guard case .mapping(let mapping) = node else {
            throw ConfigurationError(origin: "\(file):\(node.mark?.line ?? 1)", reason: "expected `key: value` lines at the top level")
        }
        var result: [(String, String, Int)] = []
        var roles: [Role] = []
        for (keyNode, valueNode) in mapping {
            let line = keyNode.mark?.line ?? 0
            guard case .scalar(let key) = keyNode else {
                throw ConfigurationError(origin: "\(file):\(line)", reason: "expected a plain key")
            }
            if key.string == "roles" {
                roles = try parseRoles(valueNode, file: file)
                continue
            }
            guard case .scalar(let value) = valueNode else {
                throw ConfigurationError(origin: "\(file):\(line)", reason: "\(key.string): expected a single value")
            }
            result.append((key.string, value.string, line))
        }
        return (result, roles)
    }

    private static func parseRoles(_ node: Node, file: String) throws(ConfigurationError) -> [Role] {
        guard case .mapping(let mapping) = node else {
            throw ConfigurationError(origin: "\(file):\(node.mark?.line ?? 0)", reason: "roles: expected a mapping of role names to settings")
        }
        var roles: [Role] = []
        for (nameNode, body) in mapping {
            let line = nameNode.mark?.line ?? 0
            guard case .scalar(let name) = nameNode else { throw ConfigurationError(origin: "\(file):\(line)", reason: "roles: expected a role name") }
            let origin = "\(file):\(line)"
            guard case .mapping(let fields) = body else {
                throw ConfigurationError(origin: origin, reason: "role \(name.string): expected settings (base, functions, source, ...)")
            }
            var base: Role.Base? = Role.Base(rawValue: name.string)
            var functions: [String] = [], sources: [String] = []
            var timeout: UInt32?, memory: UInt64?, sessions: Int?, network: Bool?
            var commands: Set<Role.CommandGroup>?
            for (fieldNode, valueNode) in fields {
                let fieldOrigin = "\(file):\(fieldNode.mark?.line ?? line)"
                guard case .scalar(let field) = fieldNode else { throw ConfigurationError(origin: fieldOrigin, reason: "expected a setting name") }
                func scalar() throws(ConfigurationError) -> String {
                    guard case .scalar(let v) = valueNode else { throw ConfigurationError(origin: fieldOrigin, reason: "\(field.string): expected a single value") }
                    return v.string
                }
                func list() throws(ConfigurationError) -> [String] {
                    switch valueNode {
                    case .scalar(let v): return [v.string]
                    case .sequence(let items):
                        var out: [String] = []
                        for item in items {
                            guard case .scalar(let v) = item else { throw ConfigurationError(origin: fieldOrigin, reason: "\(field.string): expected a list of names") }
                            out.append(v.string)
                        }
                        return out
                    default: throw ConfigurationError(origin: fieldOrigin, reason: "\(field.string): expected a list")
                    }
                }
                switch field.string {
                case "base":
                    let v = try scalar()
                    guard let b = Role.Base(rawValue: v) else {
                        throw ConfigurationError(origin: fieldOrigin, reason: "role \(name.string): base must be admin, analyst or caller, not \"\(v)\"")
                    }
                    base = b
                case "functions": functions = try list()
                case "source", "sources": sources = try list()
                case "eval_timeout": timeout = try SettingValue<Duration>.seconds.parse(try scalar(), key: field.string, origin: fieldOrigin).milliseconds
                case "memory_limit": memory = UInt64(try SettingValue<Int>.size.parse(try scalar(), key: field.string, origin: fieldOrigin))
                case "max_sessions": sessions = try SettingValue<Int>.count(minimum: 1).parse(try scalar(), key: field.string, origin: fieldOrigin)
                case "network": network = try SettingValue<Bool>.bool.parse(try scalar(), key: field.string, origin: fieldOrigin)
                case "commands":
                    var set = Set<Role.CommandGroup>()
                    for item in try list() where item != "none" {
                        guard let group = Role.CommandGroup(rawValue: item) else {
                            throw ConfigurationError(origin: fieldOrigin, reason: "commands: \"\(item)\" is not one of files, shutdown, detach, serialized, none")
                        }
                        set.insert(group)
                    }
                    commands = set
                default:
                    throw ConfigurationError(origin: fieldOrigin, reason: "role \(name.string): unknown setting \"\(field.string)\" (known: base, functions, source, eval_timeout, memory_limit, max_sessions, network, commands)")
                }
            }
            guard let base else {
                throw ConfigurationError(origin: origin, reason: "role \(name.string): needs a base (admin, analyst or caller)")
            }
            let role = Role(name: name.string, base: base, functions: functions, sources: sources, evalTimeoutMilliseconds: timeout, memoryLimitBytes: memory, maxSessions: sessions, network: network, commands: commands)
            do { try role.validate() } catch { throw ConfigurationError(origin: origin, reason: error.message) }
            for source in sources where access(source, R_OK) != 0 {
                throw ConfigurationError(origin: origin, reason: "role \(name.string): cannot read source file \(source)")
            }
            roles.append(role)
        }
        return roles
    }
}
