// Calls with only the camera, only the microphone, or neither.

import Duet
import DuetExampleKit
import XCTest

final class MediaAccessTests: ModelTestCase, @unchecked Sendable {
    func testConstraintsFollowWhatWasAllowed() {
        let video = VideoConstraints(width: 320, height: 240, fps: 15, maxBitrateBps: 500_000)
        XCTAssertEqual(MediaAccess.all.constraints(video: video), StreamConstraints(audio: true, video: video))
        XCTAssertEqual(
            MediaAccess(camera: false, microphone: true).constraints(video: video),
            StreamConstraints(audio: true, video: nil))
        XCTAssertEqual(
            MediaAccess(camera: true, microphone: false).constraints(video: video),
            StreamConstraints(audio: false, video: video))
        XCTAssertNil(MediaAccess(camera: false, microphone: false).constraints())
        XCTAssertNil(MediaAccess.all.limitation)
        XCTAssertNotNil(MediaAccess(camera: false, microphone: true).limitation)
    }

    @MainActor
    func testWithTheMicrophoneOnlyTheCallIsAudioOnly() async throws {
        let alice = try await signedIn("alice", access: MediaAccess(camera: false, microphone: true))
        let bob = try await signedIn("bob")
        alice.calleeUid = "bob"
        await alice.call()
        XCTAssertEqual(alice.screen, .outgoing(remoteUid: "bob"))
        XCTAssertFalse(alice.canUseCamera)
        XCTAssertTrue(alice.isCameraOff)
        XCTAssertEqual(alice.localStream?.videoEnabled(), false)
        try await eventually("bob sees the call") { bob.screen != .home }
        await bob.accept()
        try await eventually("both have media") { alice.remoteStream != nil && bob.remoteStream != nil }
        try await eventually("bob's stats") { bob.statsLine != nil }
        XCTAssertTrue(bob.statsLine?.hasPrefix("no video") == true, bob.statsLine ?? "")
        // Sending no video, alice still receives bob's; bob knows she has no camera.
        try await eventually("alice sees bob") { alice.statsLine?.hasPrefix("320×240") == true }
        try await eventually("bob shows alice's camera is off") { !bob.isRemoteVideoOn }
        XCTAssertTrue(alice.isRemoteVideoOn)

        // The camera buttons do nothing without the camera.
        alice.toggleCamera()
        XCTAssertTrue(alice.isCameraOff)
        alice.toggleMute()
        XCTAssertTrue(alice.isMuted)
        XCTAssertEqual(alice.localStream?.audioEnabled(), false)
        alice.hangUp()
        await signOutAll()
    }

    @MainActor
    func testWithTheCameraOnlyTheCallCarriesVideo() async throws {
        let alice = try await signedIn("alice", access: MediaAccess(camera: true, microphone: false))
        let bob = try await signedIn("bob")
        alice.calleeUid = "bob"
        await alice.call()
        XCTAssertFalse(alice.canUseMicrophone)
        try await eventually("bob sees the call") { bob.screen != .home }
        await bob.accept()
        try await eventually("bob gets alice's video") { bob.statsLine?.hasPrefix("320×240") == true }

        XCTAssertTrue(bob.isRemoteVideoOn)
        alice.toggleCamera()
        XCTAssertTrue(alice.isCameraOff)
        XCTAssertEqual(alice.localStream?.videoEnabled(), false)
        try await eventually("bob shows alice's camera is off") { !bob.isRemoteVideoOn }
        alice.toggleCamera()
        XCTAssertEqual(alice.localStream?.videoEnabled(), true)
        try await eventually("bob shows alice's camera again") { bob.isRemoteVideoOn }
        await signOutAll()
    }

    @MainActor
    func testWithNeitherTheAppSaysWhereToAllowThem() async throws {
        let none = MediaAccess(camera: false, microphone: false)
        let alice = try await signedIn("alice", access: none)
        let bob = try await signedIn("bob")
        alice.calleeUid = "bob"
        await alice.call()
        XCTAssertEqual(alice.screen, .home)
        XCTAssertEqual(alice.problem, .noMediaAccess)
        XCTAssertEqual(alice.problem?.remedy, .openSettings)
        alice.dismissProblem()

        // Called, it declines rather than leaving the caller ringing.
        bob.calleeUid = "alice"
        await bob.call()
        try await eventually("alice sees the call") { alice.screen != .home }
        await alice.accept()
        XCTAssertEqual(alice.screen, .home)
        XCTAssertEqual(alice.problem, .noMediaAccess)
        try await eventually("bob hears no") { bob.endedSummary != nil }
        XCTAssertEqual(bob.endedSummary?.reason, .rejected)
        await signOutAll()
    }
}
