// A real `duet serve` for tests: the Duet package's own, the sample app's, and an app's
// integration tests. macOS and Linux only (it starts processes).

#if os(macOS) || os(Linux)
import Duet
import Foundation

public struct TestFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The `duet` binary: `DUET_CLI` (scripts/test-swift sets it), else cargo's default.
public enum DuetCLI {
    /// The repository: this file is swift/Sources/DuetTestSupport/TestServer.swift.
    static let repo = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    public static var path: String {
        ProcessInfo.processInfo.environment["DUET_CLI"]
            ?? repo.appendingPathComponent("target/debug/duet").path
    }

    /// A token for `uid` from `duet token`, signed with `secret`, by default the development
    /// secret a server uses when started without `--secret`.
    public static func token(for uid: String, secret: String? = nil, ttl: Int? = nil) throws -> String {
        var arguments = ["token", "--uid", uid]
        if let secret { arguments += ["--secret", secret] }
        if let ttl { arguments += ["--ttl", String(ttl)] }
        let process = duet(arguments)
        let stdout = Pipe()
        process.standardOutput = stdout
        try process.run()
        let data = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard process.terminationStatus == 0, !token.isEmpty else {
            throw TestFailure("duet token --uid \(uid) failed (\(process.terminationStatus))")
        }
        return token
    }

    /// `duet ARGUMENTS`, not started, with stderr discarded and no `DUET_SECRET` from the
    /// environment: tokens and servers agree on the development secret unless told.
    static func duet(_ arguments: [String]) -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment.removeValue(forKey: "DUET_SECRET")
        process.environment = environment
        process.standardError = FileHandle.nullDevice
        return process
    }
}

/// `duet serve` on loopback with its embedded TURN, on ports the system picks (or at
/// `listen`, to restart one in place), stopped when released.
public final class TestServer: @unchecked Sendable {
    public let url: String
    private let process: Process
    /// Where the server keeps push registrations: its own, not the user's ~/.local/share.
    private let dataDirectory: URL

    /// - Parameter secret: a production server's secret (it then gives no development
    ///   tokens); without one, the development secret.
    ///   - extraArguments: more flags for `duet serve` (`FakePush.serveArguments`, say).
    public init(
        ringTimeoutSeconds: Int = 10, listen: String = "127.0.0.1:0", secret: String? = nil,
        extraArguments: [String] = []
    ) throws {
        dataDirectory = FileManager.default.temporaryDirectory
            .appendingPathComponent("duet-test-server-\(UUID().uuidString)")
        process = DuetCLI.duet([
            "serve", "--listen", listen, "--turn-listen", "127.0.0.1:0",
            "--ring-timeout", String(ringTimeoutSeconds), "--data-dir", dataDirectory.path,
        ] + (secret.map { ["--secret", $0] } ?? []) + extraArguments)
        let stdout = Pipe()
        process.standardOutput = stdout
        try process.run()

        // The first line is "duet-server listening on http://127.0.0.1:PORT".
        let reader = stdout.fileHandleForReading
        let firstLine = try Self.readLine(reader, within: 10)
        guard let at = firstLine.range(of: "listening on ") else {
            process.terminate()
            throw TestFailure("duet serve said \(firstLine.debugDescription), not where it listens")
        }
        url = String(firstLine[at.upperBound...]).trimmingCharacters(in: .whitespaces)
        // Keep draining, so the server never blocks on a full pipe.
        Thread.detachNewThread {
            while !reader.availableData.isEmpty {}
        }
    }

    /// "127.0.0.1:PORT", to start another server at the same address.
    public var address: String { String(url.drop(while: { $0 != "/" }).dropFirst(2)) }

    public func token(for uid: String, secret: String? = nil) throws -> String {
        try DuetCLI.token(for: uid, secret: secret)
    }

    /// A client config for `uid` whose media stays on loopback.
    public func config(for uid: String) throws -> ClientConfig {
        ClientConfig(serverUrl: url, token: try token(for: uid), deviceId: nil, bindAddresses: ["127.0.0.1:0"])
    }

    public func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: dataDirectory)
    }

    private static func readLine(_ handle: FileHandle, within seconds: TimeInterval) throws -> String {
        let done = DispatchSemaphore(value: 0)
        let line = Locked(Data())
        Thread.detachNewThread {
            while true {
                let byte = handle.readData(ofLength: 1)
                if byte.isEmpty || byte == Data([0x0A]) { break }
                line.mutate { $0.append(byte) }
            }
            done.signal()
        }
        guard done.wait(timeout: .now() + seconds) == .success else {
            throw TestFailure("duet serve printed no line within \(seconds) s")
        }
        return String(decoding: line.value, as: UTF8.self)
    }
}

/// A value behind a lock.
public final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var _value: Value
    public init(_ value: Value) { _value = value }
    public var value: Value { lock.lock(); defer { lock.unlock() }; return _value }
    public func mutate<R>(_ body: (inout Value) -> R) -> R {
        lock.lock(); defer { lock.unlock() }
        return body(&_value)
    }
}
#endif
