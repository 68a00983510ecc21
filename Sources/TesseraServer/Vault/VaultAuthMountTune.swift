// AuthMountTune: `sys/auth/<path>/tune` on an auth mount that Tessera keeps a record of (an
// AppRole mount, a JWT/OIDC, Kubernetes or certificate mount): the description and the lease
// TTLs, kept in the record's configuration and shown by `sys/auth` and the tune read.
import TesseraCore

struct AuthMountTune: Sendable {
    static let defaultKey = AuthMethod.tunedDefaultLeaseTTLKey
    static let maxKey = AuthMethod.tunedMaxLeaseTTLKey

    let mount: String
    let description: String?
    let defaultTTL: Int?
    let maxTTL: Int?

    init(_ f: RequestFields, mount: String) throws {
        self.mount = mount
        description = try f.string("description")
        if let d = description, d.utf8.count > 1024 { throw TesseraError.badRequest("description is longer than 1024 bytes") }
        // The CLI sends an empty string for a TTL it leaves alone.
        defaultTTL = f.raw("default_lease_ttl") == .string("") ? nil : try f.seconds("default_lease_ttl")
        maxTTL = f.raw("max_lease_ttl") == .string("") ? nil : try f.seconds("max_lease_ttl")
    }

    /// The tuned TTLs of a mount record; `defaultTTL` when none was tuned, and Tessera's longest
    /// token lifetime as the maximum.
    static func ttls(_ m: AuthMethod, defaultTTL: Int) -> (defaultTTL: Int, maxTTL: Int) {
        func stored(_ key: String) -> Int? {
            if case .int(let v)? = m.config[key] { return Int(exactly: v) }
            return nil
        }
        return (stored(defaultKey) ?? defaultTTL, stored(maxKey) ?? AuthMethod.maxTokenTTLMinutes * 60)
    }

    /// Writes the settings into the record; a default above the maximum changes nothing.
    /// `defaultTTL` is the mount's default when none was tuned.
    func apply(to m: inout AuthMethod, defaultTTL fallback: Int) throws {
        guard case .object(var pairs) = m.config else { throw TesseraError.badRequest("No auth engine at \(mount)/") }
        let current = Self.ttls(m, defaultTTL: fallback)
        let newDefault = defaultTTL ?? current.defaultTTL
        let newMax = maxTTL ?? current.maxTTL
        if newMax > 0 && newDefault > newMax {
            throw TesseraError.badRequest("tune of auth path \"\(mount)/\" failed: default lease TTL exceeds max lease TTL")
        }
        func set(_ key: String, _ value: JSON) {
            pairs.removeAll { $0.0 == key }
            pairs.append((key, value))
        }
        if let description { set("description", .string(description)) }
        if let defaultTTL { set(Self.defaultKey, .int(Int64(defaultTTL))) }
        if let maxTTL { set(Self.maxKey, .int(Int64(maxTTL))) }
        m.config = .object(pairs)
    }
}
