// The static secret engine: versioned values encrypted at rest. Each version is sealed under the
// active key term with AAD binding it to its item id, version number and term.
import Foundation
import TesseraCore
import TesseraCrypto
import TesseraStore

public struct SecretValue: Sendable {
    public var item: Item
    public var version: Int
    public var value: String
}

public struct StaticSecretEngine: Sendable {
    let store: any Store
    let seal: SealManager
    let now: @Sendable () -> Date

    public init(store: any Store, seal: SealManager, now: @escaping @Sendable () -> Date = Date.init) {
        self.store = store
        self.seal = seal
        self.now = now
    }

    public func create(path: ItemPath, value: String, description: String, tags: [String], maxVersions: Int?,
                       deleteProtection: Bool, actor: String) async throws -> Item {
        let keyring = try seal.keyring()
        let max = try Self.validMaxVersions(maxVersions)
        let t = now()
        let id = Int64.random(in: 1..<(1 << 53))
        let item = Item(id: id, path: path, type: .staticSecret, description: description, tags: tags, maxVersions: max,
                        deleteProtection: deleteProtection, lastVersion: 1, createdAt: t, updatedAt: t)
        let version = try seal(value, itemId: id, version: 1, keyring: keyring, actor: actor, at: t)
        try await store.createItem(item, firstVersion: version)
        return item
    }

    static func validMaxVersions(_ requested: Int?) throws -> Int {
        guard let requested, requested != 0 else { return Item.defaultMaxVersions }
        guard (1...Item.maximumMaxVersions).contains(requested) else {
            throw TesseraError.badRequest("max-versions must be between 1 and \(Item.maximumMaxVersions)")
        }
        return requested
    }

    func seal(_ value: String, itemId: Int64, version: Int, keyring: Keyring, actor: String, at: Date) throws -> ItemVersion {
        let term = keyring.activeTerm
        let sealed = try keyring.seal(Array(value.utf8), aad: Keyring.itemAAD(itemId: itemId, version: version, term: term))
        return ItemVersion(itemId: itemId, version: version, ciphertext: sealed.ciphertext, keyTerm: sealed.term, createdBy: actor, createdAt: at)
    }

    /// The item at `path`, or `notFound`.
    public func item(_ path: ItemPath) async throws -> Item {
        guard let item = try await store.item(at: path) else { throw TesseraError.notFound("item \(path) not found") }
        return item
    }

    /// Reads a value: the given version, or the newest version that is not deleted.
    public func read(path: ItemPath, version requested: Int?) async throws -> SecretValue {
        let keyring = try seal.keyring()
        let number = max(requested ?? 0, 0)
        guard let (item, found) = try await store.itemAndVersion(at: path, number: number) else {
            throw TesseraError.notFound("item \(path) not found")
        }
        guard item.type == .staticSecret else {
            throw TesseraError.badRequest("item \(path) is not a static secret")
        }
        let v: ItemVersion
        if number > 0 {
            guard let found else { throw TesseraError.notFound("version \(number) of \(path) not found") }
            v = found
        } else {
            if let latest = found, latest.isLive {
                v = latest
            } else {
                guard let live = try await store.versions(itemId: item.id).last(where: { $0.isLive }) else {
                    throw TesseraError.notFound("item \(path) has no version that is not deleted")
                }
                v = live
            }
        }
        guard v.isLive else {
            throw TesseraError.notFound("version \(v.version) of \(path) is deleted")
        }
        return SecretValue(item: item, version: v.version, value: try await open(v, item: item, keyring: keyring))
    }

    /// Decrypts a stored version of `item`. A term missing from `keyring` (a rotation on another
    /// node not yet announced here) reloads the keyring from the store once.
    func open(_ v: ItemVersion, item: Item, keyring: Keyring) async throws -> String {
        guard let ciphertext = v.ciphertext else { throw TesseraError.notFound("version \(v.version) of \(item.path) is destroyed") }
        let keyring = keyring.terms[v.keyTerm] == nil ? try await seal.keyring(holding: v.keyTerm) : keyring
        let plain = try keyring.open(ciphertext, term: v.keyTerm, aad: Keyring.itemAAD(itemId: item.id, version: v.version, term: v.keyTerm))
        return String(decoding: plain, as: UTF8.self)
    }

    /// Stores a new version; returns its number.
    public func update(path: ItemPath, value: String, actor: String) async throws -> Int {
        let keyring = try seal.keyring()
        for _ in 0..<5 {
            let item = try await item(path)
            guard item.type == .staticSecret else { throw TesseraError.badRequest("item \(path) is not a static secret") }
            let t = now()
            let next = item.lastVersion + 1
            let version = try seal(value, itemId: item.id, version: next, keyring: keyring, actor: actor, at: t)
            do {
                try await store.appendVersion(version, expectedLastVersion: item.lastVersion, updatedAt: t)
                return next
            } catch TesseraError.conflict {
                continue
            }
        }
        throw TesseraError.conflict("item \(path) is being updated concurrently; retry")
    }

    /// The items whose path starts with `prefix`, by path (a mount's contents).
    public func items(withPrefix prefix: String, limit: Int) async throws -> [Item] {
        try await store.items(withPrefix: prefix, limit: limit)
    }

    public func versions(of item: Item) async throws -> [ItemVersion] {
        try await store.versions(itemId: item.id)
    }

    /// Every item below `folder` (at any depth), and the folder's direct sub-folders.
    public func list(folder: ItemPath, limit: Int = 10_000) async throws -> (items: [Item], folders: [String]) {
        let items = try await store.items(withPrefix: folder.folderPrefix, limit: limit)
        var folders = Set<String>()
        let depth = folder.components.count
        for item in items {
            let comps = item.path.components
            if comps.count > depth + 1 { folders.insert(folder.folderPrefix + comps[depth]) }
        }
        return (items, folders.sorted())
    }

    /// Deletes one version (`version` > 0), the newest (`0`), or the whole item (`-1`).
    public func delete(path: ItemPath, version: Int) async throws -> (item: Item, deletedVersion: Int) {
        let item = try await item(path)
        if item.deleteProtection {
            throw TesseraError.conflict("item \(path) has delete protection enabled")
        }
        switch version {
        case ..<0:
            _ = try await store.deleteItem(id: item.id)
            return (item, -1)
        default:
            let number = version == 0 ? item.lastVersion : version
            guard try await store.deleteVersion(itemId: item.id, number: number, at: now()) else {
                throw TesseraError.notFound("version \(number) of \(path) not found or already deleted")
            }
            return (item, number)
        }
    }
}
