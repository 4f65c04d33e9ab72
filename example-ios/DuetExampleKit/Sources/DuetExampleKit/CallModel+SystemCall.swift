// A call woken by a VoIP push and answered on the system's call screen (CallKit) runs in
// DuetCallKit's DuetCallCenter, not in the model's own client. The app still shows it in
// its own call view, with the other side's video: SystemCallView (the center's CallAudio)
// tells the model when the answered call's audio starts, when the other side's media is
// there, and when it stops.

import Duet
import DuetCallKit
import Foundation

extension CallModel {
    /// Shows the answered system call with `remoteUid` in the call view; the view's hang-up
    /// calls `end`. Ignored while the app has a call of its own (one at a time).
    public func showSystemCall(remoteUid: String, localStream: LocalStream, end: @escaping @Sendable () -> Void) {
        guard conversation == nil, systemCallEnd == nil else { return }
        systemCallEnd = end
        self.localStream = localStream
        remoteStream = nil
        isRemoteVideoOn = true
        isMuted = false
        isCameraOff = false
        screen = .inCall(remoteUid: remoteUid)
    }

    /// The other side's media of the system call, for the call view to draw.
    public func systemCallStream(_ remote: RemoteStream) {
        guard systemCallEnd != nil else { return }
        remoteStream = remote
        isRemoteVideoOn = remote.videoEnabled()
    }

    /// The system call is over (either side hung up, or the system's screen did).
    public func systemCallEnded() {
        guard systemCallEnd != nil else { return }
        systemCallEnd = nil
        // The stream is the center's: it stops it, not the model's media.
        localStream = nil
        remoteStream = nil
        isRemoteVideoOn = true
        screen = client == nil ? .signIn : .home
    }

    /// Hang-up in the call view of a system call: the system's screen ends it.
    func endSystemCall() {
        let end = systemCallEnd
        systemCallEnded()
        end?()
    }
}

/// DuetCallCenter's `CallAudio` for the app: passes each event on to the device's `audio`
/// and shows the answered call in `model`'s call view. `end` hangs a call up from the app
/// (on iOS `CallKitScreen.requestEnd(id:)`, so that CallKit's screen closes too).
public final class SystemCallView: CallAudio, @unchecked Sendable {
    private let model: CallModel
    private let audio: CallAudio?
    private let end: @Sendable (UUID) -> Void

    public init(model: CallModel, audio: CallAudio?, end: @escaping @Sendable (UUID) -> Void) {
        self.model = model
        self.audio = audio
        self.end = end
    }

    /// On the main actor, in the order the center told them (separate Tasks could swap a
    /// start and the stream that follows it).
    private func onMain(_ work: @escaping @MainActor @Sendable () -> Void) {
        DispatchQueue.main.async { MainActor.assumeIsolated { work() } }
    }

    public func start(call: CallHandle) {
        audio?.start(call: call)
        let (model, end, id) = (model, end, call.id)
        let (uid, stream) = (call.conversation.remoteUid(), call.localStream)
        onMain { model.showSystemCall(remoteUid: uid, localStream: stream) { end(id) } }
    }

    public func play(call: CallHandle, remote: RemoteStream) {
        audio?.play(call: call, remote: remote)
        let model = model
        onMain { model.systemCallStream(remote) }
    }

    public func stop(call: CallHandle) {
        audio?.stop(call: call)
        let model = model
        onMain { model.systemCallEnded() }
    }
}
