// ListMethodRewriter: Vault clients send the custom method `LIST`, which NIO's HTTP parser
// rejects. This handler sits before the parser and rewrites the request line
// `LIST /v1/p HTTP/1.1` to `GET /v1/p?list=true HTTP/1.1`, which Vault treats identically.
// Methods the parser does not know at all (e.g. `FOO`) become `GET …?<unsupportedMarker>=1`,
// so that the front-ends can answer 405 with a JSON body instead of the parser's bare 400.
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
    static let unsupportedMarker = "x-tessera-unsupported-method"
    /// Methods NIO's parser accepts and the front-ends handle; anything else is marked unsupported.
    // TRACE and CONNECT are not served: they get the JSON 405 like any unknown method (a CONNECT
    // answered by the router had no length and left the client waiting).
    private static let known: Set<String> = ["GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS"]

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
        // Decide once the method token is complete.
        guard let space = view.firstIndex(of: UInt8(ascii: " ")) else {
            if view.count > 32 || view.contains(UInt8(ascii: "\n")) {
                state = .inRequest
                context.fireChannelRead(wrapInboundOut(incoming))
            } else {
                buffered = incoming
            }
            return
        }
        let method = String(decoding: view[view.startIndex..<space], as: UTF8.self)
        guard method == "LIST" || (!Self.known.contains(method) && method.allSatisfy { $0.isLetter && $0.isASCII }) else {
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
        let flag = method == "LIST" ? "list=true" : Self.unsupportedMarker + "=1"
        context.fireChannelRead(wrapInboundOut(Self.rewrite(incoming, methodLength: method.utf8.count, lineEnd: lineEnd - view.startIndex,
                                                            flag: flag, allocator: context.channel.allocator)))
    }

    /// Rewrites `<METHOD> <target> <version>` into `GET <target>?<flag> <version>`.
    static func rewrite(_ buffer: ByteBuffer, methodLength: Int, lineEnd: Int, flag: String, allocator: ByteBufferAllocator) -> ByteBuffer {
        let bytes = Array(buffer.readableBytesView)
        let start = methodLength + 1
        guard start < lineEnd else { return buffer }
        let line = bytes[start..<lineEnd]
        guard let space = line.lastIndex(of: UInt8(ascii: " ")) else { return buffer }
        let target = Array(bytes[start..<space])
        var out = allocator.buffer(capacity: bytes.count + 40)
        out.writeBytes(Array("GET ".utf8))
        out.writeBytes(target)
        out.writeBytes(Array(((target.contains(UInt8(ascii: "?")) ? "&" : "?") + flag).utf8))
        out.writeBytes(bytes[space...])
        return out
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        // The server is answering: whatever the client sends next starts a new request.
        state = .awaitingRequest
        context.write(data, promise: promise)
    }
}
