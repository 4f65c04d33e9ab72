// The app: one CallModel (DuetExampleKit) for its whole life, and the screen it is on.

import Duet
import DuetExampleKit
import SwiftUI

@main
struct DuetExampleApp: App {
    @State private var model: CallModel
    /// PushKit and CallKit, from launch on (see Push/PushCalls.swift).
    private let pushCalls: PushCalls

    init() {
        let settings = UserDefaultsSettingsStore()
        let model = CallModel(
            media: makeMedia(), settings: settings, videoCodecs: VideoToolboxCodecs.withFallback())
        _model = State(initialValue: model)
        pushCalls = PushCalls(model: model)
    }

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
