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
        XCTAssertTrue(Problem(callError: .Media(reason: "ICE failed")).message.contains("--turn-public-ip"))
        XCTAssertEqual(Problem(actionError: ActionError.Closed).remedy, .signInAgain)
        XCTAssertEqual(
            Problem(actionError: ActionError.InvalidArgument(reason: "cannot call yourself")).message,
            "Cannot call yourself")
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
