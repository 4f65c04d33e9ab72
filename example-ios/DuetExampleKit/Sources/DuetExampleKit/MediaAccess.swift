// What the user allowed, and the stream that fits it. A call works with the camera alone
// (video without sound) or the microphone alone (audio only); only with neither is there
// nothing to send.

import Duet

public struct MediaAccess: Equatable, Sendable {
    public var camera: Bool
    public var microphone: Bool

    public init(camera: Bool, microphone: Bool) {
        self.camera = camera
        self.microphone = microphone
    }

    public static let all = MediaAccess(camera: true, microphone: true)

    /// The `LocalStream` constraints for this access, `video` being the camera's; nil when
    /// there is nothing to capture.
    public func constraints(video: VideoConstraints = VideoConstraints()) -> StreamConstraints? {
        guard camera || microphone else { return nil }
        return StreamConstraints(audio: microphone, video: camera ? video : nil)
    }

    /// A line for the home screen when something is missing, nil when all is allowed.
    public var limitation: String? {
        switch (camera, microphone) {
        case (true, true): return nil
        case (false, true): return "No camera access: your calls are audio only."
        case (true, false): return "No microphone access: the other side sees you but cannot hear you."
        case (false, false): return "No camera or microphone access: you cannot call."
        }
    }
}
