// A read-through cache of items and their versions for the embedded SQLite engine. An SQLite
// data file belongs to one server process, so every write passes through this process and
// invalidates what it changes; values stay sealed (the cache holds ciphertext, as the file
// does). A generation counter keeps a read that raced a write from caching what it read.
import Foundation
import Synchronization
import TesseraCore

final class SQLiteItemCache: Sendable {
    private struct State {
        var generation: UInt64 = 0
        var items: [String: Item] = [:]
        var versions: [Int64: [Int: ItemVersion]] = [:]
        var pathOfItem: [Int64: String] = [:]
        /// Paths known to have no item (so that writing a new secret does not read the file twice).
        var missing: Set<String> = []
        var versionCount = 0
    }

    enum Lookup {
        case item(Item)
        case missing
        case unknown
    }

    private let state = Mutex(State())
    let capacity: Int

    init(capacity: Int = 50_000) { self.capacity = capacity }

    /// The generation to pass to `store…` after reading from the file.
    var generation: UInt64 { state.withLock { $0.generation } }

    func lookup(_ path: String) -> Lookup {
        state.withLock { s in
            if let item = s.items[path] { return .item(item) }
            return s.missing.contains(path) ? .missing : .unknown
        }
    }

    /// Records that `path` has no item, unless a write happened since `generation` was taken.
    func storeMissing(_ path: String, generation: UInt64) {
        state.withLock { s in
            guard s.generation == generation else { return }
            if s.missing.count >= capacity { s.missing.removeAll(keepingCapacity: true) }
            s.missing.insert(path)
        }
    }

    func version(_ itemId: Int64, _ number: Int) -> ItemVersion? { state.withLock { $0.versions[itemId]?[number] } }

    func store(_ item: Item, generation: UInt64) {
        state.withLock { s in
            guard s.generation == generation else { return }
            if s.items.count >= capacity { s.items.removeAll(keepingCapacity: true); s.pathOfItem.removeAll(keepingCapacity: true) }
            s.items[item.path.value] = item
            s.pathOfItem[item.id] = item.path.value
        }
    }

    func store(_ version: ItemVersion, generation: UInt64) {
        state.withLock { s in
            guard s.generation == generation else { return }
            if s.versionCount >= capacity { s.versions.removeAll(keepingCapacity: true); s.versionCount = 0 }
            if s.versions[version.itemId, default: [:]].updateValue(version, forKey: version.version) == nil { s.versionCount += 1 }
        }
    }

    /// Drops what is cached of an item (after its row or versions changed). Call after the commit.
    func invalidate(itemId: Int64) {
        state.withLock { s in
            s.generation &+= 1
            if let path = s.pathOfItem.removeValue(forKey: itemId) { s.items.removeValue(forKey: path) }
            if let v = s.versions.removeValue(forKey: itemId) { s.versionCount -= v.count }
        }
    }

    /// Drops everything (after values were re-sealed in bulk).
    func invalidateAll() {
        state.withLock { s in
            s.generation &+= 1
            s.missing.removeAll(keepingCapacity: true)
            s.items.removeAll(keepingCapacity: true)
            s.pathOfItem.removeAll(keepingCapacity: true)
            s.versions.removeAll(keepingCapacity: true)
            s.versionCount = 0
        }
    }

    func invalidate(path: String) {
        state.withLock { s in
            s.generation &+= 1
            s.missing.remove(path)
            if let item = s.items.removeValue(forKey: path) {
                s.pathOfItem.removeValue(forKey: item.id)
                if let v = s.versions.removeValue(forKey: item.id) { s.versionCount -= v.count }
            }
        }
    }
}
