//! `CallStats`: what a call is doing, in the terms apps show (resolution, fps, bitrates,
//! loss, jitter, round-trip time, how the peers are connected).

use std::time::Instant;

use rtc::statistics::report::RTCStatsReportEntry;
use webrtc::peer_connection::RTCStatsReport;

/// How the selected ICE candidate pair reaches the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CandidateType {
    Host,
    ServerReflexive,
    PeerReflexive,
    Relay,
}

impl CandidateType {
    /// The name ICE gives it (RFC 8445), as logs and the CLI's JSON show it.
    pub fn as_str(self) -> &'static str {
        match self {
            CandidateType::Host => "host",
            CandidateType::ServerReflexive => "srflx",
            CandidateType::PeerReflexive => "prflx",
            CandidateType::Relay => "relay",
        }
    }
}

/// One look at a call's media. Rates are over the time since the previous `stats()` call
/// on the same conversation, or since the call's media began for the first one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallStats {
    pub sent_width: u32,
    pub sent_height: u32,
    pub sent_fps: f64,
    pub received_width: u32,
    pub received_height: u32,
    pub received_fps: f64,
    pub bitrate_sent_bps: f64,
    pub bitrate_received_bps: f64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub packets_sent: u64,
    pub packets_received: u64,
    pub packets_lost: u64,
    /// Inbound video jitter (audio's when there is no video).
    pub jitter_ms: f64,
    /// Round-trip time of the selected candidate pair.
    pub rtt_ms: Option<f64>,
    pub local_candidate_type: Option<CandidateType>,
    pub remote_candidate_type: Option<CandidateType>,
    /// The bitrate the video encoder aims at now.
    pub target_bitrate_bps: u32,
    pub frames_sent: u64,
    pub frames_decoded: u64,
    pub audio_packets_sent: u64,
    /// 10 ms audio frames decoded.
    pub audio_frames_decoded: u64,
    /// Network quality of what this side receives, 0 (nothing) to 5 (excellent); see
    /// `ConversationDelegate::did_change_network_quality`.
    pub quality_local: u8,
    /// Network quality of what the other side receives, from its receiver reports.
    pub quality_remote: u8,
}

/// The counters the rates are computed from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Snapshot {
    pub at: Instant,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub frames_sent: u64,
    pub frames_decoded: u64,
}

impl Snapshot {
    /// Nothing counted yet, at `at`: the base of a session's first rates.
    pub(crate) fn zero(at: Instant) -> Snapshot {
        Snapshot { at, bytes_sent: 0, bytes_received: 0, frames_sent: 0, frames_decoded: 0 }
    }

    /// The counters of `stats`, taken at `at`.
    pub(crate) fn of(stats: &CallStats, at: Instant) -> Snapshot {
        Snapshot {
            at,
            bytes_sent: stats.bytes_sent,
            bytes_received: stats.bytes_received,
            frames_sent: stats.frames_sent,
            frames_decoded: stats.frames_decoded,
        }
    }
}

/// Reads webrtc-rs's report into `stats` (counters, jitter, RTT, candidate types).
pub(crate) fn read_report(report: &RTCStatsReport, stats: &mut CallStats) {
    if let Some(t) = report.transport() {
        stats.bytes_sent = t.bytes_sent;
        stats.bytes_received = t.bytes_received;
        let pair = report.candidate_pairs().find(|p| p.stats.id == t.selected_candidate_pair_id);
        if let Some(p) = pair {
            if p.current_round_trip_time > 0.0 {
                stats.rtt_ms = Some(p.current_round_trip_time * 1000.0);
            }
            // The pair names "candidate:X"; the candidate's own entry is prefixed.
            let local = format!("RTCLocalIceCandidate_{}", p.local_candidate_id);
            let remote = format!("RTCRemoteIceCandidate_{}", p.remote_candidate_id);
            if let Some(RTCStatsReportEntry::LocalCandidate(c)) = report.get(&local) {
                stats.local_candidate_type = candidate_type(&format!("{:?}", c.candidate_type));
            }
            if let Some(RTCStatsReportEntry::RemoteCandidate(c)) = report.get(&remote) {
                stats.remote_candidate_type = candidate_type(&format!("{:?}", c.candidate_type));
            }
        }
    }
    stats.packets_sent =
        report.outbound_rtp_streams().map(|o| o.sent_rtp_stream_stats.packets_sent).sum();
    let mut video_jitter = None;
    let mut audio_jitter = None;
    for i in report.inbound_rtp_streams() {
        let r = &i.received_rtp_stream_stats;
        stats.packets_received += r.packets_received;
        stats.packets_lost += u64::try_from(r.packets_lost).unwrap_or(0);
        // Jitter comes in RTP clock units: 90 kHz for video, 48 kHz for Opus.
        match format!("{:?}", r.rtp_stream_stats.kind).to_ascii_lowercase().as_str() {
            "video" => video_jitter = Some(r.jitter / 90.0),
            _ => audio_jitter = Some(r.jitter / 48.0),
        }
    }
    stats.jitter_ms = video_jitter.or(audio_jitter).unwrap_or(0.0);
}

fn candidate_type(debug_name: &str) -> Option<CandidateType> {
    match debug_name.to_ascii_lowercase().as_str() {
        "host" => Some(CandidateType::Host),
        "srflx" | "serverreflexive" => Some(CandidateType::ServerReflexive),
        "prflx" | "peerreflexive" => Some(CandidateType::PeerReflexive),
        "relay" | "relayed" => Some(CandidateType::Relay),
        _ => None,
    }
}

/// Fills the rates from two snapshots.
pub(crate) fn rates(stats: &mut CallStats, before: &Snapshot, now: &Snapshot) {
    let secs = now.at.saturating_duration_since(before.at).as_secs_f64();
    if secs <= 0.0 {
        return;
    }
    let per_sec = |a: u64, b: u64| b.saturating_sub(a) as f64 / secs;
    stats.bitrate_sent_bps = per_sec(before.bytes_sent, now.bytes_sent) * 8.0;
    stats.bitrate_received_bps = per_sec(before.bytes_received, now.bytes_received) * 8.0;
    stats.sent_fps = per_sec(before.frames_sent, now.frames_sent);
    stats.received_fps = per_sec(before.frames_decoded, now.frames_decoded);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rates_come_from_the_difference_of_two_snapshots() {
        let t = Instant::now();
        let a = Snapshot {
            at: t,
            bytes_sent: 1000,
            bytes_received: 0,
            frames_sent: 10,
            frames_decoded: 0,
        };
        let b = Snapshot {
            at: t + Duration::from_secs(2),
            bytes_sent: 251_000,
            bytes_received: 125_000,
            frames_sent: 70,
            frames_decoded: 30,
        };
        let mut s = CallStats::default();
        rates(&mut s, &a, &b);
        assert_eq!(s.bitrate_sent_bps, 1_000_000.0);
        assert_eq!(s.bitrate_received_bps, 500_000.0);
        assert_eq!(s.sent_fps, 30.0);
        assert_eq!(s.received_fps, 15.0);
    }

    #[test]
    fn candidate_types_are_named_as_webrtc_names_them() {
        assert_eq!(candidate_type("Host"), Some(CandidateType::Host));
        assert_eq!(candidate_type("Relay"), Some(CandidateType::Relay));
        assert_eq!(candidate_type("Srflx"), Some(CandidateType::ServerReflexive));
        assert_eq!(candidate_type("Unspecified"), None);
    }
}
