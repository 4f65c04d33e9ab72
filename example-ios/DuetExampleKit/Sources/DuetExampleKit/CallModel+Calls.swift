// Placing, answering and ending calls, and what the conversation says meanwhile: the
// seed's lifecycle (call, response, stream, close) as screens.

import Duet

extension CallModel {
    /// Calls `calleeUid`, sending `customData` with the call; shows the outgoing screen with
    /// the local preview while it rings.
    public func call() async {
        guard isIdle, let client else { return }
        let callee = calleeUid.trimmed
        guard !callee.isEmpty else {
            problem = Problem("Enter the uid of the person to call.", remedy: .dismiss)
            return
        }
        isWorking = true
        defer { isWorking = false }
        screen = .home
        guard let stream = await startMedia() else { return }
        // Signed out while the permission prompt was up.
        guard screen == .home, self.client === client else {
            stopMedia()
            return
        }
        do {
            let data = customData.trimmed
            let conversation = try client.call(uid: callee, localStream: stream, data: data.isEmpty ? nil : data)
            isCaller = true
            begin(conversation, on: .outgoing(remoteUid: callee))
        } catch {
            endCall()
            problem = Problem(actionError: error)
        }
    }

    /// Cancels the outgoing call while it rings.
    public func cancel() {
        guard case .outgoing = screen else { return }
        hangUp()
    }

    /// Accepts the incoming call with the camera and microphone (what of them is allowed).
    public func accept() async {
        guard case .incoming(let incoming) = screen, let conversation, !isWorking else { return }
        isWorking = true
        defer { isWorking = false }
        let stillRinging = { conversation === self.conversation && self.screen == .incoming(incoming) }
        guard let stream = await startMedia() else {
            // Nothing to answer with: say no rather than leave the caller ringing.
            if stillRinging() {
                try? conversation.reject()
                endCall()
                screen = .home
            }
            return
        }
        // The caller may have given up while the permission prompt was up.
        guard stillRinging() else {
            stopMedia()
            return
        }
        do {
            try conversation.accept(localStream: stream)
            screen = .inCall(remoteUid: incoming.callerUid)
            startPollingStats()
        } catch {
            endCall()
            screen = .home
            problem = Problem(actionError: error)
        }
    }

    /// Declines the incoming call: the caller hears "rejected".
    public func reject() {
        guard case .incoming = screen else { return }
        try? conversation?.reject()
        endCall()
        screen = .home
    }

    /// Ends the call (or cancels it while it rings) and goes home.
    public func hangUp() {
        if systemCallEnd != nil {
            endSystemCall()
            return
        }
        conversation?.close()
        endCall()
        screen = .home
    }

    /// Leaves the ended screen.
    public func dismissEnded() {
        guard case .ended = screen else { return }
        screen = .home
    }

    /// From the ended screen of an outgoing call: the same call again.
    public func callAgain() async {
        guard case .ended(let summary) = screen, summary.wasOutgoing else { return }
        calleeUid = summary.remoteUid
        screen = .home
        await call()
    }

    // MARK: - Internals

    /// At home (or looking at how the last call ended), with no call and nothing starting.
    var isIdle: Bool {
        guard conversation == nil, systemCallEnd == nil, !isWorking, client != nil else { return false }
        switch screen {
        case .home, .ended: return true
        default: return false
        }
    }

    /// An incoming call, from the client's events.
    func receive(_ conversation: Conversation, data: String?) {
        guard isIdle else {
            // One call at a time.
            try? conversation.reject()
            return
        }
        isCaller = false
        begin(conversation, on: .incoming(IncomingCall(callerUid: conversation.remoteUid(), data: data)))
    }

    private func begin(_ conversation: Conversation, on screen: Screen) {
        self.conversation = conversation
        callError = nil
        self.screen = screen
        let events = conversation.events()
        conversationEvents = Task { [weak self] in
            for await event in events {
                guard let self else { return }
                self.handle(event, of: conversation)
            }
        }
    }

    private func handle(_ event: ConversationEvent, of conversation: Conversation) {
        guard conversation === self.conversation else { return }
        switch event {
        case .response(.accepted):
            if case .outgoing(let remoteUid) = screen {
                screen = .inCall(remoteUid: remoteUid)
                startPollingStats()
            }
        case .response:
            // Rejected, busy, timeout: `.closed` follows with the same reason.
            break
        case .stream(let remote):
            remoteStream = remote
            isRemoteVideoOn = remote.videoEnabled()
            media.play(remote)
        case .remoteMedia(let videoEnabled, _):
            isRemoteVideoOn = videoEnabled
        case .mediaState, .networkQuality:
            // Not shown by the example yet (a "reconnecting" banner, signal bars).
            break
        case .failed(let error):
            callError = error
            // An error that ended the call goes in its summary; one that did not, here.
            if conversation.state() != .closed { problem = Problem(callError: error) }
        case .closed(let reason):
            let summary = CallSummary(
                remoteUid: conversation.remoteUid(), reason: reason, error: callError, wasOutgoing: isCaller)
            endCall()
            screen = .ended(summary)
        }
    }

    /// Asks for the camera and microphone and starts what was allowed; nil (with a problem
    /// to show) when nothing can be sent.
    private func startMedia() async -> LocalStream? {
        let access = await media.requestAccess()
        self.access = access
        guard access.camera || access.microphone else {
            problem = .noMediaAccess
            return nil
        }
        do {
            let stream = try media.start(access)
            localStream = stream
            isMuted = false
            isCameraOff = !access.camera
            isSpeakerOn = true
            media.setSpeaker(true)
            return stream
        } catch {
            stopMedia()
            problem = Problem("The camera or microphone could not start: \(error)", remedy: .dismiss)
            return nil
        }
    }

    private func stopMedia() {
        localStream = nil
        media.stop()
    }

    /// Forgets the call and stops the devices; the conversation is over or being closed.
    func endCall() {
        statsPolling?.cancel()
        statsPolling = nil
        conversationEvents?.cancel()
        conversationEvents = nil
        conversation = nil
        callError = nil
        remoteStream = nil
        isRemoteVideoOn = true
        stats = nil
        stopMedia()
    }
}
