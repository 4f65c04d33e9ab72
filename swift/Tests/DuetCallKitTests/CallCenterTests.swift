// DuetCallKit's logic against a real `duet serve`: a VoIP push in, call-screen reports
// out, and the screen's actions reaching the caller. The push is the real one: Bob's phone
// registered its VoIP token and went away, the server pushed to a fake APNs (FakePush:
// HTTP/2 with TLS from a test CA, checking the ES256 provider token and every header), and
// the payload the fake received is what the center handles, as PushKit would hand it over.
// Bob's "tablet" stays connected, so that answered-elsewhere can be played; the center
// plays Bob's phone.

@testable import DuetCallKit
import Duet
import DuetTestSupport
import Foundation
import XCTest

final class CallCenterTests: XCTestCase {
    var server: TestServer!
    var fake: FakePush!
    var screen: RecordingScreen!
    var audio: RecordingAudio!
    var center: DuetCallCenter!

    override func setUpWithError() throws {
        fake = try FakePush()
        server = try TestServer(ringTimeoutSeconds: 10, extraArguments: fake.serveArguments)
        screen = RecordingScreen()
        audio = RecordingAudio()
        let server = self.server!
        center = DuetCallCenter(
            screen: screen, audio: audio, makeStream: { smallStream() },
            configFor: { wokenFor in
                var config = try server.config(for: "bob")
                config.deviceId = "phone"
                config.wokenFor = wokenFor
                return config
            })
    }

    override func tearDown() async throws {
        await center?.shutdown()
        server?.stop()
        fake?.stop()
    }

    static let phoneToken = "5f3c9a0b7d1e2f4a6b8c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a"

    /// Bob's phone registers its VoIP token (as the app does with PushKit's) and goes
    /// away: the app is in the background.
    func registerBobsPhone() async throws {
        let phone = try await Party.connect("bob", server, device: "phone")
        try await phone.video.registerPush(
            push: .apns(token: Self.phoneToken, bundleId: "com.example.duet", environment: .sandbox))
        await phone.video.shutdown()
    }

    /// Bob's phone registers and leaves; Alice calls Bob, whose tablet rings and whose phone
    /// gets a push. Returns the call, the tablet's side and the payload the fake APNs got.
    func ringBob() async throws -> (alice: Party, tablet: Party, outgoing: Conversation, payload: [AnyHashable: Any]) {
        try await registerBobsPhone()
        let alice = try await Party.connect("alice", server)
        let tablet = try await Party.connect("bob", server, device: "tablet")
        let invited = Date()
        let outgoing = try alice.video.call(
            remoteUid: "bob", localStream: smallStream(),
            options: CallOptions(data: "hello bob", iceTransportPolicy: .all))
        alice.watch(outgoing)
        let push = try await fake.nextPush()
        _ = try await tablet.incoming.next("the tablet rings")
        print("invite to push at the fake APNs: \(Int(push.receivedAt.timeIntervalSince(invited) * 1000)) ms")
        XCTAssertEqual(push.service, "apns")
        XCTAssertEqual(push.token, Self.phoneToken)
        let duet = try XCTUnwrap(push.payload["duet"] as? [String: Any])
        XCTAssertEqual(duet["call_id"] as? String, try XCTUnwrap(outgoing.callId()))
        XCTAssertEqual(duet["data"] as? String, "hello bob")
        // apns-expiration is the ring deadline the payload names (10 s from the invite).
        let deadlineMs = try XCTUnwrap(duet["deadline_ms"] as? NSNumber).int64Value
        XCTAssertEqual(Int64(push.expiry), deadlineMs / 1000)
        XCTAssertEqual(Double(deadlineMs) / 1000, invited.timeIntervalSince1970 + 10, accuracy: 2)
        return (alice, tablet, outgoing, push.payload)
    }

    func testAPushRingsAtOnceAnswerAcceptsAndAudioWaitsForTheSession() async throws {
        let (alice, _, outgoing, payload) = try await ringBob()
        let id = try XCTUnwrap(UUID(uuidString: try XCTUnwrap(outgoing.callId())))

        XCTAssertTrue(center.handlePush(payload))
        // Reported before handlePush returned, from the payload alone.
        XCTAssertEqual(screen.reports.value, [.incoming(id, caller: "alice")])

        // Answered on the screen, maybe before Duet has handed the call over.
        XCTAssertTrue(center.answer(id: id))
        let heard = try await alice.heard.next("alice hears")
        XCTAssertEqual(heard, .response(.accepted))
        let call = try XCTUnwrap(center.currentCall)
        XCTAssertFalse(call.localStream.audioEnabled(), "no microphone before the audio session")
        XCTAssertTrue(audio.started.value.isEmpty)

        center.didActivateAudioSession()
        XCTAssertTrue(call.localStream.audioEnabled())
        XCTAssertEqual(audio.started.value, [id])
        // Alice's media plays once it is there, whichever came first.
        try await eventually("alice's stream plays") { self.audio.played.value == [id] }
        XCTAssertTrue(center.setMuted(id: id, muted: true))
        XCTAssertFalse(call.localStream.audioEnabled())
        XCTAssertTrue(center.setMuted(id: id, muted: false))
        XCTAssertTrue(center.setHeld(id: id, held: true))
        XCTAssertFalse(call.localStream.audioEnabled())
        XCTAssertFalse(call.localStream.videoEnabled())
        XCTAssertTrue(center.setHeld(id: id, held: false))
        XCTAssertTrue(call.localStream.videoEnabled())
        XCTAssertFalse(center.setMuted(id: UUID(), muted: true), "an unknown call is refused")

        outgoing.close()
        try await screen.waitFor(.ended(id, .remoteEnded))
        XCTAssertEqual(audio.stopped.value, [id])
    }

    /// On the lock screen CallKit answers and activates the audio session at once, before
    /// Duet has handed the call over: the audio starts once it has.
    func testAudioActivatedBeforeTheHandOverStartsWithTheCall() async throws {
        let (alice, _, outgoing, payload) = try await ringBob()
        let id = try XCTUnwrap(UUID(uuidString: try XCTUnwrap(outgoing.callId())))
        XCTAssertTrue(center.handlePush(payload))
        XCTAssertTrue(center.answer(id: id))
        center.didActivateAudioSession()
        let heard = try await alice.heard.next("alice hears")
        XCTAssertEqual(heard, .response(.accepted))
        try await eventually("the call's audio starts") { self.audio.started.value == [id] }
        try await eventually("alice's stream plays") { self.audio.played.value == [id] }
    }

    func testACallCancelledBeforeTheWakeClosesTheScreenAtOnce() async throws {
        let (_, _, outgoing, payload) = try await ringBob()
        let id = try XCTUnwrap(UUID(uuidString: try XCTUnwrap(outgoing.callId())))
        outgoing.close()

        let pushed = Date()
        XCTAssertTrue(center.handlePush(payload))
        XCTAssertEqual(screen.reports.value, [.incoming(id, caller: "alice")])
        // Never answered here: Recents shows it as missed.
        try await screen.waitFor(.ended(id, .unanswered))
        // The goal is within a second: printed, not asserted (a loaded machine is slower).
        let took = Date().timeIntervalSince(pushed)
        print("cancelled call: screen closed \(Int(took * 1000)) ms after the push")
        XCTAssertFalse(center.answer(id: id), "nothing left to answer")
    }

    func testAnsweredOnTheTabletClosesThePhonesScreen() async throws {
        let (alice, tablet, outgoing, payload) = try await ringBob()
        let id = try XCTUnwrap(UUID(uuidString: try XCTUnwrap(outgoing.callId())))
        center.handlePush(payload)
        try await eventually("Duet hands the call over") { self.center.callHandedOver }

        try tablet.lastIncoming!.accept(localStream: smallStream())
        let heard = try await alice.heard.next("alice hears")
        XCTAssertEqual(heard, .response(.accepted))
        try await screen.waitFor(.ended(id, .answeredElsewhere))
    }

    func testEndOnTheScreenDeclinesTheCall() async throws {
        let (alice, _, outgoing, payload) = try await ringBob()
        let id = try XCTUnwrap(UUID(uuidString: try XCTUnwrap(outgoing.callId())))
        center.handlePush(payload)
        // At once: before Duet has handed the call over, too.
        XCTAssertTrue(center.end(id: id))
        let heard = try await alice.heard.next("alice hears")
        XCTAssertEqual(heard, .response(.rejected))
        XCTAssertEqual(screen.reports.value, [.incoming(id, caller: "alice")], "CallKit closed it itself")
    }

    func testAnOutgoingCallIsReportedStartedConnectedAndEnded() async throws {
        let tablet = try await Party.connect("bob", server, device: "tablet")
        let server = self.server!
        let alicesCenter = DuetCallCenter(
            screen: screen, makeStream: { smallStream() },
            configFor: { _ in try server.config(for: "alice") })
        let id = try await alicesCenter.startCall(to: "bob")
        XCTAssertEqual(screen.reports.value, [.outgoingStarted(id, callee: "bob")])
        let incoming = try await tablet.incoming.next("the tablet rings")
        try incoming.accept(localStream: smallStream())
        try await screen.waitFor(.outgoingConnected(id))
        incoming.close()
        try await screen.waitFor(.ended(id, .remoteEnded))
        await alicesCenter.shutdown()
    }

    func testAPushThatIsNotDuetsIsLeftToTheApp() {
        XCTAssertFalse(center.handlePush(["aps": ["alert": "hi"]]))
        XCTAssertFalse(center.handlePush(["duet": ["call_id": "x", "from": "alice"]]), "no deadline")
        XCTAssertTrue(screen.reports.value.isEmpty)
    }

    func testThePayloadIsReadWhole() throws {
        let push = try XCTUnwrap(VoipPush(payload: [
            "duet": [
                "call_id": "5b1d4a7e-2f0c-4c55-9d9e-3e2f8c1a0b7d", "from": "alice",
                "deadline_ms": 1_764_000_030_000, "data": "hi", "data_truncated": true,
            ],
        ]))
        XCTAssertEqual(push.caller, "alice")
        XCTAssertEqual(push.deadline.timeIntervalSince1970, 1_764_000_030, accuracy: 0.001)
        XCTAssertEqual(push.data, "hi")
        XCTAssertTrue(push.dataTruncated)
        XCTAssertEqual(push.screenId, UUID(uuidString: "5b1d4a7e-2f0c-4c55-9d9e-3e2f8c1a0b7d"))
    }
}
