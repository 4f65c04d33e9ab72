// The iPhone's camera, microphone and speaker, through Duet's iOS shims: CameraCapturer
// feeds the LocalStream, AudioSession captures the microphone and plays the other side.

import AVFoundation
import Duet
import DuetExampleKit
import Observation

@MainActor
@Observable
final class DeviceMedia: CallMedia {
    /// The camera while a call runs: the local preview shows its session.
    private(set) var camera: CameraCapturer?
    @ObservationIgnored private var audio: AudioSession?

    /// The system prompts once for each, with the Info.plist's NSCameraUsageDescription and
    /// NSMicrophoneUsageDescription; after that these answer at once.
    func requestAccess() async -> MediaAccess {
        let camera = await AVCaptureDevice.requestAccess(for: .video)
        let microphone = await AVAudioApplication.requestRecordPermission()
        return MediaAccess(camera: camera, microphone: microphone)
    }

    func start(_ access: MediaAccess) throws -> LocalStream {
        guard let constraints = access.constraints() else { throw DeviceMediaError.nothingAllowed }
        let stream = LocalStream(constraints: constraints)
        // Audio even without the microphone: the session also plays the other side.
        let audio = AudioSession(localStream: stream)
        try audio.start()
        self.audio = audio
        if access.camera {
            let camera = CameraCapturer(stream: stream, position: .front)
            do {
                try camera.start()
            } catch {
                audio.stop()
                self.audio = nil
                throw error
            }
            self.camera = camera
        }
        return stream
    }

    func play(_ remote: RemoteStream) {
        audio?.remoteStream = remote
    }

    func stop() {
        camera?.stop()
        camera = nil
        audio?.remoteStream = nil
        audio?.stop()
        audio = nil
    }

    func setCameraRunning(_ running: Bool) {
        if running { try? camera?.start() } else { camera?.stop() }
    }

    func switchCamera() throws {
        try camera?.switchCamera()
    }

    func setSpeaker(_ on: Bool) {
        audio?.isSpeakerOn = on
    }
}

enum DeviceMediaError: Error {
    case nothingAllowed
}
