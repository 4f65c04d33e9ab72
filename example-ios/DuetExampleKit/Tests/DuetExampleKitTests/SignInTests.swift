// Signing in with a development token from a real server, what is remembered, and what
// the user is told when it does not work.

import Duet
import DuetTestSupport
import DuetExampleKit
import XCTest

final class SignInTests: ModelTestCase, @unchecked Sendable {
    @MainActor
    func testSigningInWithADevelopmentTokenRemembersTheServerAndUid() async throws {
        let store = InMemorySettingsStore()
        let model = CallModel(media: SyntheticMedia(), settings: store, bindAddresses: ["127.0.0.1:0"])
        XCTAssertEqual(model.serverURL, "http://127.0.0.1:7480", "the first run's default")
        model.serverURL = " \(server.url) "
        model.uid = "alice"
        await model.signIn()
        XCTAssertNil(model.signInProblem)
        XCTAssertEqual(model.screen, .home)
        XCTAssertEqual(model.signedInUid, "alice")
        XCTAssertFalse(model.isWorking)
        XCTAssertEqual(store.saved, SignInSettings(serverURL: server.url, uid: "alice"))

        await model.signOut()
        XCTAssertEqual(model.screen, .signIn)
        // The next launch opens with them filled in.
        let next = CallModel(media: SyntheticMedia(), settings: store)
        XCTAssertEqual(next.serverURL, server.url)
        XCTAssertEqual(next.uid, "alice")
    }

    @MainActor
    func testThePushTokenIsRegisteredAtSignInAndOneTheServerRefusesIsTold() async throws {
        let model = model("alice")
        // Before signing in: kept, and registered at sign-in.
        await model.setPushToken(.fcm(token: "dGVzdC10b2tlbg:APA91bHun4MxP5egoKMwt2KZFBaFUH"))
        await model.signIn()
        XCTAssertEqual(model.screen, .home)
        XCTAssertNil(model.problem)
        await model.setPushToken(.fcm(token: "not a token"))
        let problem = try XCTUnwrap(model.problem)
        XCTAssertTrue(problem.message.contains("only while Duet is open"), problem.message)
        await signOutAll()
    }

    @MainActor
    func testNoServerThereSaysToStartOneAndRetryWorks() async throws {
        let model = model("alice")
        let running = model.serverURL
        server.stop()
        await model.signIn()
        XCTAssertEqual(model.screen, .signIn)
        XCTAssertFalse(model.isWorking)
        let problem = try XCTUnwrap(model.signInProblem)
        XCTAssertEqual(problem.remedy, .retry)
        XCTAssertTrue(problem.message.contains("duet serve"), problem.message)

        server = try TestServer()
        model.serverURL = server.url
        XCTAssertNotEqual(model.serverURL, running)
        await model.signIn()
        XCTAssertNil(model.signInProblem)
        XCTAssertEqual(model.screen, .home)
        await signOutAll()
    }

    @MainActor
    func testAnAddressThatIsNotAURLIsForTheUserToFix() async throws {
        let model = model("alice")
        model.serverURL = "ftp://example"
        await model.signIn()
        XCTAssertEqual(model.screen, .signIn)
        XCTAssertEqual(model.signInProblem?.remedy, .dismiss)
        XCTAssertTrue(model.signInProblem?.message.contains("not a server address") == true,
                      model.signInProblem?.message ?? "")
    }

    @MainActor
    func testAnEmptyUidIsNotSentAnywhere() async throws {
        let model = model("  ")
        await model.signIn()
        XCTAssertEqual(model.screen, .signIn)
        XCTAssertEqual(model.signInProblem?.remedy, .dismiss)
    }

    @MainActor
    func testAProductionServerGivesNoDevelopmentTokensAndSaysWhy() async throws {
        server.stop()
        server = try TestServer(secret: "a-production-secret")
        let model = model("alice")
        await model.signIn()
        XCTAssertEqual(model.screen, .signIn)
        let problem = try XCTUnwrap(model.signInProblem)
        XCTAssertEqual(problem.remedy, .dismiss)
        XCTAssertTrue(problem.message.contains("development tokens"), problem.message)
    }

    @MainActor
    func testATokenTheServerRefusesIsShown() async throws {
        let model = model("alice", tokens: { _, _ in "not-a-token" })
        await model.signIn()
        XCTAssertEqual(model.screen, .signIn)
        XCTAssertTrue(model.signInProblem?.message.hasPrefix("The server refused to sign you in") == true,
                      model.signInProblem?.message ?? "")
    }
}
