// The platform-free heart of DuetCallKit: a VoIP push in, the call screen told at once,
// Duet connected for the call the push named, and the screen's actions turned into Duet's.
//
// Everything after the synchronous first report runs on one serial queue, which owns the
// state below; Duet's delegate events and the screen's actions are moved onto it.

import Duet
import Foundation

/// One call at a time, as Duet has.
public final class DuetCallCenter: @unchecked Sendable {
    /// The config to connect with, for the call a push named (`wokenFor`, to go into
    /// `ClientConfig.wokenFor`) or for an outgoing call (nil). The app fills in its server
    /// URL, a fresh token and its device id.
    public typealias ConfigProvider = @Sendable (_ wokenFor: String?) async throws -> ClientConfig

    private let screen: CallScreen
    private let audio: CallAudio?
    private let configFor: ConfigProvider
    private let makeStream: @Sendable () -> LocalStream
    private let queue = DispatchQueue(label: "dev.duet.callkit")

    // Owned by `queue`.
    private var call: CallRecord?
    private var client: VideoCall?
    private var audioActive = false

    public init(
        screen: CallScreen, audio: CallAudio? = nil, makeStream: @escaping @Sendable () -> LocalStream,
        configFor: @escaping ConfigProvider
    ) {
        self.screen = screen
        self.audio = audio
        self.makeStream = makeStream
        self.configFor = configFor
    }

    // MARK: Inputs from the push service

    /// From the VoIP push handler, synchronously: reports the call to the screen before it
    /// returns (iOS ends an app that does not), then connects for it. False for a payload
    /// that is not a Duet call (the caller must still report something on iOS).
    @discardableResult
    public func handlePush(_ payload: [AnyHashable: Any]) -> Bool {
        guard let push = VoipPush(payload: payload) else { return false }
        screen.reportIncoming(id: push.screenId, caller: push.caller, hasVideo: true)
        queue.async { self.ringFromPush(push) }
        return true
    }

    private func ringFromPush(_ push: VoipPush) {
        if let busy = call, busy.id != push.screenId {
            // Duet has one call at a time: the second one's screen closes at once.
            screen.reportEnded(id: push.screenId, reason: .failed)
            return
        }
        call = CallRecord(id: push.screenId, callId: push.callId, peer: push.caller, outgoing: false)
        let callId = push.callId
        Task {
            do {
                let config = try await self.configFor(callId)
                try await self.connect(config)
            } catch {
                self.queue.async { self.finish(callId: callId, reason: .failed) }
            }
        }
    }

    private func connect(_ config: ClientConfig) async throws {
        let old = queue.sync { () -> VideoCall? in
            let old = client
            client = nil
            return old
        }
        await old?.shutdown()
        let connected = try await VideoCall.connect(config: config, delegate: ClientRelay(center: self))
        queue.sync { client = connected }
    }

    // MARK: Inputs from the call screen (the user's actions)

    /// The user answered. False if `id` is not the ringing call.
    @discardableResult
    public func answer(id: UUID) -> Bool {
        queue.sync {
            guard var c = call, c.id == id, !c.outgoing, c.phase == .ringing else { return false }
            c.phase = .answered
            c.stream = c.stream ?? makeStream()
            call = c
            applyMedia()
            if let conversation = c.conversation, let stream = c.stream {
                accept(conversation, stream)
            }
            // Otherwise it is accepted when Duet hands the call over (`adopt`).
            return true
        }
    }

    /// The user declined a ringing call or hung up. False if `id` is not the call.
    @discardableResult
    public func end(id: UUID) -> Bool {
        queue.sync {
            guard let c = call, c.id == id else { return false }
            if let conversation = c.conversation {
                if c.phase == .ringing && !c.outgoing {
                    _ = try? conversation.reject()
                }
                conversation.close()
            }
            // A call not handed over yet is rejected once it is (`adopt` finds no call).
            stopAudio(c)
            call = nil
            declineNext = c.conversation == nil && !c.outgoing ? c.callId : nil
            return true
        }
    }

    /// The screen's mute button: the microphone stops reaching the other party.
    @discardableResult
    public func setMuted(id: UUID, muted: Bool) -> Bool {
        update(id) { $0.muted = muted }
    }

    /// Hold: neither camera nor microphone reaches the other party until resumed.
    @discardableResult
    public func setHeld(id: UUID, held: Bool) -> Bool {
        update(id) { $0.held = held }
    }

    /// The system activated the audio session (CallKit's `provider(_:didActivate:)`): the
    /// call's audio starts now, never before.
    public func didActivateAudioSession() {
        queue.sync {
            audioActive = true
            applyMedia()
            if let c = call, c.phase != .ringing { startAudio(c) }
        }
    }

    public func didDeactivateAudioSession() {
        queue.sync {
            audioActive = false
            applyMedia()
            if let c = call { stopAudio(c) }
        }
    }

    // MARK: Outgoing

    /// Calls `callee` and shows it on the call screen; returns the call's screen id.
    public func startCall(to callee: String, data: String? = nil) async throws -> UUID {
        let needsClient = queue.sync { client == nil }
        if needsClient { try await connect(try await configFor(nil)) }
        return try queue.sync {
            guard let client else { throw CallCenterError.notConnected }
            if let c = call, let conversation = c.conversation { conversation.close() }
            let stream = makeStream()
            let conversation = try client.call(
                remoteUid: callee, localStream: stream,
                options: CallOptions(data: data, iceTransportPolicy: .all))
            var c = CallRecord(id: UUID(), callId: conversation.callId(), peer: callee, outgoing: true)
            c.conversation = conversation
            c.stream = stream
            call = c
            conversation.setDelegate(delegate: ConversationRelay(center: self, conversation: conversation))
            applyMedia()
            screen.reportOutgoingStarted(id: c.id, callee: callee)
            return c.id
        }
    }

    /// Hangs up and disconnects (e.g. after a woken call, once the app is done).
    public func shutdown() async {
        let old = queue.sync { () -> VideoCall? in
            let old = client
            client = nil
            call = nil
            return old
        }
        await old?.shutdown()
    }

    /// The call the screen shows, if any, once it has media: for the app's own UI.
    public var currentCall: CallHandle? { queue.sync { call?.handle } }

    /// Whether Duet has handed over the call the screen shows (for tests).
    var callHandedOver: Bool { queue.sync { call?.conversation != nil } }

    // MARK: Duet's events (moved onto `queue` by the relays)

    private var declineNext: String?

    fileprivate func adopt(_ conversation: Conversation, data: String?) {
        let callId = conversation.callId()
        if callId != nil && callId == declineNext {
            declineNext = nil
            _ = try? conversation.reject()
            conversation.close()
            return
        }
        guard var c = call else {
            // A call while the app is connected (not woken): it rings as a pushed one would.
            var fresh = CallRecord(
                id: callId.flatMap(UUID.init(uuidString:)) ?? UUID(), callId: callId,
                peer: conversation.remoteUid(), outgoing: false)
            fresh.conversation = conversation
            call = fresh
            conversation.setDelegate(delegate: ConversationRelay(center: self, conversation: conversation))
            screen.reportIncoming(id: fresh.id, caller: fresh.peer, hasVideo: true)
            return
        }
        guard c.callId == callId, c.conversation == nil else {
            // Busy with another call: this one is declined (nobody keeps it).
            _ = try? conversation.reject()
            return
        }
        c.conversation = conversation
        call = c
        conversation.setDelegate(delegate: ConversationRelay(center: self, conversation: conversation))
        if c.phase == .answered, let stream = c.stream { accept(conversation, stream) }
    }

    fileprivate func wokenCallEnded(callId: String, reason: EndReason?) {
        finish(callId: callId, reason: Self.screenReason(reason))
    }

    fileprivate func accepted(_ conversation: Conversation) {
        guard let c = call, c.conversation === conversation, c.outgoing else { return }
        call?.phase = .answered
        screen.reportOutgoingConnected(id: c.id)
        if audioActive { startAudio(c) }
    }

    fileprivate func remoteStreamArrived(_ conversation: Conversation, _ stream: RemoteStream) {
        guard var c = call, c.conversation === conversation else { return }
        c.remote = stream
        call = c
        if audioActive, c.phase == .answered, let handle = c.handle { audio?.play(call: handle, remote: stream) }
    }

    fileprivate func closed(_ conversation: Conversation) {
        guard let c = call, c.conversation === conversation else { return }
        finish(callId: c.callId, reason: Self.screenReason(conversation.closeReason()))
    }

    private func finish(callId: String?, reason: CallScreenEndReason) {
        guard let c = call, c.callId == callId else { return }
        stopAudio(c)
        call = nil
        screen.reportEnded(id: c.id, reason: Self.shownReason(reason, for: c))
    }

    // MARK: Helpers (on `queue`)

    private func accept(_ conversation: Conversation, _ stream: LocalStream) {
        do {
            try conversation.accept(localStream: stream)
            // Answered on the lock screen, CallKit activates the audio session at once,
            // often before Duet has handed the call over: its audio starts now, then.
            if audioActive, let c = call { startAudio(c) }
        } catch {
            // Over already (cancelled as the user answered): its close reports the end.
            if conversation.closeReason() == nil { finish(callId: call?.callId, reason: .failed) }
        }
    }

    private func update(_ id: UUID, _ change: (inout CallRecord) -> Void) -> Bool {
        queue.sync {
            guard var c = call, c.id == id else { return false }
            change(&c)
            call = c
            applyMedia()
            return true
        }
    }

    /// The microphone reaches the other party only with the audio session active, unmuted
    /// and not on hold; the camera only when not on hold.
    private func applyMedia() {
        guard let c = call, let stream = c.stream else { return }
        stream.setAudioEnabled(enabled: audioActive && !c.muted && !c.held)
        stream.setVideoEnabled(enabled: !c.held)
    }

    private func startAudio(_ c: CallRecord) {
        guard let handle = c.handle else { return }
        audio?.start(call: handle)
        if let remote = c.remote { audio?.play(call: handle, remote: remote) }
    }

    private func stopAudio(_ c: CallRecord) {
        if let handle = c.handle { audio?.stop(call: handle) }
    }

    /// An incoming call that ended before it was answered here (the caller gave up, or the
    /// call timed out) shows as missed: CallKit's `.unanswered`, whatever the remote did.
    static func shownReason(_ reason: CallScreenEndReason, for c: CallRecord) -> CallScreenEndReason {
        !c.outgoing && c.phase == .ringing && reason == .remoteEnded ? .unanswered : reason
    }

    static func screenReason(_ reason: EndReason?) -> CallScreenEndReason {
        switch reason {
        case .timeout: return .unanswered
        case .answeredElsewhere: return .answeredElsewhere
        case .declinedElsewhere: return .declinedElsewhere
        case .unreachable, .connectionLost, .networkLost, .failed: return .failed
        case .cancelled, .hangup, .peerDisconnected, .rejected, .busy, .local, .replaced, nil:
            return .remoteEnded
        }
    }
}

public enum CallCenterError: Error {
    case notConnected
}

/// The call the screen shows.
struct CallRecord {
    enum Phase { case ringing, answered }

    let id: UUID
    let callId: String?
    let peer: String
    let outgoing: Bool
    var phase = Phase.ringing
    var conversation: Conversation?
    var stream: LocalStream?
    var remote: RemoteStream?
    var muted = false
    var held = false

    var handle: CallHandle? {
        guard let conversation, let stream else { return nil }
        return CallHandle(id: id, conversation: conversation, localStream: stream)
    }
}

/// Duet's client events, onto the center's queue. Holds the center weakly: the client it
/// belongs to is the center's.
private final class ClientRelay: VideoCallDelegate, @unchecked Sendable {
    private weak var center: DuetCallCenter?
    init(center: DuetCallCenter) { self.center = center }

    func didReceiveCallWithConversation(conversation: Conversation, data: String?) {
        guard let center else { return }
        center.queueAsync { center.adopt(conversation, data: data) }
    }

    func didChangeConnectionState(state: ConnectionState) {}

    func didEndWokenCall(callId: String, reason: EndReason?) {
        guard let center else { return }
        center.queueAsync { center.wokenCallEnded(callId: callId, reason: reason) }
    }
}

private final class ConversationRelay: ConversationDelegate, @unchecked Sendable {
    private weak var center: DuetCallCenter?
    private weak var conversation: Conversation?

    init(center: DuetCallCenter, conversation: Conversation) {
        self.center = center
        self.conversation = conversation
    }

    func didReceiveResponse(status: CallStatus) {
        guard status == .accepted, let center, let conversation else { return }
        center.queueAsync { center.accepted(conversation) }
    }

    func didReceiveStream(stream: RemoteStream) {
        guard let center, let conversation else { return }
        center.queueAsync { center.remoteStreamArrived(conversation, stream) }
    }

    func didFailWithError(error: CallError) {}

    func didClose() {
        guard let center, let conversation else { return }
        center.queueAsync { center.closed(conversation) }
    }
}

extension DuetCallCenter {
    fileprivate func queueAsync(_ work: @escaping @Sendable () -> Void) { queue.async(execute: work) }
}
