// What the user reads for each of the SDK's errors, and what they can do about it.

import Duet
import DuetExampleKit
import XCTest

final class ProblemTests: XCTestCase {
    func testConnectErrorsSayWhatToDo() {
        let url = "http://10.0.0.2:7480"
        XCTAssertEqual(Problem(signingInTo: url, error: ConnectError.Unreachable(reason: "refused")).remedy, .retry)
        XCTAssertEqual(Problem(signingInTo: url, error: ConnectError.Timeout(timeoutMs: 10_000)).remedy, .retry)
        XCTAssertEqual(
            Problem(signingInTo: url, error: ConnectError.Refused(code: .unauthorized, reason: "bad")).remedy, .dismiss)
        XCTAssertEqual(
            Problem(signingInTo: url, error: ConnectError.InvalidUrl(url: url, reason: "x")).remedy, .dismiss)
        XCTAssertTrue(
            Problem(signingInTo: url, error: ConnectError.Timeout(timeoutMs: 10_000)).message.contains("10 s"))
    }

    func testARefusedReconnectAsksToSignInAgain() {
        let expired = Problem(refusedReconnect: .tokenExpired, reason: "token expired")
        XCTAssertEqual(expired.remedy, .signInAgain)
        XCTAssertTrue(expired.message.contains("expired"))
        XCTAssertEqual(Problem(refusedReconnect: .unauthorized, reason: "bad signature").remedy, .signInAgain)
    }

    func testCallErrors() {
        XCTAssertTrue(Problem(callError: .Unreachable(uid: "bob")).message.hasPrefix("bob "))
        XCTAssertTrue(Problem(callError: .IceFailed).message.contains("--turn-public-ip"))
        XCTAssertEqual(Problem(actionError: ActionError.Closed(endReason: nil, reason: "closed")).remedy, .signInAgain)
        XCTAssertEqual(
            Problem(actionError: ActionError.InvalidArgument(kind: .callingYourself, reason: "cannot call yourself"))
                .message,
            "Cannot call yourself")
    }

    /// Each media failure says something of its own, and what to do: a network path is a
    /// setup matter (the TURN relay), a failed handshake is worth another try.
    func testEachMediaFailureHasItsOwnMessage() {
        let ice = Problem(callError: .IceFailed)
        XCTAssertEqual(ice.remedy, .dismiss)
        XCTAssertTrue(ice.message.contains("No network path"), ice.message)
        let dtls = Problem(callError: .DtlsFailed)
        XCTAssertEqual(dtls.remedy, .retry)
        XCTAssertTrue(dtls.message.contains("encryption"), dtls.message)
        let codec = Problem(callError: .NoCodec(kind: .video, reason: "openh264 missing"))
        XCTAssertEqual(codec.remedy, .dismiss)
        XCTAssertTrue(codec.message.contains("video codec (openh264 missing)"), codec.message)
        XCTAssertTrue(
            Problem(callError: .NoCodec(kind: .audio, reason: "x")).message.contains("audio codec"))
        let sdp = Problem(callError: .BadRemoteDescription(reason: "no m= line"))
        XCTAssertEqual(sdp.remedy, .dismiss)
        XCTAssertTrue(sdp.message.contains("(no m= line)"), sdp.message)
        let setup = Problem(callError: .MediaSetup(reason: "no port"))
        XCTAssertEqual(setup.remedy, .retry)
        XCTAssertTrue(setup.message.contains("(no port)"), setup.message)
        let messages = [ice, dtls, codec, sdp, setup].map(\.message)
        XCTAssertEqual(Set(messages).count, messages.count, "\(messages)")
    }

    /// An action refused by kind: a closed call with its reason is not a sign-out.
    func testActionErrorsByKind() {
        let overHere = Problem(actionError: ActionError.Closed(endReason: .cancelled, reason: "closed"))
        XCTAssertEqual(overHere, Problem("The call is already over.", remedy: .dismiss))
        XCTAssertTrue(
            Problem(actionError: ActionError.Closed(endReason: .answeredElsewhere, reason: "closed"))
                .message.contains("another of your devices"))
        XCTAssertEqual(
            Problem(actionError: ActionError.InvalidState(kind: .notTheCallee, reason: "x")).message,
            "Only the person called can answer or decline.")
        XCTAssertTrue(
            Problem(actionError: ActionError.InvalidArgument(kind: .uid, reason: "uid is empty"))
                .message.contains("(uid is empty)"))
        XCTAssertTrue(
            Problem(actionError: ActionError.InvalidArgument(kind: .dataTooLong, reason: "x")).message.contains("too long"))
    }

    func testEndReasonsReadFromEachSide() {
        func title(_ reason: EndReason?, outgoing: Bool) -> String {
            CallSummary(remoteUid: "bob", reason: reason, error: nil, wasOutgoing: outgoing).title
        }
        XCTAssertEqual(title(.timeout, outgoing: true), "No answer from bob")
        XCTAssertEqual(title(.timeout, outgoing: false), "Missed call from bob")
        XCTAssertEqual(title(.busy, outgoing: true), "bob is busy")
        XCTAssertEqual(title(nil, outgoing: true), "Call ended")
        let failed = CallSummary(remoteUid: "bob", reason: .failed, error: .ConnectionLost, wasOutgoing: true)
        XCTAssertEqual(failed.problem?.message, "The connection to the server was lost.")
    }
}
