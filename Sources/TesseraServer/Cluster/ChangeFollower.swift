// Keeps this node's caches in step with changes committed by other nodes sharing the store:
// verified credentials are forgotten, the mount table and the keyring reloaded. While the
// store's change feed is down, credential verification bypasses its cache; when the feed is
// back (`.resync`), everything is reloaded before the cache serves again.
import Foundation
import Logging
import TesseraEngines
import TesseraStore

final class ChangeFollower: Sendable {
    private let task: Task<Void, Never>

    init(feed: any ChangeFeed, access: AccessEngine, mounts: MountTable, seal: SealManager, logger: Logger) {
        access.setCacheUsable(feed.isLive)
        let changes = feed.changes()
        task = Task {
            // The feed's liveness is polled too: going down is not announced on the stream.
            let watcher = Task {
                var live = feed.isLive
                while !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(100))
                    let now = feed.isLive
                    if now != live, !now { access.setCacheUsable(false) }
                    live = now
                }
            }
            defer { watcher.cancel() }
            for await change in changes {
                switch change {
                case .access:
                    access.accessChangedElsewhere()
                case .mounts:
                    await Self.reload("mount table", logger) { try await mounts.load() }
                case .seal:
                    await Self.reloadSeal(seal, logger)
                case .resync:
                    access.setCacheUsable(false)
                    await Self.reload("mount table", logger) { try await mounts.load() }
                    await Self.reloadSeal(seal, logger)
                    access.setCacheUsable(feed.isLive)
                }
            }
        }
    }

    private static func reload(_ what: String, _ logger: Logger, _ body: () async throws -> Void) async {
        do {
            try await body()
        } catch {
            logger.error("cannot reload the \(what) after a change on another node", metadata: ["reason": "\(error)"])
        }
    }

    private static func reloadSeal(_ seal: SealManager, _ logger: Logger) async {
        do {
            if try await seal.reloadFromStore() == false {
                logger.critical("the keyring was sealed again under another root key (a rekey on another node): seal this node and unseal it with the new shares or key file")
            }
        } catch {
            logger.error("cannot reload the keyring after a change on another node", metadata: ["reason": "\(error)"])
        }
    }

    func stop() {
        task.cancel()
    }
}
