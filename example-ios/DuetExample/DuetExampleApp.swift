// The app: one CallModel (DuetExampleKit) for its whole life, and the screen it is on.

import DuetExampleKit
import SwiftUI

@main
struct DuetExampleApp: App {
    @State private var model = CallModel(media: makeMedia(), settings: UserDefaultsSettingsStore())

    var body: some Scene {
        WindowGroup {
            RootView(model: model)
        }
    }
}

/// The simulator has no camera: there the app sends Duet's synthetic test pattern and tone.
@MainActor
private func makeMedia() -> CallMedia {
    #if targetEnvironment(simulator)
    SyntheticMedia()
    #else
    DeviceMedia()
    #endif
}
