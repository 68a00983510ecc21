// Parses unencrypted private keys in the OpenSSH format (`-----BEGIN OPENSSH PRIVATE KEY-----`,
// as `ssh-keygen` writes them) into swift-nio-ssh keys: Ed25519 and ECDSA P-256/P-384/P-521.
// Errors never echo key material.
import Crypto
import Foundation
import NIOSSH
import TesseraCore

public enum OpenSSHPrivateKey {
    static let magic = Array("openssh-key-v1\u{0}".utf8)

    public static func parse(_ text: String) throws -> NIOSSHPrivateKey {
        let invalid = TesseraError.badRequest("private-key must be an unencrypted OpenSSH private key (ssh-keygen -t ed25519 -N '')")
        let lines = text.replacingOccurrences(of: "\r", with: "").split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        guard let begin = lines.firstIndex(of: "-----BEGIN OPENSSH PRIVATE KEY-----"),
              let end = lines.firstIndex(of: "-----END OPENSSH PRIVATE KEY-----"), begin < end,
              let data = Data(base64Encoded: lines[(begin + 1)..<end].joined()) else { throw invalid }
        var r = Reader(bytes: Array(data))
        guard r.take(magic.count) == magic else { throw invalid }
        let cipher = try r.string(), kdf = try r.string()
        _ = try r.blob()
        guard cipher == "none", kdf == "none" else {
            throw TesseraError.badRequest("private-key is encrypted with a passphrase; give an unencrypted key")
        }
        guard try r.uint32() == 1 else { throw invalid }
        _ = try r.blob()
        var p = Reader(bytes: try r.blob())
        guard try p.uint32() == (try p.uint32()) else { throw invalid }
        let type = try p.string()
        do {
            switch type {
            case "ssh-ed25519":
                _ = try p.blob()
                let secret = try p.blob()
                guard secret.count == 64 else { throw invalid }
                return NIOSSHPrivateKey(ed25519Key: try Curve25519.Signing.PrivateKey(rawRepresentation: secret.prefix(32)))
            case "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521":
                _ = try p.blob()
                _ = try p.blob()
                var scalar = try p.blob()
                while scalar.first == 0 { scalar.removeFirst() }
                switch type {
                case "ecdsa-sha2-nistp256": return NIOSSHPrivateKey(p256Key: try P256.Signing.PrivateKey(rawRepresentation: pad(scalar, 32)))
                case "ecdsa-sha2-nistp384": return NIOSSHPrivateKey(p384Key: try P384.Signing.PrivateKey(rawRepresentation: pad(scalar, 48)))
                default: return NIOSSHPrivateKey(p521Key: try P521.Signing.PrivateKey(rawRepresentation: pad(scalar, 66)))
                }
            default:
                throw TesseraError.badRequest("private-key type \(type) is not supported; use ed25519 or ecdsa")
            }
        } catch let e as TesseraError {
            throw e
        } catch {
            throw invalid
        }
    }

    static func pad(_ bytes: [UInt8], _ size: Int) -> [UInt8] {
        bytes.count >= size ? Array(bytes.suffix(size)) : Array(repeating: 0, count: size - bytes.count) + bytes
    }

    /// Reads SSH wire types (uint32, length-prefixed strings) without ever trapping.
    struct Reader {
        var bytes: [UInt8]
        var offset = 0

        mutating func take(_ n: Int) -> [UInt8]? {
            guard n >= 0, offset + n <= bytes.count else { return nil }
            defer { offset += n }
            return Array(bytes[offset..<(offset + n)])
        }

        mutating func uint32() throws -> UInt32 {
            guard let b = take(4) else { throw TesseraError.badRequest("private-key is truncated") }
            return b.reduce(0) { ($0 << 8) | UInt32($1) }
        }

        mutating func blob() throws -> [UInt8] {
            let n = try uint32()
            guard n < 1 << 20, let b = take(Int(n)) else { throw TesseraError.badRequest("private-key is truncated") }
            return b
        }

        mutating func string() throws -> String { String(decoding: try blob(), as: UTF8.self) }
    }
}
