// `tessera run [--env NAME=/path[#key]]… [--folder /app/prod]… -- COMMAND [ARGS…]`: runs a program
// with its secrets in the environment. Static, rotated and dynamic secrets are fetched before the
// child starts (a failure stops there); a dynamic credential's lease is renewed while the child
// runs and revoked when it exits; signals go to the child and its exit code comes back. With
// --watch, a change to an injected static or rotated secret restarts the child (or signals it).
import ArgumentParser
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run a command with secrets in its environment.",
        discussion: """
            --env NAME=/path injects a secret's value; NAME=/path#key one key of a JSON value (for rotated \\
            secrets: username or password; for dynamic secrets: username or password, the lease being renewed \\
            while the command runs and revoked when it exits). --folder /app/prod injects every static and \\
            rotated secret under the folder, named after its path (db-password → DB_PASSWORD). --env-file reads \\
            NAME=/path lines. The command gets the signals tessera receives, and its exit code is tessera's.
            """)
    @OptionGroup var api: APIOptions
    @Option(name: .customLong("env"), help: "NAME=/path or NAME=/path#key. Repeatable.") var envs: [String] = []
    @Option(name: .customLong("folder"), help: "A folder whose secrets are all injected. Repeatable.") var folders: [String] = []
    @Option(name: .customLong("env-file"), help: "A file of NAME=/path[#key] lines (# comments).") var envFile: String?
    @Flag(help: "Restart the command (or send --signal) when an injected static or rotated secret changes.") var watch = false
    @Option(name: .customLong("watch-interval"), help: "Seconds between change checks with --watch (default 10).") var watchInterval: Int = 10
    @Option(help: "With --watch: send this signal (e.g. HUP) instead of restarting.") var signal: String?
    @Argument(parsing: .captureForPassthrough, help: "-- COMMAND [ARGS…]") var command: [String] = []

    struct Binding: Sendable {
        var name: String
        var path: String
        var key: String?
    }

    struct Lease: Sendable {
        var producer: String
        var id: String
        var seconds: Int
        var credentials: [String: String]
    }

    func bindings() throws -> [Binding] {
        var lines = envs
        if let envFile {
            guard let data = FileManager.default.contents(atPath: envFile) else { throw CLIError(description: "cannot read --env-file \(envFile)") }
            lines += String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).map(String.init)
                .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && !$0.hasPrefix("#") }
        }
        return try lines.map { line in
            let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, Self.isVariableName(parts[0]), parts[1].hasPrefix("/") else {
                throw CLIError(description: "invalid --env '\(line.prefix(80))': expected NAME=/path or NAME=/path#key")
            }
            let target = parts[1].split(separator: "#", maxSplits: 1).map(String.init)
            return Binding(name: parts[0], path: target[0], key: target.count == 2 ? target[1] : nil)
        }
    }

    static func isVariableName(_ s: String) -> Bool {
        guard let first = s.unicodeScalars.first, first == "_" || (first.isASCII && CharacterSet.letters.contains(first)) else { return false }
        return s.unicodeScalars.allSatisfy { $0 == "_" || ($0.isASCII && CharacterSet.alphanumerics.contains($0)) }
    }

    /// `/app/prod/db-password` under `/app/prod` → `DB_PASSWORD`.
    static func variableName(_ path: String, under folder: String) -> String {
        var rest = path.hasPrefix(folder) ? String(path.dropFirst(folder.count)) : path
        while rest.hasPrefix("/") { rest.removeFirst() }
        var name = String(rest.uppercased().unicodeScalars.map { $0.isASCII && CharacterSet.alphanumerics.contains($0) ? Character($0) : "_" })
        if let first = name.first, first.isNumber { name = "_" + name }
        return name
    }

    static func pick(_ value: Any, key: String?, path: String) throws -> String {
        guard let key else {
            if let s = value as? String { return s }
            return APIClient.render(value, compact: true)
        }
        var object = value as? [String: Any]
        if object == nil, let s = value as? String, let parsed = try? JSONSerialization.jsonObject(with: Data(s.utf8)) as? [String: Any] {
            object = parsed
        }
        guard let object else { throw CLIError(description: "\(path) is not a JSON object, so it has no key '\(key)'") }
        let alias = key == "user" ? "username" : key
        guard let v = object[alias] ?? object[key] else { throw CLIError(description: "\(path) has no key '\(key)'") }
        return v as? String ?? APIClient.render(v, compact: true)
    }

    /// The value of one binding; dynamic secrets add their lease to `leases`.
    func fetch(_ b: Binding, leases: inout [Lease]) async throws -> String {
        var type = ""
        do {
            let item = try await APIClient.call("describe-item", ["name": b.path], options: api) as? [String: Any] ?? [:]
            type = item["item_type"] as? String ?? ""
        } catch {
            // Dynamic secrets are producers, not items.
            guard (try? await APIClient.call("dynamic-secret-get", ["name": b.path], options: api)) != nil else { throw error }
            type = "DYNAMIC_SECRET"
        }
        switch type {
        case "DYNAMIC_SECRET":
            // One credential per dynamic secret, however many variables name it.
            if let known = leases.first(where: { $0.producer == b.path }) {
                return try Self.pick(known.credentials, key: b.key, path: b.path)
            }
            let c = try await APIClient.call("get-dynamic-secret-value", ["name": b.path], options: api) as? [String: Any] ?? [:]
            let creds: [String: String] = ["username": c["user"] as? String ?? "", "password": c["password"] as? String ?? ""]
            if let id = c["lease_id"] as? String {
                leases.append(Lease(producer: b.path, id: id, seconds: (c["lease_duration"] as? Int) ?? 60, credentials: creds))
            }
            return try Self.pick(creds, key: b.key, path: b.path)
        case "ROTATED_SECRET":
            let r = try await APIClient.call("get-rotated-secret-value", ["names": b.path], options: api) as? [String: Any] ?? [:]
            return try Self.pick(r["value"] ?? [:], key: b.key, path: b.path)
        default:
            let r = try await APIClient.call("get-secret-value", ["names": [b.path]], options: api) as? [String: Any] ?? [:]
            guard let v = r[b.path] else { throw CLIError(description: "\(b.path) has no value") }
            return try Self.pick(v, key: b.key, path: b.path)
        }
    }

    /// Every binding: the explicit ones, then each static and rotated secret of each folder.
    func resolve(_ explicit: [Binding], leases: inout [Lease]) async throws -> (env: [String: String], watched: [Binding]) {
        var all: [Binding] = []
        for folder in folders {
            let listed = try await APIClient.call("list-items", ["path": folder], options: api) as? [String: Any] ?? [:]
            for item in listed["items"] as? [[String: Any]] ?? [] {
                guard let path = item["item_name"] as? String, ["STATIC_SECRET", "ROTATED_SECRET"].contains(item["item_type"] as? String ?? "") else { continue }
                let name = Self.variableName(path, under: folder)
                if Self.isVariableName(name) { all.append(Binding(name: name, path: path, key: nil)) }
            }
        }
        all += explicit
        var env: [String: String] = [:]
        for b in all { env[b.name] = try await fetch(b, leases: &leases) }
        // Dynamic credentials are not watched: they are renewed, never re-issued.
        let dynamic = Set(leases.map(\.producer))
        return (env, all.filter { !dynamic.contains($0.path) })
    }

    func run() async throws {
        try await runCLI {
            guard !command.isEmpty else { throw CLIError(description: "no command given: tessera run [flags] -- COMMAND [ARGS…]") }
            let explicit = try bindings()
            let watchSignal = try signal.map(Self.signalNumber)
            var leases: [Lease] = []
            var resolved: (env: [String: String], watched: [Binding])
            do {
                resolved = try await resolve(explicit, leases: &leases)
            } catch {
                await revoke(leases)
                throw error
            }
            var renewAt = leases.map { ContinuousClock.now + .seconds(max(1, $0.seconds / 2)) }
            var status: Int32 = 0
            // One loop, no concurrency: every 200 ms it looks at the child, the leases due for
            // renewal and, with --watch, whether an injected secret changed.
            // Signals go to whichever child runs now (one set of handlers for every restart).
            let current = ChildPID()
            let forwarding = Self.forwardSignals(to: current)
            defer { forwarding.forEach { $0.cancel() } }
            while true {
                let child = try Self.start(command, env: resolved.env)
                current.set(child.processIdentifier)
                var restart = false
                var nextCheck = ContinuousClock.now + .seconds(max(1, watchInterval))
                while child.isRunning {
                    try? await Task.sleep(for: .milliseconds(200))
                    for i in leases.indices where ContinuousClock.now >= renewAt[i] {
                        await renew(leases[i])
                        renewAt[i] = ContinuousClock.now + .seconds(max(1, leases[i].seconds / 2))
                    }
                    guard watch, ContinuousClock.now >= nextCheck, child.isRunning else { continue }
                    nextCheck = ContinuousClock.now + .seconds(max(1, watchInterval))
                    guard let fresh = await changedValues(resolved) else { continue }
                    resolved.env = fresh
                    if let watchSignal {
                        kill(child.processIdentifier, watchSignal)
                    } else {
                        restart = true
                        kill(child.processIdentifier, SIGTERM)
                    }
                }
                status = Self.exitStatus(child)
                if !restart { break }
            }
            await revoke(leases)
            if status != 0 { throw ExitCode(status) }
        }
    }

    /// The environment with new values when an injected static or rotated secret changed; nil
    /// when nothing did (or it cannot be read right now).
    func changedValues(_ resolved: (env: [String: String], watched: [Binding])) async -> [String: String]? {
        var env = resolved.env
        var changed = false
        for b in resolved.watched {
            var issued: [Lease] = []
            guard let value = try? await fetch(b, leases: &issued) else { continue }
            if value != env[b.name] {
                env[b.name] = value
                changed = true
            }
        }
        return changed ? env : nil
    }

    /// The child's exit status: its code, or 128 + the signal that ended it (as a shell reports).
    static func exitStatus(_ p: Process) -> Int32 {
        p.waitUntilExit()
        return p.terminationReason == .uncaughtSignal ? 128 + p.terminationStatus : p.terminationStatus
    }

    func renew(_ l: Lease) async {
        if (try? await APIClient.call("dynamic-secret-tmp-creds-update", ["name": l.producer, "tmp-creds-id": l.id], options: api)) == nil {
            FileHandle.standardError.write(Data("tessera run: renewing the lease of \(l.producer) failed\n".utf8))
        }
    }

    static func signalNumber(_ name: String) throws -> Int32 {
        let n = name.uppercased().replacingOccurrences(of: "SIG", with: "")
        let table: [String: Int32] = ["HUP": SIGHUP, "INT": SIGINT, "QUIT": SIGQUIT, "TERM": SIGTERM, "USR1": SIGUSR1, "USR2": SIGUSR2]
        if let s = table[n] { return s }
        throw CLIError(description: "unknown signal '\(name)': use HUP, INT, QUIT, TERM, USR1 or USR2")
    }

    static func start(_ command: [String], env: [String: String]) throws -> Process {
        let p = Process()
        let program = command[0]
        if program.contains("/") {
            p.executableURL = URL(fileURLWithPath: program)
            p.arguments = Array(command.dropFirst())
        } else {
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = command
        }
        p.environment = ProcessInfo.processInfo.environment.merging(env) { _, injected in injected }
        do { try p.run() } catch { throw CLIError(description: "cannot start \(program): \(error.localizedDescription)") }
        return p
    }

    static func forwardSignals(to current: ChildPID) -> [any DispatchSourceSignal] {
        [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2].map { sig in
            Glibc.signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                let pid = current.get()
                if pid > 0 { kill(pid, sig) }
            }
            source.resume()
            return source
        }
    }

    func revoke(_ leases: [Lease]) async {
        for l in leases {
            if (try? await APIClient.call("dynamic-secret-tmp-creds-delete", ["name": l.producer, "tmp-creds-id": l.id], options: api)) == nil {
                FileHandle.standardError.write(Data("tessera run: revoking the lease of \(l.producer) failed; it expires by itself\n".utf8))
            }
        }
    }
}

/// The process id of the child that runs now, shared with the signal handlers.
final class ChildPID: Sendable {
    private let pid = Mutex<Int32>(0)
    func set(_ value: Int32) { pid.withLock { $0 = value } }
    func get() -> Int32 { pid.withLock { $0 } }
}
