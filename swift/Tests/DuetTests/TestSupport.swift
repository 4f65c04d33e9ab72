// What the tests share: a real `duet serve` per test, tokens from `duet token`, connected
// clients, and delegates that record what they hear so a test can wait for it.

import Duet
import DuetTestSupport
import Foundation
import XCTest

/// Seconds a test waits for one event before it fails.
let eventTimeout: TimeInterval = 10

/// Events in arrival order; a test takes them one at a time, waiting for each.
final class Inbox<Event>: @unchecked Sendable {
    private let events = Locked<[Event]>([])

    func post(_ event: Event) { events.mutate { $0.append(event) } }

    /// The next event, waiting up to `timeout` seconds for it.
    func next(
        _ what: String, timeout: TimeInterval = eventTimeout,
        file: StaticString = #filePath, line: UInt = #line
    ) async throws -> Event {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let event = events.mutate({ $0.isEmpty ? nil : $0.removeFirst() }) { return event }
            try await Task.sleep(nanoseconds: 10_000_000)
        }
        XCTFail("no \(what) within \(timeout) s", file: file, line: line)
        throw TestFailure("no \(what) within \(timeout) s")
    }

    /// Fails if an event arrives within `seconds`.
    func expectNothing(
        for seconds: TimeInterval, file: StaticString = #filePath, line: UInt = #line
    ) async throws {
        try await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
        let left = events.value
        XCTAssertTrue(left.isEmpty, "unexpected events: \(left)", file: file, line: line)
    }
}

/// A `VideoCallDelegate` that keeps every incoming conversation (so it is not declined)
/// with its data.
final class IncomingCalls: VideoCallDelegate, @unchecked Sendable {
    let inbox = Inbox<(conversation: Conversation, data: String?)>()
    let connectionStates = Locked<[ConnectionState]>([])

    func didChangeConnectionState(state: ConnectionState) {
        connectionStates.mutate { $0.append(state) }
    }

    func didReceiveCallWithConversation(conversation: Conversation, data: String?) {
        inbox.post((conversation, data))
    }

    func next(file: StaticString = #filePath, line: UInt = #line) async throws -> (conversation: Conversation, data: String?) {
        try await inbox.next("incoming call", file: file, line: line)
    }
}

enum Heard: Equatable, CustomStringConvertible {
    case response(CallStatus)
    case stream(callId: String)
    case failed(CallError)
    case closed(EndReason?)

    var description: String {
        switch self {
        case .response(let s): return "response(\(s))"
        case .stream: return "stream"
        case .failed(let e): return "failed(\(e))"
        case .closed(let r): return "closed(\(r.map { "\($0)" } ?? "nil"))"
        }
    }
}

/// A `ConversationDelegate` that records what it hears, with the close reason at `didClose`.
final class ConversationRecorder: ConversationDelegate, @unchecked Sendable {
    let inbox = Inbox<Heard>()
    let streams = Locked<[RemoteStream]>([])
    // Weak: the conversation holds its delegate.
    private weak var conversation: Conversation?

    /// Makes a recorder and sets it as `conversation`'s delegate.
    @discardableResult
    static func attach(to conversation: Conversation) -> ConversationRecorder {
        let recorder = ConversationRecorder()
        recorder.conversation = conversation
        conversation.setDelegate(recorder)
        return recorder
    }

    func didReceiveResponse(status: CallStatus) { inbox.post(.response(status)) }

    func didReceiveStream(stream: RemoteStream) {
        streams.mutate { $0.append(stream) }
        inbox.post(.stream(callId: stream.callId()))
    }

    func didFailWithError(error: CallError) { inbox.post(.failed(error)) }

    func didClose() { inbox.post(.closed(conversation?.closeReason())) }

    func next(file: StaticString = #filePath, line: UInt = #line) async throws -> Heard {
        try await inbox.next("conversation event", file: file, line: line)
    }

    var lastStream: RemoteStream? { streams.value.last }
}

/// A `VideoSink` written in Swift: copies each frame's bytes out, as a renderer would.
final class FrameCollector: VideoSink, @unchecked Sendable {
    struct Copied {
        let width: Int
        let height: Int
        let dataLen: Int
        let bytes: Data
        let planesMatch: Bool
    }

    let frames = Locked<[Copied]>([])
    private let keep: Int

    init(keep: Int = 10) { self.keep = keep }

    func onVideoFrame(frame: VideoFrame) {
        guard frames.value.count < keep else { return }
        let bytes = frame.copyBytes()
        // The planes seen through withUnsafePlanes must be the same bytes, in order.
        let planesMatch = frame.withUnsafePlanes { p in
            Data(p.y) + Data(p.u) + Data(p.v) == bytes
        }
        let copied = Copied(
            width: Int(frame.width()), height: Int(frame.height()),
            dataLen: Int(frame.dataLen()), bytes: bytes, planesMatch: planesMatch)
        frames.mutate { if $0.count < keep { $0.append(copied) } }
    }

    /// Waits until `count` frames are in.
    func waitFor(_ count: Int, timeout: TimeInterval = eventTimeout) async throws -> [Copied] {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let got = frames.value
            if got.count >= count { return got }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        throw TestFailure("only \(frames.value.count) of \(count) frames within \(timeout) s")
    }
}

/// A synthetic camera and microphone (a moving test pattern and a tone), small so that
/// calls start fast.
func syntheticStream() -> LocalStream {
    LocalStream.synthetic(constraints: StreamConstraints(
        audio: true, video: VideoConstraints(width: 160, height: 120, fps: 15, maxBitrateBps: 300_000)))
}

/// Something went wrong unless it throws an error of type `E`; returns the error.
func assertThrows<E: Error, R>(
    _ type: E.Type, file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> R
) -> E? {
    do {
        let result = try body()
        XCTFail("no \(E.self) thrown; got \(result)", file: file, line: line)
    } catch let error as E {
        return error
    } catch {
        XCTFail("expected \(E.self), got \(error)", file: file, line: line)
    }
    return nil
}

/// Polls `condition` until it holds or `timeout` passes.
func eventually(
    _ what: String, timeout: TimeInterval = eventTimeout,
    file: StaticString = #filePath, line: UInt = #line, _ condition: () -> Bool
) async throws {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if condition() { return }
        try await Task.sleep(nanoseconds: 20_000_000)
    }
    XCTFail("not \(what) within \(timeout) s", file: file, line: line)
    throw TestFailure("not \(what) within \(timeout) s")
}

/// Runs `operation`, failing if it takes longer than `seconds` (and cancelling it).
func withTimeout<T: Sendable>(
    _ seconds: TimeInterval, _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
            throw TestFailure("not done within \(seconds) s")
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}
