// The bare-HTTP limit for `scripts/bench`: a minimal Hummingbird server answering a fixed
// 200 JSON body on every path, so Tessera can be reported as a share of what the HTTP stack
// alone serves on the same machine.
import Hummingbird

let arguments = CommandLine.arguments
let port = arguments.count > 1 ? Int(arguments[1]) ?? 8300 : 8300
let body = #"{"data":{"data":{"value":"bench"},"metadata":{"version":1}}}"#

let router = Router()
router.get("**") { _, _ -> Response in
    Response(
        status: .ok,
        headers: [.contentType: "application/json"],
        body: .init(byteBuffer: ByteBuffer(string: body))
    )
}
let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)))
try await app.runService()
