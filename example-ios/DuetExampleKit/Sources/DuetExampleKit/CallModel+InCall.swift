// The in-call controls and the stats overlay.

import Duet

extension CallModel {
    /// The stats overlay's line, once the first stats are in.
    public var statsLine: String? { stats.map(StatsFormat.line) }

    /// Whether the user allowed the camera (else the camera buttons are off).
    public var canUseCamera: Bool { access?.camera == true }
    public var canUseMicrophone: Bool { access?.microphone == true }

    public func toggleMute() {
        guard let localStream, canUseMicrophone else { return }
        isMuted.toggle()
        localStream.setAudioEnabled(enabled: !isMuted)
    }

    public func toggleCamera() {
        guard let localStream, canUseCamera else { return }
        isCameraOff.toggle()
        localStream.setVideoEnabled(enabled: !isCameraOff)
        media.setCameraRunning(!isCameraOff)
    }

    public func switchCamera() {
        guard canUseCamera else { return }
        do {
            try media.switchCamera()
        } catch {
            problem = Problem("Could not switch cameras: \(error)", remedy: .dismiss)
        }
    }

    public func toggleSpeaker() {
        isSpeakerOn.toggle()
        media.setSpeaker(isSpeakerOn)
    }

    /// Asks for the call's stats once a second until the call ends.
    func startPollingStats() {
        statsPolling?.cancel()
        guard let conversation else { return }
        statsPolling = Task { [weak self] in
            while !Task.isCancelled {
                let stats = await conversation.stats()
                guard !Task.isCancelled, let self else { return }
                if let stats { self.stats = stats }
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }
}
