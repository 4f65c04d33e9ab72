// The engine's errors surface as Swift errors, thrown where the app acts.

import Duet
import Foundation
import XCTest

final class ErrorTests: DuetTestCase {
    func testAForgedTokenIsRefusedAtConnect() async throws {
        let forged = try server.token(for: "alice", secret: "not-the-servers-secret")
        let config = ClientConfig(serverUrl: server.url, token: forged, bindAddresses: ["127.0.0.1:0"])
        do {
            let video = try await VideoCall.connect(config: config, delegate: IncomingCalls())
            XCTFail("connected with a forged token as \(video.uid())")
        } catch let error as ConnectError {
            guard case .Refused(code: .unauthorized, reason: _) = error else {
                return XCTFail("expected Refused(unauthorized), got \(error)")
            }
        }
    }

    func testADevelopmentTokenSignsInAndALostServerIsHeard() async throws {
        let token = try await fetchDevelopmentToken(serverUrl: server.url, uid: "alice")
        let delegate = IncomingCalls()
        let config = ClientConfig(serverUrl: server.url, token: token, bindAddresses: ["127.0.0.1:0"])
        let video = try await VideoCall.connect(config: config, delegate: delegate)
        XCTAssertEqual(video.uid(), "alice")
        server.stop()
        try await eventually("the delegate hears the connection go") {
            delegate.connectionStates.value.first == .reconnecting
        }
        do {
            _ = try await fetchDevelopmentToken(serverUrl: server.url, uid: "alice")
            XCTFail("a stopped server gave a token")
        } catch let error as ConnectError {
            guard case .Unreachable = error else { return XCTFail("expected Unreachable, got \(error)") }
            // The engine's message, not a dump of the enum.
            XCTAssertTrue(error.localizedDescription.hasPrefix("cannot reach the server"), error.localizedDescription)
        }
    }

    func testAnUnreachableServerFailsAtConnect() async throws {
        server.stop()
        let config = try server.config(for: "alice")
        do {
            _ = try await VideoCall.connect(config: config, delegate: IncomingCalls())
            XCTFail("connected to a stopped server")
        } catch let error as ConnectError {
            guard case .Unreachable = error else { return XCTFail("expected Unreachable, got \(error)") }
        }
    }

    func testCallingYourselfOrNobodyThrows() async throws {
        let alice = try await connect("alice")
        let yourself = assertThrows(ActionError.self) {
            try alice.video.call(uid: "alice", localStream: syntheticStream())
        }
        guard case .InvalidArgument(kind: .callingYourself, _) = yourself else {
            return XCTFail("got \(String(describing: yourself))")
        }
        let nobody = assertThrows(ActionError.self) {
            try alice.video.call(uid: "", localStream: syntheticStream())
        }
        guard case .InvalidArgument(kind: .uid, _) = nobody else { return XCTFail("got \(String(describing: nobody))") }
    }

    func testAcceptingAClosedOrOutgoingConversationThrows() async throws {
        let alice = try await connect("alice")
        let bob = try await connect("bob")
        let outgoing = try alice.video.call(uid: "bob", localStream: syntheticStream())
        let (incoming, _) = try await bob.incoming.next()
        let calleeHeard = ConversationRecorder.attach(to: incoming)

        // Only the callee can accept.
        let notYours = assertThrows(ActionError.self) { try outgoing.accept(localStream: syntheticStream()) }
        guard case .InvalidState(kind: .notTheCallee, _) = notYours else {
            return XCTFail("got \(String(describing: notYours))")
        }

        outgoing.close()
        let closed = try await calleeHeard.next()
        XCTAssertEqual(closed, .closed(.cancelled))
        // Too late, and the error says why: the caller cancelled.
        let tooLate = assertThrows(ActionError.self) { try incoming.accept(localStream: syntheticStream()) }
        XCTAssertNotNil(tooLate)
        guard case .Closed(endReason: .cancelled, _) = tooLate else {
            return XCTFail("accept: got \(String(describing: tooLate))")
        }
        let rejectTooLate = assertThrows(ActionError.self) { try incoming.reject() }
        guard case .Closed(endReason: .cancelled, _) = rejectTooLate else {
            return XCTFail("reject: got \(String(describing: rejectTooLate))")
        }
    }

    /// What an app does with an `ActionError`: switch on its case and kind, never on its
    /// text. Accepting twice is `InvalidState(.alreadyAccepted)`, rejecting an accepted call
    /// `InvalidState(.notRinging)`; once the caller hangs up, accepting is `Closed` with the
    /// end reason the callee heard; calling yourself is `InvalidArgument(.callingYourself)`.
    func testAnAppSwitchesOnTheActionErrorsKind() async throws {
        let alice = try await connect("alice")
        let bob = try await connect("bob")
        let call = try await connectedCall(alice, bob)

        func kindOf(_ body: () throws -> Void) -> String {
            do {
                try body()
                return "no error"
            } catch let error as ActionError {
                switch error {
                case .InvalidArgument(let kind, _): return "invalid argument \(kind)"
                case .InvalidState(let kind, _): return "invalid state \(kind)"
                case .Closed(let endReason, _): return "closed \(endReason.map { "\($0)" } ?? "nil")"
                }
            } catch {
                return "not an ActionError: \(error)"
            }
        }
        XCTAssertEqual(kindOf { try call.incoming.accept(localStream: syntheticStream()) }, "invalid state alreadyAccepted")
        XCTAssertEqual(kindOf { try call.incoming.reject() }, "invalid state notRinging")

        call.outgoing.close()
        let heard = try await call.callee.next()
        XCTAssertEqual(heard, .closed(.hangup))
        XCTAssertEqual(kindOf { try call.incoming.accept(localStream: syntheticStream()) }, "closed hangup")
        XCTAssertEqual(
            kindOf { _ = try alice.video.call(uid: "alice", localStream: syntheticStream()) },
            "invalid argument callingYourself")
    }

    func testCallingAUserWithNoDeviceFailsThenCloses() async throws {
        let alice = try await connect("alice")
        let outgoing = try alice.video.call(uid: "nobody", localStream: syntheticStream())
        let heard = ConversationRecorder.attach(to: outgoing)
        let failed = try await heard.next()
        XCTAssertEqual(failed, .failed(.Unreachable(uid: "nobody")))
        let closed = try await heard.next()
        XCTAssertEqual(closed, .closed(.unreachable))
    }

    func testBadCaptureInputThrowsCaptureError() throws {
        let stream = LocalStream(constraints: StreamConstraints(audio: true, video: VideoConstraints()))
        let y = Data(count: 16 * 16), uv = Data(count: 16 * 8)
        XCTAssertNoThrow(try stream.pushNv12(
            width: 16, height: 16, y: y, yStride: 16, uv: uv, uvStride: 16, timestampUs: 0, rotation: .deg0))
        let short = assertThrows(CaptureError.self) {
            try stream.pushNv12(
                width: 16, height: 16, y: y.prefix(100), yStride: 16, uv: uv, uvStride: 16,
                timestampUs: 0, rotation: .deg0)
        }
        guard case .InvalidFrame = short else { return XCTFail("got \(String(describing: short))") }

        XCTAssertNoThrow(try stream.pushAudio(samples: [Int16](repeating: 0, count: 480), timestampUs: 0))
        let audio = assertThrows(CaptureError.self) {
            try stream.pushAudio(samples: [Int16](repeating: 0, count: 100), timestampUs: 0)
        }
        XCTAssertEqual(audio, .AudioLength(samples: 100))
    }
}
