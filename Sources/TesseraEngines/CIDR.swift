// CIDR: an IPv4 or IPv6 network used to bind auth methods to client addresses.
import Foundation
import TesseraCore

public struct CIDR: Sendable, Equatable {
    let network: [UInt8]
    let prefixLength: Int

    public init(_ text: String) throws {
        let parts = text.split(separator: "/", maxSplits: 1).map(String.init)
        guard let address = parts.first, let bytes = CIDR.parse(address) else {
            throw TesseraError.badRequest("invalid CIDR '\(text)'")
        }
        let length = parts.count == 2 ? Int(parts[1]) : bytes.count * 8
        guard let length, (0...(bytes.count * 8)).contains(length) else {
            throw TesseraError.badRequest("invalid CIDR prefix length in '\(text)'")
        }
        network = bytes
        prefixLength = length
    }

    public func contains(_ address: String) -> Bool {
        guard let bytes = CIDR.parse(address), bytes.count == network.count else { return false }
        var remaining = prefixLength
        for i in 0..<bytes.count where remaining > 0 {
            let bits = min(8, remaining)
            let mask: UInt8 = bits == 8 ? 0xFF : ~(0xFF >> UInt8(bits))
            if bytes[i] & mask != network[i] & mask { return false }
            remaining -= bits
        }
        return true
    }

    static func parse(_ address: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, address, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, address, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        return nil
    }
}
