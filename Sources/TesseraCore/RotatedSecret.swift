// Rotated secrets as domain records: the account on a target whose password Tessera changes,
// the schedule, the password rules, the last outcome, and the pending record that makes a
// rotation interrupted by a crash resumable. Passwords appear here only as ciphertext.
import Foundation

/// The settings and state of one rotated secret (its values are the item's versions).
public struct Rotator: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case postgres
        case ssh
    }

    /// Who changes the password: the target's privileged account, or the account itself.
    public enum Credentials: String, Sendable {
        case target = "use-target-creds"
        case user = "use-user-creds"

        public init(wire: String) throws {
            switch wire.lowercased() {
            case "use-target-creds", "target", "": self = .target
            case "use-user-creds", "user", "password": self = .user
            default: throw TesseraError.badRequest("authentication-credentials must be use-target-creds or use-user-creds")
            }
        }
    }

    /// The outcome of the last rotation, with Akeyless' status names.
    public enum Status: String, Sendable, CaseIterable {
        case notRotated = "NotRotated"
        case inProgress = "RotationInProgress"
        case succeeded = "RotationSucceeded"
        case failed = "RotationFailed"
    }

    public var itemId: Int64
    public var path: ItemPath
    public var kind: Kind
    public var targetName: String
    public var username: String
    public var credentials: Credentials
    public var policy: PasswordPolicy
    /// SSH: a command run instead of `chpasswd` (empty = `chpasswd`).
    public var customCommand: String
    /// Connects to this port instead of the target's to verify a new password (0 = the target's).
    public var verifyPort: Int
    public var autoRotate: Bool
    /// The rotation interval in minutes (days × 1440 for a daily interval).
    public var intervalMinutes: Int
    /// For day intervals: the hour (UTC) at which rotations happen; nil for minute intervals.
    public var rotationHour: Int?
    public var nextRotationAt: Date?
    public var status: Status
    public var lastRotationAt: Date?
    public var lastError: String
    /// Consecutive failures (drives the retry backoff).
    public var failures: Int
    public var pending: PendingRotation?
    public var createdAt: Date

    public init(itemId: Int64, path: ItemPath, kind: Kind, targetName: String, username: String, credentials: Credentials,
                policy: PasswordPolicy, customCommand: String = "", verifyPort: Int = 0, autoRotate: Bool, intervalMinutes: Int,
                rotationHour: Int?, nextRotationAt: Date?, status: Status = .notRotated, lastRotationAt: Date? = nil,
                lastError: String = "", failures: Int = 0, pending: PendingRotation? = nil, createdAt: Date) {
        self.itemId = itemId
        self.path = path
        self.kind = kind
        self.targetName = targetName
        self.username = username
        self.credentials = credentials
        self.policy = policy
        self.customCommand = customCommand
        self.verifyPort = verifyPort
        self.autoRotate = autoRotate
        self.intervalMinutes = intervalMinutes
        self.rotationHour = rotationHour
        self.nextRotationAt = nextRotationAt
        self.status = status
        self.lastRotationAt = lastRotationAt
        self.lastError = lastError
        self.failures = failures
        self.pending = pending
        self.createdAt = createdAt
    }

    /// The next scheduled rotation after `date`: `date` + the interval for minute intervals;
    /// for day intervals, the rotation hour (UTC) on the day `intervalMinutes / 1440` days later.
    public func nextRotation(after date: Date) -> Date? {
        guard autoRotate, intervalMinutes > 0 else { return nil }
        guard let hour = rotationHour else { return date.addingTimeInterval(InputNumber.interval(seconds: intervalMinutes.multipliedReportingOverflow(by: 60).overflow ? InputNumber.maxSeconds : intervalMinutes * 60)) }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? .current
        let days = max(1, intervalMinutes / 1440)
        guard let day = calendar.date(byAdding: .day, value: days, to: date) else { return nil }
        var c = calendar.dateComponents([.year, .month, .day], from: day)
        c.hour = hour
        c.minute = 0
        c.second = 0
        return calendar.date(from: c)
    }

    /// Seconds before a failed rotation is retried: 30 s doubling per failure, at most an hour,
    /// and never later than a normal interval.
    public func retryDelay() -> TimeInterval {
        let backoff = min(3600, 30 * pow(2, Double(max(0, failures - 1))))
        return intervalMinutes > 0 ? min(backoff, InputNumber.interval(seconds: intervalMinutes.multipliedReportingOverflow(by: 60).overflow ? InputNumber.maxSeconds : intervalMinutes * 60)) : backoff
    }
}

/// A rotation that has started: the new password (sealed) recorded before it is applied.
public struct PendingRotation: Sendable, Equatable {
    public var ciphertext: [UInt8]
    public var keyTerm: UInt32
    public var startedAt: Date
    public var actor: String

    public init(ciphertext: [UInt8], keyTerm: UInt32, startedAt: Date, actor: String) {
        self.ciphertext = ciphertext
        self.keyTerm = keyTerm
        self.startedAt = startedAt
        self.actor = actor
    }
}

/// The character rules of generated passwords. At least one class is on; every class that is
/// on appears at least once.
public struct PasswordPolicy: Sendable, Equatable, Codable {
    public var length: Int
    public var lower: Bool
    public var upper: Bool
    public var numbers: Bool
    public var special: Bool

    public init(length: Int = 24, lower: Bool = true, upper: Bool = true, numbers: Bool = true, special: Bool = true) {
        self.length = length
        self.lower = lower
        self.upper = upper
        self.numbers = numbers
        self.special = special
    }

    public static let lowerSet = Array("abcdefghijkmnopqrstuvwxyz".utf8)
    public static let upperSet = Array("ABCDEFGHJKLMNPQRSTUVWXYZ".utf8)
    public static let numberSet = Array("23456789".utf8)
    /// Characters that need no escaping in SQL literals once quoted, in `chpasswd` input or in shells.
    public static let specialSet = Array("-_.+=@%^~".utf8)

    public var classes: [[UInt8]] {
        var out: [[UInt8]] = []
        if lower { out.append(Self.lowerSet) }
        if upper { out.append(Self.upperSet) }
        if numbers { out.append(Self.numberSet) }
        if special { out.append(Self.specialSet) }
        return out
    }

    public func validate() throws {
        guard (8...128).contains(length) else { throw TesseraError.badRequest("password-length must be between 8 and 128") }
        guard !classes.isEmpty else { throw TesseraError.badRequest("at least one character class must be allowed") }
    }
}
