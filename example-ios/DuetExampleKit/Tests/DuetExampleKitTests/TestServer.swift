// A real `duet serve` per test, as swift/Tests/DuetTests does it: on loopback, on a port
// the system picks (or a given one, to restart it in place), with the development secret
// unless told otherwise.

import Foundation
import XCTest

enum Paths {
    /// The repository: this file is example-ios/DuetExampleKit/Tests/DuetExampleKitTests/….
    static let repo = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// The `duet` binary: `DUET_CLI` (scripts/test-swift sets it), else cargo's default.
    static var cli: String {
        ProcessInfo.processInfo.environment["DUET_CLI"] ?? repo.appendingPathComponent("target/debug/duet").path
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

final class TestServer: @unchecked Sendable {
    let url: String
    private let process = Process()

    /// - Parameters:
    ///   - listen: where to listen; the default lets the system pick a port.
    ///   - secret: a production server's secret (it then gives no development tokens).
    init(ringTimeoutSeconds: Int = 10, listen: String = "127.0.0.1:0", secret: String? = nil) throws {
        process.executableURL = URL(fileURLWithPath: Paths.cli)
        process.arguments = [
            "serve", "--listen", listen, "--turn-listen", "127.0.0.1:0",
            "--ring-timeout", String(ringTimeoutSeconds),
        ] + (secret.map { ["--secret", $0] } ?? [])
        var environment = ProcessInfo.processInfo.environment
        environment.removeValue(forKey: "DUET_SECRET")
        process.environment = environment
        let stdout = Pipe()
        process.standardOutput = stdout
        process.standardError = FileHandle.nullDevice
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
    var address: String { String(url.drop(while: { $0 != "/" }).dropFirst(2)) }

    /// A development token for `uid` valid for `ttl` seconds, from `duet token`.
    static func token(for uid: String, ttl: Int) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Paths.cli)
        process.arguments = ["token", "--uid", uid, "--ttl", String(ttl)]
        var environment = ProcessInfo.processInfo.environment
        environment.removeValue(forKey: "DUET_SECRET")
        process.environment = environment
        let stdout = Pipe()
        process.standardOutput = stdout
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard process.terminationStatus == 0, !token.isEmpty else {
            throw TestFailure("duet token --uid \(uid) failed (\(process.terminationStatus))")
        }
        return token
    }

    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }

    deinit { stop() }

    private static func readLine(_ handle: FileHandle, within seconds: TimeInterval) throws -> String {
        let done = DispatchSemaphore(value: 0)
        let line = LockedData()
        Thread.detachNewThread {
            while true {
                let byte = handle.readData(ofLength: 1)
                if byte.isEmpty || byte == Data([0x0A]) { break }
                line.append(byte)
            }
            done.signal()
        }
        guard done.wait(timeout: .now() + seconds) == .success else {
            throw TestFailure("duet serve printed no line within \(seconds) s")
        }
        return String(decoding: line.value, as: UTF8.self)
    }
}

private final class LockedData: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    func append(_ more: Data) { lock.lock(); data.append(more); lock.unlock() }
    var value: Data { lock.lock(); defer { lock.unlock() }; return data }
}
