// Builds the HTTP application: the router with every front-end, and the service that runs it
// with graceful shutdown (in-flight requests finish, then the audit trail is flushed), and the
// SIGHUP reload.
import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import TesseraCore
import UnixSignals

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
                    server: TesseraHTTPChannel.builder(limits: options.httpLimits, maxBodyBytes: options.maxBodyBytes, tls: tls),
                    configuration: .init(address: .hostname(options.host, port: options.port), serverName: nil),
                    onServerRunning: onServerRunning,
                    logger: logger)
    }

    /// Serves until SIGTERM or SIGINT, then drains requests, flushes the audit trail and closes storage.
    public func serve(onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }) async throws {
        try await startAuditDevices()
        let app = application(onServerRunning: onServerRunning)
        // The background workers run as services next to the HTTP server. Services stop in
        // reverse order: on SIGTERM the server drains first (workers still running), then the
        // workers are cancelled, then storage is closed.
        let workers: [any Service] = [
            BackgroundWork(name: "heartbeat") { await self.runHeartbeat() },
            BackgroundWork(name: "leases") { await self.runLeaseWorker() },
            BackgroundWork(name: "rotations") { await self.runRotationWorker() },
            BackgroundWork(name: "rewrap") { await self.runRewrapWorker() },
            BackgroundWork(name: "tidy") { await self.runTidyWorker() },
            BackgroundWork(name: "sighup") {
                for await _ in await UnixSignalsSequence(trapping: .sighup) { await self.reloadOnHangup() }
            },
        ]
        let services = workers.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0, successTerminationBehavior: .ignore,
                                                                                      failureTerminationBehavior: .ignore) }
            + [ServiceGroupConfiguration.ServiceConfiguration(service: app)]
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            await shutdown()
            throw error
        }
        await shutdown()
    }

    /// SIGHUP: file audit devices are reopened (for logrotate); the TLS certificate and key are
    /// read again for new connections (open ones keep theirs). A file that does not load leaves
    /// the old certificate in use.
    public func reloadOnHangup() async {
        if let tls {
            do {
                try tls.reload()
                logger.notice("SIGHUP: reloaded the TLS certificate and key", metadata: ["cert_file": "\(tls.settings.certFile)"])
            } catch {
                logger.error("SIGHUP: the TLS certificate was not reloaded; the previous one stays in use",
                             metadata: ["reason": "\(Tessera.classify(error, logger: logger).message)"])
            }
        }
        await auditDevices.reopenFiles()
    }
}

/// A background worker as a service: runs until the group shuts down, then is cancelled.
struct BackgroundWork: Service {
    let name: String
    let body: @Sendable () async -> Void

    init(name: String, _ body: @escaping @Sendable () async -> Void) {
        self.name = name
        self.body = body
    }

    func run() async throws {
        await cancelWhenGracefulShutdown { await body() }
    }
}
