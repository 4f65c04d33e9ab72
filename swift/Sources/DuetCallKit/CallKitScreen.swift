// The iOS adapter: CallKit is the call screen, PushKit brings the pushes. Kept thin on
// purpose: every decision is DuetCallCenter's, which is tested on Linux; this only
// translates. It cannot be built off Apple platforms; scripts/test-swift parses it.

#if canImport(CallKit) && canImport(PushKit) && os(iOS)
import AVFoundation
import CallKit
import Duet
import Foundation
import PushKit

/// The system call screen (CallKit) for a `DuetCallCenter`, and the VoIP push registry
/// that feeds it. Create one at launch (before PushKit can deliver a push) and keep it.
public final class CallKitScreen: NSObject, CallScreen, CXProviderDelegate, PKPushRegistryDelegate,
    @unchecked Sendable
{
    private let provider: CXProvider
    private let controller = CXCallController()
    private let registry = PKPushRegistry(queue: .main)
    /// Set once, right after init (the center needs the screen to exist first).
    public private(set) var center: DuetCallCenter?
    /// A new VoIP token: hand it to `VideoCall.registerPush(push: .apns(...))`.
    public var onToken: ((String) -> Void)?

    public init(appName: String) {
        let configuration = CXProviderConfiguration(localizedName: appName)
        configuration.supportsVideo = true
        configuration.maximumCallGroups = 1
        configuration.maximumCallsPerCallGroup = 1
        configuration.supportedHandleTypes = [.generic]
        provider = CXProvider(configuration: configuration)
        super.init()
        provider.setDelegate(self, queue: nil)
    }

    /// Connects the screen to its center and starts listening for VoIP pushes.
    public func start(center: DuetCallCenter) {
        self.center = center
        registry.delegate = self
        registry.desiredPushTypes = [.voIP]
    }

    // MARK: CallScreen

    public func reportIncoming(id: UUID, caller: String, hasVideo: Bool) {
        let update = CXCallUpdate()
        update.remoteHandle = CXHandle(type: .generic, value: caller)
        update.hasVideo = hasVideo
        provider.reportNewIncomingCall(with: id, update: update) { _ in }
    }

    public func reportOutgoingStarted(id: UUID, callee: String) {
        let start = CXStartCallAction(call: id, handle: CXHandle(type: .generic, value: callee))
        start.isVideo = true
        controller.request(CXTransaction(action: start)) { _ in }
        provider.reportOutgoingCall(with: id, startedConnectingAt: nil)
    }

    public func reportOutgoingConnected(id: UUID) {
        provider.reportOutgoingCall(with: id, connectedAt: nil)
    }

    public func reportEnded(id: UUID, reason: CallScreenEndReason) {
        provider.reportCall(with: id, endedAt: nil, reason: Self.cxReason(reason))
    }

    /// Hang up from the app's own UI: goes through CallKit, which calls back `perform end`.
    public func requestEnd(id: UUID) {
        controller.request(CXTransaction(action: CXEndCallAction(call: id))) { _ in }
    }

    private static func cxReason(_ reason: CallScreenEndReason) -> CXCallEndedReason {
        switch reason {
        case .remoteEnded: return .remoteEnded
        case .unanswered: return .unanswered
        case .answeredElsewhere: return .answeredElsewhere
        case .declinedElsewhere: return .declinedElsewhere
        case .failed: return .failed
        }
    }

    // MARK: CXProviderDelegate

    public func providerDidReset(_ provider: CXProvider) {
        Task { await center?.shutdown() }
    }

    public func provider(_ provider: CXProvider, perform action: CXStartCallAction) {
        action.fulfill()  // Duet placed the call already (DuetCallCenter.startCall).
    }

    public func provider(_ provider: CXProvider, perform action: CXAnswerCallAction) {
        center?.answer(id: action.callUUID) == true ? action.fulfill() : action.fail()
    }

    public func provider(_ provider: CXProvider, perform action: CXEndCallAction) {
        _ = center?.end(id: action.callUUID)
        action.fulfill()
    }

    public func provider(_ provider: CXProvider, perform action: CXSetMutedCallAction) {
        center?.setMuted(id: action.callUUID, muted: action.isMuted) == true ? action.fulfill() : action.fail()
    }

    public func provider(_ provider: CXProvider, perform action: CXSetHeldCallAction) {
        center?.setHeld(id: action.callUUID, held: action.isOnHold) == true ? action.fulfill() : action.fail()
    }

    public func provider(_ provider: CXProvider, didActivate audioSession: AVAudioSession) {
        center?.didActivateAudioSession()
    }

    public func provider(_ provider: CXProvider, didDeactivate audioSession: AVAudioSession) {
        center?.didDeactivateAudioSession()
    }

    // MARK: PKPushRegistryDelegate

    public func pushRegistry(
        _ registry: PKPushRegistry, didUpdate credentials: PKPushCredentials, for type: PKPushType
    ) {
        onToken?(credentials.token.map { String(format: "%02x", $0) }.joined())
    }

    public func pushRegistry(
        _ registry: PKPushRegistry, didReceiveIncomingPushWith payload: PKPushPayload,
        for type: PKPushType, completion: @escaping () -> Void
    ) {
        // iOS ends an app that does not report every VoIP push to CallKit before this
        // returns: a payload that is not a Duet call is reported and ended at once.
        if center?.handlePush(payload.dictionaryPayload) != true {
            let id = UUID()
            reportIncoming(id: id, caller: "", hasVideo: false)
            reportEnded(id: id, reason: .failed)
        }
        completion()
    }
}
#endif
