//! Network quality levels, 0 to 5, for each side of a call, as hosted SDKs give them
//! (Twilio's 0–5, LiveKit's excellent/good/poor/lost): 5 is excellent, 1 barely usable,
//! 0 no media getting through at all.
//!
//! Each level is an estimate of what a listener hears, from the E-model's simplified
//! formula (ITU-T G.107 as commonly reduced for VoIP monitoring): loss, round-trip time and
//! jitter become an R factor, then a mean opinion score, then a level. This side's level is
//! what it receives (its inbound loss and jitter); the other side's is what the other side
//! receives, as its RTCP receiver reports tell (fraction lost and jitter it measured). Both
//! use the pair's round-trip time.

use std::sync::Weak;
use std::time::{Duration, Instant};

use rtc::statistics::report::RTCStatsReportEntry;
use tokio::sync::{mpsc, watch};
use webrtc::peer_connection::{PeerConnection, StatsSelector};

use super::stats::{self, CallStats};
use super::PeerEvent;
use crate::lifecycle::ConvId;

/// How often the levels are worked out. Short enough that a change shows within a few
/// seconds, long enough that a second's burst does not flap the level.
const PERIOD: Duration = Duration::from_secs(2);

/// The network quality of each side of a call, 0 (nothing gets through) to 5 (excellent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Levels {
    /// What this side receives.
    pub(crate) local: u8,
    /// What the other side receives, from its receiver reports.
    pub(crate) remote: u8,
}

/// The level for a path with `loss` (0.0 to 1.0), `rtt_ms` and `jitter_ms`.
pub(crate) fn level(loss: f64, rtt_ms: f64, jitter_ms: f64) -> u8 {
    let latency = rtt_ms / 2.0 + 2.0 * jitter_ms + 10.0;
    let mut r =
        if latency < 160.0 { 93.2 - latency / 40.0 } else { 93.2 - (latency - 120.0) / 10.0 };
    r -= 2.5 * (loss.clamp(0.0, 1.0) * 100.0);
    let r = r.clamp(0.0, 100.0);
    let mos = 1.0 + 0.035 * r + 0.000_007 * r * (r - 60.0) * (100.0 - r);
    match mos {
        m if m >= 4.2 => 5,
        m if m >= 4.0 => 4,
        m if m >= 3.6 => 3,
        m if m >= 3.1 => 2,
        _ => 1,
    }
}

/// What the other side reports receiving: the worst fraction lost and jitter (ms) among its
/// receiver reports on our streams, if it sent any.
fn remote_reception(report: &webrtc::peer_connection::RTCStatsReport) -> Option<(f64, f64)> {
    let mut seen: Option<(f64, f64)> = None;
    for entry in report.iter() {
        let RTCStatsReportEntry::RemoteInboundRtp(r) = entry else { continue };
        let s = &r.received_rtp_stream_stats;
        let clock = match format!("{:?}", s.rtp_stream_stats.kind).to_ascii_lowercase().as_str() {
            "video" => 90.0,
            _ => 48.0,
        };
        let (loss, jitter) = (r.fraction_lost, s.jitter / clock);
        seen = Some(match seen {
            Some((l, j)) => (l.max(loss), j.max(jitter)),
            None => (loss, jitter),
        });
    }
    seen
}

/// Counters from the previous look, for the loss over one period.
#[derive(Default, Clone, Copy)]
struct Counts {
    received: u64,
    lost: u64,
}

/// The levels from one stats report, given the counters of the look before.
fn levels_of(s: &CallStats, remote: Option<(f64, f64)>, before: Counts) -> Levels {
    let received = s.packets_received.saturating_sub(before.received);
    let lost = s.packets_lost.saturating_sub(before.lost);
    let rtt = s.rtt_ms.unwrap_or(0.0);
    let local = if received == 0 {
        0
    } else {
        level(lost as f64 / (received + lost) as f64, rtt, s.jitter_ms)
    };
    // Without a report from the other side there is nothing to judge it by yet: it is
    // taken to hear what this side hears.
    let remote = remote.map_or(local, |(loss, jitter)| level(loss, rtt, jitter));
    Levels { local, remote }
}

/// Works the levels out every `PERIOD` while the connection lives; tells the engine when
/// they change and keeps the latest in `latest` for `stats()`.
pub(super) async fn monitor(
    conv: ConvId,
    pc: Weak<dyn PeerConnection>,
    mut connected: watch::Receiver<bool>,
    latest: watch::Sender<Levels>,
    events: mpsc::UnboundedSender<PeerEvent>,
) {
    if connected.wait_for(|c| *c).await.is_err() {
        return;
    }
    let mut before = Counts::default();
    let mut told: Option<Levels> = None;
    loop {
        tokio::time::sleep(PERIOD).await;
        let Some(pc) = pc.upgrade() else { return };
        let report = pc.get_stats(Instant::now(), StatsSelector::None).await;
        drop(pc);
        let mut s = CallStats::default();
        stats::read_report(&report, &mut s);
        let levels = levels_of(&s, remote_reception(&report), before);
        before = Counts { received: s.packets_received, lost: s.packets_lost };
        latest.send_replace(levels);
        if told != Some(levels) {
            told = Some(levels);
            if events.send(PeerEvent::Quality(conv, levels)).is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clean_path_is_excellent_and_loss_or_delay_lower_it() {
        assert_eq!(level(0.0, 2.0, 1.0), 5);
        assert!(level(0.05, 100.0, 10.0) < 5);
        assert!(level(0.20, 100.0, 10.0) <= 2);
        assert!(level(0.0, 800.0, 50.0) < level(0.0, 100.0, 5.0));
        assert_eq!(level(1.0, 0.0, 0.0), 1);
    }

    #[test]
    fn nothing_received_in_a_period_is_level_zero() {
        let s = CallStats { packets_received: 100, packets_lost: 0, ..Default::default() };
        let before = Counts { received: 100, lost: 0 };
        assert_eq!(levels_of(&s, None, before), Levels { local: 0, remote: 0 });
        let more = CallStats { packets_received: 200, ..s };
        assert_eq!(levels_of(&more, Some((0.5, 30.0)), before).local, 5);
        assert!(levels_of(&more, Some((0.5, 30.0)), before).remote <= 1);
    }
}
