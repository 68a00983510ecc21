// Items (secrets) and their versions as domain records. Values appear here only as ciphertext.
import Foundation

public enum ItemType: String, Sendable, Codable {
    case staticSecret = "STATIC_SECRET"
    case dynamicSecret = "DYNAMIC_SECRET"
    case rotatedSecret = "ROTATED_SECRET"
    case usc = "USC"
}

/// An item's metadata (no value).
public struct Item: Sendable, Equatable {
    public var id: Int64
    public var path: ItemPath
    public var type: ItemType
    public var description: String
    public var tags: [String]
    public var maxVersions: Int
    public var deleteProtection: Bool
    public var lastVersion: Int
    public var createdAt: Date
    public var updatedAt: Date

    public init(id: Int64 = 0, path: ItemPath, type: ItemType, description: String = "", tags: [String] = [],
                maxVersions: Int, deleteProtection: Bool = false, lastVersion: Int = 0,
                createdAt: Date, updatedAt: Date) {
        self.id = id
        self.path = path
        self.type = type
        self.description = description
        self.tags = tags
        self.maxVersions = maxVersions
        self.deleteProtection = deleteProtection
        self.lastVersion = lastVersion
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    public static let defaultMaxVersions = 10
    public static let maximumMaxVersions = 1000
}

/// One stored version of an item's value, sealed with AES-256-GCM.
public struct ItemVersion: Sendable, Equatable {
    public var itemId: Int64
    public var version: Int
    /// nil once the version is deleted (its ciphertext is erased).
    public var ciphertext: [UInt8]?
    public var keyTerm: UInt32
    public var createdBy: String
    public var createdAt: Date
    public var deletedAt: Date?

    public init(itemId: Int64, version: Int, ciphertext: [UInt8]?, keyTerm: UInt32, createdBy: String, createdAt: Date, deletedAt: Date? = nil) {
        self.itemId = itemId
        self.version = version
        self.ciphertext = ciphertext
        self.keyTerm = keyTerm
        self.createdBy = createdBy
        self.createdAt = createdAt
        self.deletedAt = deletedAt
    }
}
