// Lower-case hex encoding of bytes (tokens, hashes, request ids).

extension Sequence where Element == UInt8 {
    /// Lower-case hex, two digits per byte.
    public var hexString: String {
        let digits: StaticString = "0123456789abcdef"
        var out: [UInt8] = []
        out.reserveCapacity(underestimatedCount * 2)
        digits.withUTF8Buffer { d in
            for b in self {
                out.append(d[Int(b >> 4)])
                out.append(d[Int(b & 0x0F)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
