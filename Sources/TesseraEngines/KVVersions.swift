// Vault KV semantics on items: reading a version with its state, check-and-set writes that
// create or append, soft delete / undelete / destroy of versions, and metadata. The item and
// its versions are the same ones the native API sees.
import Foundation
import TesseraCore
import TesseraCrypto
import TesseraStore

/// One version as Vault shows it: its state, and its value when it is readable.
public struct KVVersion: Sendable {
    public var record: ItemVersion
    public var value: String?
}

extension StaticSecretEngine {
    /// The item at `path`, or nil.
    public func find(_ path: ItemPath) async throws -> Item? {
        try await store.item(at: path)
    }

    /// Reads version `requested` (nil or 0 = the newest). Throws `notFound` if the item or the
    /// version does not exist; a deleted or destroyed version comes back with `value` nil.
    public func readKV(path: ItemPath, version requested: Int?) async throws -> (item: Item, version: KVVersion) {
        let keyring = try seal.keyring()
        guard let (item, found) = try await store.itemAndVersion(at: path, number: max(requested ?? 0, 0)), item.lastVersion > 0,
              let v = found else { throw TesseraError.notFound("") }
        let value = v.isLive ? try await open(v, item: item, keyring: keyring) : nil
        return (item, KVVersion(record: v, value: value))
    }

    /// Writes a new version, creating the item if needed. `cas` 0 means "only if absent";
    /// N means "only if the current version is N". Returns the item and the new version.
    /// `lookedUp` is what the caller just read at `path` (`.some(nil)`: no item), saving a read;
    /// a stale value only costs a retry, as the write itself checks the version.
    public func writeKV(path: ItemPath, value: String, cas: Int?, mountCASRequired: Bool, mountMaxVersions: Int,
                        actor: String, lookedUp: Item?? = .none, mayUpdate: Bool = true) async throws -> (item: Item, version: ItemVersion) {
        let keyring = try seal.keyring()
        var known = lookedUp
        for _ in 0..<5 {
            let t = now()
            let current: Item?
            if let k = known { current = k } else { current = try await store.item(at: path) }
            known = .none
            if let item = current {
                guard mayUpdate else { throw TesseraError.forbidden(path: path.value, capability: Capability.update.rawValue) }
                guard item.type == .staticSecret else { throw TesseraError.badRequest("item \(path) is not a static secret") }
                if (item.casRequired || mountCASRequired) && cas == nil {
                    throw TesseraError.badRequest("check-and-set parameter required for this call")
                }
                if let cas, cas != item.lastVersion {
                    throw TesseraError.badRequest("check-and-set parameter did not match the current version")
                }
                let next = item.lastVersion + 1
                let version = try seal(value, itemId: item.id, version: next, keyring: keyring, actor: actor, at: t)
                do {
                    try await store.appendVersion(version, expectedLastVersion: item.lastVersion, updatedAt: t)
                } catch TesseraError.conflict {
                    continue
                }
                var updated = item
                updated.lastVersion = next
                updated.updatedAt = t
                return (updated, version)
            }
            if mountCASRequired && cas == nil {
                throw TesseraError.badRequest("check-and-set parameter required for this call")
            }
            if let cas, cas != 0 {
                throw TesseraError.badRequest("check-and-set parameter did not match the current version")
            }
            let id = Int64.random(in: 1..<(1 << 53))
            let max = mountMaxVersions > 0 ? mountMaxVersions : Item.defaultMaxVersions
            let item = Item(id: id, path: path, type: .staticSecret, maxVersions: max, lastVersion: 1, createdAt: t, updatedAt: t)
            let version = try seal(value, itemId: id, version: 1, keyring: keyring, actor: actor, at: t)
            do {
                try await store.createItem(item, firstVersion: version)
                return (item, version)
            } catch TesseraError.conflict {
                continue
            }
        }
        throw TesseraError.badRequest("the secret is being written concurrently; retry")
    }

    /// Soft-deletes versions (nil = the newest). Missing items are ignored, as Vault does.
    public func deleteKV(path: ItemPath, versions: [Int]?) async throws {
        guard let item = try await store.item(at: path) else { return }
        try Self.requireUnprotected(item)
        let numbers = versions ?? (item.lastVersion > 0 ? [item.lastVersion] : [])
        try await store.setVersionsDeleted(itemId: item.id, numbers: numbers, at: now())
    }

    public func undeleteKV(path: ItemPath, versions: [Int]) async throws {
        guard let item = try await store.item(at: path) else { return }
        try await store.setVersionsDeleted(itemId: item.id, numbers: versions, at: nil)
    }

    public func destroyKV(path: ItemPath, versions: [Int]) async throws {
        guard let item = try await store.item(at: path) else { return }
        try Self.requireUnprotected(item)
        try await store.destroyVersions(itemId: item.id, numbers: versions, at: now())
    }

    /// The item and its kept versions, or `notFound`.
    public func metadataKV(path: ItemPath) async throws -> (item: Item, versions: [ItemVersion]) {
        guard let item = try await store.item(at: path) else { throw TesseraError.notFound("") }
        return (item, try await store.versions(itemId: item.id))
    }

    /// Changes an item's metadata, creating an empty item (no versions) if it does not exist.
    public func updateMetadataKV(path: ItemPath, mountMaxVersions: Int, _ change: (inout Item) throws -> Void) async throws {
        let t = now()
        if var item = try await store.item(at: path) {
            try change(&item)
            item.updatedAt = t
            item.metadataVersion += 1
            try await store.updateItemMetadata(item)
            return
        }
        var item = Item(id: Int64.random(in: 1..<(1 << 53)), path: path, type: .staticSecret,
                        maxVersions: mountMaxVersions > 0 ? mountMaxVersions : Item.defaultMaxVersions, lastVersion: 0,
                        createdAt: t, updatedAt: t)
        try change(&item)
        item.metadataVersion = 1
        try await store.createItem(item, firstVersion: nil)
        // The creation stores the item's settings; the counters go in with the metadata update.
        try await store.updateItemMetadata(item)
    }

    /// Deletes the item with all its versions; missing items are ignored.
    public func deleteAllKV(path: ItemPath) async throws {
        guard let item = try await store.item(at: path) else { return }
        try Self.requireUnprotected(item)
        _ = try await store.deleteItem(id: item.id)
    }

    /// Delete protection holds on every interface: no delete, destroy or metadata delete.
    static func requireUnprotected(_ item: Item) throws {
        if item.deleteProtection { throw TesseraError.conflict("item \(item.path) has delete protection enabled") }
    }
}
