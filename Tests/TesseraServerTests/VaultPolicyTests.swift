// Vault ACL policies: the HCL/JSON parser (what it accepts, what it refuses, and that a hostile
// document cannot crash it) and the translation onto Tessera rules through the mount table.
import Foundation
import Testing
@testable import TesseraCore
@testable import TesseraServer

@Suite struct VaultPolicyParserTests {
    @Test func parsesHCLBlocksCommentsAndTheLegacyForm() throws {
        let p = try VaultPolicy.parse("""
            # comment
            // another
            /* a block
               comment */
            path "secret/data/a/*" {
              capabilities = ["read", "create",]
            }
            path "kv/x" { policy = "write" }
            path "secret/data/a/*" { capabilities = ["read", "update"] }
            """)
        #expect(p.paths.map(\.path) == ["secret/data/a/*", "kv/x", "secret/data/a/*"])
        #expect(p.paths[0].capabilities == ["read", "create"])
        #expect(p.paths[1].capabilities == ["create", "read", "update", "delete", "list"])
    }

    @Test func parsesJSON() throws {
        let p = try VaultPolicy.parse(#"{"path": {"a/*": {"capabilities": ["list"]}, "b": {"capabilities": ["deny"]}}}"#)
        #expect(p.paths == [.init(path: "a/*", capabilities: ["list"]), .init(path: "b", capabilities: ["deny"])])
    }

    @Test func invalidCapabilityUsesVaultsWords() {
        do {
            _ = try VaultPolicy.parse(#"path "a" { capabilities = ["fly"] }"#)
            Issue.record("expected a refusal")
        } catch let e as TesseraError {
            #expect(e.message == #"failed to parse policy: path "a": path "a": invalid capability "fly""#)
        } catch { Issue.record("\(error)") }
    }

    @Test(arguments: [
        #"path "a" { capabilities = ["#, #"path "a" {"#, #"path "a" capabilities"#, #"path "a" { capabilities = "read" }"#,
        #"path "a" { allowed_parameters = { "x" = [] } capabilities = ["read"] }"#, #"path "a" { min_wrapping_ttl = "1h" }"#,
        #"path "a" { bogus = 1 }"#, #"other "a" {}"#, #"path "{{identity.entity.id}}/*" { capabilities = ["read"] }"#,
        "path \"a\n\" {}", #"{"path": 1}"#, #"{"path": {"a": {"capabilities": ["read"]}}} trailing"#, "\u{0}", #"path "\u00zz" {}"#,
    ])
    func refuses(_ text: String) {
        #expect(throws: TesseraError.self) { try VaultPolicy.parse(text) }
    }

    @Test func manyLabelsAreRefusedNotACrash() {
        let labels = "path " + String(repeating: "\"\" ", count: 300_000) + "{}"
        #expect(throws: TesseraError.self) { try VaultPolicy.parse(labels) }
    }

    @Test func deepNestingIsRefusedNotACrash() {
        let deep = "path \"a\" { x = " + String(repeating: "[", count: 100_000) + " }"
        #expect(throws: TesseraError.self) { try VaultPolicy.parse(deep) }
        let objects = String(repeating: "a { ", count: 50_000)
        #expect(throws: TesseraError.self) { try VaultPolicy.parse(objects) }
    }
}

@Suite struct VaultPolicyTranslationTests {
    let translator: VaultPolicyTranslator

    init() throws {
        let at = Date(timeIntervalSince1970: 0)
        translator = VaultPolicyTranslator(mounts: [
            VaultMount(path: "secret/", kind: .kvV2, folder: try ItemPath("/secret"), accessor: "a", uuid: "u", createdAt: at),
            VaultMount(path: "kv/", kind: .kvV1, folder: try ItemPath("/kv"), accessor: "b", uuid: "v", createdAt: at),
            VaultMount(path: "db/", kind: .database, folder: try ItemPath("/databases"), accessor: "c", uuid: "w", createdAt: at),
        ])
    }

    func rules(_ hcl: String) throws -> [String] {
        try translator.translate(try VaultPolicy.parse(hcl)).rules.map {
            "\($0.type.rawValue) \($0.pattern) " + $0.capabilities.map(\.rawValue).sorted().joined(separator: ",")
        }
    }

    @Test func kvV2SectionsMapOntoItemRules() throws {
        #expect(try rules(#"path "secret/data/app/*" { capabilities = ["read", "create", "update", "patch", "list"] }"#)
            == ["item-rule /secret/app/* create,read,update"])
        #expect(try rules(#"path "secret/metadata/app/*" { capabilities = ["list", "read", "delete"] }"#)
            == ["item-rule /secret/app/* delete,list"])
        #expect(try rules(#"path "secret/metadata/app/" { capabilities = ["list", "read"] }"#) == ["item-rule /secret/app/* list"])
        #expect(try rules(#"path "secret/delete/a" { capabilities = ["update"] }"#) == ["item-rule /secret/a delete"])
        // Tessera's update also writes data, so metadata writes and undelete are not translated.
        #expect(try rules(#"path "secret/undelete/a" { capabilities = ["update"] }"#).isEmpty)
        #expect(try rules(#"path "secret/metadata/a" { capabilities = ["update", "create"] }"#).isEmpty)
        #expect(try rules(#"path "secret/+/team/x" { capabilities = ["read"] }"#) == ["item-rule /secret/team/x list,read"])
        #expect(try rules(#"path "secret/data/+/shared" { capabilities = ["read"] }"#) == ["item-rule /secret/+/shared read"])
    }

    @Test func aGlobOverTheMountReachesEverySection() throws {
        let r = try rules(#"path "secret/*" { capabilities = ["read", "list"] }"#)
        #expect(r == ["item-rule /secret/* list,read"])
        let all = try rules(#"path "*" { capabilities = ["deny"] }"#)
        #expect(all.contains("item-rule /secret/* deny") && all.contains("item-rule /kv/* deny") && all.contains("sys-rule /sys/* deny"))
    }

    @Test func kvV1DatabaseAndDeny() throws {
        #expect(try rules(#"path "kv/team/*" { capabilities = ["read", "list"] }"#) == ["item-rule /kv/team/* list,read"])
        #expect(try rules(#"path "db/creds/ro" { capabilities = ["read"] }"#) == ["item-rule /databases/ro read"])
        #expect(try rules("""
            path "secret/data/a" { capabilities = ["read"] }
            path "secret/data/a" { capabilities = ["deny"] }
            """) == ["item-rule /secret/a deny"])
    }

    @Test func systemPathsNeedSudoExceptTheMountTable() throws {
        #expect(try rules(#"path "sys/seal" { capabilities = ["update"] }"#).isEmpty)
        #expect(try rules(#"path "sys/seal" { capabilities = ["update", "sudo"] }"#) == ["sys-rule /sys/seal update"])
        #expect(try rules(#"path "sys/storage/raft/snapshot" { capabilities = ["read", "sudo"] }"#) == ["sys-rule /sys/backup read"])
        #expect(try rules(#"path "sys/mounts/*" { capabilities = ["create", "read"] }"#) == ["sys-rule /sys/mounts/* create,read"])
        #expect(try rules(#"path "sys/*" { capabilities = ["read", "list"] }"#).allSatisfy { !$0.hasPrefix("sys-rule") })
        // `sys` and `sys/` name no operation (hvac's test policy denies `sys`): nothing, no error.
        for path in ["sys", "sys/", "/sys"] {
            #expect(try rules("path \"\(path)\" { policy = \"deny\" }").isEmpty)
            #expect(try rules("path \"\(path)\" { capabilities = [\"read\", \"sudo\"] }").isEmpty)
        }
    }

    @Test func folderFormsAndSudoPathsAreNotWidened() throws {
        #expect(try rules(#"path "sys/" { capabilities = ["read", "list", "sudo"] }"#).isEmpty)
        #expect(try rules(#"path "sys/policies/acl/" { capabilities = ["create", "update", "list"] }"#) == ["role-rule /* list"])
        #expect(try rules(#"path "sys/auth/jwt" { capabilities = ["create", "update"] }"#).isEmpty)
        #expect(try rules(#"path "sys/auth/jwt" { capabilities = ["update", "sudo"] }"#).contains("auth-method-rule /jwt update"))
        #expect(try rules(#"path "auth/token/revoke-orphan" { capabilities = ["update"] }"#).isEmpty)
    }

    @Test func aNarrowerPathGrantingLessIsRefused() throws {
        // Vault would apply only the narrower path; Tessera's union would also grant update there.
        #expect(throws: TesseraError.self) {
            try rules("""
                path "secret/data/*" { capabilities = ["read", "update"] }
                path "secret/data/prod/*" { capabilities = ["read"] }
                """)
        }
        #expect(try rules("""
            path "secret/data/*" { capabilities = ["read"] }
            path "secret/data/team/*" { capabilities = ["read", "update"] }
            path "secret/data/team/locked" { capabilities = ["deny"] }
            """).count == 3)
    }

    @Test func hugeTranslationsAreRefused() throws {
        let many = (0..<3000).map { #"path "+/+/x\#($0)" { capabilities = ["deny"] }"# }.joined(separator: "\n")
        #expect(throws: TesseraError.self) { try rules(many) }
    }

    @Test func policiesAuthAndTokens() throws {
        #expect(try rules(#"path "sys/policies/acl/team-*" { capabilities = ["read", "update"] }"#) == ["role-rule /team-* read,update"])
        #expect(try rules(#"path "auth/token/create" { capabilities = ["update", "sudo"] }"#)
            == ["auth-method-rule /token/create update", "auth-method-rule /token/create-orphan update"])
    }

    @Test func untranslatablePathsAreNamed() throws {
        let t = try translator.translate(try VaultPolicy.parse(#"path "nomount/x" { capabilities = ["read"] } path "db/roles/x" { capabilities = ["update"] }"#))
        #expect(t.rules.isEmpty)
        #expect(t.warnings.count == 2)
    }

    @Test func rulesReadBackAsHCLThatTranslatesToThemAgain() throws {
        let role = Role(name: "r", rules: try translator.translate(try VaultPolicy.parse("""
            path "secret/data/app/*" { capabilities = ["read"] }
            path "secret/metadata/app/*" { capabilities = ["list"] }
            path "kv/x" { capabilities = ["read"] }
            path "db/creds/ro" { capabilities = ["read"] }
            """)).rules)
        let again = try translator.translate(try VaultPolicy.parse(translator.hcl(role))).rules
        #expect(Set(again) == Set(role.rules))
    }
}
