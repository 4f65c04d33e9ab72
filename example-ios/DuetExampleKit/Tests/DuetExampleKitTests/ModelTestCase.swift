// What the model tests share: a server, signed-in models with synthetic media, and waiting
// for the model to reach a state.

import Duet
import DuetTestSupport
import DuetExampleKit
import Foundation
import XCTest

// @unchecked Sendable: XCTest on Linux hands the test case to the main actor to run its
// @MainActor tests; it is only ever used there and in setUp/tearDown, one at a time.
class ModelTestCase: XCTestCase, @unchecked Sendable {
    var server: TestServer!
    /// Models to sign out at the end, so no client outlives its test.
    @MainActor var models: [CallModel] = []

    /// The server's ring timeout; a test class that waits for timeouts makes it short.
    var ringTimeoutSeconds: Int { 10 }

    override func setUpWithError() throws {
        server = try TestServer(ringTimeoutSeconds: ringTimeoutSeconds)
    }

    override func tearDown() {
        server?.stop()
        server = nil
    }

    /// A model for `uid` with synthetic media, not signed in yet.
    @MainActor
    func model(
        _ uid: String, access: MediaAccess = .all, tokens: TokenSource? = nil
    ) -> CallModel {
        let store = InMemorySettingsStore(SignInSettings(serverURL: server.url, uid: uid))
        let media = SyntheticMedia(access: access)
        let model = tokens.map {
            CallModel(media: media, settings: store, tokens: $0, bindAddresses: ["127.0.0.1:0"])
        } ?? CallModel(media: media, settings: store, bindAddresses: ["127.0.0.1:0"])
        models.append(model)
        return model
    }

    /// A model for `uid`, signed in with a development token from the server.
    @MainActor
    func signedIn(
        _ uid: String, access: MediaAccess = .all, file: StaticString = #filePath, line: UInt = #line
    ) async throws -> CallModel {
        let model = model(uid, access: access)
        await model.signIn()
        XCTAssertNil(model.signInProblem, file: file, line: line)
        XCTAssertEqual(model.screen, .home, file: file, line: line)
        guard model.screen == .home else { throw TestFailure("\(uid) did not sign in") }
        return model
    }

    @MainActor
    func signOutAll() async {
        for model in models { await model.signOut() }
        models = []
    }
}

/// Polls `condition` on the main actor until it holds, failing after `timeout` seconds.
@MainActor
func eventually(
    _ what: String, timeout: TimeInterval = 10,
    file: StaticString = #filePath, line: UInt = #line, _ condition: () -> Bool
) async throws {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if condition() { return }
        try await Task.sleep(nanoseconds: 20_000_000)
    }
    XCTFail("not \(what) within \(timeout) s", file: file, line: line)
    throw TestFailure("not \(what) within \(timeout) s")
}

extension CallModel {
    var synthetic: SyntheticMedia { media as! SyntheticMedia }

    var endedSummary: CallSummary? {
        if case .ended(let summary) = screen { return summary }
        return nil
    }
}
