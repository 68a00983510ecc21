// The `tessera` command: the server, operator commands, and one subcommand per native API verb.
import ArgumentParser
import Foundation

@main
struct TesseraCLI: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tessera",
        abstract: "Tessera: a self-hosted secrets-management server and CLI.",
        subcommands: [
            ServerCommand.self, OperatorCommand.self, AuthCommand.self, AgentCommand.self, ValidateTokenCommand.self, RevokeTokenCommand.self, RunCommand.self,
            CreateSecretCommand.self, GetSecretValueCommand.self, UpdateSecretValCommand.self, ListItemsCommand.self,
            DescribeItemCommand.self, DeleteItemCommand.self,
            CreateAuthMethodCommand.self, ListAuthMethodsCommand.self, GetAuthMethodCommand.self, DeleteAuthMethodCommand.self,
            CreateRoleCommand.self, GetRoleCommand.self, ListRolesCommand.self, DeleteRoleCommand.self,
            SetRoleRuleCommand.self, DeleteRoleRuleCommand.self, AssocRoleAMCommand.self,
            AuditCommand.self, ExplainCommand.self, OpenAPICommand.self, VaultMountCommand.self, TargetCommand.self, TargetCreateDBCommand.self, CreateUSCCommand.self, USCCommand.self,
            DynamicSecretCreatePostgreSQLCommand.self, GetDynamicSecretValueCommand.self, DynamicSecretTmpCredsGetCommand.self,
            DynamicSecretTmpCredsUpdateCommand.self, DynamicSecretTmpCredsDeleteCommand.self, LeasesCommand.self,
            TargetCreateSSHCommand.self, RotatedSecretCreatePostgreSQLCommand.self, RotatedSecretCreateSSHCommand.self,
            RotatedSecretUpdatePostgreSQLCommand.self, RotatedSecretUpdateSSHCommand.self, RotatedSecretListCommand.self,
            RotatedSecretGetCommand.self, GetRotatedSecretValueCommand.self, RotateSecretCommand.self, RotationsCommand.self,
        ]
    )

    /// Runs the command; any failure is one line on stderr and a non-zero exit (help still prints in full).
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                Foundation.exit(0)
            }
            let message = message(for: error).split(separator: "\n").first.map(String.init) ?? ""
            if !message.isEmpty {
                FileHandle.standardError.write(Data("Error: \(message.hasPrefix("Error: ") ? String(message.dropFirst(7)) : message)\n".utf8))
            }
            Foundation.exit(code.rawValue)
        }
    }
}
