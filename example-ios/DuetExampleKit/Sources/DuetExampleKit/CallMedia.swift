// The device side of a call: permissions, capture, playout. The iOS app implements it with
// Duet's CameraCapturer and AudioSession (DeviceMedia); the simulator and the tests use
// SyntheticMedia, the engine's test pattern and tone.

import Duet

@MainActor
public protocol CallMedia: AnyObject {
    /// Asks for the camera and the microphone (the system prompts only the first time)
    /// and says what was granted.
    func requestAccess() async -> MediaAccess

    /// Starts capturing what `access` allows and returns the stream to call or answer
    /// with. Throws when the capture cannot start (no camera, taken by another app).
    func start(_ access: MediaAccess) throws -> LocalStream

    /// Plays the other side's audio.
    func play(_ remote: RemoteStream)

    /// Stops capture and playout: the call is over.
    func stop()

    /// Turns the camera itself on or off (off also stops the camera's privacy indicator).
    func setCameraRunning(_ running: Bool)

    /// Front to back and back again.
    func switchCamera() throws

    /// Loudspeaker or earpiece.
    func setSpeaker(_ on: Bool)
}
