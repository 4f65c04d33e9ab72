// Mute, camera off, switch camera, speaker, hang up. The camera buttons are off when the
// user did not allow the camera (an audio-only call).

import DuetExampleKit
import SwiftUI

struct InCallControls: View {
    let model: CallModel

    var body: some View {
        HStack(spacing: 12) {
            RoundButton(
                model.isMuted ? "Unmute" : "Mute",
                systemImage: model.isMuted ? "mic.slash.fill" : "mic.fill",
                tint: model.isMuted ? .white : .gray
            ) { model.toggleMute() }
                .disabled(!model.canUseMicrophone)
            RoundButton(
                model.isCameraOff ? "Camera on" : "Camera off",
                systemImage: model.isCameraOff ? "video.slash.fill" : "video.fill",
                tint: model.isCameraOff ? .white : .gray
            ) { model.toggleCamera() }
                .disabled(!model.canUseCamera)
            RoundButton("Flip", systemImage: "arrow.triangle.2.circlepath.camera.fill", tint: .gray) {
                model.switchCamera()
            }
            .disabled(!model.canUseCamera || model.isCameraOff)
            RoundButton(
                model.isSpeakerOn ? "Speaker" : "Earpiece",
                systemImage: model.isSpeakerOn ? "speaker.wave.3.fill" : "ear",
                tint: model.isSpeakerOn ? .white : .gray
            ) { model.toggleSpeaker() }
            RoundButton("End", systemImage: "phone.down.fill", tint: .red) { model.hangUp() }
        }
    }
}
