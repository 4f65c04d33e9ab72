// Ringing while the app is in the background or killed: PushKit wakes it, CallKit shows
// the call (DuetCallKit), and DuetCallCenter connects for the call the push named. Once
// answered, the call shows in the app's call view (SystemCallView).
// Made at launch, before PushKit can deliver a push (iOS ends an app that receives a VoIP
// push and does not report it to CallKit at once).

import Duet
import DuetCallKit
import DuetExampleKit
import Foundation

@MainActor
final class PushCalls {
    let screen = CallKitScreen(appName: "Duet")
    let center: DuetCallCenter

    init(model: CallModel) {
        // Answered on CallKit's screen, the call then shows in the app's own call view
        // (SystemCallView, DuetExampleKit); its hang-up asks CallKit to end the call.
        let screen = self.screen
        let audio = SystemCallView(
            model: model, audio: CallKitAudio(), end: { id in screen.requestEnd(id: id) })
        center = DuetCallCenter(
            screen: screen,
            audio: audio,
            makeStream: {
                LocalStream(constraints: StreamConstraints(audio: true, video: VideoConstraints()))
            },
            configFor: { wokenFor in
                // The server and uid last signed in with; a development server's token.
                let saved = UserDefaultsSettingsStore().load()
                let token = try await fetchDevelopmentToken(serverUrl: saved.serverURL, uid: saved.uid)
                return ClientConfig(serverUrl: saved.serverURL, token: token, wokenFor: wokenFor)
            })
        screen.onToken = { [weak model] hex in
            guard let model else { return }
            let token = PushToken.apns(
                token: hex, bundleId: Bundle.main.bundleIdentifier ?? "", environment: Self.environment)
            Task { @MainActor in await model.setPushToken(token) }
        }
        screen.start(center: center)
    }

    /// Xcode's builds use the APNs sandbox; TestFlight and the App Store production.
    nonisolated static var environment: ApnsEnvironment {
        #if DEBUG
        .sandbox
        #else
        .production
        #endif
    }
}

/// The woken call's microphone and speaker: Duet's `AudioSession`, started once CallKit has
/// activated the audio session (DuetCallCenter calls `start` only then).
final class CallKitAudio: CallAudio, @unchecked Sendable {
    private let lock = NSLock()
    private var session: AudioSession?

    func start(call: CallHandle) {
        let audio = AudioSession(localStream: call.localStream)
        try? audio.start()
        lock.lock()
        session = audio
        lock.unlock()
    }

    func play(call: CallHandle, remote: RemoteStream) {
        lock.lock()
        session?.remoteStream = remote
        lock.unlock()
    }

    func stop(call: CallHandle) {
        lock.lock()
        let audio = session
        session = nil
        lock.unlock()
        audio?.stop()
    }
}
