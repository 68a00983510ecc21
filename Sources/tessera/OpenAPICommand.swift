// `tessera openapi`: prints the OpenAPI document generated from the endpoint declarations
// (the same document the server serves at /v1/sys/openapi); `docs/openapi.json` is its output.
import ArgumentParser
import Foundation
import TesseraServer

struct OpenAPICommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "openapi", abstract: "Print the OpenAPI document of every endpoint.")

    func run() throws {
        FileHandle.standardOutput.write(Data(OpenAPIDocument.standardBytes))
        FileHandle.standardOutput.write(Data("\n".utf8))
    }
}
