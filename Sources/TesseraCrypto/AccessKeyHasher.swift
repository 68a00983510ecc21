// Hashing of access keys and tokens for storage. Both are high-entropy random strings, so a
// salted SHA-256 (keys) or plain SHA-256 (tokens, looked up by hash) is sufficient.
import Crypto
import Foundation

public enum AccessKeyHasher {
    public static func hash(key: String, salt: [UInt8]) -> [UInt8] {
        var h = SHA256()
        h.update(data: salt)
        h.update(data: Array(key.utf8))
        return Array(h.finalize())
    }

    /// Verifies an access key against its stored hash, in constant time.
    public static func verify(key: String, salt: [UInt8], hash expected: [UInt8]) -> Bool {
        ConstantTime.equal(hash(key: key, salt: salt), expected)
    }

    /// The lookup key of a token: hex SHA-256 of its text.
    public static func tokenHash(_ token: String) -> String {
        SHA256.hash(data: Array(token.utf8)).hexString
    }
}
