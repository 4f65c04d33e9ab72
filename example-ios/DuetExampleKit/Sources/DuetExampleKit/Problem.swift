// What went wrong, as the user reads it, and what they can do about it. Every error the
// SDK reports becomes one of these, so no failure leaves a screen frozen or silent.

import Duet

public struct Problem: Equatable, Sendable {
    /// The one thing the user can do about it; the view shows it as a button.
    public enum Remedy: Equatable, Sendable {
        /// Try the same thing again (e.g. the server was not running yet).
        case retry
        /// Get a fresh token: `CallModel.signInAgain()`.
        case signInAgain
        /// Allow the camera or the microphone in the Settings app.
        case openSettings
        /// Nothing to retry: read it and fix the input.
        case dismiss
    }

    public let message: String
    public let remedy: Remedy

    public init(_ message: String, remedy: Remedy) {
        self.message = message
        self.remedy = remedy
    }
}

extension Problem {
    /// Signing in to `serverURL` failed: the token request or the connection.
    public init(signingInTo serverURL: String, error: Error) {
        switch error {
        case ConnectError.InvalidUrl(_, let reason):
            self.init(
                "“\(serverURL)” is not a server address (\(reason)). It looks like http://192.168.1.20:7480.",
                remedy: .dismiss)
        case ConnectError.Unreachable(let reason):
            self.init(
                "Cannot reach \(serverURL) (\(reason)). Is `duet serve` running? From a phone, start it "
                    + "with --listen 0.0.0.0:7480 and use the computer's Wi-Fi address, not 127.0.0.1.",
                remedy: .retry)
        case ConnectError.Refused(.tokenExpired, _):
            self.init("The sign-in expired. Sign in again for a fresh token.", remedy: .retry)
        case ConnectError.Refused(_, let reason):
            self.init("The server refused to sign you in: \(reason)", remedy: .dismiss)
        case ConnectError.Timeout(let timeoutMs):
            self.init(
                "\(serverURL) did not answer within \(timeoutMs / 1000) s. Check the address and the network.",
                remedy: .retry)
        case ConnectError.Protocol(let reason):
            self.init(
                "\(serverURL) does not answer like a Duet server (\(reason)). Check the address and port.",
                remedy: .dismiss)
        default:
            self.init("Could not sign in: \(error.localizedDescription)", remedy: .retry)
        }
    }

    /// A call went wrong (`ConversationDelegate.didFailWithError`): one message and remedy
    /// per kind of error, never a parse of its text.
    public init(callError: CallError) {
        switch callError {
        case .Unreachable(let uid):
            self.init("\(uid) is not signed in anywhere right now.", remedy: .dismiss)
        case .ConnectionLost:
            self.init("The connection to the server was lost.", remedy: .dismiss)
        case .Server(_, let reason):
            self.init("The server refused: \(reason)", remedy: .dismiss)
        case .IceFailed:
            // Calling again over the same networks finds no more paths than this time.
            self.init(
                "No network path to the other party was found, so the call's audio and video could not get "
                    + "through. Across networks, the server's TURN relay must be reachable: see --turn-listen "
                    + "and --turn-public-ip.",
                remedy: .dismiss)
        case .DtlsFailed:
            self.init(
                "The other party was reached, but the call's encryption could not be set up. Try calling again.",
                remedy: .retry)
        case .NoCodec(let kind, let reason):
            self.init(
                "This device could not start its \(kind == .audio ? "audio" : "video") codec (\(reason)).",
                remedy: .dismiss)
        case .BadRemoteDescription(let reason):
            self.init(
                "The other party's app set up the call in a way this one cannot use (\(reason)). "
                    + "Both apps may need updating.",
                remedy: .dismiss)
        case .NetworkLost:
            self.init(
                "The network went away for 30 seconds and the call could not carry on. Check the network and call "
                    + "again.",
                remedy: .retry)
        case .MediaSetup(let reason):
            self.init("The call's audio and video could not be set up (\(reason)). Try again.", remedy: .retry)
        }
    }

    /// `call`, `accept` or `reject` was refused at once (`ActionError`), by kind.
    public init(actionError error: Error) {
        switch error {
        case ActionError.InvalidArgument(.callingYourself, _):
            self.init("Cannot call yourself", remedy: .dismiss)
        case ActionError.InvalidArgument(.uid, let reason):
            self.init("That uid cannot be called (\(reason)).", remedy: .dismiss)
        case ActionError.InvalidArgument(.dataTooLong, _):
            self.init("The custom data is too long for the server. Shorten it.", remedy: .dismiss)
        case ActionError.InvalidState(let kind, _):
            self.init(Self.wrongState(kind), remedy: .dismiss)
        case ActionError.Closed(.none, _):
            // No end reason: the client itself is gone (shut down, or signed out).
            self.init("You are signed out. Sign in again.", remedy: .signInAgain)
        case ActionError.Closed(.answeredElsewhere?, _):
            self.init("The call was answered on another of your devices.", remedy: .dismiss)
        case ActionError.Closed(.some, _):
            self.init("The call is already over.", remedy: .dismiss)
        default:
            self.init(error.localizedDescription, remedy: .dismiss)
        }
    }

    private static func wrongState(_ kind: WrongStateKind) -> String {
        switch kind {
        case .alreadyAccepted: return "The call is already answered."
        case .notTheCallee: return "Only the person called can answer or decline."
        case .notRinging: return "The call is no longer ringing."
        case .notAccepted: return "The call has not been answered yet."
        }
    }

    /// The server refused to take this client back after a lost connection
    /// (`ConnectionState.refused`), e.g. because its token expired.
    public init(refusedReconnect code: ServerErrorCode, reason: String) {
        let why = code == .tokenExpired ? "your sign-in expired" : reason
        self.init("The server no longer accepts this sign-in (\(why)).", remedy: .signInAgain)
    }

    /// Neither the camera nor the microphone may be used.
    public static let noMediaAccess = Problem(
        "A call needs the camera or the microphone. Allow at least one for Duet Example in Settings.",
        remedy: .openSettings)
}
