// The server and uid kept in UserDefaults.

import DuetExampleKit
import Foundation
import XCTest

// @unchecked Sendable: as ModelTestCase, for its @MainActor test.
final class SettingsStoreTests: XCTestCase, @unchecked Sendable {
    @MainActor
    func testUserDefaultsKeepTheServerAndUid() async throws {
        let suite = "duet-example-tests-\(UUID().uuidString)"
        let defaults = try XCTUnwrap(UserDefaults(suiteName: suite))
        defer { defaults.removePersistentDomain(forName: suite) }
        let store = UserDefaultsSettingsStore(defaults)
        XCTAssertEqual(store.load(), .firstRun)
        store.save(SignInSettings(serverURL: "http://192.168.1.20:7480", uid: "alice"))
        XCTAssertEqual(
            UserDefaultsSettingsStore(defaults).load(), SignInSettings(serverURL: "http://192.168.1.20:7480", uid: "alice"))
    }
}
