// Building HTTP responses: JSON bodies with the headers every answer carries, and the native
// error shape `{"error":"<Code>","message":"<text>"}`.
import Hummingbird
import NIOCore
import TesseraCore

enum Responses {
    static func json(_ value: JSON, status: HTTPResponse.Status = .ok) -> Response {
        let bytes = value.bytes
        var headers: HTTPFields = [.contentType: "application/json", .cacheControl: "no-store"]
        headers[.contentLength] = String(bytes.count)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    static func nativeError(_ e: TesseraError) -> Response {
        json(.obj(("error", .string(e.code)), ("message", .string(e.message))), status: .init(code: e.status))
    }

    static func noContent() -> Response {
        Response(status: .noContent, headers: [.contentType: "application/json", .cacheControl: "no-store"])
    }
}

extension Request {
    /// Collects the body up to `limit` bytes; larger bodies are a 413.
    mutating func collectLimited(_ limit: Int) async throws -> ByteBuffer {
        if let length = headers[.contentLength].flatMap(Int.init), length > limit {
            throw TesseraError.payloadTooLarge(limit)
        }
        do {
            return try await collectBody(upTo: limit)
        } catch let e as HTTPError where e.status == .contentTooLarge {
            throw TesseraError.payloadTooLarge(limit)
        } catch is NIOTooManyBytesError {
            throw TesseraError.payloadTooLarge(limit)
        } catch let e as TesseraError {
            throw e
        } catch {
            throw TesseraError.badRequest("the request body could not be read")
        }
    }
}
