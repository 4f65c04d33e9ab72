// What the call-center tests share: a call screen and audio that record, a plain Duet
// client, and waiting.

import Duet
import DuetCallKit
import DuetTestSupport
import Foundation
import XCTest

let patience: TimeInterval = 10

func smallStream() -> LocalStream {
    LocalStream.synthetic(
        constraints: StreamConstraints(audio: true, video: VideoConstraints(width: 160, height: 120, fps: 15)))
}

/// Polls `condition` every 10 ms until it holds; fails after `patience`.
func eventually(_ what: String, _ condition: @escaping () -> Bool) async throws {
    let deadline = Date().addingTimeInterval(patience)
    while !condition() {
        guard Date() < deadline else { throw TestFailure("\(what): not within \(patience) s") }
        try await Task.sleep(nanoseconds: 10_000_000)
    }
}

/// Events in arrival order, taken one at a time.
final class Inbox<Event>: @unchecked Sendable {
    private let events = Locked<[Event]>([])
    func post(_ event: Event) { events.mutate { $0.append(event) } }
    func next(_ what: String) async throws -> Event {
        var got: Event?
        try await eventually(what) {
            got = self.events.mutate { $0.isEmpty ? nil : $0.removeFirst() }
            return got != nil
        }
        return got!
    }
}

enum ScreenReport: Equatable {
    case incoming(UUID, caller: String)
    case outgoingStarted(UUID, callee: String)
    case outgoingConnected(UUID)
    case ended(UUID, CallScreenEndReason)
}

final class RecordingScreen: CallScreen, @unchecked Sendable {
    let reports = Locked<[ScreenReport]>([])

    func reportIncoming(id: UUID, caller: String, hasVideo: Bool) {
        reports.mutate { $0.append(.incoming(id, caller: caller)) }
    }
    func reportOutgoingStarted(id: UUID, callee: String) {
        reports.mutate { $0.append(.outgoingStarted(id, callee: callee)) }
    }
    func reportOutgoingConnected(id: UUID) { reports.mutate { $0.append(.outgoingConnected(id)) } }
    func reportEnded(id: UUID, reason: CallScreenEndReason) {
        reports.mutate { $0.append(.ended(id, reason)) }
    }

    func waitFor(_ report: ScreenReport) async throws {
        try await eventually("the screen hears \(report) (it heard \(reports.value))") {
            self.reports.value.contains(report)
        }
    }
}

final class RecordingAudio: CallAudio, @unchecked Sendable {
    let started = Locked<[UUID]>([])
    let stopped = Locked<[UUID]>([])
    let played = Locked<[UUID]>([])
    func start(call: CallHandle) { started.mutate { $0.append(call.id) } }
    func play(call: CallHandle, remote: RemoteStream) { played.mutate { $0.append(call.id) } }
    func stop(call: CallHandle) { stopped.mutate { $0.append(call.id) } }
}

enum Heard: Equatable {
    case response(CallStatus)
    case closed(EndReason?)
}

/// A plain Duet client (Alice, or Bob's tablet) that keeps the calls it receives.
final class Party: VideoCallDelegate, ConversationDelegate, @unchecked Sendable {
    var video: VideoCall!
    let incoming = Inbox<Conversation>()
    let heard = Inbox<Heard>()
    private let kept = Locked<[Conversation]>([])

    static func connect(_ uid: String, _ server: TestServer, device: String? = nil) async throws -> Party {
        let party = Party()
        var config = try server.config(for: uid)
        config.deviceId = device
        party.video = try await VideoCall.connect(config: config, delegate: party)
        return party
    }

    var lastIncoming: Conversation? { kept.value.last }

    func watch(_ conversation: Conversation) {
        kept.mutate { $0.append(conversation) }
        conversation.setDelegate(delegate: self)
    }

    func didReceiveCallWithConversation(conversation: Conversation, data: String?) {
        watch(conversation)
        incoming.post(conversation)
    }

    func didReceiveResponse(status: CallStatus) { heard.post(.response(status)) }
    func didReceiveStream(stream: RemoteStream) {}
    func didFailWithError(error: CallError) {}
    func didClose() { heard.post(.closed(nil)) }
}
