// The HTTP/1 child channel: Hummingbird's HTTP1Channel with the LIST rewriter in front of the parser.
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore

struct TesseraHTTPChannel: ServerChildChannel {
    let inner: HTTP1Channel

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<HTTP1Channel.Value> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(ListMethodRewriter(), position: .first)
        }.flatMap {
            inner.setup(channel: channel, logger: logger)
        }
    }

    func handle(value: HTTP1Channel.Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }

    static var builder: HTTPServerBuilder {
        HTTPServerBuilder { responder in
            TesseraHTTPChannel(inner: HTTP1Channel(responder: responder))
        }
    }
}
