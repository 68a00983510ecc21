// `tessera operator init|unseal|seal|status`: seal management through the server's sys endpoints;
// `operator backup` (an online snapshot from a running server) and `operator restore` (offline,
// into an empty data directory).
import ArgumentParser
import Foundation
import TesseraCore
import TesseraServer

struct OperatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "operator", abstract: "Initialize, unseal, seal and inspect the server.",
                                                    subcommands: [Init.self, Unseal.self, Seal.self, Status.self, Backup.self, Restore.self])

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
