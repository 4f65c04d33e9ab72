// Media without devices: Duet's synthetic camera (a moving test pattern) and microphone
// (a tone). The iOS simulator has no camera, so the app uses this there; the tests use it
// everywhere.

import Duet

@MainActor
public final class SyntheticMedia: CallMedia {
    /// What `requestAccess` answers, as if the user had chosen it.
    public var access: MediaAccess
    public private(set) var isRunning = false
    public private(set) var isSpeakerOn = true
    public private(set) var playing: RemoteStream?
    private let video: VideoConstraints

    public init(
        access: MediaAccess = .all,
        video: VideoConstraints = VideoConstraints(width: 320, height: 240, fps: 15, maxBitrateBps: 500_000)
    ) {
        self.access = access
        self.video = video
    }

    public func requestAccess() async -> MediaAccess { access }

    public func start(_ access: MediaAccess) throws -> LocalStream {
        guard let constraints = access.constraints(video: video) else { throw SyntheticMediaError.nothingAllowed }
        isRunning = true
        return LocalStream.synthetic(constraints: constraints)
    }

    public func play(_ remote: RemoteStream) { playing = remote }

    public func stop() {
        isRunning = false
        playing = nil
    }

    public func setCameraRunning(_ running: Bool) {}
    public func switchCamera() throws {}
    public func setSpeaker(_ on: Bool) { isSpeakerOn = on }
}

public enum SyntheticMediaError: Error {
    case nothingAllowed
}
