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
    /// Vault KV v2 metadata: free-form key/values, check-and-set requirement, automatic deletion.
    public var customMetadata: [String: String]
    public var casRequired: Bool
    public var deleteVersionAfter: String
    /// Vault KV v2's `current_metadata_version`: how many metadata writes the secret has had.
    public var metadataVersion: Int
    /// `max_versions` as a Vault metadata write set it (0: not set; `maxVersions` is what applies).
    public var vaultMaxVersions: Int

    public init(id: Int64 = 0, path: ItemPath, type: ItemType, description: String = "", tags: [String] = [],
                maxVersions: Int, deleteProtection: Bool = false, lastVersion: Int = 0,
                createdAt: Date, updatedAt: Date, customMetadata: [String: String] = [:], casRequired: Bool = false,
                deleteVersionAfter: String = "0s", metadataVersion: Int = 0, vaultMaxVersions: Int = 0) {
        self.metadataVersion = metadataVersion
        self.vaultMaxVersions = vaultMaxVersions
        self.customMetadata = customMetadata
        self.casRequired = casRequired
        self.deleteVersionAfter = deleteVersionAfter
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
    /// nil once the version is destroyed (its ciphertext is erased).
    public var ciphertext: [UInt8]?
    public var keyTerm: UInt32
    public var createdBy: String
    public var createdAt: Date
    /// Set when the version is deleted; a deleted version that is not destroyed can be undeleted.
    public var deletedAt: Date?
    public var destroyed: Bool

    /// Whether the value can be read.
    public var isLive: Bool { deletedAt == nil && !destroyed && ciphertext != nil }

    public init(itemId: Int64, version: Int, ciphertext: [UInt8]?, keyTerm: UInt32, createdBy: String, createdAt: Date,
                deletedAt: Date? = nil, destroyed: Bool = false) {
        self.destroyed = destroyed
        self.itemId = itemId
        self.version = version
        self.ciphertext = ciphertext
        self.keyTerm = keyTerm
        self.createdBy = createdBy
        self.createdAt = createdAt
        self.deletedAt = deletedAt
    }
}

/// A Vault-compatible mount: a Vault path prefix (`secret/`) mapped onto a folder of items.
public struct VaultMount: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case kvV1 = "kv-v1"
        case kvV2 = "kv-v2"
        /// Dynamic-secret producers under the folder, served as `<mount>/creds/<name>`.
        case database

        /// Accepts `kv-v1`, `kv-v2`, `kv` (version 1), `kv1`, `kv2`, `database`.
        public init(wire: String) throws {
            switch wire.lowercased() {
            case "kv-v1", "kv1", "kv": self = .kvV1
            case "kv-v2", "kv2": self = .kvV2
            case "database", "db": self = .database
            default: throw TesseraError.badRequest("invalid mount type '\(wire)': expected kv-v1, kv-v2 or database")
            }
        }
    }

    /// The mount path with a trailing slash, e.g. `secret/`.
    public var path: String
    public var kind: Kind
    /// The folder of items it maps onto, e.g. `/secret`.
    public var folder: ItemPath
    public var description: String
    /// KV v2 mount configuration.
    public var maxVersions: Int
    public var casRequired: Bool
    public var deleteVersionAfter: String
    public var accessor: String
    public var uuid: String
    public var createdAt: Date
    /// When set, the mount is backed by this Universal Secret Connector: requests are proxied to
    /// the upstream Vault after Tessera's authorization on `/<usc-name>/<path>`.
    public var uscName: String?
    /// Enabled through `sys/mounts` over a folder that held nothing: the mount owns its items,
    /// and disabling it removes them, as Vault does. A mount declared over an existing folder
    /// does not.
    public var ownsData: Bool = false
    /// Vault's mount tuning (`sys/mounts/<path>/tune`); 0 is the system default. Shown to
    /// clients; a producer's lease TTLs are its own.
    public var defaultLeaseTTL: Int = 0
    public var maxLeaseTTL: Int = 0

    public init(path: String, kind: Kind, folder: ItemPath, description: String = "", maxVersions: Int = 0,
                casRequired: Bool = false, deleteVersionAfter: String = "0s", accessor: String, uuid: String, createdAt: Date,
                uscName: String? = nil) {
        self.uscName = uscName
        self.path = path
        self.kind = kind
        self.folder = folder
        self.description = description
        self.maxVersions = maxVersions
        self.casRequired = casRequired
        self.deleteVersionAfter = deleteVersionAfter
        self.accessor = accessor
        self.uuid = uuid
        self.createdAt = createdAt
    }

    /// Normalizes a mount path: no leading slash, exactly one trailing slash, segments valid as item paths.
    public static func normalizePath(_ raw: String) throws -> String {
        var p = raw.trimmingCharacters(in: .whitespaces)
        while p.hasPrefix("/") { p.removeFirst() }
        while p.hasSuffix("/") { p.removeLast() }
        guard !p.isEmpty else { throw TesseraError.badRequest("mount path is required") }
        let parsed = try ItemPath(p)
        let reserved = ["sys", "auth", "identity", "cubbyhole"]
        if let first = parsed.components.first, reserved.contains(String(first)) {
            throw TesseraError.badRequest("mount path '\(p)/' is reserved")
        }
        return String(parsed.value.dropFirst()) + "/"
    }
}
