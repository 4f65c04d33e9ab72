// A lost connection shows as reconnecting and recovers by itself; a token the server
// refuses on the way back asks the user to sign in again, which fixes it in place.

import Duet
import DuetTestSupport
import DuetExampleKit
import Foundation
import XCTest

final class ConnectionTests: ModelTestCase, @unchecked Sendable {
    @MainActor
    func testALostConnectionShowsReconnectingUntilItIsBack() async throws {
        let alice = try await signedIn("alice")
        let address = server.address
        server.stop()
        try await eventually("reconnecting shown") { alice.isReconnecting }
        XCTAssertEqual(alice.screen, .home, "a lost connection is not a reason to leave the screen")
        XCTAssertNil(alice.problem)

        server = try TestServer(listen: address)
        try await eventually("connected again", timeout: 15) { !alice.isReconnecting }
        await signOutAll()
    }

    @MainActor
    func testAnExpiredTokenOnReconnectAsksToSignInAgainAndThatReconnects() async throws {
        // Tokens that expire in a second, until the test says otherwise.
        let ttl = Locked(1)
        let alice = model("alice", tokens: { _, uid in try DuetCLI.token(for: uid, ttl: ttl.value) })
        await alice.signIn()
        XCTAssertEqual(alice.screen, .home)

        // The token is checked when connecting: restart the server after it expired.
        try await Task.sleep(nanoseconds: 2_100_000_000)
        let address = server.address
        server.stop()
        server = try TestServer(listen: address)
        try await eventually("the refusal shown", timeout: 15) { alice.problem != nil }
        XCTAssertEqual(alice.problem?.remedy, .signInAgain)
        XCTAssertTrue(alice.problem?.message.contains("expired") == true, alice.problem?.message ?? "")
        XCTAssertTrue(alice.isReconnecting)
        XCTAssertEqual(alice.screen, .home)

        ttl.set(3600)
        await alice.signInAgain()
        XCTAssertNil(alice.problem)
        try await eventually("connected again", timeout: 15) { !alice.isReconnecting }
        XCTAssertEqual(alice.screen, .home)
        await signOutAll()
    }
}

/// A value shared with a `@Sendable` closure.
final class Locked<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var _value: Value
    init(_ value: Value) { _value = value }
    var value: Value { lock.lock(); defer { lock.unlock() }; return _value }
    func set(_ value: Value) { lock.lock(); _value = value; lock.unlock() }
}
