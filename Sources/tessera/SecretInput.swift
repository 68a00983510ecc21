// SecretInput: where the CLI reads a secret flag from. A value on the command line is visible to
// every local user in the process list, so `-` (standard input), `@FILE` and `env:NAME` are
// offered, and a plain value prints a warning.
import Foundation

enum SecretInput {
    /// Resolves `--flag VALUE`: `-` reads standard input (one trailing newline removed), `@path`
    /// reads a file, `env:NAME` reads an environment variable; anything else is used as given,
    /// with a warning on stderr.
    static func resolve(_ raw: String, flag: String) throws -> String {
        if raw == "-" {
            var data = FileHandle.standardInput.readDataToEndOfFile()
            if data.last == 0x0A { data.removeLast() }
            if data.last == 0x0D { data.removeLast() }
            return String(decoding: data, as: UTF8.self)
        }
        if raw.hasPrefix("@"), raw.count > 1 {
            let path = String(raw.dropFirst())
            guard let data = FileManager.default.contents(atPath: path) else {
                throw CLIError(description: "cannot read \(flag) from file \(path)")
            }
            var bytes = data
            if bytes.last == 0x0A { bytes.removeLast() }
            return String(decoding: bytes, as: UTF8.self)
        }
        if raw.hasPrefix("env:"), raw.count > 4 {
            let name = String(raw.dropFirst(4))
            guard let v = ProcessInfo.processInfo.environment[name] else {
                throw CLIError(description: "environment variable \(name) for \(flag) is not set")
            }
            return v
        }
        FileHandle.standardError.write(Data(("warning: \(flag) given as an argument is visible to other local users in the process list; "
            + "use \(flag) - (standard input), \(flag) @FILE or \(flag) env:NAME\n").utf8))
        return raw
    }

    static func resolve(_ raw: String?, flag: String) throws -> String? {
        try raw.map { try resolve($0, flag: flag) }
    }
}
