// MountTable: the Vault-compatible mounts, kept in storage and cached in memory. A request path
// is resolved to its mount by the longest matching mount prefix.
import Foundation
import Synchronization
import TesseraCore
import TesseraCrypto
import TesseraStore

public final class MountTable: Sendable {
    private let store: any Store
    private let cache = Mutex<[VaultMount]>([])
    private let now: @Sendable () -> Date

    public init(store: any Store, now: @escaping @Sendable () -> Date = Date.init) {
        self.store = store
        self.now = now
    }

    public func load() async throws {
        let mounts = try await store.mounts()
        cache.withLock { $0 = mounts }
    }

    public var all: [VaultMount] { cache.withLock { $0 } }

    /// The mount that `path` (without `/v1/`) falls under, and the rest of the path.
    public func resolve(_ path: String) -> (mount: VaultMount, rest: String)? {
        let candidates = cache.withLock { $0 }
        var best: VaultMount?
        for m in candidates where ItemPath.bytes(path, haveprefix: m.path) || path + "/" == m.path {
            if best == nil || m.path.utf8.count > (best?.path.utf8.count ?? 0) { best = m }
        }
        guard let best else { return nil }
        let rest = ItemPath.bytes(path, droppingPrefix: best.path) ?? ""
        return (best, rest)
    }

    /// Creates a mount over a folder of items, or (with `uscName`) over a connector's upstream
    /// secrets, which are then authorized as `/<usc-name>/…`.
    public func create(path raw: String, kind: VaultMount.Kind, folder: String?, description: String = "",
                       uscName: String? = nil, ownsData: Bool = false) async throws -> VaultMount {
        let path = try VaultMount.normalizePath(raw)
        if uscName != nil, kind != .kvV2 { throw TesseraError.badRequest("a connector-backed mount must be kv-v2, like its upstream") }
        let folderPath = try ItemPath(folder: uscName.map { "/" + $0 } ?? folder ?? "/" + String(path.dropLast()))
        if cache.withLock({ $0.contains { $0.path.hasPrefix(path) || path.hasPrefix($0.path) } }) {
            throw TesseraError.conflict("path is already in use at \(path)")
        }
        var mount = VaultMount(path: path, kind: kind, folder: folderPath, description: description,
                               accessor: (kind == .kvV1 || kind == .kvV2 ? "kv_" : "mount_") + SecureRandom.bytes(4).hexString,
                               uuid: UUID().uuidString.lowercased(), createdAt: now(), uscName: uscName)
        // It owns its items only when the folder held none and no other mount shares it.
        if ownsData, uscName == nil {
            let shared = cache.withLock { $0.contains { ItemPath.bytes($0.folder.folderPrefix, haveprefix: folderPath.folderPrefix)
                || ItemPath.bytes(folderPath.folderPrefix, haveprefix: $0.folder.folderPrefix) } }
            let held = try await store.items(withPrefix: folderPath.folderPrefix, limit: 1)
            let atFolder = try await store.item(at: folderPath)
            mount.ownsData = !shared && held.isEmpty && atFolder == nil
        }
        try await store.createMount(mount)
        try await load()
        return mount
    }

    public func update(_ mount: VaultMount) async throws {
        try await store.updateMount(mount)
        try await load()
    }

    /// A finished move (`sys/remount`), kept for `sys/remount/status/<id>`.
    public struct Move: Sendable {
        public let id: String
        public let from: String
        public let to: String
    }

    private let moves = Mutex<[Move]>([])

    /// Moves a mount to a new path (`sys/remount`). A mount that owns its items takes them to the
    /// folder of the new path, which must hold nothing; a mount declared over a native folder or a
    /// connector keeps its folder and only changes its path. `authorize` sees each item that
    /// moves, with its new path, before anything changes; if the items change in between, the
    /// move fails with a conflict and changes nothing. (The overlap with other mounts is checked
    /// against this node's mount table.)
    public func move(from raw: String, to rawTo: String,
                     authorize: @Sendable ([Item], ItemPath, ItemPath) throws -> Void) async throws -> Move {
        let from = try VaultMount.normalizePath(raw)
        let to = try VaultMount.normalizePath(rawTo)
        guard var m = all.first(where: { $0.path == from }) else { throw TesseraError.badRequest("no matching mount at \"\(from)\"") }
        func nested(_ a: String, _ b: String) -> Bool { ItemPath.bytes(a, haveprefix: b) || ItemPath.bytes(b, haveprefix: a) }
        let overlaps = nested(from, to) || all.contains { $0.path != from && nested($0.path, to) }
        if overlaps { throw TesseraError.badRequest("path already in use at \"\(to)\"") }
        let oldFolder = m.folder
        var itemsFrom: ItemPath?
        var expected = 0
        m.path = to
        if m.ownsData && m.uscName == nil {
            guard m.kind != .database else { throw TesseraError.badRequest("a database mount cannot be moved") }
            let newFolder = try ItemPath(folder: "/" + String(to.dropLast()))
            let shared = all.contains { $0.path != from && (ItemPath.bytes($0.folder.folderPrefix, haveprefix: newFolder.folderPrefix)
                || ItemPath.bytes(newFolder.folderPrefix, haveprefix: $0.folder.folderPrefix)) }
            let held = try await store.items(withPrefix: newFolder.folderPrefix, limit: 1)
            let atFolder = try await store.item(at: newFolder)
            guard !shared, held.isEmpty, atFolder == nil else {
                throw TesseraError.badRequest("path already in use at \"\(to)\": items are stored under \(newFolder.value)")
            }
            let limit = 100_000
            var items = try await store.items(withPrefix: oldFolder.folderPrefix, limit: limit + 1)
            if let own = try await store.item(at: oldFolder) { items.append(own) }
            guard items.count <= limit else { throw TesseraError.badRequest("the mount holds more than \(limit) items: it cannot be moved") }
            try authorize(items, oldFolder, newFolder)
            if items.contains(where: { $0.type != .staticSecret }) {
                throw TesseraError.badRequest("the mount holds items that are not static secrets (rotated or dynamic): it cannot be moved")
            }
            expected = items.count
            m.folder = newFolder
            itemsFrom = oldFolder
        } else {
            try authorize([], oldFolder, oldFolder)
        }
        try await store.moveMount(from: from, to: m, itemsFrom: itemsFrom, expectedItems: expected)
        try await load()
        let move = Move(id: UUID().uuidString.lowercased(), from: from, to: to)
        moves.withLock {
            $0.append(move)
            if $0.count > 100 { $0.removeFirst($0.count - 100) }
        }
        return move
    }

    /// A move made by this node, by its id.
    public func move(id: String) -> Move? { moves.withLock { $0.first { $0.id == id } } }

    public func delete(path raw: String) async throws -> VaultMount {
        let path = try VaultMount.normalizePath(raw)
        guard let m = all.first(where: { $0.path == path }) else { throw TesseraError.notFound("no mount at \(path)") }
        _ = try await store.deleteMount(path: path)
        try await load()
        return m
    }
}
