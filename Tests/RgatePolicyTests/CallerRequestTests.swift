import RgatePolicy
import Testing

@Suite("The caller grammar")
struct CallerRequestTests {
    @Test("accepted calls and their canonical source", arguments: [
        ("score(x)", "score(x)"),
        ("score (x)", "score(x)"),
        ("  add(1, 2)\n", "add(1, 2)"),
        ("add(a = 1, b = -2.5e3)", "add(a = 1, b = -2.5e3)"),
        ("stats::median(v)", "stats::median(v)"),
        ("f(TRUE, FALSE, NULL, NA, Inf, NaN, NA_integer_)", "f(TRUE, FALSE, NULL, NA, Inf, NaN, NA_integer_)"),
        ("f(3L, 0x1F, .5, 2i)", "f(3L, 0x1F, .5, 2i)"),
        ("f('it''s')", ""), // two strings side by side: refused below, placeholder never matched
        ("f('a\"b')", "f(\"a\\\"b\")"),
        ("f(\"tab\\there\")", "f(\"tab\\there\")"),
        ("f(\"caf\\u00e9\")", "f(\"caf\\U{e9}\")"),
        ("f(\"é\")", "f(\"\\U{e9}\")"),
        ("f() # a comment", "f()"),
        ("f(\n  x,\n  y\n)", "f(x, y)"),
        ("geterrmessage()", "geterrmessage()"),
    ])
    func accepted(_ source: String, _ canonical: String) throws {
        if canonical.isEmpty {
            #expect(throws: CallerRequestError.self) { try CallerRequest(parsing: source) }
            return
        }
        let request = try CallerRequest(parsing: source)
        #expect(request.canonicalSource == canonical)
    }

    @Test func forms() throws {
        #expect(try CallerRequest(parsing: "x") == .variable("x"))
        #expect(try CallerRequest(parsing: "is.function(score)") == .isFunction("score"))
        let call = try CallerRequest(parsing: "add(a = x, 2)")
        #expect(call == .call(function: "add", arguments: [
            CallerArgument(label: "a", value: .variable("x")), CallerArgument(label: nil, value: .literal("2")),
        ]))
        #expect(call.variables == ["x"])
    }

    /// Escape attempts: each must be refused by the grammar itself (before any allow-list check).
    @Test("escape attempts are refused", arguments: [
        "system(\"id\") ; 1", "get(\"system\")(\"id\")", "do.call(\"system\", list(\"id\"))",
        "base:::system(\"id\")", ".Internal(system(\"id\", TRUE))", "eval(parse(text = \"system('id')\"))",
        "score(system(\"id\"))", "score(x <- 1)", "x <- 1", "x = 1", "1 -> x", "(score)(1)", "score[[1]]",
        "score$x", "score(1)(2)", "score(1); system(\"id\")", "score(1)\nsystem(\"id\")", "score(1) #\nsystem(\"id\")",
        "score(function() 1)", "score(quote(system(\"id\")))", "score(~x)", "y ~ x", "score(...)", "score(..1)",
        "`system`(\"id\")", "score(`x`)", "\u{0455}core(1)", "environment(score) <- globalenv()",
        "body(score) <- quote(system(\"id\"))", "score(if (TRUE) 1)", "score({1})", "score(x[1])", "score(x$a)",
        "score(-x)", "score(!x)", "score(1 + 1)", "score(1:3)", "score(x, )", "score(, x)", "score(a = )",
        "score(\"a\\0b\")", "score(\"\\x00\")", "score(\"unterminated)", "score(r\"(raw)\")", "score(@x)",
        "function(x) x", "repeat score(1)", "score(1) || system(\"id\")", "score(.x)", "score(.Last)",
        "score(1e)", "score(0x)", "score(1a)", "score('\\q')", "", "   ", "score(1", "score)", "stats::",
        "stats::median", "::median(1)", "score(x = 1, x = 2)xx", "score(\"\u{FFFD}\" x)",
    ])
    func escapeAttempt(_ source: String) {
        #expect(throws: CallerRequestError.self, "accepted: \(source)") { try CallerRequest(parsing: source) }
    }

    @Test func invalidUTF8IsRefused() {
        let bytes: [UInt8] = Array("score(\"".utf8) + [0xff, 0xfe] + Array("\")".utf8)
        // Swift's decoding replaces bad bytes with U+FFFD; the parser only ever sees valid text,
        // and R receives the canonical (escaped) form.
        let request = try? CallerRequest(parsing: String(decoding: bytes, as: UTF8.self))
        #expect(request?.canonicalSource == "score(\"\\U{fffd}\\U{fffd}\")")
    }

    @Test func functionReferences() {
        #expect(CallerRequest.isFunctionReference("score"))
        #expect(CallerRequest.isFunctionReference("stats::median"))
        #expect(CallerRequest.isFunctionReference(".hidden"))
        #expect(!CallerRequest.isFunctionReference("stats:::median"))
        #expect(!CallerRequest.isFunctionReference("a::b::c"))
        #expect(!CallerRequest.isFunctionReference("if"))
        #expect(!CallerRequest.isFunctionReference("x y"))
        #expect(!CallerRequest.isFunctionReference(""))
    }

    @Test func plainNames() {
        #expect(CallerRequest.isPlainName("arg_0_"))
        #expect(CallerRequest.isPlainName("kwarg_x_"))
        #expect(!CallerRequest.isPlainName(".Last"))
        #expect(!CallerRequest.isPlainName("TRUE"))
        #expect(!CallerRequest.isPlainName("names(x)"))
        #expect(!CallerRequest.isPlainName("_x"))
        #expect(!CallerRequest.isPlainName("1x"))
    }
}

@Suite("Roles and the policy")
struct PolicyTests {
    @Test func builtInRoles() {
        let policy = SecurityPolicy()
        #expect(policy.roles["admin"]?.mayShutDown == true)
        #expect(policy.roles["analyst"]?.mayShutDown == false)
        #expect(policy.roles["analyst"]?.runsArbitraryCode == true)
        #expect(policy.roles["caller"]?.runsArbitraryCode == false)
        #expect(policy.roles["caller"]?.mayUseFiles == false)
        #expect(policy.roles["caller"]?.network == false)
        #expect(policy.roles["admin"]?.network == true)
        #expect(policy.anonymousRole == "analyst")
    }

    @Test("dangerous functions cannot be allow-listed", arguments: ["eval", "base::eval", "do.call", "get", "system", "stats::lm", "match.fun", "parse"])
    func forbidden(_ name: String) {
        let role = Role(name: "r", base: .caller, functions: [name])
        #expect(throws: PolicyError.self) { try role.validate() }
    }

    @Test func validation() throws {
        try Role(name: "scorer", base: .caller, functions: ["score", "stats::median"]).validate()
        #expect(throws: PolicyError.self) { try Role(name: "a", base: .analyst, functions: ["score"]).validate() }
        #expect(throws: PolicyError.self) { try Role(name: "bad name", base: .caller).validate() }
        var policy = SecurityPolicy()
        policy.anonymousRole = nil
        #expect(throws: PolicyError.self) { try policy.validate() } // nobody could connect
        policy.usersFile = "/etc/rgate/users"
        try policy.validate()
        policy.anonymousRole = "nosuchrole"
        #expect(throws: PolicyError.self) { try policy.validate() }
    }

    @Test func jsonRoundTrip() throws {
        var policy = SecurityPolicy()
        policy.roles["scorer"] = Role(name: "scorer", base: .caller, functions: ["score"], sources: ["/srv/m.R"], evalTimeoutMilliseconds: 5000, memoryLimitBytes: 1 << 29, maxSessions: 3)
        policy.usersFile = "/etc/rgate/users"
        policy.anonymousRole = nil
        let decoded = try SecurityPolicy(json: policy.encoded())
        #expect(decoded == policy)
    }
}
