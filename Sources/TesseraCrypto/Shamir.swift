// Shamir's secret sharing over GF(256) with the AES polynomial (x^8 + x^4 + x^3 + x + 1).
// Field arithmetic uses no secret-dependent table lookups or branches: multiplication is a
// fixed 8-round shift-and-add with masks, and inversion is exponentiation by a fixed exponent.
import Crypto
import Foundation
import TesseraCore

public enum Shamir {
    /// One share: the x coordinate (1...255) followed by one y byte per secret byte.
    public struct Share: Sendable, Equatable {
        public var x: UInt8
        public var y: [UInt8]

        public init(x: UInt8, y: [UInt8]) {
            self.x = x
            self.y = y
        }

        /// Encoded as x ‖ y, base64.
        public var encoded: String { Data([x] + y).base64EncodedString() }

        public init(encoded: String) throws {
            let trimmed = encoded.trimmingCharacters(in: .whitespacesAndNewlines)
            guard let data = Data(base64Encoded: trimmed) ?? Data(hexString: trimmed), data.count >= 2, data[data.startIndex] != 0 else {
                throw TesseraError.badRequest("invalid unseal key share: expected base64 or hex")
            }
            x = data[data.startIndex]
            y = Array(data.dropFirst())
        }
    }

    /// Splits `secret` into `shares` shares, any `threshold` of which recover it.
    public static func split(secret: [UInt8], shares: Int, threshold: Int) throws -> [Share] {
        guard !secret.isEmpty else { throw TesseraError.badRequest("the secret to split is empty") }
        guard (1...255).contains(shares) else { throw TesseraError.badRequest("shares must be between 1 and 255") }
        guard threshold >= 1, threshold <= shares else {
            throw TesseraError.badRequest("threshold must be between 1 and the number of shares")
        }
        if threshold == 1 && shares > 1 {
            throw TesseraError.badRequest("threshold must be at least 2 when there is more than one share")
        }
        // Coefficients: for each secret byte, a random polynomial of degree threshold-1 whose
        // constant term is the byte.
        var result = (1...shares).map { Share(x: UInt8($0), y: [UInt8](repeating: 0, count: secret.count)) }
        for (i, byte) in secret.enumerated() {
            var coefficients = [byte]
            coefficients += SecureRandom.bytes(threshold - 1)
            for s in result.indices {
                result[s].y[i] = evaluate(coefficients, at: result[s].x)
            }
        }
        return result
    }

    /// Recovers the secret from at least `threshold` distinct shares. With fewer shares the result
    /// is unrelated to the secret; callers detect that by the barrier's authenticated decryption.
    public static func combine(_ shares: [Share]) throws -> [UInt8] {
        guard let first = shares.first else { throw TesseraError.badRequest("no unseal key shares given") }
        let length = first.y.count
        guard shares.allSatisfy({ $0.y.count == length }) else {
            throw TesseraError.badRequest("unseal key shares have different lengths")
        }
        guard Set(shares.map(\.x)).count == shares.count else {
            throw TesseraError.badRequest("the same unseal key share was given twice")
        }
        var secret = [UInt8](repeating: 0, count: length)
        // Lagrange interpolation at x = 0.
        for (j, share) in shares.enumerated() {
            var numerator: UInt8 = 1
            var denominator: UInt8 = 1
            for (m, other) in shares.enumerated() where m != j {
                numerator = mul(numerator, other.x)
                denominator = mul(denominator, other.x ^ share.x)
            }
            let basis = mul(numerator, inverse(denominator))
            for i in 0..<length {
                secret[i] ^= mul(share.y[i], basis)
            }
        }
        return secret
    }

    static func evaluate(_ coefficients: [UInt8], at x: UInt8) -> UInt8 {
        // Horner's rule, from the highest coefficient down.
        var acc: UInt8 = 0
        for c in coefficients.reversed() {
            acc = mul(acc, x) ^ c
        }
        return acc
    }

    /// Multiplication in GF(256), constant time: always 8 rounds, masks instead of branches.
    @inline(__always)
    static func mul(_ a: UInt8, _ b: UInt8) -> UInt8 {
        var a = a
        var b = b
        var product: UInt8 = 0
        for _ in 0..<8 {
            product ^= a & (0 &- (b & 1))
            let carry = 0 &- (a >> 7)
            a = (a << 1) ^ (0x1B & carry)
            b >>= 1
        }
        return product
    }

    /// Multiplicative inverse as a^254, by a fixed square-and-multiply chain (0 maps to 0).
    static func inverse(_ a: UInt8) -> UInt8 {
        var result: UInt8 = 1
        var base = a
        // 254 = 0b11111110: square-and-multiply over a fixed bit pattern (public, not secret).
        for bit in 0..<8 {
            if bit > 0 { result = mul(result, base) }
            base = mul(base, base)
        }
        return result
    }
}

extension Data {
    /// Decodes lower- or upper-case hex; nil when the text is not hex.
    public init?(hexString: String) {
        let chars = Array(hexString.utf8)
        guard chars.count % 2 == 0 else { return nil }
        var bytes = [UInt8]()
        bytes.reserveCapacity(chars.count / 2)
        var i = 0
        while i < chars.count {
            guard let hi = hexValue(chars[i]), let lo = hexValue(chars[i + 1]) else { return nil }
            bytes.append(hi << 4 | lo)
            i += 2
        }
        self.init(bytes)
    }
}

private func hexValue(_ c: UInt8) -> UInt8? {
    switch c {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
    default: nil
    }
}
