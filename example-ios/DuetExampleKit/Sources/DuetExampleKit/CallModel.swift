// The app's state: one object the SwiftUI views read and call. This file holds signing in
// and out and the client's own events; CallModel+Calls.swift the calls, and
// CallModel+InCall.swift the in-call controls and stats.
//
// Duet calls its delegates on its own threads. The model turns them into async streams
// and reads those on the main actor, in order, so every state change happens on the main
// thread, where SwiftUI wants it.

import Duet
import Foundation
import Observation

/// Gets a token for `uid` from the server at `serverURL`. The sample asks `duet serve` for
/// a development token; a real app asks its own backend.
public typealias TokenSource = @Sendable (_ serverURL: String, _ uid: String) async throws -> String

@MainActor
@Observable
public final class CallModel {
    // MARK: Sign-in form

    public var serverURL: String
    public var uid: String

    // MARK: Home form

    /// Who to call.
    public var calleeUid = ""
    /// Optional custom data sent with the call.
    public var customData = ""

    // MARK: State

    public internal(set) var screen: Screen = .signIn
    /// Signing in or starting a call is under way: the buttons that would start another wait.
    public internal(set) var isWorking = false
    /// Why signing in failed, shown on the sign-in screen.
    public internal(set) var signInProblem: Problem?
    /// Something the user should know on any screen, with what they can do about it.
    public internal(set) var problem: Problem?
    /// The connection to the server is down; Duet is retrying.
    public internal(set) var isReconnecting = false
    /// The uid the server knows this client as, once signed in.
    public internal(set) var signedInUid: String?
    /// What the user allowed, once asked (at the first call).
    public internal(set) var access: MediaAccess?

    // MARK: The call

    public internal(set) var localStream: LocalStream?
    /// The other side's media, once it arrives: give its video to a `VideoView`.
    public internal(set) var remoteStream: RemoteStream?
    /// Whether the other side's camera is on (the SDK says when it goes off or on).
    public internal(set) var isRemoteVideoOn = true
    public internal(set) var isMuted = false
    public internal(set) var isCameraOff = false
    public internal(set) var isSpeakerOn = true
    /// The latest `Conversation.stats()`, polled once a second in a call.
    public internal(set) var stats: CallStats?

    @ObservationIgnored public let media: CallMedia
    @ObservationIgnored let settings: SignInSettingsStore
    @ObservationIgnored let tokens: TokenSource
    @ObservationIgnored let bindAddresses: [String]
    @ObservationIgnored let videoCodecs: VideoCodecs?
    @ObservationIgnored var client: VideoCall?
    @ObservationIgnored var clientEvents: Task<Void, Never>?
    @ObservationIgnored var conversation: Conversation?
    @ObservationIgnored var conversationEvents: Task<Void, Never>?
    @ObservationIgnored var statsPolling: Task<Void, Never>?
    /// The error the current call reported, for its summary when it closes.
    @ObservationIgnored var callError: CallError?
    /// This side placed the current call.
    @ObservationIgnored var isCaller = false
    /// Ends the call answered on the system's call screen that the call view shows (nil:
    /// none); CallModel+SystemCall.swift.
    @ObservationIgnored var systemCallEnd: (@Sendable () -> Void)?
    /// This device's push token (PushKit's, from the app), registered at each sign-in.
    @ObservationIgnored public private(set) var pushToken: PushToken?

    /// - Parameters:
    ///   - tokens: where tokens come from; by default `duet serve`'s development tokens.
    ///   - bindAddresses: `ClientConfig.bindAddresses`; empty is right for a phone (tests on
    ///     one machine use loopback).
    ///   - videoCodecs: the app passes VideoToolbox's (with OpenH264 behind); nil: OpenH264.
    public init(
        media: CallMedia,
        settings: SignInSettingsStore,
        tokens: @escaping TokenSource = { try await fetchDevelopmentToken(serverUrl: $0, uid: $1) },
        bindAddresses: [String] = [],
        videoCodecs: VideoCodecs? = nil
    ) {
        self.videoCodecs = videoCodecs
        self.media = media
        self.settings = settings
        self.tokens = tokens
        self.bindAddresses = bindAddresses
        let saved = settings.load()
        serverURL = saved.serverURL
        uid = saved.uid
    }

    // MARK: Signing in and out

    /// Gets a token and connects; remembers the server and uid once that works.
    public func signIn() async {
        guard screen == .signIn, !isWorking else { return }
        let entered = SignInSettings(serverURL: serverURL.trimmed, uid: uid.trimmed)
        guard !entered.serverURL.isEmpty, !entered.uid.isEmpty else {
            signInProblem = Problem("Enter the server address and a uid (any name, e.g. alice).", remedy: .dismiss)
            return
        }
        isWorking = true
        signInProblem = nil
        defer { isWorking = false }
        do {
            let token = try await tokens(entered.serverURL, entered.uid)
            let (events, sink) = AsyncStream.makeStream(of: ClientEvent.self)
            let client = try await VideoCall.connect(
                config: ClientConfig(serverUrl: entered.serverURL, token: token, bindAddresses: bindAddresses),
                videoCodecs: videoCodecs,
                onConnectionState: { sink.yield(.connection($0)) },
                onCall: { sink.yield(.incoming($0, data: $1)) })
            settings.save(entered)
            self.client = client
            signedInUid = client.uid()
            isReconnecting = false
            listen(to: events)
            screen = .home
            await registerPush()
        } catch {
            signInProblem = Problem(signingInTo: entered.serverURL, error: error)
        }
    }

    /// Hangs up, disconnects, and goes back to the sign-in screen.
    public func signOut() async {
        conversation?.close()
        endCall()
        clientEvents?.cancel()
        clientEvents = nil
        let client = self.client
        self.client = nil
        signedInUid = nil
        isReconnecting = false
        problem = nil
        screen = .signIn
        // Signed out: calls to this uid must not wake this phone any more.
        try? await client?.unregisterPush()
        await client?.shutdown()
    }

    /// A new push token from the platform: kept, and registered now if signed in (and at
    /// every later sign-in). A failure only means calls ring while the app is open.
    public func setPushToken(_ token: PushToken) async {
        pushToken = token
        await registerPush()
    }

    private func registerPush() async {
        guard let client, let pushToken else { return }
        do {
            try await client.registerPush(push: pushToken)
        } catch {
            problem = Problem("Calls will ring only while Duet is open: \(error)", remedy: .dismiss)
        }
    }

    /// The server refused this client's token on a reconnect: fetch a fresh one and hand
    /// it to the client, which uses it on its next attempt (a call in progress survives).
    public func signInAgain() async {
        problem = nil
        guard let client else {
            screen = .signIn
            return
        }
        let saved = settings.load()
        do {
            client.updateToken(token: try await tokens(saved.serverURL, saved.uid))
        } catch {
            let failed = Problem(signingInTo: saved.serverURL, error: error)
            problem = Problem(failed.message, remedy: .signInAgain)
        }
    }

    public func dismissProblem() {
        problem = nil
    }

    // MARK: The client's events

    enum ClientEvent: Sendable {
        case incoming(Conversation, data: String?)
        case connection(ConnectionState)
    }

    private func listen(to events: AsyncStream<ClientEvent>) {
        clientEvents = Task { [weak self] in
            for await event in events {
                guard let self else { return }
                switch event {
                case .incoming(let conversation, let data): self.receive(conversation, data: data)
                case .connection(let state): self.connectionChanged(to: state)
                }
            }
        }
    }

    private func connectionChanged(to state: ConnectionState) {
        switch state {
        case .connected:
            isReconnecting = false
            if problem?.remedy == .signInAgain { problem = nil }
        case .reconnecting:
            isReconnecting = true
        case .refused(let code, let reason):
            isReconnecting = true
            problem = Problem(refusedReconnect: code, reason: reason)
        }
    }
}

extension String {
    var trimmed: String { trimmingCharacters(in: .whitespacesAndNewlines) }
}
