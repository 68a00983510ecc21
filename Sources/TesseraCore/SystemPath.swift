// SystemPath: the paths of system operations, authorized under the `sys-rule` type (Vault's
// `sudo` paths). Front-ends name these and nothing else, so the list of system operations is here.

public enum SystemPath {
    /// Taking an online snapshot of all data and the audit trail (`operator backup`).
    public static let backup = ItemPath.system("backup")
    /// Adding a keyring term (`sys/rotate`).
    public static let rotate = ItemPath.system("rotate")
    /// Reading the active key term and the rewrap's progress (`sys/key-status`).
    public static let keyStatus = ItemPath.system("key-status")
    /// The background rewrap (the path of its audit events).
    public static let rewrap = ItemPath.system("rewrap")
    /// The background removal of expired tokens, secret ids and wrapped answers (its audit events).
    public static let tidy = ItemPath.system("tidy")
    /// Starting, reading and cancelling a rekey of the root key's shares.
    public static let rekey = ItemPath.system("rekey")
    /// The audit devices (`sys/audit`), and one of them.
    public static let auditDevices = ItemPath.system("audit")
    public static func auditDevice(_ name: String) -> ItemPath {
        (try? ItemPath("/sys/audit/" + name)) ?? auditDevices
    }
    /// Moving a mount to another path (`sys/remount`).
    public static let remount = ItemPath.system("remount")
    /// Sealing the server.
    public static let seal = ItemPath.system("seal")
    /// Reading the metrics (`/metrics`, `/v1/sys/metrics`).
    public static let metrics = ItemPath.system("metrics")
    /// Forcing a lease out without revoking it on its target.
    public static let revokeForce = ItemPath.system("leases/revoke-force")
    /// Setting a custom rotation command, which runs as the target's privileged user.
    public static let rotatorCustomCommand = ItemPath.system("rotators/custom-command")

    /// A Vault mount, e.g. `secret/` → `/sys/mounts/secret`; the mount table itself is `/sys/mounts`.
    public static func mount(_ vaultPath: String) -> ItemPath {
        let trimmed = vaultPath.split(separator: "/").joined(separator: "/")
        return (try? ItemPath("/sys/mounts/" + trimmed)) ?? ItemPath.system("mounts")
    }

    public static let mounts = ItemPath.system("mounts")
    /// The nodes sharing the store (`sys/ha-status`, `operator members`).
    public static let cluster = ItemPath.system("cluster")

    /// The edge agents' change stream (read) and their reports of cached reads (create).
    public static let edge = ItemPath.system("edge")

    /// Revoking every lease under a prefix.
    public static func revokePrefix(_ prefix: String) -> ItemPath {
        let trimmed = prefix.split(separator: "/").joined(separator: "/")
        return (try? ItemPath("/sys/leases/revoke-prefix/" + trimmed)) ?? ItemPath.system("leases/revoke-prefix")
    }
}

extension ItemPath {
    /// A fixed system path; the literals above are valid paths.
    static func system(_ rest: String) -> ItemPath {
        (try? ItemPath("/sys/" + rest)) ?? .root
    }
}
