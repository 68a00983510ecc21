// Hashing of passwords that people choose (userpass users): PBKDF2-HMAC-SHA256 with a random
// salt and 210,000 rounds, so that a stolen database cannot be searched quickly. Access keys and
// tokens are random and use AccessKeyHasher instead.
import Crypto
import CryptoExtras
import Foundation

public enum PasswordHasher {
    /// The name of the scheme, kept next to each hash so that it can change later.
    public static let scheme = "pbkdf2-sha256-210000"
    static let rounds = 210_000

    public static func hash(password: String, salt: [UInt8]) -> [UInt8] {
        guard let key = try? KDF.Insecure.PBKDF2.deriveKey(from: Array(password.utf8), salt: salt, using: .sha256,
                                                           outputByteCount: 32, rounds: rounds) else {
            // Only a round count below the library's minimum fails; a hash that matches nothing.
            return []
        }
        return key.withUnsafeBytes { Array($0) }
    }

    /// Verifies a password against its stored hash, in constant time.
    public static func verify(password: String, salt: [UInt8], hash expected: [UInt8]) -> Bool {
        let actual = hash(password: password, salt: salt)
        return !actual.isEmpty && ConstantTime.equal(actual, expected)
    }
}
