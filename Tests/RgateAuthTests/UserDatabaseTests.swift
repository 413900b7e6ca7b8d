import RgateAuth
import Testing

@Suite("rgate users file")
struct UserDatabaseTests {
    @Test func addVerifyRemove() throws {
        var db = UserDatabase()
        try db.set("alice", role: "analyst", password: "correct horse", cost: .testing)
        try db.set("bob", role: "scorer", password: "pw", cost: .testing)
        #expect(db.verify(user: "alice", password: "correct horse") == "analyst")
        #expect(db.verify(user: "alice", password: "correct hors") == nil)
        #expect(db.verify(user: "alice", password: "") == nil)
        #expect(db.verify(user: "carol", password: "pw") == nil)
        #expect(db.verify(user: "bob", password: "pw") == "scorer")
        // The stored text holds no password, and reads back to the same users.
        let text = db.text
        #expect(!text.contains("correct horse"))
        #expect(text.contains("$scrypt$ln=10,r=8,p=1$"))
        let reread = try UserDatabase(text: text)
        #expect(reread == db)
        #expect(reread.verify(user: "bob", password: "pw") == "scorer")
        // Changing a password replaces the entry.
        try db.set("bob", role: "admin", password: "new", cost: .testing)
        #expect(db.users.count == 2)
        #expect(db.verify(user: "bob", password: "pw") == nil)
        #expect(db.verify(user: "bob", password: "new") == "admin")
        let removed = db.remove("bob")
        let removedAgain = db.remove("bob")
        #expect(removed)
        #expect(!removedAgain)
        #expect(db.verify(user: "bob", password: "new") == nil)
    }

    @Test func samePasswordDifferentSalt() throws {
        let a = try ScryptHash.make(password: "x", cost: .testing)
        let b = try ScryptHash.make(password: "x", cost: .testing)
        #expect(a.text != b.text)
        #expect(a.matches("x") && b.matches("x"))
        #expect(ScryptHash(a.text) == a)
    }

    @Test("malformed files are refused with the line", arguments: [
        "alice:analyst:secret\n",                    // a clear-text password
        "alice:analyst\n",                           // no hash
        "al ice:analyst:$scrypt$ln=10,r=8,p=1$AAAAAAAAAAA=$AAAAAAAAAAAAAAAAAAAAAA==\n",
        "alice:analyst:$scrypt$ln=40,r=8,p=1$AAAAAAAAAAA=$AAAAAAAAAAAAAAAAAAAAAA==\n", // absurd cost
    ])
    func malformed(_ text: String) {
        #expect(throws: AuthConfigurationError.self) { try UserDatabase(text: "# users\n" + text, source: "users") }
    }

    @Test func duplicateUsersAreRefused() throws {
        var db = UserDatabase()
        try db.set("alice", role: "analyst", password: "a", cost: .testing)
        let line = db.text.split(separator: "\n").last!
        #expect(throws: AuthConfigurationError.self) { try UserDatabase(text: "\(line)\n\(line)\n") }
    }

    @Test func names() {
        #expect(UserDatabase.isValidName("alice.smith@example-1_x"))
        #expect(!UserDatabase.isValidName(""))
        #expect(!UserDatabase.isValidName("a:b"))
        #expect(!UserDatabase.isValidName("a\nb"))
        #expect(!UserDatabase.isValidName(String(repeating: "a", count: 65)))
    }
}
