// Duet's fake APNs and FCM (rust/server/examples/fake-push) for tests: a `duet serve`
// started with `serveArguments` pushes there over HTTP/2 with TLS, and `nextPush` hands
// back each push as the fake received it, for the code under test to handle as PushKit
// would deliver it. The fake checks what Apple and Google check (the ES256 provider
// token's signature, every header, the OAuth2 grant); what it refuses comes back as a
// failure of `nextPush`.

#if os(macOS) || os(Linux)
import Foundation

/// One push the fake accepted.
public struct FakePushReceived: @unchecked Sendable {
    /// "apns" or "fcm".
    public let service: String
    public let token: String
    /// `apns-expiration` (Unix seconds) for APNs, the `ttl` ("10s") for FCM.
    public let expiry: String
    /// APNs: the payload, as PushKit hands it to the app. FCM: the message's `data`.
    public let payload: [AnyHashable: Any]
    /// When it arrived, by the wall clock.
    public let receivedAt: Date
}

public final class FakePush: @unchecked Sendable {
    /// Flags for `duet serve` (`TestServer(extraArguments:)`): both services push here.
    public let serveArguments: [String]
    private let process: Process
    private let stdin: Pipe
    private let directory: URL
    private let lines: Locked<[String]>

    /// The binary: `DUET_FAKE_PUSH` (scripts/test-swift sets it), else cargo's default.
    public static var path: String {
        ProcessInfo.processInfo.environment["DUET_FAKE_PUSH"]
            ?? DuetCLI.repo.appendingPathComponent("target/debug/examples/fake-push").path
    }

    public init() throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("duet-fake-push-\(UUID().uuidString)")
        let process = Process()
        let stdin = Pipe()
        process.executableURL = URL(fileURLWithPath: Self.path)
        process.arguments = [directory.path]
        let stdout = Pipe()
        process.standardOutput = stdout
        // The fake exits when this pipe closes: it never outlives the test.
        process.standardInput = stdin
        process.standardError = FileHandle.nullDevice
        try process.run()
        let reader = stdout.fileHandleForReading
        let lines = Locked<[String]>([])
        Thread.detachNewThread {
            var line = Data()
            while true {
                let chunk = reader.availableData
                if chunk.isEmpty { break }
                for byte in chunk {
                    if byte == 0x0A {
                        let text = String(decoding: line, as: UTF8.self)
                        lines.mutate { $0.append(text) }
                        line.removeAll()
                    } else {
                        line.append(byte)
                    }
                }
            }
        }
        let prefix = "serve-args "
        let deadline = Date().addingTimeInterval(10)
        var args: String?
        while args == nil {
            args = lines.value.first { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }
            if args == nil {
                guard Date() < deadline, process.isRunning else {
                    process.terminate()
                    throw TestFailure("fake-push (\(Self.path)) did not start: \(lines.value)")
                }
                Thread.sleep(forTimeInterval: 0.01)
            }
        }
        self.directory = directory
        self.process = process
        self.lines = lines
        self.stdin = stdin
        serveArguments = args!.split(separator: "\t").map(String.init)
    }

    /// The next push the fake accepted, waiting up to `seconds`; a request the fake refused
    /// fails here with what was wrong with it.
    public func nextPush(within seconds: TimeInterval = 10) async throws -> FakePushReceived {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let line = lines.mutate { lines -> String? in
                guard let i = lines.firstIndex(where: { $0.hasPrefix("push ") || $0.hasPrefix("problem ") })
                else { return nil }
                return lines.remove(at: i)
            }
            if let line {
                if line.hasPrefix("problem ") { throw TestFailure("the fake push service refused: \(line)") }
                return try Self.parse(String(line.dropFirst("push ".count)))
            }
            try await Task.sleep(nanoseconds: 5_000_000)
        }
        throw TestFailure("no push reached the fake within \(seconds) s")
    }

    private static func parse(_ json: String) throws -> FakePushReceived {
        guard let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
            let service = object["service"] as? String, let token = object["token"] as? String,
            let expiry = object["expiry"] as? String, let payload = object["payload"] as? [String: Any],
            let received = object["received_unix_ms"] as? NSNumber
        else { throw TestFailure("fake-push printed \(json)") }
        return FakePushReceived(
            service: service, token: token, expiry: expiry, payload: payload,
            receivedAt: Date(timeIntervalSince1970: received.doubleValue / 1000))
    }

    public func stop() {
        try? stdin.fileHandleForWriting.close()
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }
}
#endif
