// A Duet VoIP push, read from the payload alone (docs/protocol.md, "What a push says").

import Foundation

/// `{"aps":{},"duet":{"call_id":…,"from":…,"deadline_ms":…,"data":…}}`, as PushKit hands it
/// over (`PKPushPayload.dictionaryPayload`).
public struct VoipPush: Sendable, Equatable {
    public let callId: String
    /// The caller's uid.
    public let caller: String
    /// When the call stops ringing.
    public let deadline: Date
    /// The invite's custom data (cut to fit the push when `dataTruncated`; the incoming
    /// call carries it whole).
    public let data: String?
    public let dataTruncated: Bool

    /// Nil for a payload that is not a Duet call (another sender's push, a malformed one).
    public init?(payload: [AnyHashable: Any]) {
        guard let duet = payload["duet"] as? [String: Any],
            let callId = duet["call_id"] as? String, !callId.isEmpty,
            let caller = duet["from"] as? String, !caller.isEmpty,
            let deadlineMs = Self.number(duet["deadline_ms"])
        else { return nil }
        self.callId = callId
        self.caller = caller
        deadline = Date(timeIntervalSince1970: deadlineMs / 1000)
        data = duet["data"] as? String
        dataTruncated = (duet["data_truncated"] as? Bool) ?? false
        screenId = UUID(uuidString: callId) ?? UUID()
    }

    /// The call's id on the call screen: the server's call id is a UUID (another string
    /// gets a fresh one).
    public let screenId: UUID

    /// A JSON number as Foundation hands it over: NSNumber on Apple platforms, a Swift
    /// integer or double elsewhere.
    private static func number(_ value: Any?) -> Double? {
        switch value {
        case let v as Int: return Double(v)
        case let v as Int64: return Double(v)
        case let v as Double: return v
        case let v as NSNumber: return v.doubleValue
        default: return nil
        }
    }
}
