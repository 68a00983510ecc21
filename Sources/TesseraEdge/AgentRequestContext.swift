// The agent's request context: the client's address, for the audit events of cached reads.
import Hummingbird
import NIOCore

struct AgentRequestContext: RequestContext, RemoteAddressRequestContext {
    var coreContext: CoreRequestContextStorage
    let remoteAddress: SocketAddress?

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }

    /// The client's IP, or `local` on a unix socket.
    var clientAddress: String { remoteAddress?.ipAddress ?? "local" }
}
