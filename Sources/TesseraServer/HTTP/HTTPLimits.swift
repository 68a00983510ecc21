// HTTP resource limits: header, body and keep-alive time-outs, a cap on concurrent connections,
// a header size limit and a prompt 413 that closes the connection. They bound what a client
// that never finishes a request, or sends too much, can hold on to.
import Foundation
import HTTPTypes
import HummingbirdCore
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import Synchronization

/// The limits, with safe defaults (config keys `http_*`, documented in `docs/security.md`).
public struct HTTPLimits: Sendable, Equatable {
    /// From accepting a connection until its first request head is complete.
    public var headerTimeoutSeconds = 10
    /// From a request head until its body is complete.
    public var bodyTimeoutSeconds = 30
    /// A keep-alive connection with no request in flight is closed after this.
    public var idleTimeoutSeconds = 60
    public var maxConnections = 1024
    /// All header lines of one request together.
    public var maxHeaderBytes = 64 * 1024

    public init() {}
}

/// Counts open connections across the server.
final class ConnectionCounter: Sendable {
    private let open = Mutex(0)

    /// Takes a slot, or returns false when all `limit` slots are taken.
    func acquire(limit: Int) -> Bool {
        open.withLock { n in
            guard n < limit else { return false }
            n += 1
            return true
        }
    }

    func release() { open.withLock { $0 = max(0, $0 - 1) } }
}

/// Sits after the HTTP codec (HTTPTypes parts) on every connection and enforces `HTTPLimits`.
final class HTTPLimitsHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    let limits: HTTPLimits
    let maxBodyBytes: Int
    let counter: ConnectionCounter
    private var holdsSlot = false
    /// When the connection is cut unless the client makes progress (nil while the server works).
    /// One repeating check per connection reads it, so a request costs no timer of its own.
    private var deadline: NIODeadline?
    private var watchdog: RepeatedTask?
    /// Requests whose head has been read and whose response has not ended.
    private var inFlight = 0
    private var bodyBytes = 0
    /// The current request is being refused: its remaining parts are dropped.
    private var refusing = false

    init(limits: HTTPLimits, maxBodyBytes: Int, counter: ConnectionCounter) {
        self.limits = limits
        self.maxBodyBytes = maxBodyBytes
        self.counter = counter
    }

    func handlerAdded(context: ChannelHandlerContext) {
        guard counter.acquire(limit: limits.maxConnections) else {
            context.close(promise: nil)
            return
        }
        holdsSlot = true
        arm(context, seconds: limits.headerTimeoutSeconds)
        let channel = context.channel
        // Runs on the connection's event loop; cancelled when the handler goes away.
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        watchdog = context.eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(250), delay: .milliseconds(250)) { task in
            if let d = handler.value.deadline, d < .now() {
                task.cancel()
                channel.close(promise: nil)
            }
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        watchdog?.cancel()
        watchdog = nil
        deadline = nil
        if holdsSlot { counter.release(); holdsSlot = false }
    }

    func channelInactive(context: ChannelHandlerContext) {
        watchdog?.cancel()
        watchdog = nil
        deadline = nil
        if holdsSlot { counter.release(); holdsSlot = false }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch part {
        case .head(let head):
            inFlight += 1
            bodyBytes = 0
            refusing = false
            if let length = head.headerFields[.contentLength].flatMap({ Int($0) }), length > maxBodyBytes {
                refuse(context, status: .contentTooLarge, message: "http: request body too large")
                return
            }
            arm(context, seconds: limits.bodyTimeoutSeconds)
        case .body(let buffer):
            if refusing { return }
            bodyBytes += buffer.readableBytes
            if bodyBytes > maxBodyBytes {
                refuse(context, status: .contentTooLarge, message: "http: request body too large")
                return
            }
        case .end:
            if refusing { return }
            // The server is working on the request: no client time-out applies.
            deadline = nil
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            inFlight = max(0, inFlight - 1)
            if inFlight == 0 { arm(context, seconds: limits.idleTimeoutSeconds) }
        }
        context.write(data, promise: promise)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // The HTTP parser failed: answer once, then close, like Go's server does.
        if let parserError = error as? HTTPParserError {
            let status: HTTPResponse.Status = parserError == .headerOverflow ? .requestHeaderFieldsTooLarge : .badRequest
            refuse(context, status: status, message: status == .badRequest ? "malformed HTTP request" : "request headers too large")
            return
        }
        context.fireErrorCaught(error)
    }

    /// Writes a small JSON error, then closes the connection without reading anything more.
    private func refuse(_ context: ChannelHandlerContext, status: HTTPResponse.Status, message: String) {
        refusing = true
        deadline = nil
        // Both error shapes: the native API's `error`/`message` and Vault's `errors`.
        let code = status == .contentTooLarge ? "PayloadTooLarge" : "InvalidParam"
        let body = #"{"error":"\#(code)","message":"\#(message)","errors":["\#(message)"]}"#
        var buffer = context.channel.allocator.buffer(capacity: body.utf8.count)
        buffer.writeString(body)
        var head = HTTPResponse(status: status)
        head.headerFields[.contentType] = "application/json"
        head.headerFields[.contentLength] = String(body.utf8.count)
        head.headerFields[.connection] = "close"
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(buffer)), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }

    private func arm(_ context: ChannelHandlerContext, seconds: Int) {
        deadline = .now() + .seconds(Int64(seconds))
    }
}
