// The system call screen as DuetCallKit's logic sees it: what it tells the screen, and the
// user's actions that come back. CallKit implements it on iOS (CallKitScreen.swift); tests
// implement it with a recorder, so the logic runs on Linux against a real server.

import Duet
import Foundation

/// Why a call screen closes; CallKit's `CXCallEndedReason`, which decides what Recents
/// shows (an ended call not answered here shows as missed).
public enum CallScreenEndReason: Sendable, Equatable {
    /// The other party hung up, or the caller gave up while it rang.
    case remoteEnded
    /// Nobody answered before the ring timeout.
    case unanswered
    case answeredElsewhere
    case declinedElsewhere
    /// The call could not be set up (the server unreachable, the call unknown to it).
    case failed
}

/// What DuetCallKit tells the system's call screen. Calls may come from any thread; the
/// first, `reportIncoming`, comes synchronously from `DuetCallCenter.handlePush`, as iOS
/// requires of a VoIP push handler.
public protocol CallScreen: AnyObject, Sendable {
    /// Ring: a call from `caller`. `id` identifies the call in every later report and action.
    func reportIncoming(id: UUID, caller: String, hasVideo: Bool)
    /// This side started calling `callee` (CallKit: after the start-call action).
    func reportOutgoingStarted(id: UUID, callee: String)
    /// The callee answered.
    func reportOutgoingConnected(id: UUID)
    /// The call is over: close the screen.
    func reportEnded(id: UUID, reason: CallScreenEndReason)
}

/// The call's audio, which the app runs (on iOS, Duet's `AudioSession` on the session
/// CallKit activated). DuetCallKit starts it only once the system has activated the audio
/// session for an answered or connected call.
public protocol CallAudio: AnyObject, Sendable {
    /// The audio session is active for `call`: start the microphone.
    func start(call: CallHandle)
    /// Play `remote` (after `start`, once the other side's media is there).
    func play(call: CallHandle, remote: RemoteStream)
    func stop(call: CallHandle)
}

/// What an app needs of a call to show it and run its media.
public struct CallHandle: Sendable {
    public let id: UUID
    public let conversation: Conversation
    public let localStream: LocalStream
}
