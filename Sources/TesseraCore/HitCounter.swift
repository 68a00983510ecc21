// HitCounter: how often a cache answered and how often it missed, read by the metrics.
import Synchronization

public final class HitCounter: Sendable {
    private let hitCount = Atomic<Int>(0)
    private let missCount = Atomic<Int>(0)

    public init() {}

    public func hit() { hitCount.add(1, ordering: .relaxed) }
    public func miss() { missCount.add(1, ordering: .relaxed) }
    public var hits: Int { hitCount.load(ordering: .relaxed) }
    public var misses: Int { missCount.load(ordering: .relaxed) }
}
