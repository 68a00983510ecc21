// `tessera operator init|unseal|seal|status`: seal management through the server's sys endpoints;
// `operator backup` (an online snapshot from a running server) and `operator restore` (offline,
// into an empty data directory).
import ArgumentParser
import Foundation
import NIOHTTP1
import TesseraCore
import TesseraServer

struct OperatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "operator", abstract: "Initialize, unseal, seal and inspect the server.",
                                                    subcommands: [Init.self, Unseal.self, Seal.self, Status.self, Backup.self, Restore.self, Rotate.self, RewrapStatus.self,
                                                                  Rekey.self, AuditDevices.self, Members.self])

    struct Init: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Initialize: split the root key and create the first admin.")
        @OptionGroup var api: APIOptions
        @Option(help: "Number of key shares.") var shares = 5
        @Option(help: "Shares needed to unseal.") var threshold = 3

        func run() async throws {
            try await runCLI {
                let (status, json) = try await APIClient.send(method: .PUT, url: api.resolvedAddress + "/v1/sys/init",
                                                              body: ["secret_shares": shares, "secret_threshold": threshold],
                                                              caCert: api.resolvedCACert)
                guard status == 200, let o = json as? [String: Any] else { throw CLIError(description: APIClient.errorText(status, json)) }
                if api.json { APIClient.print(o, options: api); return }
                let keys = o["keys_base64"] as? [String] ?? []
                for (i, k) in keys.enumerated() { print("Unseal Key \(i + 1): \(k)") }
                print("")
                print("Admin Access ID:  \(o["admin_access_id"] as? String ?? "")")
                print("Admin Access Key: \(o["admin_access_key"] as? String ?? "")")
                print("")
                print("Tessera is initialized with \(keys.count) key shares and a threshold of \(threshold).")
                print("These shares and the access key are shown once. Store them safely; Tessera keeps no copy.")
            }
        }
    }

    struct Unseal: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Submit one unseal key share (or several).")
        @OptionGroup var api: APIOptions
        @Argument(help: "Key shares (base64 or hex). Read from stdin when none is given.") var keys: [String] = []
        @Flag(help: "Forget the shares given so far.") var reset = false

        func run() async throws {
            try await runCLI {
                var shares = keys
                if shares.isEmpty && !reset {
                    guard let line = readLine(strippingNewline: true), !line.isEmpty else { throw CLIError(description: "no key share given") }
                    shares = [line]
                }
                var last: Any?
                if reset {
                    let (status, json) = try await APIClient.send(method: .PUT, url: api.resolvedAddress + "/v1/sys/unseal", body: ["reset": true], caCert: api.resolvedCACert)
                    guard status == 200 else { throw CLIError(description: APIClient.errorText(status, json)) }
                    last = json
                }
                for share in shares {
                    let (status, json) = try await APIClient.send(method: .PUT, url: api.resolvedAddress + "/v1/sys/unseal", body: ["key": share], caCert: api.resolvedCACert)
                    guard status == 200 else { throw CLIError(description: APIClient.errorText(status, json)) }
                    last = json
                }
                printStatus(last, api: api)
            }
        }
    }

    struct Seal: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Seal the server (needs an admin token).")
        @OptionGroup var api: APIOptions

        func run() async throws {
            try await runCLI {
                guard let token = api.resolvedToken else { throw CLIError(description: "not authenticated: run `tessera auth` first") }
                let (status, json) = try await APIClient.send(method: .PUT, url: api.resolvedAddress + "/v1/sys/seal", body: nil,
                                                              headers: [("X-Vault-Token", token)], caCert: api.resolvedCACert)
                guard (200..<300).contains(status) else { throw CLIError(description: APIClient.errorText(status, json)) }
                print("Tessera is sealed.")
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the seal status.")
        @OptionGroup var api: APIOptions

        func run() async throws {
            try await runCLI {
                let (status, json) = try await APIClient.send(method: .GET, url: api.resolvedAddress + "/v1/sys/seal-status", body: nil, caCert: api.resolvedCACert)
                guard status == 200 else { throw CLIError(description: APIClient.errorText(status, json)) }
                printStatus(json, api: api)
                if let o = json as? [String: Any], o["sealed"] as? Bool == true { throw ExitCode(2) }
            }
        }
    }

    static func describe(_ json: Any?) -> String {
        guard let o = json as? [String: Any] else { return "" }
        return """
        Initialized:  \(o["initialized"] as? Bool ?? false)
        Sealed:       \(o["sealed"] as? Bool ?? true)
        Shares:       \(o["n"] as? Int ?? 0)
        Threshold:    \(o["t"] as? Int ?? 0)
        Progress:     \(o["progress"] as? Int ?? 0)/\(o["t"] as? Int ?? 0)
        Storage:      \(o["storage_type"] as? String ?? "")
        Version:      \(o["version"] as? String ?? "")
        """
    }

    struct Backup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Take an online snapshot of all data and the audit trail (needs sys-rule read on /sys/backup).",
            discussion: "Values stay encrypted and the keyring stays sealed: restoring needs the unseal shares.")
        @OptionGroup var api: APIOptions
        @Option(help: "The snapshot file to write.") var out: String

        func run() async throws {
            try await runCLI {
                guard let token = api.resolvedToken else { throw CLIError(description: "not authenticated: run `tessera auth` first") }
                let meter = ProgressMeter(label: "backup")
                let (status, json) = try await APIClient.download(url: api.resolvedAddress + "/v1/sys/storage/raft/snapshot", token: token,
                                                                  caCert: api.resolvedCACert, to: out) { done, total in meter.show(done, total) }
                meter.end()
                guard status == 200 else { throw CLIError(description: APIClient.errorText(status, json)) }
                let size = (try? FileManager.default.attributesOfItem(atPath: out)[.size] as? NSNumber)?.int64Value ?? 0
                print("Snapshot written to \(out) (\(ProgressMeter.bytes(size))).")
            }
        }
    }

    struct Restore: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Restore a snapshot into an empty data directory (offline) and verify its audit chain.",
            discussion: "Then start a server on that directory and unseal it with the installation's shares.")
        @Argument(help: "The snapshot file from `operator backup`.") var file: String
        @Option(name: .customLong("data-dir"), help: "The data directory to create; it must be missing or empty.") var dataDir: String

        func run() async throws {
            try await runCLI {
                let meter = ProgressMeter(label: "restore")
                let report: RestoreReport
                do {
                    report = try await SnapshotRestore.restore(file, into: dataDir) { done, total in meter.show(done, Optional(total)) }
                } catch let e as TesseraError {
                    meter.end()
                    throw CLIError(description: e.message)
                }
                meter.end()
                print("Restored the snapshot of \(report.manifest.createdAt) into \(dataDir).")
                print("Audit trail: \(report.auditEvents) events, gap-free and linked"
                      + (report.anchorSequence.map { ", reaching its anchor (event \($0))" } ?? "") + ".")
                print("Start a server with --data-dir \(dataDir), unseal it with the installation's shares, then run `tessera audit verify`.")
            }
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a keyring term for new writes; a background rewrap then moves every stored value to it.")
        @OptionGroup var api: APIOptions

        func run() async throws {
            try await runCLI {
                let (status, json) = try await sys(.PUT, "/v1/sys/rotate", api: api)
                guard (200..<300).contains(status) else { throw CLIError(description: APIClient.errorText(status, json)) }
                let (_, key) = try await sys(.GET, "/v1/sys/key-status", api: api)
                let term = ((key as? [String: Any])?["term"]).map { "\($0)" } ?? "?"
                print("Key rotated: new writes use term \(term). Follow the rewrap with `tessera operator rewrap-status`.")
            }
        }
    }

    struct RewrapStatus: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rewrap-status",
                                                        abstract: "Show the active key term and how many stored values still use older terms.")
        @OptionGroup var api: APIOptions

        func run() async throws {
            try await runCLI {
                let (status, json) = try await sys(.GET, "/v1/sys/key-status", api: api)
                guard status == 200 else { throw CLIError(description: APIClient.errorText(status, json)) }
                if api.json { APIClient.print(json, options: api); return }
                let r = ((json as? [String: Any])?["rewrap"] as? [String: Any]) ?? [:]
                let remaining = r["remaining"] as? Int ?? 0, total = r["total"] as? Int ?? 0
                print("Active term:  \(r["active_term"] ?? "?")")
                print("Remaining:    \(remaining) of \(total) stored values use an older term")
                print("State:        \(remaining == 0 ? "done" : ((r["running"] as? Bool) == true ? "running" : "waiting"))")
                if let moved = r["moved"] { print("Moved:        \(moved) since the server started") }
                if let error = r["last_error"] as? String { print("Last error:   \(error)") }
            }
        }
    }

    struct Rekey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make new key shares (and threshold) from a quorum of the old ones, as `vault operator rekey` does.",
            discussion: "Start with --init --key-shares N --key-threshold T (needs a token), then give old shares one at a time with --nonce.")
        @OptionGroup var api: APIOptions
        @Flag(name: .customLong("init"), help: "Start a rekey.") var initialize = false
        @Flag(help: "Cancel the rekey in progress.") var cancel = false
        @Flag(help: "Show the rekey in progress.") var status = false
        @Option(name: .customLong("key-shares"), help: "New number of shares.") var keyShares: Int?
        @Option(name: .customLong("key-threshold"), help: "New threshold.") var keyThreshold: Int?
        @Option(help: "The nonce printed by --init.") var nonce: String?
        @Argument(help: "An old key share (or - to read it from standard input).") var key: String?

        func run() async throws {
            try await runCLI {
                if initialize {
                    let body: [String: Any] = ["secret_shares": keyShares ?? 5, "secret_threshold": keyThreshold ?? 3]
                    let (code, json) = try await sys(.PUT, "/v1/sys/rekey/init", api: api, body: body)
                    guard code == 200 else { throw CLIError(description: APIClient.errorText(code, json)) }
                    let o = json as? [String: Any] ?? [:]
                    if api.json { APIClient.print(json, options: api); return }
                    print("Rekey started.\nNonce:             \(o["nonce"] ?? "")\nNew shares:        \(o["n"] ?? "")")
                    print("New threshold:     \(o["t"] ?? "")\nOld shares needed: \(o["required"] ?? "")")
                    return
                }
                if cancel {
                    let (code, json) = try await sys(.DELETE, "/v1/sys/rekey/init", api: api)
                    guard (200..<300).contains(code) else { throw CLIError(description: APIClient.errorText(code, json)) }
                    print("Rekey cancelled.")
                    return
                }
                if status || key == nil {
                    let (code, json) = try await sys(.GET, "/v1/sys/rekey/init", api: api)
                    guard code == 200 else { throw CLIError(description: APIClient.errorText(code, json)) }
                    APIClient.print(json, options: api)
                    return
                }
                guard let nonce else { throw CLIError(description: "--nonce is required with a key share (see --init's output)") }
                let share = try SecretInput.resolve(key ?? "", flag: "key")
                let (code, json) = try await sys(.PUT, "/v1/sys/rekey/update", api: api, body: ["key": share, "nonce": nonce], withToken: false)
                guard code == 200 else { throw CLIError(description: APIClient.errorText(code, json)) }
                let o = json as? [String: Any] ?? [:]
                if api.json { APIClient.print(json, options: api); return }
                if o["complete"] as? Bool == true {
                    for (i, k) in ((o["keys_base64"] as? [String]) ?? []).enumerated() { print("Key \(i + 1): \(k)") }
                    print("\nRekey complete: the old shares no longer unseal. These new shares are shown once; store them safely.")
                } else {
                    print("Rekey progress: \(o["progress"] ?? 0) of \(o["required"] ?? 0) old shares given.")
                }
            }
        }
    }

    struct AuditDevices: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "audit-devices",
                                                        abstract: "List the audit devices with their delivery cursor, lag and failures.")
        @OptionGroup var api: APIOptions

        func run() async throws {
            try await runCLI {
                let (code, json) = try await sys(.GET, "/v1/sys/audit", api: api)
                guard code == 200 else { throw CLIError(description: APIClient.errorText(code, json)) }
                if api.json { APIClient.print(json, options: api); return }
                let devices = ((json as? [String: Any])?["data"] as? [String: Any]) ?? [:]
                if devices.isEmpty { print("No audit devices (the built-in trail records every request)."); return }
                print(["NAME", "TYPE", "LAG", "DELIVERED", "FAILURES", "LAST ERROR"].joined(separator: "\t"))
                for name in devices.keys.sorted() {
                    let d = devices[name] as? [String: Any] ?? [:]
                    let s = d["status"] as? [String: Any] ?? [:]
                    print([String(name.dropLast()), d["type"] as? String ?? "", "\(s["lag"] ?? 0)", "\(s["delivered"] ?? 0)",
                           "\(s["failures"] ?? 0)", s["last_error"] as? String ?? "-"].joined(separator: "\t"))
                }
            }
        }
    }

    struct Members: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "members",
                                                        abstract: "List the nodes sharing the store, with their last heartbeat.")
        @OptionGroup var api: APIOptions

        func run() async throws {
            try await runCLI {
                let (code, json) = try await sys(.GET, "/v1/sys/ha-status", api: api)
                guard code == 200 else { throw CLIError(description: APIClient.errorText(code, json)) }
                if api.json { APIClient.print(json, options: api); return }
                let nodes = ((json as? [String: Any])?["nodes"] as? [[String: Any]]) ?? []
                print(["NODE", "HOSTNAME", "API ADDRESS", "STATE", "LAST HEARTBEAT", "STARTED"].joined(separator: "\t"))
                for n in nodes {
                    let id = String((n["node_id"] as? String ?? "").prefix(8))
                    let name = (n["is_self"] as? Bool) == true ? id + " (this node)" : id
                    print([name, n["hostname"] as? String ?? "", n["api_address"] as? String ?? "",
                           (n["active_node"] as? Bool) == true ? "alive" : "dead",
                           n["last_echo"] as? String ?? "now", n["started_at"] as? String ?? ""].joined(separator: "\t"))
                }
            }
        }
    }

    /// A Vault-shaped sys call with the token (when known).
    static func sys(_ method: HTTPMethod, _ path: String, api: APIOptions, body: [String: Any]? = nil,
                    withToken: Bool = true) async throws -> (Int, Any?) {
        var headers: [(String, String)] = []
        if withToken, let token = api.resolvedToken { headers.append(("X-Vault-Token", token)) }
        return try await APIClient.send(method: method, url: api.resolvedAddress + path, body: body, headers: headers, caCert: api.resolvedCACert)
    }
}

private func printStatus(_ json: Any?, api: APIOptions) {
    if api.json { APIClient.print(json, options: api) } else { print(OperatorCommand.describe(json)) }

}

/// A one-line progress display on stderr, only when stderr is a terminal.
final class ProgressMeter {
    let label: String
    let enabled = isatty(STDERR_FILENO) == 1
    private var lastPercent = -1
    private var shown = false

    init(label: String) { self.label = label }

    func show(_ done: Int64, _ total: Int64?) {
        guard enabled else { return }
        let percent = total.map { $0 > 0 ? Int(done * 100 / $0) : 100 } ?? -1
        guard percent != lastPercent || total == nil else { return }
        lastPercent = percent
        shown = true
        let text = percent >= 0 ? "\r\(label): \(percent)% (\(Self.bytes(done)))" : "\r\(label): \(Self.bytes(done))"
        FileHandle.standardError.write(Data(text.utf8))
    }

    func end() {
        if shown { FileHandle.standardError.write(Data("\n".utf8)) }
        shown = false
    }

    static func bytes(_ n: Int64) -> String {
        n >= 1 << 20 ? String(format: "%.1f MiB", Double(n) / Double(1 << 20)) : (n >= 1 << 10 ? String(format: "%.1f KiB", Double(n) / 1024) : "\(n) B")
    }
}
