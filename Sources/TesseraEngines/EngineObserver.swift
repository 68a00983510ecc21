// EngineObserver: what the engines report for the service-level metrics (credentials issued,
// rotations finished), without knowing how the metrics are kept. Labels are kinds, never names.
public protocol EngineObserver: Sendable {
    /// A dynamic credential was issued (or failed to be) on a target of `targetType`.
    func credentialIssued(targetType: String, success: Bool)
    /// A rotation of a `targetType` account finished.
    func rotationFinished(targetType: String, success: Bool)
}

/// Reports nothing (engines used without a server, as in unit tests).
public struct NoEngineObserver: EngineObserver {
    public init() {}
    public func credentialIssued(targetType: String, success: Bool) {}
    public func rotationFinished(targetType: String, success: Bool) {}
}
