// The HTTP/1 child channel: TLS first when the listener has a certificate (`TLSListener.swift`),
// then the LIST rewriter in front of Hummingbird's HTTP1Channel parser, and the HTTP limits
// (`HTTPLimits.swift`) after it.
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOSSL

struct TesseraHTTPChannel: ServerChildChannel {
    let inner: HTTP1Channel
    let tls: TLSContextHolder?

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<HTTP1Channel.Value> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(ListMethodRewriter(), position: .first)
            if let tls {
                // The context of this moment: a SIGHUP later changes only new connections.
                let handler: NIOSSLServerHandler
                if tls.settings.clientCAFile == nil {
                    // Certificate auth, as Vault's listener does: ask for a client certificate
                    // without requiring one, and accept any; the cert auth method decides trust.
                    handler = NIOSSLServerHandler(context: tls.context) { _, promise in promise.succeed(.certificateVerified) }
                } else {
                    handler = NIOSSLServerHandler(context: tls.context)
                }
                try channel.pipeline.syncOperations.addHandler(handler, position: .first)
                try channel.pipeline.syncOperations.addHandler(PlainHTTPOnTLSPort(), position: .first)
            }
        }.flatMap {
            inner.setup(channel: channel, logger: logger)
        }
    }

    func handle(value: HTTP1Channel.Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }

    /// The server with the HTTP limits on every connection (`HTTPLimitsHandler`), and NIO's
    /// header limits set to the same size.
    static func builder(limits: HTTPLimits, maxBodyBytes: Int, tls: TLSContextHolder?) -> HTTPServerBuilder {
        let counter = ConnectionCounter()
        return HTTPServerBuilder { responder in
            let decoder = HTTP1Channel.Configuration.DecoderConfiguration(maxHeaderFieldSize: limits.maxHeaderBytes,
                                                                          maxHeaderListSize: limits.maxHeaderBytes,
                                                                          maxHeaderFieldCount: 1000)
            let configuration = HTTP1Channel.Configuration(
                additionalChannelHandlers: [HTTPLimitsHandler(limits: limits, maxBodyBytes: maxBodyBytes, counter: counter)],
                idleTimeout: nil, httpDecoderConfiguration: decoder)
            return TesseraHTTPChannel(inner: HTTP1Channel(responder: responder, configuration: configuration), tls: tls)
        }
    }
}
