// Tests for Shamir's scheme over GF(256), the keyring's AAD binding and the barrier.
import Foundation
import Testing
@testable import TesseraCore
@testable import TesseraCrypto

@Suite struct ShamirTests {
    @Test func fieldInverse() {
        for a in 1...255 {
            #expect(Shamir.mul(UInt8(a), Shamir.inverse(UInt8(a))) == 1)
        }
        #expect(Shamir.mul(0x57, 0x83) == 0xC1) // FIPS-197 example
    }

    @Test(arguments: [(1, 1), (2, 2), (3, 2), (5, 3), (10, 7)])
    func roundTripWithAnyThresholdSubset(shares n: Int, threshold k: Int) throws {
        let secret = SecureRandom.bytes(32)
        let shares = try Shamir.split(secret: secret, shares: n, threshold: k)
        #expect(shares.count == n)
        #expect(try Shamir.combine(Array(shares.prefix(k))) == secret)
        #expect(try Shamir.combine(Array(shares.suffix(k))) == secret)
        #expect(try Shamir.combine(shares.shuffled()) == secret)
    }

    @Test func fewerSharesThanThresholdDoNotRecover() throws {
        let secret = SecureRandom.bytes(32)
        let shares = try Shamir.split(secret: secret, shares: 5, threshold: 3)
        #expect(try Shamir.combine(Array(shares.prefix(2))) != secret)
        // And the barrier refuses the wrong root key.
        let initialization = try Barrier.initialize(shares: 5, threshold: 3)
        let wrong = try Shamir.combine(Array(initialization.shares.prefix(2)))
        #expect(throws: TesseraError.self) { try Barrier.openKeyring(initialization.config, rootKey: wrong) }
        let right = try Shamir.combine(Array(initialization.shares.suffix(3)))
        #expect(throws: Never.self) { try Barrier.openKeyring(initialization.config, rootKey: right) }
    }

    @Test func shareEncodingRoundTrips() throws {
        let shares = try Shamir.split(secret: SecureRandom.bytes(32), shares: 3, threshold: 2)
        for s in shares {
            #expect(try Shamir.Share(encoded: s.encoded) == s)
            #expect(try Shamir.Share(encoded: ([s.x] + s.y).hexString) == s)
        }
        #expect(throws: TesseraError.self) { try Shamir.Share(encoded: "not a share!") }
    }

    @Test func invalidParameters() {
        #expect(throws: TesseraError.self) { try Shamir.split(secret: [1], shares: 3, threshold: 4) }
        #expect(throws: TesseraError.self) { try Shamir.split(secret: [1], shares: 0, threshold: 0) }
        #expect(throws: TesseraError.self) { try Shamir.split(secret: [1], shares: 256, threshold: 2) }
        #expect(throws: TesseraError.self) { try Shamir.combine([]) }
    }
}

@Suite struct KeyringTests {
    @Test func ciphertextIsBoundToItemVersionAndTerm() throws {
        let k = Keyring.generate()
        let aad1 = Keyring.itemAAD(itemId: 1, version: 1, term: k.activeTerm)
        let sealed = try k.seal(Array("hunter2".utf8), aad: aad1)
        #expect(try k.open(sealed.ciphertext, term: sealed.term, aad: aad1) == Array("hunter2".utf8))
        // Another item, another version, another term: all rejected.
        #expect(throws: TesseraError.self) { try k.open(sealed.ciphertext, term: 1, aad: Keyring.itemAAD(itemId: 2, version: 1, term: 1)) }
        #expect(throws: TesseraError.self) { try k.open(sealed.ciphertext, term: 1, aad: Keyring.itemAAD(itemId: 1, version: 2, term: 1)) }
        #expect(throws: TesseraError.self) { try k.open(sealed.ciphertext, term: 7, aad: aad1) }
        var tampered = sealed.ciphertext
        tampered[tampered.count / 2] ^= 1
        #expect(throws: TesseraError.self) { try k.open(tampered, term: 1, aad: aad1) }
    }

    @Test func rotatedTermsStillDecryptOldValues() throws {
        var k = Keyring.generate()
        let old = try k.seal([1, 2, 3], aad: [9])
        k.rotate()
        #expect(k.activeTerm == 2)
        let new = try k.seal([4], aad: [9])
        #expect(new.term == 2)
        #expect(try k.open(old.ciphertext, term: old.term, aad: [9]) == [1, 2, 3])
        // The keyring survives serialization under the root key.
        let root = SecureRandom.bytes(32)
        let config = SealConfig(shares: 1, threshold: 1, encryptedKeyring: try Barrier.encryptKeyring(k, rootKey: root), createdAt: Date())
        let reopened = try Barrier.openKeyring(config, rootKey: root)
        #expect(try reopened.open(new.ciphertext, term: 2, aad: [9]) == [4])
    }

    @Test func constantTimeCompare() {
        #expect(ConstantTime.equal([1, 2, 3], [1, 2, 3]))
        #expect(!ConstantTime.equal([1, 2, 3], [1, 2, 4]))
        #expect(!ConstantTime.equal([1, 2], [1, 2, 3]))
    }

    @Test func accessKeyHashing() {
        let salt = SecureRandom.bytes(16)
        let hash = AccessKeyHasher.hash(key: "secret-key", salt: salt)
        #expect(AccessKeyHasher.verify(key: "secret-key", salt: salt, hash: hash))
        #expect(!AccessKeyHasher.verify(key: "secret-kez", salt: salt, hash: hash))
        #expect(SecureRandom.accessId().hasPrefix("p-"))
        #expect(SecureRandom.token().hasPrefix("t-"))
        #expect(!SecureRandom.accessKey().contains(".."))
    }
}
