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

    public func delete(path raw: String) async throws -> VaultMount {
        let path = try VaultMount.normalizePath(raw)
        guard let m = all.first(where: { $0.path == path }) else { throw TesseraError.notFound("no mount at \(path)") }
        _ = try await store.deleteMount(path: path)
        try await load()
        return m
    }
}
