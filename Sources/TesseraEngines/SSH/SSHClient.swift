// A small SSH client on swift-nio-ssh for targets and rotators: it connects with a password or
// a private key, checks the server's host key against the pinned one, runs one command with
// input on stdin, and returns its exit status and output. Errors say what failed (unreachable,
// host key, authentication, command) and never contain a password, key or command input.
import Crypto
import Foundation
import NIOCore
import NIOPosix
import NIOSSH
import Synchronization
import TesseraCore

/// How to log in.
public enum SSHAuthentication: Sendable {
    case password(String)
    case privateKey(NIOSSHPrivateKey)
}

/// Where and as whom to connect, and which host key to expect (nil: accept and report it).
public struct SSHEndpoint: Sendable {
    public var host: String
    public var port: Int
    public var username: String
    public var authentication: SSHAuthentication
    /// The pinned host key in OpenSSH form (`ssh-ed25519 AAAA…`).
    public var hostKey: String?

    public init(host: String, port: Int, username: String, authentication: SSHAuthentication, hostKey: String?) {
        self.host = host
        self.port = port
        self.username = username
        self.authentication = authentication
        self.hostKey = hostKey
    }
}

public struct SSHCommandResult: Sendable {
    public var exitStatus: Int
    public var stdout: String
    public var stderr: String
    /// The host key the server presented (OpenSSH form).
    public var hostKey: String
}

public enum SSHClient {
    /// Logs in and runs `command`, writing `input` to its stdin and then closing stdin.
    public static func run(_ endpoint: SSHEndpoint, command: String, input: [UInt8] = [], timeout: Duration = .seconds(30)) async throws -> SSHCommandResult {
        let expected: NIOSSHPublicKey?
        if let pinned = endpoint.hostKey, !pinned.isEmpty {
            do {
                expected = try NIOSSHPublicKey(openSSHPublicKey: pinned)
            } catch {
                throw TesseraError.badRequest("the pinned host key is not an OpenSSH public key this server supports (ssh-ed25519 or ecdsa-sha2-nistp256/384/521)")
            }
        } else {
            expected = nil
        }
        let state = SSHSessionState()
        let where_ = "\(endpoint.host):\(endpoint.port)"
        let offer: NIOSSHUserAuthenticationOffer.Offer
        switch endpoint.authentication {
        case .password(let p): offer = .password(.init(password: p))
        case .privateKey(let k): offer = .privateKey(.init(privateKey: k))
        }
        let username = endpoint.username
        let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let client = SSHClientConfiguration(
                        userAuthDelegate: OneOfferAuthDelegate(offer: NIOSSHUserAuthenticationOffer(username: username, serviceName: "", offer: offer), state: state),
                        serverAuthDelegate: PinnedHostKeyDelegate(expected: expected, state: state))
                    let handler = NIOSSHHandler(role: .client(client), allocator: channel.allocator, inboundChildChannelInitializer: nil)
                    try channel.pipeline.syncOperations.addHandler(handler)
                    try channel.pipeline.syncOperations.addHandler(CloseOnErrorHandler())
                }
            }
        let channel: Channel
        do {
            channel = try await bootstrap.connect(host: endpoint.host, port: endpoint.port).get()
        } catch {
            throw TesseraError.badGateway("cannot reach SSH at \(where_) (connection failed)")
        }
        let result = channel.eventLoop.makePromise(of: SSHCommandResult.self)
        let child = channel.eventLoop.makePromise(of: Channel.self)
        let presented: @Sendable () -> String = { state.hostKey.withLock { $0.map { String(openSSHPublicKey: $0) } ?? "" } }
        channel.closeFuture.whenComplete { _ in
            child.fail(SSHFailure.closed)
            result.fail(SSHFailure.closed)
        }
        let timeoutTask = channel.eventLoop.scheduleTask(in: .seconds(timeout.components.seconds)) {
            result.fail(SSHFailure.timedOut)
            channel.close(promise: nil)
        }
        channel.eventLoop.execute {
            do {
                let ssh = try channel.pipeline.syncOperations.handler(type: NIOSSHHandler.self)
                ssh.createChannel(child, channelType: .session) { childChannel, type in
                    guard case .session = type else { return childChannel.eventLoop.makeFailedFuture(SSHFailure.closed) }
                    return childChannel.eventLoop.makeCompletedFuture {
                        try childChannel.pipeline.syncOperations.addHandler(
                            ExecHandler(command: command, input: input, hostKey: presented, promise: result))
                    }
                }
            } catch {
                child.fail(error)
            }
        }
        defer {
            timeoutTask.cancel()
            channel.close(promise: nil)
        }
        do {
            _ = try await child.futureResult.get()
            return try await result.futureResult.get()
        } catch {
            if state.hostKeyMismatch.withLock({ $0 }) {
                throw TesseraError.badRequest("the host key of \(where_) does not match the pinned key (expected \(Self.fingerprint(expected)), got \(Self.fingerprint(state.hostKey.withLock { $0 }))); refusing to connect")
            }
            if state.authenticationFailed.withLock({ $0 }) {
                throw TesseraError.badRequest("SSH authentication failed for user \(endpoint.username) on \(where_)")
            }
            if case SSHFailure.timedOut = error {
                throw TesseraError.gatewayTimeout("SSH command on \(where_) timed out")
            }
            throw TesseraError.badGateway("the SSH session with \(where_) failed")
        }
    }

    /// `SHA256:<base64>` as `ssh-keygen -l` prints it.
    public static func fingerprint(_ key: NIOSSHPublicKey?) -> String {
        guard let key else { return "none" }
        let text = String(openSSHPublicKey: key)
        let parts = text.split(separator: " ")
        guard parts.count >= 2, let blob = Data(base64Encoded: String(parts[1])) else { return "unknown" }
        var b64 = Data(SHA256.hash(data: blob)).base64EncodedString()
        while b64.hasSuffix("=") { b64.removeLast() }
        return "SHA256:" + b64
    }
}

enum SSHFailure: Error {
    case closed
    case timedOut
    case hostKeyMismatch
}

/// What the delegates learn during one connection.
final class SSHSessionState: Sendable {
    let hostKey = Mutex<NIOSSHPublicKey?>(nil)
    let hostKeyMismatch = Mutex(false)
    let authenticationFailed = Mutex(false)
}

/// Offers one credential once; a second request means the server refused it.
final class OneOfferAuthDelegate: NIOSSHClientUserAuthenticationDelegate {
    private var offer: NIOSSHUserAuthenticationOffer?
    private let state: SSHSessionState

    init(offer: NIOSSHUserAuthenticationOffer, state: SSHSessionState) {
        self.offer = offer
        self.state = state
    }

    func nextAuthenticationType(availableMethods: NIOSSHAvailableUserAuthenticationMethods,
                                nextChallengePromise: EventLoopPromise<NIOSSHUserAuthenticationOffer?>) {
        guard let offer else {
            state.authenticationFailed.withLock { $0 = true }
            nextChallengePromise.succeed(nil)
            return
        }
        self.offer = nil
        let usable: Bool
        switch offer.offer {
        case .password: usable = availableMethods.contains(.password)
        case .privateKey: usable = availableMethods.contains(.publicKey)
        default: usable = false
        }
        if !usable { state.authenticationFailed.withLock { $0 = true } }
        nextChallengePromise.succeed(usable ? offer : nil)
    }
}

/// Accepts the server only if it presents the pinned key (any key when none is pinned), and
/// records the key it presented.
final class PinnedHostKeyDelegate: NIOSSHClientServerAuthenticationDelegate {
    let expected: NIOSSHPublicKey?
    let state: SSHSessionState

    init(expected: NIOSSHPublicKey?, state: SSHSessionState) {
        self.expected = expected
        self.state = state
    }

    func validateHostKey(hostKey: NIOSSHPublicKey, validationCompletePromise: EventLoopPromise<Void>) {
        state.hostKey.withLock { $0 = hostKey }
        if let expected, expected != hostKey {
            state.hostKeyMismatch.withLock { $0 = true }
            validationCompletePromise.fail(SSHFailure.hostKeyMismatch)
        } else {
            validationCompletePromise.succeed(())
        }
    }
}

/// Closes the connection on any error, so that waiting promises fail instead of hanging.
final class CloseOnErrorHandler: ChannelInboundHandler {
    typealias InboundIn = Any

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// Runs one command on a session channel: sends the exec request and the input, closes stdin,
/// collects stdout, stderr and the exit status.
final class ExecHandler: ChannelDuplexHandler {
    typealias InboundIn = SSHChannelData
    typealias OutboundIn = SSHChannelData
    typealias OutboundOut = SSHChannelData

    let command: String
    let input: [UInt8]
    let hostKey: @Sendable () -> String
    let promise: EventLoopPromise<SSHCommandResult>
    var stdout = ByteBuffer()
    var stderr = ByteBuffer()
    var exitStatus: Int?

    init(command: String, input: [UInt8], hostKey: @escaping @Sendable () -> String, promise: EventLoopPromise<SSHCommandResult>) {
        self.command = command
        self.input = input
        self.hostKey = hostKey
        self.promise = promise
    }

    func handlerAdded(context: ChannelHandlerContext) {
        context.channel.setOption(ChannelOptions.allowRemoteHalfClosure, value: true).whenFailure { [promise] error in
            promise.fail(error)
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        context.triggerUserOutboundEvent(SSHChannelRequestEvent.ExecRequest(command: command, wantReply: false), promise: nil)
        if !input.isEmpty {
            let data = SSHChannelData(type: .channel, data: .byteBuffer(context.channel.allocator.buffer(bytes: input)))
            context.writeAndFlush(wrapOutboundOut(data), promise: nil)
        }
        context.close(mode: .output, promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = unwrapInboundIn(data)
        guard case .byteBuffer(var bytes) = message.data else { return }
        switch message.type {
        case .channel: stdout.writeBuffer(&bytes)
        case .stdErr: stderr.writeBuffer(&bytes)
        default: break
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let status = event as? SSHChannelRequestEvent.ExitStatus {
            exitStatus = status.exitStatus
        } else if event is SSHChannelRequestEvent.ExitSignal {
            exitStatus = 255
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        finish()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
        context.close(promise: nil)
    }

    private func finish() {
        guard let exitStatus else {
            promise.fail(SSHFailure.closed)
            return
        }
        promise.succeed(SSHCommandResult(exitStatus: exitStatus, stdout: String(buffer: stdout), stderr: String(buffer: stderr),
                                         hostKey: hostKey()))
    }
}
