// The Hummingbird request context: carries the client's socket address for the audit trail, and
// the connection, from which certificate authentication reads the client's TLS certificate.
import Hummingbird
import NIOCore
import NIOSSL

public struct TesseraRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?
    let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
        channel = source.channel
    }

    /// The client address as text (IP only), or `unknown`.
    public var clientAddress: String {
        remoteAddress?.ipAddress ?? "unknown"
    }

    /// The client's TLS certificate, when it presented one: verified against the client CA when one
    /// is configured, else by nothing yet — the cert auth method decides trust (see `TLSListener.swift`).
    public func clientCertificate() async -> NIOSSLCertificate? {
        await peerCertificate(of: channel)
    }
}
