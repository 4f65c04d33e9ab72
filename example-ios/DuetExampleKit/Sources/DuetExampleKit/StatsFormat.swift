// The in-call stats overlay's text: "640×480 · 30 fps · 1.2 Mb/s · RTT 12 ms · relay".

import Duet

public enum StatsFormat {
    /// One line: what arrives (size, frame rate, bitrate), the round trip, and the path.
    public static func line(_ stats: CallStats) -> String {
        var parts: [String] = []
        if stats.receivedWidth > 0, stats.receivedHeight > 0 {
            parts.append("\(stats.receivedWidth)×\(stats.receivedHeight)")
            parts.append("\(Int(stats.receivedFps.rounded())) fps")
        } else {
            parts.append("no video")
        }
        parts.append(bitrate(stats.bitrateReceivedBps))
        if let rtt = stats.rttMs {
            parts.append("RTT \(Int(rtt.rounded())) ms")
        }
        if let path = path(local: stats.localCandidateType, remote: stats.remoteCandidateType) {
            parts.append(path)
        }
        return parts.joined(separator: " · ")
    }

    /// "850 kb/s", "1.2 Mb/s".
    public static func bitrate(_ bps: Double) -> String {
        if bps >= 1_000_000 {
            let mbps = (bps / 100_000).rounded() / 10
            return "\(mbps.formatted1) Mb/s"
        }
        return "\(Int((bps / 1_000).rounded())) kb/s"
    }

    /// How the media travels: "relay" when either side goes through the TURN relay (what
    /// matters when debugging a call across networks), else this side's candidate type.
    public static func path(local: CandidateType?, remote: CandidateType?) -> String? {
        if local == .relay || remote == .relay { return "relay" }
        return local.map(name)
    }

    public static func name(_ type: CandidateType) -> String {
        switch type {
        case .host: return "host"
        case .serverReflexive: return "srflx"
        case .peerReflexive: return "prflx"
        case .relay: return "relay"
        }
    }
}

private extension Double {
    /// One decimal, without Foundation's locale-dependent formatters (the overlay is
    /// developer-facing and the same everywhere).
    var formatted1: String {
        let tenths = Int((self * 10).rounded())
        return "\(tenths / 10).\(tenths % 10)"
    }
}
