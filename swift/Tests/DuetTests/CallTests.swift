// Calls through a real server, from Swift: the seed's lifecycle (call, accept or reject,
// responses, streams, close) and what each side hears, in order.

import Duet
import DuetTestSupport
import Foundation
import XCTest

/// A connected client and the calls it receives.
final class Client {
    let uid: String
    let video: VideoCall
    let incoming: IncomingCalls

    init(uid: String, video: VideoCall, incoming: IncomingCalls) {
        self.uid = uid
        self.video = video
        self.incoming = incoming
    }

    static func connect(
        _ uid: String, to server: TestServer, videoCodecs: VideoCodecs? = nil
    ) async throws -> Client {
        let incoming = IncomingCalls()
        let video = try await VideoCall.connect(
            config: try server.config(for: uid), delegate: incoming, videoCodecs: videoCodecs)
        return Client(uid: uid, video: video, incoming: incoming)
    }
}

/// Both ends of a call.
struct Call {
    let outgoing: Conversation
    let caller: ConversationRecorder
    let incoming: Conversation
    let callee: ConversationRecorder
}

class DuetTestCase: XCTestCase {
    var server: TestServer!

    override func setUpWithError() throws {
        server = try TestServer(ringTimeoutSeconds: 1)
    }

    override func tearDown() {
        server?.stop()
        server = nil
    }

    func connect(_ uid: String, videoCodecs: VideoCodecs? = nil) async throws -> Client {
        try await Client.connect(uid, to: server, videoCodecs: videoCodecs)
    }

    /// `caller` calls `callee`, who accepts; returns once both have the other's stream.
    func connectedCall(
        _ caller: Client, _ callee: Client, data: String? = nil,
        file: StaticString = #filePath, line: UInt = #line
    ) async throws -> Call {
        let outgoing = try caller.video.call(uid: callee.uid, localStream: syntheticStream(), data: data)
        let callerHeard = ConversationRecorder.attach(to: outgoing)
        let (incoming, heardData) = try await callee.incoming.next(file: file, line: line)
        XCTAssertEqual(heardData, data, file: file, line: line)
        XCTAssertEqual(incoming.remoteUid(), caller.uid, file: file, line: line)
        XCTAssertEqual(incoming.state(), .ringing, file: file, line: line)
        let calleeHeard = ConversationRecorder.attach(to: incoming)
        try incoming.accept(localStream: syntheticStream())

        let first = try await callerHeard.next(file: file, line: line)
        XCTAssertEqual(first, .response(.accepted), file: file, line: line)
        let second = try await callerHeard.next(file: file, line: line)
        guard case .stream = second else {
            XCTFail("caller heard \(second) after ACCEPTED, not the stream", file: file, line: line)
            throw TestFailure("no stream")
        }
        let calleeFirst = try await calleeHeard.next(file: file, line: line)
        guard case .stream = calleeFirst else {
            XCTFail("callee heard \(calleeFirst) first, not the stream", file: file, line: line)
            throw TestFailure("no stream")
        }
        return Call(outgoing: outgoing, caller: callerHeard, incoming: incoming, callee: calleeHeard)
    }
}

final class CallTests: DuetTestCase {
    func testAcceptedCallCarriesVideoBothWaysAndHangsUp() async throws {
        let alice = try await connect("alice")
        let bob = try await connect("bob")
        XCTAssertTrue(alice.video.isConnected())
        XCTAssertEqual(alice.video.uid(), "alice")

        let call = try await connectedCall(alice, bob, data: "custom-data")
        XCTAssertEqual(call.outgoing.state(), .connected)
        XCTAssertEqual(call.outgoing.callId(), call.incoming.callId())

        // Synthetic frames reach a sink written in Swift, on each side.
        let atAlice = FrameCollector(keep: 5), atBob = FrameCollector(keep: 5)
        try XCTUnwrap(call.caller.lastStream).setVideoSink(sink: atAlice)
        try XCTUnwrap(call.callee.lastStream).setVideoSink(sink: atBob)
        for frames in [try await atAlice.waitFor(5), try await atBob.waitFor(5)] {
            for frame in frames {
                XCTAssertEqual(frame.width, 160)
                XCTAssertEqual(frame.height, 120)
                XCTAssertEqual(frame.bytes.count, frame.width * frame.height * 3 / 2)
                XCTAssertEqual(frame.dataLen, frame.bytes.count)
                XCTAssertTrue(frame.planesMatch, "the planes are not the frame's bytes")
                XCTAssertTrue(frame.bytes.contains { $0 != frame.bytes.first }, "a flat frame")
            }
            // A moving pattern with a frame counter: consecutive frames differ.
            for (a, b) in zip(frames, frames.dropFirst()) {
                XCTAssertNotEqual(a.bytes, b.bytes, "two consecutive frames are the same")
            }
        }
        XCTAssertGreaterThan(try XCTUnwrap(call.caller.lastStream).framesDecoded(), 0)
        let stats = await call.outgoing.stats()
        XCTAssertGreaterThan(try XCTUnwrap(stats).framesDecoded, 0)

        // Alice hangs up: Bob hears it; Alice, who closed, hears nothing.
        call.outgoing.close()
        XCTAssertEqual(call.outgoing.state(), .closed)
        XCTAssertEqual(call.outgoing.closeReason(), .local)
        let bobHeard = try await call.callee.next()
        XCTAssertEqual(bobHeard, .closed(.hangup))
        XCTAssertEqual(call.incoming.closeReason(), .hangup)
        try await call.caller.inbox.expectNothing(for: 0.3)
    }

    func testRejectedCallTellsTheCallerThenCloses() async throws {
        let alice = try await connect("alice")
        let bob = try await connect("bob")
        let outgoing = try alice.video.call(uid: "bob", localStream: syntheticStream())
        let heard = ConversationRecorder.attach(to: outgoing)
        let (incoming, data) = try await bob.incoming.next()
        XCTAssertNil(data)
        try incoming.reject()
        XCTAssertEqual(incoming.state(), .closed)

        let first = try await heard.next()
        XCTAssertEqual(first, .response(.rejected))
        let second = try await heard.next()
        XCTAssertEqual(second, .closed(.rejected))
    }

    func testCallingAUserInACallIsBusy() async throws {
        let alice = try await connect("alice")
        let bob = try await connect("bob")
        let carol = try await connect("carol")
        let call = try await connectedCall(alice, bob)

        let outgoing = try carol.video.call(uid: "bob", localStream: syntheticStream())
        let heard = ConversationRecorder.attach(to: outgoing)
        let first = try await heard.next()
        XCTAssertEqual(first, .response(.busy))
        let second = try await heard.next()
        XCTAssertEqual(second, .closed(.busy))
        // The call under way goes on.
        XCTAssertEqual(call.incoming.state(), .connected)
        try await call.callee.inbox.expectNothing(for: 0.2)
    }

    func testAnUnansweredCallTimesOutOnBothSides() async throws {
        let alice = try await connect("alice")
        let bob = try await connect("bob")
        let started = Date()
        let outgoing = try alice.video.call(uid: "bob", localStream: syntheticStream())
        let callerHeard = ConversationRecorder.attach(to: outgoing)
        let (incoming, _) = try await bob.incoming.next()
        let calleeHeard = ConversationRecorder.attach(to: incoming)

        let first = try await callerHeard.next()
        XCTAssertEqual(first, .response(.timeout))
        let second = try await callerHeard.next()
        XCTAssertEqual(second, .closed(.timeout))
        let calleeClosed = try await calleeHeard.next()
        XCTAssertEqual(calleeClosed, .closed(.timeout))
        // The server's ring timeout is 1 s.
        XCTAssertGreaterThan(Date().timeIntervalSince(started), 0.9)
    }

    func testClosingWhileItRingsCancelsTheCall() async throws {
        let alice = try await connect("alice")
        let bob = try await connect("bob")
        let outgoing = try alice.video.call(uid: "bob", localStream: syntheticStream())
        let callerHeard = ConversationRecorder.attach(to: outgoing)
        let (incoming, _) = try await bob.incoming.next()
        let calleeHeard = ConversationRecorder.attach(to: incoming)

        outgoing.close()
        let heard = try await calleeHeard.next()
        XCTAssertEqual(heard, .closed(.cancelled))
        XCTAssertEqual(incoming.state(), .closed)
        try await callerHeard.inbox.expectNothing(for: 0.2)
    }

    func testTheCalleeHangsUpAfterAccepting() async throws {
        let alice = try await connect("alice")
        let bob = try await connect("bob")
        let call = try await connectedCall(alice, bob)
        call.incoming.close()
        let heard = try await call.caller.next()
        XCTAssertEqual(heard, .closed(.hangup))
    }

    /// The closure and async-sequence spellings (Events.swift) hear the same lifecycle.
    func testEventsAsAnAsyncSequenceAndIncomingCallsAsAClosure() async throws {
        let incoming = Inbox<(Conversation, String?)>()
        let bob = try await VideoCall.connect(config: try server.config(for: "bob")) { conversation, data in
            incoming.post((conversation, data))
        }
        let alice = try await connect("alice")

        let outgoing = try alice.video.call(uid: "bob", localStream: syntheticStream(), data: "hi")
        let events = outgoing.events()
        let (conversation, data) = try await incoming.next("incoming call")
        XCTAssertEqual(data, "hi")
        try conversation.reject()

        let heard = try await withTimeout(eventTimeout) { () -> [String] in
            var heard: [String] = []
            for await event in events {
                switch event {
                case .response(let status): heard.append("response \(status)")
                case .stream: heard.append("stream")
                case .failed(let error): heard.append("failed \(error)")
                case .remoteMedia(let video, let audio): heard.append("remote media \(video) \(audio)")
                case .mediaState(let state): heard.append("media \(state)")
                case .networkQuality: break
                case .closed(let reason): heard.append("closed \(reason.map { "\($0)" } ?? "nil")")
                }
            }
            return heard
        }
        XCTAssertEqual(heard, ["response rejected", "closed rejected"])
        withExtendedLifetime(bob) {}
    }
}
