// EdgeReadEvent: the audit event of a read that an edge agent answered from its cache, as the
// agent queues it and as the central server receives it (`POST /v1/sys/edge/audit`). One type
// for both sides, so the wire format cannot drift; the central server validates every field
// before anything is recorded.

public struct EdgeReadEvent: Sendable, Codable, Equatable {
    /// When the agent answered, in microseconds since 1970.
    public var timeMicros: Int64
    public var requestId: String
    public var interface: String
    public var authMethodType: String
    public var accessId: String
    public var actorName: String
    public var clientAddress: String
    public var action: String
    public var path: String
    public var result: String
    public var status: Int64
    public var error: String?
    /// `hit` or `stale`.
    public var cache: String?
    /// How old the cached answer was.
    public var ageSeconds: Int64?

    enum CodingKeys: String, CodingKey {
        case timeMicros = "time_us", requestId = "request_id", interface, authMethodType = "auth_method_type", accessId = "access_id"
        case actorName = "actor_name", clientAddress = "client_address", action, path, result, status, error, cache
        case ageSeconds = "age_seconds"
    }

    public init(timeMicros: Int64, requestId: String, interface: String, authMethodType: String, accessId: String, actorName: String,
                clientAddress: String, action: String, path: String, result: String, status: Int64, error: String?, cache: String?,
                ageSeconds: Int64?) {
        self.timeMicros = timeMicros
        self.requestId = requestId
        self.interface = interface
        self.authMethodType = authMethodType
        self.accessId = accessId
        self.actorName = actorName
        self.clientAddress = clientAddress
        self.action = action
        self.path = path
        self.result = result
        self.status = status
        self.error = error
        self.cache = cache
        self.ageSeconds = ageSeconds
    }
}
