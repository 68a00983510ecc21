// The `tessera` command: the server, operator commands, and one subcommand per native API verb.
import ArgumentParser
import Foundation

@main
struct TesseraCLI: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tessera",
        abstract: "Tessera: a self-hosted secrets-management server and CLI.",
        subcommands: [
            ServerCommand.self, OperatorCommand.self, AuthCommand.self, ValidateTokenCommand.self, RevokeTokenCommand.self,
            CreateSecretCommand.self, GetSecretValueCommand.self, UpdateSecretValCommand.self, ListItemsCommand.self,
            DescribeItemCommand.self, DeleteItemCommand.self,
            CreateAuthMethodCommand.self, ListAuthMethodsCommand.self, GetAuthMethodCommand.self, DeleteAuthMethodCommand.self,
            CreateRoleCommand.self, GetRoleCommand.self, ListRolesCommand.self, DeleteRoleCommand.self,
            SetRoleRuleCommand.self, DeleteRoleRuleCommand.self, AssocRoleAMCommand.self,
            AuditCommand.self,
        ]
    )
}
