// Objects let go of what they hold: a shut-down or released VideoCall hangs up and leaves
// the server; conversations nobody keeps are declined; closed ones release their delegates.

import Duet
import Foundation
import XCTest

final class LifetimeTests: DuetTestCase {
    /// After `shutdown()` the peer hears the hang-up, and the server no longer knows the
    /// device: a call to it finds nobody.
    func testShutdownHangsUpAndLeavesTheServer() async throws {
        let alice = try await connect("alice")
        let bob = try await connect("bob")
        let call = try await connectedCall(alice, bob)

        await alice.video.shutdown()
        XCTAssertFalse(alice.video.isConnected())
        XCTAssertEqual(call.outgoing.state(), .closed)
        let bobHeard = try await call.callee.next()
        XCTAssertEqual(bobHeard, .closed(.hangup))
        let afterShutdown = assertThrows(ActionError.self) {
            try alice.video.call(uid: "bob", localStream: syntheticStream())
        }
        // Closed with no end reason: the client is gone, not one call.
        guard case .Closed(endReason: nil, _) = afterShutdown else {
            return XCTFail("got \(String(describing: afterShutdown))")
        }

        try await assertNobodyAnswers(as: "alice", callingFrom: bob)
    }

    /// Releasing the last reference to a VideoCall (its deinit) does what `shutdown()` does.
    func testReleasingTheVideoCallHangsUpAndLeavesTheServer() async throws {
        let incoming = IncomingCalls()
        var alice: VideoCall? = try await VideoCall.connect(config: try server.config(for: "alice"), delegate: incoming)
        let bob = try await connect("bob")
        let call = try await connectedCall(
            Client(uid: "alice", video: try XCTUnwrap(alice), incoming: incoming), bob)
        weak var released = alice

        alice = nil
        XCTAssertNil(released, "something still holds the VideoCall")
        let bobHeard = try await call.callee.next()
        XCTAssertEqual(bobHeard, .closed(.hangup))
        try await assertNobodyAnswers(as: "alice", callingFrom: bob)
        // The caller's conversation outlived its client: it is closed, and says so.
        XCTAssertEqual(call.outgoing.state(), .closed)
        XCTAssertThrowsError(try call.outgoing.accept(localStream: syntheticStream()))
    }

    /// An incoming conversation the app does not keep is declined, so no phone rings
    /// without an app object behind it.
    func testAnIncomingConversationNobodyKeepsIsDeclined() async throws {
        let bob = try await VideoCall.connect(config: try server.config(for: "bob")) { _, _ in }
        let alice = try await connect("alice")
        let outgoing = try alice.video.call(uid: "bob", localStream: syntheticStream())
        let heard = ConversationRecorder.attach(to: outgoing)
        let first = try await heard.next()
        XCTAssertEqual(first, .response(.rejected))
        let second = try await heard.next()
        XCTAssertEqual(second, .closed(.rejected))
        withExtendedLifetime(bob) {}
    }

    /// The conversation holds its delegate until the call is over, then lets it go.
    func testAClosedConversationReleasesItsDelegate() async throws {
        let alice = try await connect("alice")
        let bob = try await connect("bob")
        let outgoing = try alice.video.call(uid: "bob", localStream: syntheticStream())
        var recorder: ConversationRecorder? = ConversationRecorder.attach(to: outgoing)
        weak var released = recorder
        let (incoming, _) = try await bob.incoming.next()
        try incoming.reject()
        let first = try await recorder?.next()
        XCTAssertEqual(first, .response(.rejected))
        let second = try await recorder?.next()
        XCTAssertEqual(second, .closed(.rejected))

        recorder = nil
        try await eventually("the delegate released") { released == nil }
        XCTAssertEqual(outgoing.state(), .closed)
    }

    /// `caller` calls `uid`, which has no device on the server any more.
    private func assertNobodyAnswers(
        as uid: String, callingFrom caller: Client, file: StaticString = #filePath, line: UInt = #line
    ) async throws {
        let outgoing = try caller.video.call(uid: uid, localStream: syntheticStream())
        let heard = ConversationRecorder.attach(to: outgoing)
        let failed = try await heard.next(file: file, line: line)
        XCTAssertEqual(failed, .failed(.Unreachable(uid: uid)), file: file, line: line)
        let closed = try await heard.next(file: file, line: line)
        XCTAssertEqual(closed, .closed(.unreachable), file: file, line: line)
    }
}
