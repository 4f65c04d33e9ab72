// The server and uid the user signed in with last, so the app opens ready to sign in again.

import Foundation

public struct SignInSettings: Equatable, Sendable {
    public var serverURL: String
    public var uid: String

    public init(serverURL: String, uid: String) {
        self.serverURL = serverURL
        self.uid = uid
    }

    /// `duet serve`'s default address: right for the simulator on the same Mac.
    public static let firstRun = SignInSettings(serverURL: "http://127.0.0.1:7480", uid: "")
}

@MainActor
public protocol SignInSettingsStore: AnyObject {
    func load() -> SignInSettings
    func save(_ settings: SignInSettings)
}

/// The settings in `UserDefaults` (what `@AppStorage` uses too).
@MainActor
public final class UserDefaultsSettingsStore: SignInSettingsStore {
    private let defaults: UserDefaults
    private static let serverKey = "duet.serverURL"
    private static let uidKey = "duet.uid"

    public init(_ defaults: UserDefaults = .standard) {
        self.defaults = defaults
    }

    public func load() -> SignInSettings {
        SignInSettings(
            serverURL: defaults.string(forKey: Self.serverKey) ?? SignInSettings.firstRun.serverURL,
            uid: defaults.string(forKey: Self.uidKey) ?? SignInSettings.firstRun.uid)
    }

    public func save(_ settings: SignInSettings) {
        defaults.set(settings.serverURL, forKey: Self.serverKey)
        defaults.set(settings.uid, forKey: Self.uidKey)
    }
}

/// Settings that last as long as the object: for previews and tests.
@MainActor
public final class InMemorySettingsStore: SignInSettingsStore {
    public private(set) var saved: SignInSettings?

    public init(_ settings: SignInSettings? = nil) { saved = settings }

    public func load() -> SignInSettings { saved ?? .firstRun }
    public func save(_ settings: SignInSettings) { saved = settings }
}
