// PasswordHasher: PBKDF2 hashes of chosen passwords verify only with the same password and salt,
// and are not the fast hash of access keys.
import Testing
import TesseraCrypto

@Suite("Password hashing")
struct PasswordHasherTests {
    @Test("a password verifies against its hash and salt, and nothing else does")
    func verifies() {
        let salt = [UInt8](repeating: 3, count: 16), other = [UInt8](repeating: 4, count: 16)
        let h = PasswordHasher.hash(password: "correct horse", salt: salt)
        #expect(h.count == 32)
        #expect(PasswordHasher.verify(password: "correct horse", salt: salt, hash: h))
        #expect(!PasswordHasher.verify(password: "correct horsE", salt: salt, hash: h))
        #expect(!PasswordHasher.verify(password: "correct horse", salt: other, hash: h))
        #expect(!PasswordHasher.verify(password: "", salt: salt, hash: []))
        #expect(h != AccessKeyHasher.hash(key: "correct horse", salt: salt))
        #expect(PasswordHasher.hash(password: "correct horse", salt: other) != h)
    }
}
