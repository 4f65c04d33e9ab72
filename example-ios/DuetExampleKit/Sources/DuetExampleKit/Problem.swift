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

    /// A call went wrong (`ConversationDelegate.didFailWithError`).
    public init(callError: CallError) {
        switch callError {
        case .Unreachable(let uid):
            self.init("\(uid) is not signed in anywhere right now.", remedy: .dismiss)
        case .ConnectionLost:
            self.init("The connection to the server was lost.", remedy: .dismiss)
        case .Server(_, let reason):
            self.init("The server refused: \(reason)", remedy: .dismiss)
        case .Media(let reason):
            self.init(
                "The call's audio and video could not get through (\(reason)). Across networks, the server's "
                    + "TURN relay must be reachable: see --turn-listen and --turn-public-ip.",
                remedy: .dismiss)
        }
    }

    /// `call`, `accept` or `reject` was refused at once (`ActionError`).
    public init(actionError error: Error) {
        switch error {
        case ActionError.InvalidArgument(let reason), ActionError.InvalidState(let reason):
            self.init(reason.prefix(1).uppercased() + reason.dropFirst(), remedy: .dismiss)
        case ActionError.Closed:
            self.init("You are signed out. Sign in again.", remedy: .signInAgain)
        default:
            self.init(error.localizedDescription, remedy: .dismiss)
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
