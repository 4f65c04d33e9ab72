// Two (or three) models call each other through a real server: each side's screens as the
// seed's lifecycle plays out: call, response, stream, close.

import Duet
import DuetExampleKit
import XCTest

final class CallFlowTests: ModelTestCase, @unchecked Sendable {
    @MainActor
    func testAnAcceptedCallGoesFromRingingToInCallAndEndsWhenTheOtherSideHangsUp() async throws {
        let alice = try await signedIn("alice")
        let bob = try await signedIn("bob")

        alice.calleeUid = "bob"
        alice.customData = "lunch?"
        await alice.call()
        XCTAssertEqual(alice.screen, .outgoing(remoteUid: "bob"))
        XCTAssertNotNil(alice.localStream, "no local stream for the preview while it rings")
        XCTAssertTrue(alice.synthetic.isRunning)

        try await eventually("bob sees the call") {
            bob.screen == .incoming(IncomingCall(callerUid: "alice", data: "lunch?"))
        }
        await bob.accept()
        XCTAssertEqual(bob.screen, .inCall(remoteUid: "alice"))
        try await eventually("alice in the call") { alice.screen == .inCall(remoteUid: "bob") }
        try await eventually("both have the other's media") {
            alice.remoteStream != nil && bob.remoteStream != nil
        }
        XCTAssertTrue(alice.synthetic.playing === alice.remoteStream, "the remote audio is not played")

        // Stats arrive once a second, with bob's synthetic 320x240 video.
        try await eventually("stats with the video size") { alice.statsLine?.hasPrefix("320×240 · ") == true }
        let stats = try XCTUnwrap(alice.stats)
        XCTAssertGreaterThan(stats.framesDecoded, 0)
        XCTAssertEqual(alice.statsLine?.hasSuffix(" · host"), true, alice.statsLine ?? "")

        bob.hangUp()
        XCTAssertEqual(bob.screen, .home)
        XCTAssertFalse(bob.synthetic.isRunning)
        try await eventually("alice hears bob hang up") { alice.endedSummary != nil }
        XCTAssertEqual(alice.endedSummary?.title, "bob hung up")
        XCTAssertEqual(alice.endedSummary?.reason, .hangup)
        XCTAssertNil(alice.endedSummary?.problem)
        XCTAssertNil(alice.remoteStream)
        XCTAssertNil(alice.stats)
        XCTAssertFalse(alice.synthetic.isRunning, "the camera still runs after the call")
        alice.dismissEnded()
        XCTAssertEqual(alice.screen, .home)
        await signOutAll()
    }

    @MainActor
    func testTheCallerHangsUpAndTheCalleeSeesItEnd() async throws {
        let alice = try await signedIn("alice")
        let bob = try await signedIn("bob")
        alice.calleeUid = "bob"
        await alice.call()
        try await eventually("bob sees the call") { bob.screen == .incoming(IncomingCall(callerUid: "alice", data: nil)) }
        await bob.accept()
        try await eventually("alice in the call") { alice.screen == .inCall(remoteUid: "bob") }

        alice.hangUp()
        XCTAssertEqual(alice.screen, .home)
        try await eventually("bob hears it") { bob.endedSummary?.title == "alice hung up" }
        XCTAssertEqual(bob.endedSummary?.wasOutgoing, false)
        await signOutAll()
    }

    @MainActor
    func testARejectedCallSaysSo() async throws {
        let alice = try await signedIn("alice")
        let bob = try await signedIn("bob")
        alice.calleeUid = "bob"
        await alice.call()
        try await eventually("bob sees the call") { bob.screen != .home }
        bob.reject()
        XCTAssertEqual(bob.screen, .home)
        try await eventually("alice hears the answer") { alice.endedSummary != nil }
        XCTAssertEqual(alice.endedSummary?.reason, .rejected)
        XCTAssertEqual(alice.endedSummary?.title, "bob declined the call")
        XCTAssertEqual(alice.endedSummary?.wasOutgoing, true)
        XCTAssertFalse(alice.synthetic.isRunning)
        await signOutAll()
    }

    @MainActor
    func testCallingSomeoneInACallIsBusy() async throws {
        let alice = try await signedIn("alice")
        let bob = try await signedIn("bob")
        let carol = try await signedIn("carol")
        alice.calleeUid = "bob"
        await alice.call()
        try await eventually("bob sees the call") { bob.screen != .home }
        await bob.accept()
        try await eventually("alice in the call") { alice.screen == .inCall(remoteUid: "bob") }

        carol.calleeUid = "bob"
        await carol.call()
        try await eventually("carol hears the answer") { carol.endedSummary != nil }
        XCTAssertEqual(carol.endedSummary?.title, "bob is busy")
        // The call under way goes on.
        XCTAssertEqual(bob.screen, .inCall(remoteUid: "alice"))
        XCTAssertEqual(alice.screen, .inCall(remoteUid: "bob"))
        await signOutAll()
    }

    @MainActor
    func testCancellingWhileItRingsEndsTheCallOnBothSides() async throws {
        let alice = try await signedIn("alice")
        let bob = try await signedIn("bob")
        alice.calleeUid = "bob"
        await alice.call()
        try await eventually("bob sees the call") { bob.screen != .home }
        alice.cancel()
        XCTAssertEqual(alice.screen, .home)
        XCTAssertFalse(alice.synthetic.isRunning)
        try await eventually("bob hears it") { bob.endedSummary != nil }
        XCTAssertEqual(bob.endedSummary?.reason, .cancelled)
        XCTAssertEqual(bob.endedSummary?.title, "Missed call from alice")
        await signOutAll()
    }

    @MainActor
    func testCallingSomeoneWhoIsNotSignedIn() async throws {
        let alice = try await signedIn("alice")
        alice.calleeUid = "nobody"
        await alice.call()
        try await eventually("the call ends") { alice.endedSummary != nil }
        XCTAssertEqual(alice.endedSummary?.title, "nobody is not online")
        XCTAssertNil(alice.endedSummary?.problem, "the title says it all")
        await signOutAll()
    }

    @MainActor
    func testSigningOutInACallHangsUp() async throws {
        let alice = try await signedIn("alice")
        let bob = try await signedIn("bob")
        alice.calleeUid = "bob"
        await alice.call()
        try await eventually("bob sees the call") { bob.screen != .home }
        await bob.accept()
        try await eventually("alice in the call") { alice.screen == .inCall(remoteUid: "bob") }

        await alice.signOut()
        XCTAssertEqual(alice.screen, .signIn)
        XCTAssertFalse(alice.synthetic.isRunning)
        try await eventually("bob hears it") { bob.endedSummary?.reason == .hangup }
        await signOutAll()
    }

    @MainActor
    func testAnIncomingCallWhileBusyIsDeclinedAndTheCallGoesOn() async throws {
        // Bob is looking at his own outgoing call to carol when alice calls him.
        let alice = try await signedIn("alice")
        let bob = try await signedIn("bob")
        _ = try await signedIn("carol")
        bob.calleeUid = "carol"
        await bob.call()
        alice.calleeUid = "bob"
        await alice.call()
        try await eventually("alice hears the answer") { alice.endedSummary != nil }
        XCTAssertNotEqual(alice.endedSummary?.reason, .timeout)
        XCTAssertEqual(bob.screen, .outgoing(remoteUid: "carol"))
        await signOutAll()
    }
}

/// With a 1 s ring timeout.
final class UnansweredCallTests: ModelTestCase, @unchecked Sendable {
    override var ringTimeoutSeconds: Int { 1 }

    @MainActor
    func testAnUnansweredCallTimesOutOnBothSidesAndCanBeCalledAgain() async throws {
        let alice = try await signedIn("alice")
        let bob = try await signedIn("bob")
        alice.calleeUid = "bob"
        await alice.call()
        try await eventually("alice hears the timeout") { alice.endedSummary != nil }
        XCTAssertEqual(alice.endedSummary?.title, "No answer from bob")
        try await eventually("bob sees a missed call") { bob.endedSummary != nil }
        XCTAssertEqual(bob.endedSummary?.title, "Missed call from alice")

        await alice.callAgain()
        XCTAssertEqual(alice.screen, .outgoing(remoteUid: "bob"))
        try await eventually("bob sees the call again") {
            bob.screen == .incoming(IncomingCall(callerUid: "alice", data: nil))
        }
        await signOutAll()
    }
}
