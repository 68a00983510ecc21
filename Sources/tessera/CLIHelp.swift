// CLIHelp: the CLI's help texts come from the server's endpoint declarations (`NativeVerb`'s
// `help` and `FieldSpec.help`), so a flag and its API field are described once.
import ArgumentParser
import TesseraServer

extension ArgumentHelp {
    /// The help of field `name` of native verb `verb`.
    static func field(_ verb: String, _ name: String, secret: Bool = false) -> ArgumentHelp {
        let spec = NativeVerbRegistry.standard.verbs[verb]?.fields[name]
        var text = spec?.help ?? ""
        if secret || spec?.sensitive == true { text += " Use - for standard input, @FILE or env:NAME to keep it out of the process list." }
        return ArgumentHelp(text)
    }
}

enum CLIHelp {
    /// The one-line description of a native verb.
    static func verb(_ name: String, _ fallback: String = "") -> String {
        let help = NativeVerbRegistry.standard.verbs[name]?.help ?? ""
        return help.isEmpty ? fallback : help
    }
}
