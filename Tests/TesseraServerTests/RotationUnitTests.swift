// Unit tests for the rotation building blocks: password rules, the schedule (minute and day
// intervals, retry backoff), OpenSSH private-key parsing, and shell quoting of custom commands.
// The keys below are throwaway test fixtures generated for this file, used nowhere else.
import Foundation
import NIOSSH
import Testing
@testable import TesseraCore
@testable import TesseraCrypto
@testable import TesseraEngines

@Suite struct RotationUnitTests {
    static let ed25519Key = """
        -----BEGIN OPENSSH PRIVATE KEY-----
        b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
        QyNTUxOQAAACB7f+1mV/ECf/iRPbJ5diiV9158uAKIYSTrjiaeoAWRSQAAAIiooap5qKGq
        eQAAAAtzc2gtZWQyNTUxOQAAACB7f+1mV/ECf/iRPbJ5diiV9158uAKIYSTrjiaeoAWRSQ
        AAAEAPSgokbnodwfhLUxVxd1pBhvlbrKc941rcLNfnkWbpLnt/7WZX8QJ/+JE9snl2KJX3
        Xny4AohhJOuOJp6gBZFJAAAABHRlc3QB
        -----END OPENSSH PRIVATE KEY-----
        """
    static let ed25519Public = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHt/7WZX8QJ/+JE9snl2KJX3Xny4AohhJOuOJp6gBZFJ"
    static let ecdsaKey = """
        -----BEGIN OPENSSH PRIVATE KEY-----
        b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAaAAAABNlY2RzYS
        1zaGEyLW5pc3RwMjU2AAAACG5pc3RwMjU2AAAAQQQNZoz7IkY1UnPp+8nZiu6t7PotC/H1
        nOE0zekAJg8rrQICM1Q0fU18sN3KhAp+23CVvBiL0fNYc88wlyhaS07yAAAAoAax4rYGse
        K2AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBA1mjPsiRjVSc+n7
        ydmK7q3s+i0L8fWc4TTN6QAmDyutAgIzVDR9TXyw3cqECn7bcJW8GIvR81hzzzCXKFpLTv
        IAAAAhAMJ+dQw9PyoEwR4Ttm9rWK8+iKH7zhurw2xWadHWWzFLAAAABHRlc3QBAgM=
        -----END OPENSSH PRIVATE KEY-----
        """
    static let ecdsaPublic = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBA1mjPsiRjVSc+n7ydmK7q3s+i0L8fWc4TTN6QAmDyutAgIzVDR9TXyw3cqECn7bcJW8GIvR81hzzzCXKFpLTvI="

    @Test func passwordsFollowTheirRules() {
        for policy in [PasswordPolicy(length: 8), PasswordPolicy(length: 40, special: false),
                       PasswordPolicy(length: 12, lower: false, upper: false, numbers: true, special: false)] {
            for _ in 0..<200 {
                let p = Array(SecureRandom.password(policy).utf8)
                #expect(p.count == policy.length)
                let allowed = Set(policy.classes.flatMap { $0 })
                #expect(p.allSatisfy(allowed.contains))
                for set in policy.classes { #expect(p.contains(where: set.contains)) }
                if policy.special { #expect(!PasswordPolicy.specialSet.contains(p[0])) }
            }
        }
        #expect(throws: TesseraError.self) { try PasswordPolicy(length: 4).validate() }
        #expect(throws: TesseraError.self) { try PasswordPolicy(lower: false, upper: false, numbers: false, special: false).validate() }
    }

    func rotator(interval: Int, hour: Int?, failures: Int = 0) throws -> Rotator {
        Rotator(itemId: 1, path: try ItemPath("/r"), kind: .postgres, targetName: "t", username: "u", credentials: .target,
                policy: PasswordPolicy(), autoRotate: true, intervalMinutes: interval, rotationHour: hour, nextRotationAt: nil,
                failures: failures, createdAt: Date())
    }

    @Test func schedule() throws {
        let t = Date(timeIntervalSince1970: 1_800_000_000)   // 2027-01-15 08:00:00 UTC
        #expect(try rotator(interval: 1, hour: nil).nextRotation(after: t) == t.addingTimeInterval(60))
        let daily = try rotator(interval: 2 * 1440, hour: 14).nextRotation(after: t)
        #expect(daily == Date(timeIntervalSince1970: 1_800_000_000 + 2 * 86400 + 6 * 3600))
        var off = try rotator(interval: 1, hour: nil)
        off.autoRotate = false
        #expect(off.nextRotation(after: t) == nil)
        #expect(try rotator(interval: 1440, hour: 0, failures: 1).retryDelay() == 30)
        #expect(try rotator(interval: 1440, hour: 0, failures: 3).retryDelay() == 120)
        #expect(try rotator(interval: 1440, hour: 0, failures: 30).retryDelay() == 3600)
        #expect(try rotator(interval: 1, hour: nil, failures: 5).retryDelay() == 60)
    }

    @Test func parsesOpenSSHPrivateKeys() throws {
        #expect(String(openSSHPublicKey: try OpenSSHPrivateKey.parse(Self.ed25519Key).publicKey) == Self.ed25519Public)
        #expect(String(openSSHPublicKey: try OpenSSHPrivateKey.parse(Self.ecdsaKey).publicKey) == Self.ecdsaPublic)
        let crlf = Self.ed25519Key.replacingOccurrences(of: "\n", with: "\r\n")
        #expect(String(openSSHPublicKey: try OpenSSHPrivateKey.parse(crlf).publicKey) == Self.ed25519Public)
    }

    @Test func rejectsMalformedKeysWithoutTrapping() {
        let body = Self.ed25519Key.split(separator: "\n").dropFirst().dropLast().joined()
        let cases = ["", "not a key", "-----BEGIN OPENSSH PRIVATE KEY-----\n-----END OPENSSH PRIVATE KEY-----",
                     "-----BEGIN OPENSSH PRIVATE KEY-----\n" + String(body.prefix(40)) + "\n-----END OPENSSH PRIVATE KEY-----",
                     "-----BEGIN OPENSSH PRIVATE KEY-----\n" + Data(repeating: 0xff, count: 64).base64EncodedString() + "\n-----END OPENSSH PRIVATE KEY-----"]
        for c in cases {
            #expect(throws: TesseraError.self) { try OpenSSHPrivateKey.parse(c) }
        }
    }

    @Test func customCommandsQuoteTheirPlaceholders() throws {
        var r = try rotator(interval: 0, hour: nil)
        r.kind = .ssh
        r.username = "svc"
        #expect(try AccountPasswordChanger.sshCommand(r, password: "x") == "chpasswd")
        r.customCommand = "echo {{username}}:{{password}} | sudo chpasswd"
        #expect(try AccountPasswordChanger.sshCommand(r, password: "a'b;rm -rf /") == #"echo 'svc':'a'\''b;rm -rf /' | sudo chpasswd"#)
    }

    @Test func rotationErrorsNeverKeepPasswords() {
        let text = RotationEngine.redact("command failed: echo svc:Secret-1 / old Old-2", ["Secret-1", "Old-2", ""])
        #expect(text == "command failed: echo svc:[redacted] / old [redacted]")
    }
}
