// Tests for the one checked conversion of request numbers: nothing traps, everything out of
// range is a 400 naming the field.
import Foundation
import Testing
@testable import TesseraCore

@Suite struct InputNumberTests {
    func isBadRequest(_ body: () throws -> Any) -> Bool {
        do { _ = try body(); return false } catch let e as TesseraError { return e.status == 400 } catch { return false }
    }

    @Test func doublesBeyondIntAreRefusedNotTrapped() {
        for d in [1e300, -1e300, 9.3e18, -9.3e18, Double.infinity, -Double.infinity, Double.nan, 1.5] {
            #expect(isBadRequest { try InputNumber.int(d, field: "ttl", in: 0...100) }, "\(d)")
        }
        #expect((try? InputNumber.int(5.0, field: "ttl", in: 0...100)) == 5)
    }

    @Test func int64BeyondTheRangeIsRefused() {
        #expect(isBadRequest { try InputNumber.int(Int64.max, field: "v", in: 0...Int(Int32.max)) })
        #expect(isBadRequest { try InputNumber.int(Int64.min, field: "v", in: 0...10) })
        #expect((try? InputNumber.int(Int64(7), field: "v", in: 0...10)) == 7)
    }

    @Test func numericStringsAreStrictAndOverflowSafe() {
        for s in ["99999999999999999999", "-99999999999999999999", "1e300", "0x10", "4.0", "", " ", "--1", "+", "１２"] {
            #expect(isBadRequest { try InputNumber.int(text: s, field: "v", in: Int.min...Int.max) }, "\(s)")
        }
        #expect((try? InputNumber.int(text: " 42 ", field: "v", in: 0...100)) == 42)
        #expect((try? InputNumber.int(text: "+3", field: "v", in: 0...100)) == 3)
        #expect(isBadRequest { try InputNumber.int(text: "-1", field: "v", in: 0...100) })
    }

    @Test func productsReportOverflow() {
        #expect(isBadRequest { try InputNumber.product(Int.max, 60, field: "m") })
        #expect((try? InputNumber.product(10, 60, field: "m")) == 600)
    }

    @Test func datesAreBounded() {
        #expect(isBadRequest { try InputNumber.date(epochSeconds: Int.max, field: "e") })
        #expect(isBadRequest { try InputNumber.date(epochSeconds: 1e300, field: "e") })
        #expect(isBadRequest { try InputNumber.date(epochSeconds: -1, field: "e") })
        #expect((try? InputNumber.date(epochSeconds: 86_400, field: "e")) == Date(timeIntervalSince1970: 86_400))
    }

    @Test func computedValuesClampInsteadOfTrapping() {
        #expect(InputNumber.clamped(1e300) == Int.max)
        #expect(InputNumber.clamped(-1e300) == Int.min)
        #expect(InputNumber.clamped(.nan) == 0)
        #expect(InputNumber.micros(Date(timeIntervalSince1970: 1e300)) == Int.max)
    }

    @Test func goDurationsParseAndRefuseAbsurdValues() throws {
        #expect(try GoDuration.seconds(text: "1h30m", field: "d") == 5400)
        #expect(try GoDuration.seconds(text: "90", field: "d") == 90)
        #expect(try GoDuration.seconds(text: "1.5h", field: "d") == 5400)
        #expect(try GoDuration.seconds(text: "2d", field: "d") == 172_800)
        #expect(try GoDuration.seconds(text: "1500ms", field: "d") == 1)
        for s in ["9999999999999h", "1e300s", "-5m", "h", "5x", "1..2s", ".s", "99999999999999999999999", String(repeating: "9", count: 100)] {
            #expect(isBadRequest { try GoDuration.seconds(text: s, field: "d") }, "\(s)")
        }
        #expect(GoDuration.format(seconds: 3600) == "1h0m0s")
        #expect(GoDuration.format(seconds: 150) == "2m30s")
        #expect(GoDuration.format(seconds: 0) == "0s")
    }
}
