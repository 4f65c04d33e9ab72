// The app's screens. `CallModel.screen` is always exactly one of them, so a view can never
// show a call that the model no longer has.

import Duet

public enum Screen: Equatable, Sendable {
    /// The server URL and uid form.
    case signIn
    /// Signed in: who to call.
    case home
    /// Calling someone: ringing until they answer or the call is cancelled.
    case outgoing(remoteUid: String)
    /// Someone is calling: accept or reject.
    case incoming(IncomingCall)
    /// Talking (once accepted, before and after the other side's media arrives).
    case inCall(remoteUid: String)
    /// A call ended other than by this user's own hang up, cancel or reject: says why
    /// until dismissed.
    case ended(CallSummary)
}

public struct IncomingCall: Equatable, Sendable {
    public let callerUid: String
    /// The caller's custom data (`CallOptions.data`), if any.
    public let data: String?

    public init(callerUid: String, data: String?) {
        self.callerUid = callerUid
        self.data = data
    }
}

/// How a call ended, for the ended screen.
public struct CallSummary: Equatable, Sendable {
    public let remoteUid: String
    /// Why, e.g. "bob is busy".
    public let title: String
    /// What went wrong, when something did (`didFailWithError`).
    public let problem: Problem?
    /// This side placed the call, so "Call again" makes sense.
    public let wasOutgoing: Bool
    /// The engine's reason, for code that wants more than the text.
    public let reason: EndReason?

    public init(remoteUid: String, reason: EndReason?, error: CallError?, wasOutgoing: Bool) {
        self.remoteUid = remoteUid
        self.reason = reason
        self.wasOutgoing = wasOutgoing
        self.title = Self.title(reason, remoteUid: remoteUid, wasOutgoing: wasOutgoing)
        // The title already says what a lost connection or an unreachable callee means;
        // only a failure has more to tell.
        self.problem = reason == .failed ? error.map(Problem.init(callError:)) : nil
    }

    private static func title(_ reason: EndReason?, remoteUid uid: String, wasOutgoing: Bool) -> String {
        switch reason {
        case .local, nil: return "Call ended"
        case .hangup: return "\(uid) hung up"
        case .cancelled: return "Missed call from \(uid)"
        case .rejected: return "\(uid) declined the call"
        case .busy: return "\(uid) is busy"
        case .timeout: return wasOutgoing ? "No answer from \(uid)" : "Missed call from \(uid)"
        case .answeredElsewhere: return "Answered on another device"
        case .declinedElsewhere: return "Declined on another device"
        case .peerDisconnected: return "\(uid) lost their connection"
        case .unreachable: return "\(uid) is not online"
        case .replaced: return "Replaced by a newer call"
        case .connectionLost: return "Lost the connection to the server"
        case .networkLost: return "The network was lost and did not come back"
        case .failed: return "The call failed"
        }
    }
}
