// ListMethodRewriter: Vault clients send the custom method `LIST`, which NIO's HTTP parser
// rejects. This handler sits before the parser and rewrites the request line
// `LIST /v1/p HTTP/1.1` to `GET /v1/p?list=true HTTP/1.1`, which Vault treats identically.
// It only inspects the first bytes of each request: a request starts when the connection opens
// and again after the server has begun answering the previous one (clients here do not pipeline).
import NIOCore

final class ListMethodRewriter: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    private enum State {
        case awaitingRequest
        case inRequest
    }

    private var state = State.awaitingRequest
    private var buffered: ByteBuffer?
    static let maxRequestLine = 16 * 1024
    private static let list = Array("LIST ".utf8)

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard state == .awaitingRequest else {
            context.fireChannelRead(data)
            return
        }
        var incoming = unwrapInboundIn(data)
        if var pending = buffered {
            pending.writeBuffer(&incoming)
            incoming = pending
            buffered = nil
        }
        let view = incoming.readableBytesView
        // Decide as soon as the method is known.
        let prefixLength = min(view.count, Self.list.count)
        guard view.prefix(prefixLength).elementsEqual(Self.list.prefix(prefixLength)) else {
            state = .inRequest
            context.fireChannelRead(wrapInboundOut(incoming))
            return
        }
        guard let lineEnd = view.firstIndex(of: UInt8(ascii: "\n")) else {
            if view.count > Self.maxRequestLine {
                state = .inRequest
                context.fireChannelRead(wrapInboundOut(incoming))
            } else {
                buffered = incoming
            }
            return
        }
        state = .inRequest
        context.fireChannelRead(wrapInboundOut(Self.rewrite(incoming, lineEnd: lineEnd - view.startIndex, allocator: context.channel.allocator)))
    }

    /// Rewrites `LIST <target> <version>` into `GET <target>?list=true <version>`.
    static func rewrite(_ buffer: ByteBuffer, lineEnd: Int, allocator: ByteBufferAllocator) -> ByteBuffer {
        let bytes = Array(buffer.readableBytesView)
        let line = bytes[list.count..<lineEnd]
        guard let space = line.lastIndex(of: UInt8(ascii: " ")) else { return buffer }
        let target = Array(bytes[list.count..<space])
        var out = allocator.buffer(capacity: bytes.count + 16)
        out.writeBytes(Array("GET ".utf8))
        out.writeBytes(target)
        out.writeBytes(Array((target.contains(UInt8(ascii: "?")) ? "&list=true" : "?list=true").utf8))
        out.writeBytes(bytes[space...])
        return out
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        // The server is answering: whatever the client sends next starts a new request.
        state = .awaitingRequest
        context.write(data, promise: promise)
    }
}
