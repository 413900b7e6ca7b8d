import RgateAuth
import Testing

@Suite struct RservePasswordFileTests {
    let file = try! RservePasswordFile(text: """
        # comment
        alice secret
        @bob/1000,1000 $5ebe2294ecd0e0f08eab7690d2a6ee69
        carol $e5e9fa1ba31ecd1ae84f75caaa474f3a663f05f4
        """)

    @Test func plainText() {
        #expect(file.verify(user: "alice", password: "secret", salt: nil))
        #expect(!file.verify(user: "alice", password: "Secret", salt: nil))
        #expect(!file.verify(user: "nobody", password: "secret", salt: nil))
    }

    @Test func md5AndSha1Entries() {
        #expect(file.verify(user: "bob", password: "secret", salt: nil))
        #expect(!file.verify(user: "bob", password: "$5ebe2294ecd0e0f08eab7690d2a6ee69", salt: nil))
        #expect(file.verify(user: "carol", password: "secret", salt: nil))
    }

    @Test func unixCryptWithTheAnnouncedSalt() throws {
        let hashed = try #require(RservePasswordFile.crypt("secret", salt: "c1"))
        #expect(hashed.count == 13)
        #expect(hashed.hasPrefix("c1"))
        #expect(file.verify(user: "alice", password: hashed, salt: "c1"))
        #expect(!file.verify(user: "alice", password: hashed, salt: "zz"))
        // Hashed entries cannot take a crypt login (as in Rserve).
        #expect(!file.verify(user: "bob", password: RservePasswordFile.crypt("secret", salt: "c1")!, salt: "c1"))
    }

    @Test func starAcceptsAnyone() throws {
        let any = try RservePasswordFile(text: "*\n")
        #expect(any.verify(user: "x", password: "y", salt: nil))
    }

    @Test func malformedLineIsRejectedWithItsNumber() {
        #expect(throws: AuthConfigurationError("pw:2: expected `user password`")) {
            try RservePasswordFile(text: "alice secret\nlonely\n", source: "pw")
        }
    }

    @Test func saltsUseCryptsAlphabet() {
        for _ in 0..<100 {
            let salt = RservePasswordFile.makeSalt()
            #expect(salt.count == 2)
            #expect(RservePasswordFile.crypt("x", salt: salt) != nil)
        }
    }
}
