//! Retransmissions within a budget: webrtc-rs's NACK responder resends every packet a NACK
//! names, every time it is named, however old, at any rate. On a link capped below what is
//! sent that is a storm (issue 11: 150 kbit/s of capacity, 1.5 to 12 Mbit/s of resends).
//!
//! This wraps the responder and trims each NACK before the responder sees it: a packet is
//! resent at most `MAX_RESENDS` times, never twice within `MIN_RESEND_GAP`, never once it
//! is older than `MAX_AGE` (the receiver's jitter buffer has given it up by then), and only
//! while a token bucket filled at a share of the congestion controller's estimate allows.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rtc::interceptor::{
    Attribute, Interceptor, NackResponderBuilder, NackResponderInterceptor, Packet, StreamInfo,
    TaggedPacket,
};
use rtc::rtcp::transport_feedbacks::transport_layer_nack::{
    nack_pairs_from_sequence_numbers, TransportLayerNack,
};
use rtc::sansio::Protocol;

const MAX_RESENDS: u8 = 3;
const MIN_RESEND_GAP: Duration = Duration::from_millis(100);
const MAX_AGE: Duration = Duration::from_millis(1000);
/// The share of the estimated capacity retransmissions may take: all of it. The estimate
/// is GCC's, whose loss-based part sinks on a lossy path that is not congested; a quarter of
/// it starved the repairs at 20% loss (7-8 fps verified, 25-29 with the whole of it). The
/// limits above already keep a packet from being resent more than three times, so a capped
/// link still sees no storm (scripts/test-network checks the send rate under a cap).
const SHARE: f64 = 1.0;
/// The bucket holds this much of its rate: a burst of losses is answered at once.
const DEPTH: Duration = Duration::from_millis(300);
/// The capacity assumed until the congestion controller has an estimate (its own start).
const INITIAL_ESTIMATE_BPS: f64 = 300_000.0;
/// Sent packets remembered per stream (a power of two: indexed by sequence number).
const LOG_SIZE: usize = 1024;
/// Local streams tracked at most: a call sends one video and one audio stream.
const MAX_STREAMS: usize = 8;

#[derive(Clone, Copy)]
struct Sent {
    seq: u16,
    at: Instant,
    bits: f64,
    resends: u8,
    last_resend: Option<Instant>,
}

pub(crate) struct BoundedNackResponder {
    inner: NackResponderInterceptor,
    sent: HashMap<u32, Vec<Option<Sent>>>,
    estimate_bps: f64,
    tokens: f64,
    refilled: Option<Instant>,
}

impl Default for BoundedNackResponder {
    fn default() -> Self {
        BoundedNackResponder {
            inner: NackResponderBuilder::new().with_size(1024).build(),
            sent: HashMap::new(),
            estimate_bps: INITIAL_ESTIMATE_BPS,
            tokens: 0.0,
            refilled: None,
        }
    }
}

impl BoundedNackResponder {
    fn rate(&self) -> f64 {
        self.estimate_bps * SHARE
    }

    fn refill(&mut self, now: Instant) {
        let depth = self.rate() * DEPTH.as_secs_f64();
        let elapsed = self.refilled.map_or(DEPTH, |t| now.saturating_duration_since(t));
        self.tokens = (self.tokens + self.rate() * elapsed.as_secs_f64()).min(depth);
        self.refilled = Some(now);
    }

    fn record_sent(&mut self, now: Instant, packet: &rtc::rtp::Packet) {
        let ssrc = packet.header.ssrc;
        if !self.sent.contains_key(&ssrc) && self.sent.len() >= MAX_STREAMS {
            return;
        }
        let log = self.sent.entry(ssrc).or_insert_with(|| vec![None; LOG_SIZE]);
        let seq = packet.header.sequence_number;
        #[allow(clippy::cast_precision_loss)]
        let bits = ((packet.payload.len() + 12) * 8) as f64;
        log[usize::from(seq) % LOG_SIZE] =
            Some(Sent { seq, at: now, bits, resends: 0, last_resend: None });
    }

    /// The sequence numbers of `nack` this responder may resend now, charged to the budget.
    fn allowed(&mut self, now: Instant, nack: &TransportLayerNack) -> Vec<u16> {
        self.refill(now);
        let Some(log) = self.sent.get_mut(&nack.media_ssrc) else { return Vec::new() };
        let mut allowed = Vec::new();
        for seq in nack.nacks.iter().flat_map(|pair| pair.packet_list()) {
            let Some(sent) = log[usize::from(seq) % LOG_SIZE].as_mut().filter(|s| s.seq == seq)
            else {
                continue;
            };
            let fresh = now.saturating_duration_since(sent.at) <= MAX_AGE;
            let rested = sent.last_resend.is_none_or(|t| now.duration_since(t) >= MIN_RESEND_GAP);
            if fresh && rested && sent.resends < MAX_RESENDS && self.tokens >= sent.bits {
                self.tokens -= sent.bits;
                sent.resends += 1;
                sent.last_resend = Some(now);
                allowed.push(seq);
            }
        }
        allowed
    }

    /// Each NACK in an inbound RTCP compound trimmed to what the budget allows.
    fn trim(
        &mut self,
        now: Instant,
        packets: &[Box<dyn rtc::rtcp::Packet>],
    ) -> Vec<Box<dyn rtc::rtcp::Packet>> {
        let mut out: Vec<Box<dyn rtc::rtcp::Packet>> = Vec::with_capacity(packets.len());
        for p in packets {
            let Some(nack) = p.as_any().downcast_ref::<TransportLayerNack>() else {
                out.push(p.clone());
                continue;
            };
            let allowed = self.allowed(now, nack);
            if !allowed.is_empty() {
                out.push(Box::new(TransportLayerNack {
                    sender_ssrc: nack.sender_ssrc,
                    media_ssrc: nack.media_ssrc,
                    nacks: nack_pairs_from_sequence_numbers(&allowed),
                }));
            }
        }
        out
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for BoundedNackResponder {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        // The congestion controller (wire-ward of here) marks the feedback that moved it.
        let changed = msg.message.get(&Attribute::TargetBitrateChanged { bits_per_second: 0.0 });
        if let Some(Attribute::TargetBitrateChanged { bits_per_second }) = changed {
            if bits_per_second.is_finite() && *bits_per_second > 0.0 {
                self.estimate_bps = *bits_per_second;
            }
        }
        if let Packet::Rtcp(pkts) = &msg.message.packet {
            if pkts.iter().any(|p| p.as_any().is::<TransportLayerNack>()) {
                let trimmed = self.trim(msg.now, pkts);
                msg.message.packet = Packet::Rtcp(trimmed);
            }
        }
        self.inner.handle_read(msg)
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.inner.poll_read()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtp(p) = &msg.message.packet {
            self.record_sent(msg.now, p);
        }
        self.inner.handle_write(msg)
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.inner.poll_write()
    }

    fn handle_timeout(&mut self, now: Instant) -> Result<(), Self::Error> {
        self.inner.handle_timeout(now)
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        self.inner.poll_timeout()
    }
}

impl Interceptor for BoundedNackResponder {
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        self.inner.bind_local_stream(info);
    }
    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        self.sent.remove(&info.ssrc);
        self.inner.unbind_local_stream(info);
    }
    fn bind_remote_stream(&mut self, info: &StreamInfo) {
        self.inner.bind_remote_stream(info);
    }
    fn unbind_remote_stream(&mut self, info: &StreamInfo) {
        self.inner.unbind_remote_stream(info);
    }
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
mod tests {
    use rtc::interceptor::{AttributedPacket, RTCPFeedback};
    use rtc::shared::TransportContext;

    use super::*;

    const SSRC: u32 = 7;

    fn responder() -> BoundedNackResponder {
        let mut r = BoundedNackResponder::default();
        let nack = RTCPFeedback { typ: "nack".into(), parameter: String::new() };
        r.bind_local_stream(&StreamInfo {
            ssrc: SSRC,
            rtcp_feedback: vec![nack],
            ..Default::default()
        });
        r
    }

    fn tagged(now: Instant, packet: Packet) -> TaggedPacket {
        TaggedPacket {
            now,
            transport: TransportContext::default(),
            message: AttributedPacket::new(packet),
        }
    }

    /// Sends packets 0..n of 1000 bytes and drains what goes out.
    fn send(r: &mut BoundedNackResponder, now: Instant, n: u16) {
        for seq in 0..n {
            let mut p = rtc::rtp::Packet::default();
            p.header.ssrc = SSRC;
            p.header.sequence_number = seq;
            p.payload = bytes::Bytes::from(vec![0; 1000]);
            r.handle_write(tagged(now, Packet::Rtp(p))).unwrap();
        }
        while r.poll_write().is_some() {}
    }

    /// Asks for `seqs` and counts the retransmissions that come out.
    fn nack(r: &mut BoundedNackResponder, now: Instant, seqs: &[u16]) -> usize {
        let nack = TransportLayerNack {
            sender_ssrc: 1,
            media_ssrc: SSRC,
            nacks: nack_pairs_from_sequence_numbers(seqs),
        };
        r.handle_read(tagged(now, Packet::Rtcp(vec![Box::new(nack)]))).unwrap();
        while r.poll_read().is_some() {}
        std::iter::from_fn(|| r.poll_write()).count()
    }

    #[test]
    fn a_nack_within_the_budget_is_answered() {
        let (mut r, t) = (responder(), Instant::now());
        send(&mut r, t, 10);
        assert_eq!(nack(&mut r, t, &[2, 5]), 2);
    }

    #[test]
    fn a_packet_is_resent_at_most_three_times_and_not_twice_in_a_row() {
        let (mut r, t) = (responder(), Instant::now());
        send(&mut r, t, 10);
        assert_eq!(nack(&mut r, t, &[3]), 1);
        assert_eq!(nack(&mut r, t + Duration::from_millis(20), &[3]), 0, "too soon");
        assert_eq!(nack(&mut r, t + Duration::from_millis(150), &[3]), 1);
        assert_eq!(nack(&mut r, t + Duration::from_millis(300), &[3]), 1);
        assert_eq!(nack(&mut r, t + Duration::from_millis(450), &[3]), 0, "enough");
    }

    #[test]
    fn an_old_packet_is_not_resent() {
        let (mut r, t) = (responder(), Instant::now());
        send(&mut r, t, 10);
        assert_eq!(nack(&mut r, t + MAX_AGE + Duration::from_millis(1), &[3]), 0);
    }

    /// The storm of issue 11: every packet asked for again and again, on a path estimated at
    /// 150 kbit/s. What is resent in a second stays within the budget's share of that.
    #[test]
    fn retransmissions_stay_within_a_share_of_the_estimate() {
        let (mut r, t) = (responder(), Instant::now());
        let mut estimate = tagged(t, Packet::Rtcp(vec![]));
        estimate.message.add(Attribute::TargetBitrateChanged { bits_per_second: 150_000.0 });
        r.handle_read(estimate).unwrap();
        send(&mut r, t, 500);
        let all: Vec<u16> = (0..500).collect();
        let mut resent = 0;
        for ms in (0..1000).step_by(20) {
            resent += nack(&mut r, t + Duration::from_millis(ms), &all);
        }
        let bits = resent * (1000 + 12) * 8;
        let allowed = 150_000.0 * SHARE * (1.0 + DEPTH.as_secs_f64());
        assert!(resent > 0 && (bits as f64) <= allowed, "{resent} packets, {bits} bits");
    }
}
