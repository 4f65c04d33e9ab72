// The sample app woken by a VoIP push (its process started for it, nobody signed in): Bob's
// phone registered its token and went away; Alice calls; the server pushes to a fake APNs
// (FakePush) and the payload it received goes to DuetCallCenter.handlePush, as PushKit
// hands it over. Bob answers on CallKit's screen (its answer action, then didActivate),
// and the call shows in the app's own call view with Alice's media; hanging up there asks
// the system's screen to end it, which ends it for both.

import Duet
import DuetCallKit
import DuetExampleKit
import DuetTestSupport
import Foundation
import XCTest

/// CallKit's screen as far as the test needs it: its end requests go to the center, as
/// CallKit's end action does.
final class SystemScreen: CallScreen, @unchecked Sendable {
    private let lock = NSLock()
    private var requests: [UUID] = []
    weak var center: DuetCallCenter?
    var endRequests: [UUID] { lock.withLock { requests } }
    func reportIncoming(id: UUID, caller: String, hasVideo: Bool) {}
    func reportOutgoingStarted(id: UUID, callee: String) {}
    func reportOutgoingConnected(id: UUID) {}
    func reportEnded(id: UUID, reason: CallScreenEndReason) {}
    func requestEnd(id: UUID) {
        lock.withLock { requests.append(id) }
        center?.end(id: id)
    }
}

final class SystemCallTests: ModelTestCase, @unchecked Sendable {
    var fake: FakePush!

    override func setUpWithError() throws {
        fake = try FakePush()
        server = try TestServer(ringTimeoutSeconds: 30, extraArguments: fake.serveArguments)
    }

    override func tearDown() {
        super.tearDown()
        fake?.stop()
    }

    @MainActor
    func testACallWokenByAPushAndAnsweredOnCallKitShowsInTheCallView() async throws {
        let server = self.server!
        var phoneConfig = try server.config(for: "bob")
        phoneConfig.deviceId = "phone"
        let phone = try await VideoCall.connect(config: phoneConfig, delegate: NoEvents())
        try await phone.registerPush(
            push: .apns(
                token: "5f3c9a0b7d1e2f4a6b8c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a",
                bundleId: "com.example.duet", environment: .sandbox))
        await phone.shutdown()

        // The app's process, started for the push: nobody signed in.
        let bob = model("bob")
        let screen = SystemScreen()
        let view = SystemCallView(model: bob, audio: nil, end: { [screen] id in screen.requestEnd(id: id) })
        let center = DuetCallCenter(
            screen: screen, audio: view,
            makeStream: {
                LocalStream.synthetic(constraints: StreamConstraints(
                    audio: true, video: VideoConstraints(width: 160, height: 120, fps: 15, maxBitrateBps: 300_000)))
            },
            configFor: { wokenFor in
                var config = try server.config(for: "bob")
                config.deviceId = "phone"
                config.wokenFor = wokenFor
                return config
            })
        screen.center = center

        let alice = try await signedIn("alice")
        alice.calleeUid = "bob"
        await alice.call()
        let push = try await fake.nextPush()
        XCTAssertTrue(center.handlePush(push.payload))
        let duet = try XCTUnwrap(push.payload["duet"] as? [String: Any])
        let id = try XCTUnwrap(UUID(uuidString: try XCTUnwrap(duet["call_id"] as? String)))

        // Answered on CallKit's screen, then CallKit activates the audio session.
        XCTAssertTrue(center.answer(id: id))
        center.didActivateAudioSession()
        try await eventually("bob's app shows the call with alice's media") {
            bob.screen == .inCall(remoteUid: "alice") && bob.remoteStream != nil
        }
        try await eventually("alice is in the call") { alice.screen == .inCall(remoteUid: "bob") }

        // Hung up in the app's call view: CallKit is asked to end it, and it is over for both.
        bob.hangUp()
        XCTAssertEqual(screen.endRequests, [id])
        try await eventually("bob's app is back where it was") { bob.screen == .signIn }
        try await eventually("alice hears the hang-up") { alice.endedSummary != nil }
        await center.shutdown()
        await signOutAll()
    }
}

private final class NoEvents: VideoCallDelegate, @unchecked Sendable {
    func didReceiveCallWithConversation(conversation: Conversation, data: String?) {}
    func didChangeConnectionState(state: ConnectionState) {}
    func didEndWokenCall(callId: String, reason: EndReason?) {}
}
