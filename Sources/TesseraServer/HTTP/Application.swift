// Builds the HTTP application: the router with every front-end, and the service that runs it
// with graceful shutdown (in-flight requests finish, then the audit trail is flushed).
import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import TesseraCore

extension Tessera {
    /// The router with every front-end registered.
    public func router() -> Router<TesseraRequestContext> {
        let router = Router(context: TesseraRequestContext.self)
        NativeAPI(tessera: self).register(on: router)
        let system = SystemAPI(tessera: self)
        system.register(on: router)
        VaultAPI(tessera: self, system: system).register(on: router)
        return router
    }

    public func application(onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }) -> some ApplicationProtocol {
        Application(router: router(),
                    server: TesseraHTTPChannel.builder(limits: options.httpLimits, maxBodyBytes: options.maxBodyBytes),
                    configuration: .init(address: .hostname(options.host, port: options.port), serverName: nil),
                    onServerRunning: onServerRunning,
                    logger: logger)
    }

    /// Serves until SIGTERM or SIGINT, then drains requests, flushes the audit trail and closes storage.
    public func serve(onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }) async throws {
        let app = application(onServerRunning: onServerRunning)
        let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        let worker = Task { await self.runLeaseWorker() }
        let rotator = Task { await self.runRotationWorker() }
        do {
            try await group.run()
        } catch {
            worker.cancel()
            rotator.cancel()
            await shutdown()
            throw error
        }
        worker.cancel()
        rotator.cancel()
        await shutdown()
    }
}
