// Where an audit device sends events: a JSON-lines file (reopened on SIGHUP for logrotate),
// RFC 5424 syslog over UDP or TCP (octet-counted frames, RFC 6587), or an HTTP webhook that gets
// JSON arrays. Each delivery is bounded by the device's time-out, so a hung receiver only holds
// its own device.
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import TesseraCore

protocol AuditSink: Sendable {
    /// Delivers the events in order; returns only when the receiver has them (as far as the
    /// transport can tell). Throws on failure: the same events are delivered again later.
    func deliver(_ events: [AuditEvent]) async throws
    /// SIGHUP: files are reopened (logrotate moved the old one away).
    func reopen() async
    func close() async
}

/// Runs `body` and fails with a time-out after `limit`; the body is cancelled.
func withDeadline<T: Sendable>(_ limit: Duration, _ what: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            throw TesseraError.gatewayTimeout("\(what) did not finish within \(limit.components.seconds) s")
        }
        defer { group.cancelAll() }
        guard let first = try await group.next() else { throw TesseraError.unavailable("\(what) did not run") }
        return first
    }
}

/// One JSON object per line, appended to a file created with mode 0600.
actor FileAuditSink: AuditSink {
    let path: String
    /// For devices created over the API: the data directory the file must stay out of.
    let forbiddenRoot: String?
    private var descriptor: Int32 = -1

    init(path: String, forbiddenRoot: String? = nil) {
        self.path = path
        self.forbiddenRoot = forbiddenRoot
    }

    private func open() throws -> Int32 {
        if descriptor >= 0 { return descriptor }
        if let forbiddenRoot { try AuditDeviceConfig.checkOutside(path, dataDirectory: forbiddenRoot) }
        // O_NONBLOCK: a FIFO put in the file's place cannot hang the device (with no reader the
        // open fails). The file must be a regular file owned by this server's user, so a file
        // another user created in a shared folder never receives the audit stream.
        let fd = Glibc.open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0o600)
        guard fd >= 0 else { throw TesseraError.unavailable("cannot open the audit file \(path) (errno \(errno))") }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG, info.st_uid == geteuid() else {
            Glibc.close(fd)
            throw TesseraError.unavailable("the audit file \(path) must be a regular file owned by the server's user")
        }
        descriptor = fd
        return fd
    }

    func deliver(_ events: [AuditEvent]) async throws {
        var bytes: [UInt8] = []
        for e in events {
            bytes += e.wireJSON.bytes
            bytes.append(0x0A)
        }
        let fd = try open()
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                let code = errno
                Glibc.close(fd)
                descriptor = -1
                throw TesseraError.unavailable("cannot write the audit file \(path) (errno \(code))")
            }
            offset += n
        }
    }

    func reopen() async {
        if descriptor >= 0 { Glibc.close(descriptor) }
        descriptor = -1
    }

    func close() async { await reopen() }
}

/// RFC 5424 messages whose MSG is the event's JSON.
actor SyslogAuditSink: AuditSink {
    let host: String
    let port: Int
    let tcp: Bool
    let facility: Int
    let appName: String
    let timeout: Duration
    let hostname: String
    private var channel: (any Channel)?
    private var remote: SocketAddress?

    init(config: AuditDeviceConfig) {
        let endpoint = config.syslogEndpoint ?? ("127.0.0.1", 514)
        host = endpoint.host
        port = endpoint.port
        tcp = config.protocol == "tcp"
        facility = AuditDeviceConfig.facilities[(config.facility ?? "auth").lowercased()] ?? 4
        appName = config.app_name ?? "tessera"
        timeout = config.timeout
        hostname = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "-"
    }

    func message(_ e: AuditEvent) -> [UInt8] {
        let severity = e.result == .allowed ? 6 : (e.result == .denied ? 5 : 4)
        let head = "<\(facility * 8 + severity)>1 \(JSON.formatDate(e.time)) \(hostname) \(appName) \(getpid()) audit - "
        return Array(head.utf8) + e.wireJSON.bytes
    }

    private func connect() async throws -> any Channel {
        if let channel, channel.isActive { return channel }
        channel = nil
        let group = MultiThreadedEventLoopGroup.singleton
        let address = try SocketAddress.makeAddressResolvingHost(host, port: port)
        let opened: any Channel
        if tcp {
            opened = try await ClientBootstrap(group: group)
                .connectTimeout(.seconds(Int64(max(1, timeout.components.seconds))))
                .connect(to: address).get()
        } else {
            opened = try await DatagramBootstrap(group: group)
                .bind(host: address.protocol == .inet6 ? "::" : "0.0.0.0", port: 0).get()
        }
        channel = opened
        remote = address
        return opened
    }

    func deliver(_ events: [AuditEvent]) async throws {
        let channel = try await connect()
        guard let remote else { throw TesseraError.unavailable("syslog address unresolved") }
        do {
            if tcp {
                var buffer = ByteBuffer()
                for e in events {
                    let m = message(e)
                    buffer.writeString("\(m.count) ")
                    buffer.writeBytes(m)
                }
                // A receiver that stops reading never completes the write: closing the channel at
                // the deadline fails it, so the device reports the time-out and retries.
                let promise = channel.eventLoop.makePromise(of: Void.self)
                let deadline = channel.eventLoop.scheduleTask(in: .nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000)) {
                    channel.close(promise: nil)
                }
                channel.writeAndFlush(buffer, promise: promise)
                do {
                    try await promise.futureResult.get()
                    deadline.cancel()
                } catch {
                    deadline.cancel()
                    throw TesseraError.gatewayTimeout("the syslog receiver did not take the events within \(timeout.components.seconds) s")
                }
            } else {
                for e in events {
                    // One datagram per event; a UDP receiver may cut very long messages.
                    let envelope = AddressedEnvelope(remoteAddress: remote, data: ByteBuffer(bytes: message(e)))
                    try await channel.writeAndFlush(envelope)
                }
            }
        } catch {
            self.channel = nil
            try? await channel.close()
            throw error
        }
    }

    func reopen() async {}

    func close() async {
        if let channel { try? await channel.close() }
        channel = nil
    }
}

/// JSON arrays POSTed to a webhook; any 2xx acknowledges the batch.
final class HTTPAuditSink: AuditSink {
    let url: String
    let headers: [String: String]
    let timeout: Duration
    let client: HTTPClient

    init(config: AuditDeviceConfig) throws {
        url = config.url ?? ""
        headers = config.headers ?? [:]
        timeout = config.timeout
        var configuration = HTTPClient.Configuration()
        let seconds = Int64(max(1, timeout.components.seconds))
        configuration.timeout = .init(connect: .seconds(seconds), read: .seconds(seconds))
        configuration.redirectConfiguration = .disallow
        configuration.connectionPool.retryConnectionEstablishment = false
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        configuration.tlsConfiguration = tls
        if let ca = config.ca_cert_file {
            guard let roots = try? NIOSSLCertificate.fromPEMFile(ca), !roots.isEmpty else {
                throw TesseraError.badRequest("cannot read the CA file \(ca) of audit device \(config.name)")
            }
            tls.trustRoots = .certificates(roots)
            configuration.tlsConfiguration = tls
        }
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    func deliver(_ events: [AuditEvent]) async throws {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        if let first = events.first, let last = events.last {
            request.headers.add(name: "X-Tessera-Audit-Sequence", value: "\(first.sequence)-\(last.sequence)")
        }
        for (k, v) in headers { request.headers.add(name: k, value: v) }
        request.body = .bytes(ByteBuffer(bytes: JSON.array(events.map(\.wireJSON)).bytes))
        let response = try await client.execute(request, deadline: .now() + .seconds(Int64(max(1, timeout.components.seconds))))
        _ = try? await response.body.collect(upTo: 1 << 16)
        guard (200..<300).contains(Int(response.status.code)) else {
            throw TesseraError.badGateway("the webhook answered HTTP \(response.status.code)")
        }
    }

    func reopen() async {}

    func close() async { try? await client.shutdown() }
}
