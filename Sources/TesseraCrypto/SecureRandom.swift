// Cryptographically secure random bytes and identifiers (access ids, keys, tokens).
import Crypto
import Foundation
import TesseraCore

public enum SecureRandom {
    public static func bytes(_ count: Int) -> [UInt8] {
        guard count > 0 else { return [] }
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    public static let lowerAlphanumeric = Array("abcdefghijklmnopqrstuvwxyz0123456789".utf8)

    /// A random string over `alphabet`, without modulo bias.
    public static func string(length: Int, alphabet: [UInt8] = lowerAlphanumeric) -> String {
        var generator = SystemRandomNumberGenerator()
        let chars = (0..<length).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &generator)] }
        return String(decoding: chars, as: UTF8.self)
    }

    /// A password following `policy`: every allowed class appears at least once, and the
    /// first character is a letter or digit where the policy allows one (some tools dislike a
    /// leading symbol).
    public static func password(_ policy: PasswordPolicy) -> String {
        let classes = policy.classes
        let all = classes.flatMap { $0 }
        guard !all.isEmpty, policy.length >= classes.count else { return string(length: policy.length, alphabet: all) }
        var generator = SystemRandomNumberGenerator()
        while true {
            let chars = (0..<policy.length).map { _ in all[Int.random(in: 0..<all.count, using: &generator)] }
            let hasEvery = classes.allSatisfy { set in chars.contains(where: set.contains) }
            let leadOK = !policy.special || classes.count == 1 || !PasswordPolicy.specialSet.contains(chars[0])
            if hasEvery && leadOK { return String(decoding: chars, as: UTF8.self) }
        }
    }

    /// An access id: `p-` and 12 lower-case alphanumerics.
    public static func accessId() -> String { "p-" + string(length: 12) }

    /// An access key: 32 random bytes, base64 (44 characters, no dots).
    public static func accessKey() -> String { Data(bytes(32)).base64EncodedString() }

    /// A token: `t-` and 32 random bytes in hex.
    public static func token() -> String { "t-" + bytes(32).hexString }

    /// A random (version 4) UUID in its text form: Vault's shape for AppRole secret ids and
    /// their accessors (122 random bits).
    public static func uuid() -> String {
        var b = bytes(16)
        b[6] = (b[6] & 0x0f) | 0x40
        b[8] = (b[8] & 0x3f) | 0x80
        let h = b.hexString
        let c = Array(h)
        return String(c[0..<8]) + "-" + String(c[8..<12]) + "-" + String(c[12..<16]) + "-" + String(c[16..<20]) + "-" + String(c[20..<32])
    }
}
