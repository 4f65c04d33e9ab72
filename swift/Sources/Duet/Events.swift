// Closures and async sequences in place of delegate objects, for apps that prefer them.
// They are delegates underneath: events arrive in the same order, on the same thread.

import Foundation

/// What a `ConversationDelegate` hears, as a value.
public enum ConversationEvent: Sendable {
    /// The callee answered (caller only). `.rejected`, `.busy` and `.timeout` are followed
    /// by `.closed`.
    case response(CallStatus)
    /// The other party's media is here.
    case stream(RemoteStream)
    /// Something went wrong; `.closed` follows when it ended the call.
    case failed(CallError)
    /// The other party turned its camera or microphone off or on (also heard at the start
    /// of a call whose other party sends only one of them; until then, assume both).
    case remoteMedia(videoEnabled: Bool, audioEnabled: Bool)
    /// The media connection went reconnecting (this side's or the other party's network
    /// changed; ICE is restarting) or came back. Unrecovered for 30 s, the call ends with
    /// `.networkLost`.
    case mediaState(MediaState)
    /// The network quality of each side, 0 (nothing gets through) to 5 (excellent).
    case networkQuality(local: UInt8, remote: UInt8)
    /// The call ended other than by this side's own `close()` or `reject()`, for `reason`.
    case closed(reason: EndReason?)
}

extension Conversation {
    /// Sets a delegate that hands every event to `handler`, in order, on the VideoCall's
    /// event thread. Replaces any delegate set before.
    public func onEvent(_ handler: @escaping @Sendable (ConversationEvent) -> Void) {
        setDelegate(delegate: EventRelay(conversation: self, handler: handler))
    }

    /// The conversation's events as an async sequence; sets the conversation's delegate
    /// (replacing any set before). The sequence ends after `.closed`. A call this side ends
    /// itself (`close()`, `reject()`) has no `.closed`: stop iterating then.
    public func events() -> AsyncStream<ConversationEvent> {
        AsyncStream { continuation in
            onEvent { event in
                continuation.yield(event)
                if case .closed = event { continuation.finish() }
            }
        }
    }
}

/// Turns delegate calls into `ConversationEvent`s. Holds its conversation weakly: the
/// conversation holds its delegate.
private final class EventRelay: ConversationDelegate, @unchecked Sendable {
    private weak var conversation: Conversation?
    private let handler: @Sendable (ConversationEvent) -> Void

    init(conversation: Conversation, handler: @escaping @Sendable (ConversationEvent) -> Void) {
        self.conversation = conversation
        self.handler = handler
    }

    func didReceiveResponse(status: CallStatus) { handler(.response(status)) }
    func didReceiveStream(stream: RemoteStream) { handler(.stream(stream)) }
    func didFailWithError(error: CallError) { handler(.failed(error)) }
    func didClose() { handler(.closed(reason: conversation?.closeReason())) }
    func didChangeRemoteMedia(videoEnabled: Bool, audioEnabled: Bool) {
        handler(.remoteMedia(videoEnabled: videoEnabled, audioEnabled: audioEnabled))
    }
    func didChangeMediaState(state: MediaState) { handler(.mediaState(state)) }
    func didChangeNetworkQuality(local: UInt8, remote: UInt8) {
        handler(.networkQuality(local: local, remote: remote))
    }
}

extension ConversationDelegate {
    /// Optional news: a delegate that does not show "camera off" need not implement this.
    public func didChangeRemoteMedia(videoEnabled: Bool, audioEnabled: Bool) {}
    /// Optional news: a delegate that shows no "reconnecting" need not implement this.
    public func didChangeMediaState(state: MediaState) {}
    /// Optional news: a delegate that shows no signal bars need not implement this.
    public func didChangeNetworkQuality(local: UInt8, remote: UInt8) {}
}

extension VideoCall {
    /// Connects, handing incoming calls to `onCall(conversation, data)` and connection
    /// changes to `onConnectionState`, on the VideoCall's event thread. Keep the
    /// conversation to answer it: one nobody holds is declined. `videoCodecs` as for
    /// `connect(config:delegate:videoCodecs:)`.
    public static func connect(
        config: ClientConfig,
        videoCodecs: VideoCodecs? = nil,
        onConnectionState: (@Sendable (ConnectionState) -> Void)? = nil,
        onCall: @escaping @Sendable (Conversation, String?) -> Void
    ) async throws -> VideoCall {
        try await connect(
            config: config,
            delegate: IncomingCallRelay(onCall, onConnectionState: onConnectionState),
            videoCodecs: videoCodecs)
    }
}

extension VideoCallDelegate {
    /// Connection changes are optional news: a delegate that only answers calls need not
    /// implement this.
    public func didChangeConnectionState(state: ConnectionState) {}

    /// Only an app woken by a push (`ClientConfig.wokenFor`) hears this: a delegate that
    /// connects for no push need not implement it.
    public func didEndWokenCall(callId: String, reason: EndReason?) {}
}

private final class IncomingCallRelay: VideoCallDelegate, @unchecked Sendable {
    private let onCall: @Sendable (Conversation, String?) -> Void
    private let onConnectionState: (@Sendable (ConnectionState) -> Void)?

    init(
        _ onCall: @escaping @Sendable (Conversation, String?) -> Void,
        onConnectionState: (@Sendable (ConnectionState) -> Void)?
    ) {
        self.onCall = onCall
        self.onConnectionState = onConnectionState
    }

    func didReceiveCallWithConversation(conversation: Conversation, data: String?) {
        onCall(conversation, data)
    }

    func didChangeConnectionState(state: ConnectionState) { onConnectionState?(state) }
}
