//! What the receiver's transport-wide feedback says of the path this side sends on: how much
//! queue is standing on it, and the rate it delivers.
//!
//! Why not the round trip: ICE's consent checks measure it every 2 s, so a queue filling a
//! capped link showed 2-3 s late, long after the link's own queue had overflowed (a 150 kbit/s
//! link froze for seconds at the start of every call); and a round trip adds the other
//! direction's queue, which the peer's sending fills, not this side's. Transport-wide
//! feedback arrives several times a second and gives each packet's one-way delay (on the
//! receiver's clock, so only its rise over the least seen means anything).
//!
//! Why a level and not GCC's delay gradient: the gradient's false alarms on a jittery but
//! uncongested path lowered the rate for good (`rate`); a standing queue of tens of
//! milliseconds in the least delay of a whole feedback batch is not jitter.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rtc::interceptor::{BandwidthEstimator, EstimatorStats, Gcc, PacketReport};
use tokio::sync::watch;

/// What the latest feedback says of the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PathSignal {
    /// When the feedback arrived.
    pub at: Instant,
    /// The one-way delay over the least seen lately: the queue standing on the path.
    pub queue_delay: Duration,
    /// What the path delivered lately (by arrival, audio and retransmissions counted), and
    /// what was sent over the same span (by departure, lost packets counted), once enough
    /// has been reported to tell. Sizes are RTP packets', without the headers below them.
    pub delivered_bps: Option<u32>,
    pub sent_bps: Option<u32>,
    /// When the first of the packets that make `sent_bps` left.
    pub sent_since: Option<Instant>,
}

impl PathSignal {
    /// What the path delivered of what was sent: under 1 while a queue builds, when the
    /// bottleneck is busy and what it delivers is its capacity.
    pub(crate) fn delivered_share(&self) -> Option<f64> {
        let (delivered, sent) = (self.delivered_bps?, self.sent_bps?);
        (sent > 0).then(|| f64::from(delivered) / f64::from(sent))
    }
}

/// The least one-way delay is kept per `BASE_BUCKET` for `BASE_BUCKETS` of them: a route
/// that got longer (an ICE restart onto a relay) reads as a queue for at most that long,
/// and receiver clock drift never accumulates.
const BASE_BUCKET: Duration = Duration::from_secs(2);
const BASE_BUCKETS: usize = 5;
/// Arrivals (departures) over this span make the delivered (sent) rate; under
/// `RATE_MIN_SPAN` of them say nothing yet.
const RATE_WINDOW: Duration = Duration::from_millis(500);
const RATE_MIN_SPAN: Duration = Duration::from_millis(200);

/// The one-way delay and delivery rate from packet reports. No clock: the reports carry
/// the departure instants (this side's) and the arrivals (the receiver's clock).
#[derive(Debug)]
pub(crate) struct PathMonitor {
    epoch: Instant,
    /// (bucket start, least one-way delay in it in µs, offset by the clocks'), oldest first.
    base: VecDeque<(Instant, i64)>,
    /// (arrival, bytes) of the packets arrived within `RATE_WINDOW` of the latest, and
    /// (departure since `epoch`, bytes) of those reported sent within it.
    arrivals: VecDeque<(Duration, usize)>,
    departures: VecDeque<(Duration, usize)>,
}

impl PathMonitor {
    pub(crate) fn new(epoch: Instant) -> Self {
        PathMonitor {
            epoch,
            base: VecDeque::new(),
            arrivals: VecDeque::new(),
            departures: VecDeque::new(),
        }
    }

    /// One feedback batch, in send order, that arrived `at`. `None` when none of its packets
    /// arrived.
    pub(crate) fn on_reports(
        &mut self,
        at: Instant,
        reports: &[PacketReport],
    ) -> Option<PathSignal> {
        let mut least: Option<(Instant, i64)> = None;
        for r in reports {
            let departure = r.departure.saturating_duration_since(self.epoch);
            self.departures.push_back((departure, r.size));
            let Some(arrival) = r.arrival.filter(|_| r.arrived) else { continue };
            // The receiver's clock and ours have an unknown offset, either way: only the
            // difference to the least delay means anything.
            let delay = micros(arrival) - micros(departure);
            if least.is_none_or(|(_, d)| delay < d) {
                least = Some((r.departure, delay));
            }
            self.arrivals.push_back((arrival, r.size));
        }
        keep_window(&mut self.departures);
        keep_window(&mut self.arrivals);
        let (sent, delay) = least?;
        self.note_base(sent, delay);
        let base = self.base.iter().map(|(_, d)| *d).min().unwrap_or(delay);
        let sent_bps = rate(&self.departures);
        let first_sent = self.departures.iter().map(|(t, _)| *t).min();
        Some(PathSignal {
            at,
            queue_delay: Duration::from_micros(u64::try_from(delay - base).unwrap_or(0)),
            delivered_bps: rate(&self.arrivals),
            sent_bps,
            sent_since: first_sent.filter(|_| sent_bps.is_some()).map(|t| self.epoch + t),
        })
    }

    fn note_base(&mut self, sent: Instant, delay: i64) {
        match self.base.back_mut() {
            Some((start, least)) if sent.saturating_duration_since(*start) < BASE_BUCKET => {
                *least = (*least).min(delay);
            }
            _ => self.base.push_back((sent, delay)),
        }
        while self.base.len() > BASE_BUCKETS {
            self.base.pop_front();
        }
    }
}

/// Drops what is older than `RATE_WINDOW` before the newest.
fn keep_window(packets: &mut VecDeque<(Duration, usize)>) {
    let newest = packets.iter().map(|(t, _)| *t).max().unwrap_or_default();
    packets.retain(|(t, _)| newest.saturating_sub(*t) <= RATE_WINDOW);
}

/// Bits a second: the bytes after the earliest packet over the span to the latest (the
/// earliest's bytes went before the span began).
fn rate(packets: &VecDeque<(Duration, usize)>) -> Option<u32> {
    let first = packets.iter().map(|(t, _)| *t).min()?;
    let last = packets.iter().map(|(t, _)| *t).max()?;
    let span = last.saturating_sub(first);
    if span < RATE_MIN_SPAN {
        return None;
    }
    let bytes: usize = packets.iter().filter(|(t, _)| *t > first).map(|(_, b)| *b).sum();
    let bps = bytes as f64 * 8.0 / span.as_secs_f64();
    // Clamped to the u32 range first; what is left of the fraction does not matter.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Some(bps.clamp(0.0, f64::from(u32::MAX)) as u32)
}

/// Microseconds, saturating: a call is not 292,000 years long.
fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// GCC, as the congestion-control slot's estimator (the retransmission budget and the stats
/// follow its estimate), with a `PathMonitor` beside it whose signal the video sender reads.
pub(crate) struct Estimator {
    gcc: Gcc,
    monitor: PathMonitor,
    publish: watch::Sender<Option<PathSignal>>,
}

impl Estimator {
    pub(crate) fn new(gcc: Gcc) -> (Self, watch::Receiver<Option<PathSignal>>) {
        let (publish, signal) = watch::channel(None);
        (Estimator { gcc, monitor: PathMonitor::new(Instant::now()), publish }, signal)
    }
}

impl BandwidthEstimator for Estimator {
    fn on_reports(&mut self, now: Instant, reports: &[PacketReport]) {
        self.gcc.on_reports(now, reports);
        if let Some(signal) = self.monitor.on_reports(now, reports) {
            self.publish.send_replace(Some(signal));
        }
    }

    fn target_bitrate(&self) -> f64 {
        self.gcc.target_bitrate()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.gcc.handle_timeout(now);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.gcc.poll_timeout()
    }

    fn stats(&self) -> EstimatorStats {
        self.gcc.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Packets of 1,000 bytes sent every `gap_ms` from `from_ms`, each arriving `delay_ms(i)`
    /// later on a receiver clock whose epoch is 7 s after ours.
    fn batch(
        epoch: Instant,
        from_ms: u64,
        count: u64,
        gap_ms: u64,
        delay_ms: impl Fn(u64) -> u64,
    ) -> Vec<PacketReport> {
        (0..count)
            .map(|i| {
                let sent = from_ms + i * gap_ms;
                PacketReport {
                    ssrc: 1,
                    id: sent,
                    rtp_sequence_number: 0,
                    is_twcc: true,
                    twcc_sequence_number: 0,
                    size: 1_000,
                    arrived: true,
                    departure: epoch + Duration::from_millis(7_000 + sent),
                    arrival: Some(Duration::from_millis(sent + delay_ms(i))),
                    ecn: Default::default(),
                }
            })
            .collect()
    }

    #[test]
    fn a_steady_path_has_no_queue_and_delivers_what_is_sent() {
        let epoch = Instant::now();
        let mut m = PathMonitor::new(epoch);
        let mut last = None;
        for b in 0..10 {
            last = m.on_reports(epoch, &batch(epoch, b * 100, 10, 10, |_| 40));
        }
        let s = last.unwrap();
        assert_eq!(s.queue_delay, Duration::ZERO);
        // 1,000 bytes every 10 ms, all of it delivered.
        assert!(s.delivered_bps.is_some_and(|r| (790_000..=810_000).contains(&r)), "{s:?}");
        assert!(s.delivered_share().is_some_and(|x| (0.98..=1.02).contains(&x)), "{s:?}");
    }

    #[test]
    fn jitter_is_not_a_queue_but_a_standing_delay_is() {
        let epoch = Instant::now();
        let mut m = PathMonitor::new(epoch);
        for b in 0..5 {
            m.on_reports(epoch, &batch(epoch, b * 100, 10, 10, |_| 40));
        }
        // Every other packet 60 ms late: the batch's least delay is the path's.
        let s = m.on_reports(epoch, &batch(epoch, 500, 10, 10, |i| 40 + 60 * (i % 2))).unwrap();
        assert_eq!(s.queue_delay, Duration::ZERO);
        // All of them 120 ms late: a queue.
        let s = m.on_reports(epoch, &batch(epoch, 600, 10, 10, |i| 160 + i)).unwrap();
        assert_eq!(s.queue_delay, Duration::from_millis(120));
    }

    #[test]
    fn a_capped_path_delivers_its_cap_while_the_queue_grows() {
        let epoch = Instant::now();
        let mut m = PathMonitor::new(epoch);
        // Sent at 800 kbit/s into a link that carries 400: each packet waits 10 ms more
        // than the one before.
        let mut last = None;
        for b in 0..5 {
            last = m.on_reports(epoch, &batch(epoch, b * 100, 10, 10, |i| 20 + (b * 10 + i) * 10));
        }
        let s = last.unwrap();
        assert_eq!(s.queue_delay, Duration::from_millis(400));
        assert!(s.delivered_bps.is_some_and(|r| (390_000..=410_000).contains(&r)), "{s:?}");
        assert!(s.sent_bps.is_some_and(|r| (790_000..=810_000).contains(&r)), "{s:?}");
    }

    #[test]
    fn a_longer_route_reads_as_a_queue_only_until_the_base_forgets_the_old_one() {
        let epoch = Instant::now();
        let mut m = PathMonitor::new(epoch);
        m.on_reports(epoch, &batch(epoch, 0, 10, 10, |_| 20));
        let mut queue = vec![];
        for s in 1..=12u64 {
            let sig = m.on_reports(epoch, &batch(epoch, s * 1_000, 10, 10, |_| 120)).unwrap();
            queue.push(sig.queue_delay.as_millis());
        }
        assert_eq!(queue[0], 100);
        assert_eq!(*queue.last().unwrap(), 0, "{queue:?}");
    }

    #[test]
    fn lost_packets_and_empty_batches_say_nothing() {
        let epoch = Instant::now();
        let mut m = PathMonitor::new(epoch);
        let mut lost = batch(epoch, 0, 3, 10, |_| 20);
        for r in &mut lost {
            r.arrived = false;
            r.arrival = None;
        }
        assert_eq!(m.on_reports(epoch, &lost), None);
        assert_eq!(m.on_reports(epoch, &[]), None);
        // Sent but lost: counted as sent, never as delivered.
        let s = m.on_reports(epoch, &batch(epoch, 300, 1, 10, |_| 20)).unwrap();
        assert!(s.sent_bps.is_some() && s.delivered_bps.is_none(), "{s:?}");
    }
}
