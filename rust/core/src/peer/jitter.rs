//! The video jitter buffer: puts RTP packets back in order, waits for retransmissions of
//! lost ones (NACK) for as long as they have been taking to come, and releases only whole
//! frames the decoder can decode correctly.
//!
//! H.264 as Duet and browsers send it carries no frame-dependency information, so every
//! frame is taken to depend on the one before: once a frame is given up, nothing but a
//! keyframe (an IDR) is released until one comes. A damaged picture is never shown; the
//! receiving pipeline asks for a keyframe instead.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Packets held at most. A frame held back this long is hopeless: start again from the
/// next keyframe rather than grow.
const MAX_HELD: usize = 1024;
/// Bounds on how long an incomplete frame is waited for. The floor covers a NACK's first
/// rounds on a fast link; the ceiling keeps a freeze from a hopeless loss short.
const MIN_WAIT: Duration = Duration::from_millis(150);
const MAX_WAIT: Duration = Duration::from_millis(900);
/// The repair delay assumed before any retransmission has been seen: a NACK interval plus
/// a 100 ms round trip.
const INITIAL_REPAIR: Duration = Duration::from_millis(150);

/// One RTP packet of the video stream.
#[derive(Debug, Clone)]
pub(crate) struct VideoPacket {
    pub seq: u16,
    pub timestamp: u32,
    pub marker: bool,
    pub payload: bytes::Bytes,
}

struct Held {
    packet: VideoPacket,
    arrived: Instant,
}

/// What one `release` produced.
#[derive(Debug, Default)]
pub(crate) struct Released {
    /// Whole frames, oldest first, each the packets of one access unit in order.
    pub frames: Vec<Vec<VideoPacket>>,
    /// Frames were given up or skipped for want of their references: a keyframe is needed.
    pub lost: bool,
}

pub(crate) struct JitterBuffer {
    held: BTreeMap<u64, Held>,
    highest: Option<u64>,
    /// The first sequence number of the next frame to release.
    next: Option<u64>,
    /// Whether the decoder holds every frame the next one may refer to.
    has_references: bool,
    /// How long lost packets have been taking to arrive once missed: a NACK's wait plus a
    /// round trip, so the wait follows the RTT without being told it.
    repair: Duration,
}

/// What the packets from `next` on hold.
enum FrameAt {
    /// Nothing at or after `next` yet.
    Nothing,
    /// A whole frame ends at this sequence number.
    Complete(u64),
    /// A packet with no payload (padding, as browsers send to probe the path's capacity):
    /// part of no frame.
    Padding,
    /// Packets are missing (or still coming).
    Incomplete,
    /// What is there can never become a frame (no head, or a frame without its end).
    Broken,
}

impl Default for JitterBuffer {
    fn default() -> Self {
        JitterBuffer {
            held: BTreeMap::new(),
            highest: None,
            next: None,
            has_references: false,
            repair: INITIAL_REPAIR,
        }
    }
}

impl JitterBuffer {
    /// Takes in one packet as it arrived.
    pub(crate) fn push(&mut self, packet: VideoPacket, now: Instant) {
        let key = self.unwrap_seq(packet.seq);
        if self.next.is_some_and(|n| key < n) || self.held.contains_key(&key) {
            return; // too late, or a duplicate
        }
        if self.highest.is_some_and(|h| key < h) {
            self.learn_repair_delay(key, now);
        }
        self.highest = Some(self.highest.map_or(key, |h| h.max(key)));
        if self.held.len() >= MAX_HELD {
            self.held.clear();
            self.next = None;
            self.has_references = false;
        }
        self.held.insert(key, Held { packet, arrived: now });
    }

    /// The decoder failed on a frame: nothing but a keyframe can be decoded now.
    pub(crate) fn references_lost(&mut self) {
        self.has_references = false;
    }

    /// Whether the next frame released can be decoded correctly: false from a loss until
    /// the next keyframe.
    pub(crate) fn has_references(&self) -> bool {
        self.has_references
    }

    /// How long an incomplete frame is waited for now.
    pub(crate) fn wait(&self) -> Duration {
        // Two rounds of repair: a retransmission is lost as often as the packet was, and
        // giving up a frame costs every frame until a keyframe comes.
        (self.repair * 2 + Duration::from_millis(60)).clamp(MIN_WAIT, MAX_WAIT)
    }

    /// When `release` gives up the incomplete frame it waits for, if it waits for one.
    pub(crate) fn give_up_at(&self) -> Option<Instant> {
        let waited = self.held.range(self.next?..).map(|(_, h)| h.arrived).min()?;
        Some(waited + self.wait())
    }

    /// Whole frames that are ready, and whether any were lost on the way.
    pub(crate) fn release(&mut self, now: Instant) -> Released {
        let mut out = Released::default();
        while let Some(next) = self.next.or_else(|| self.first_frame_start()) {
            self.next = Some(next);
            match self.frame_at(next) {
                FrameAt::Nothing => break,
                FrameAt::Complete(end) => self.take_frame(next, end, &mut out),
                FrameAt::Padding => {
                    self.held.remove(&next);
                    self.next = Some(next + 1);
                }
                FrameAt::Incomplete => {
                    let waited = self.held.range(next..).map(|(_, h)| h.arrived).min();
                    if waited.is_some_and(|t| now.duration_since(t) < self.wait()) {
                        break;
                    }
                    self.skip_past(next);
                    out.lost = true;
                }
                FrameAt::Broken => {
                    self.skip_past(next);
                    out.lost = true;
                }
            }
        }
        out.lost |= !self.has_references;
        out
    }

    fn take_frame(&mut self, start: u64, end: u64, out: &mut Released) {
        let mut frame = Vec::new();
        while let Some(entry) = self.held.first_entry() {
            if *entry.key() > end {
                break;
            }
            frame.push(entry.remove().packet);
        }
        self.next = Some(end + 1);
        debug_assert!(frame.len() as u64 == end - start + 1);
        if frame.iter().any(|p| carries_idr(&p.payload)) {
            self.has_references = true;
        }
        if self.has_references {
            out.frames.push(frame);
        }
    }

    /// Where the stream's first frame starts: the oldest packet that heads one. Packets
    /// before it (the tail of a frame whose head never came) are dropped.
    fn first_frame_start(&mut self) -> Option<u64> {
        let start = self
            .held
            .iter()
            .find(|(_, h)| h.packet.payload.is_empty() || is_head(&h.packet.payload))
            .map(|(k, _)| *k)?;
        self.held.retain(|k, _| *k >= start);
        Some(start)
    }

    fn frame_at(&self, next: u64) -> FrameAt {
        let mut packets = self.held.range(next..);
        let Some((&first, head)) = packets.next() else { return FrameAt::Nothing };
        if first != next {
            return FrameAt::Incomplete;
        }
        if head.packet.payload.is_empty() {
            return FrameAt::Padding;
        }
        if !is_head(&head.packet.payload) {
            return FrameAt::Broken;
        }
        let timestamp = head.packet.timestamp;
        let mut last = first;
        let mut held = head;
        loop {
            if held.packet.marker {
                return FrameAt::Complete(last);
            }
            let Some((&key, h)) = packets.next() else { return FrameAt::Incomplete };
            if key != last + 1 {
                return FrameAt::Incomplete;
            }
            if h.packet.timestamp != timestamp {
                return FrameAt::Broken; // the frame's last packet never came and never will
            }
            (last, held) = (key, h);
        }
    }

    /// Gives up the frame at `next`: drops its packets and moves to the first packet after
    /// it that starts a frame. Frames until the next keyframe cannot be decoded.
    fn skip_past(&mut self, next: u64) {
        self.has_references = false;
        let abandoned = self.held.range(next..).next().map(|(_, h)| h.packet.timestamp);
        let start = self
            .held
            .range(next + 1..)
            .find(|(k, h)| {
                let after_end = self.held.get(&(*k - 1)).is_some_and(|p| p.packet.marker);
                let new_head = Some(h.packet.timestamp) != abandoned && is_head(&h.packet.payload);
                after_end || new_head
            })
            .map(|(k, _)| *k);
        let start = start.unwrap_or_else(|| self.highest.map_or(next + 1, |h| h + 1));
        self.held.retain(|k, _| *k >= start);
        self.next = Some(start);
    }

    /// Sequence numbers as a u64 that does not wrap, placed nearest the highest seen.
    fn unwrap_seq(&self, seq: u16) -> u64 {
        let Some(highest) = self.highest else { return (1 << 32) + u64::from(seq) };
        #[allow(clippy::cast_possible_truncation)]
        let delta = i64::from(seq.wrapping_sub(highest as u16).cast_signed());
        highest.saturating_add_signed(delta)
    }

    /// A packet filled a hole: how long after the packet that followed it did it come.
    fn learn_repair_delay(&mut self, key: u64, now: Instant) {
        let Some((_, after)) = self.held.range(key + 1..).next() else { return };
        let took = now.duration_since(after.arrived).min(MAX_WAIT);
        // Rises at once, decays slowly: the wait must cover the slow repairs, not the average.
        self.repair = if took > self.repair { took } else { (self.repair * 15 + took) / 16 };
    }
}

/// NAL unit types, RFC 6184.
const IDR: u8 = 5;
const STAP_A: u8 = 24;
const FU_A: u8 = 28;

/// Whether this payload begins an access unit's first NAL unit (not a fragment's middle).
fn is_head(payload: &[u8]) -> bool {
    match payload.first().map(|b| b & 0x1f) {
        None => false,
        Some(FU_A) => payload.get(1).is_some_and(|b| b & 0x80 != 0),
        Some(_) => true,
    }
}

/// Whether this payload carries (part of) an IDR picture.
fn carries_idr(payload: &[u8]) -> bool {
    match payload.first().map(|b| b & 0x1f) {
        Some(IDR) => true,
        Some(FU_A) => payload.get(1).is_some_and(|b| b & 0x1f == IDR),
        Some(STAP_A) => {
            let mut at = 1;
            while let Some(&[hi, lo]) = payload.get(at..at + 2) {
                if payload.get(at + 2).is_some_and(|b| b & 0x1f == IDR) {
                    return true;
                }
                at += 2 + usize::from(u16::from_be_bytes([hi, lo]));
            }
            false
        }
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// A frame of `n` packets: an IDR (FU-A) or a P slice (FU-A), at timestamp `ts`.
    fn frame(first_seq: u16, n: u16, ts: u32, idr: bool) -> Vec<VideoPacket> {
        let nal = if idr { IDR } else { 1 };
        (0..n)
            .map(|i| {
                let start = if i == 0 { 0x80 } else { 0 };
                let end = if i == n - 1 { 0x40 } else { 0 };
                VideoPacket {
                    seq: first_seq.wrapping_add(i),
                    timestamp: ts,
                    marker: i == n - 1,
                    payload: bytes::Bytes::from(vec![0x7c, start | end | nal, i as u8]),
                }
            })
            .collect()
    }

    fn seqs(r: &Released) -> Vec<Vec<u16>> {
        r.frames.iter().map(|f| f.iter().map(|p| p.seq).collect()).collect()
    }

    #[test]
    fn frames_in_order_come_out_whole() {
        let (mut jb, t) = (JitterBuffer::default(), Instant::now());
        for p in frame(10, 3, 0, true).into_iter().chain(frame(13, 2, 3000, false)) {
            jb.push(p, t);
        }
        let r = jb.release(t);
        assert_eq!(seqs(&r), [vec![10, 11, 12], vec![13, 14]]);
        assert!(!r.lost);
    }

    #[test]
    fn reordered_packets_are_put_back_in_order() {
        let (mut jb, t) = (JitterBuffer::default(), Instant::now());
        let mut packets = frame(10, 3, 0, true);
        packets.swap(1, 2);
        for p in packets {
            jb.push(p, t);
        }
        assert_eq!(seqs(&jb.release(t)), [vec![10, 11, 12]]);
    }

    #[test]
    fn a_retransmission_inside_the_wait_repairs_the_frame() {
        let (mut jb, t) = (JitterBuffer::default(), Instant::now());
        let key = frame(10, 3, 0, true);
        jb.push(key[0].clone(), t);
        jb.push(key[2].clone(), t);
        let r = jb.release(t + 50 * MS);
        assert!(r.frames.is_empty(), "still waiting: {r:?}");
        jb.push(key[1].clone(), t + 120 * MS);
        assert_eq!(seqs(&jb.release(t + 120 * MS)), [vec![10, 11, 12]]);
    }

    #[test]
    fn the_buffer_says_when_it_gives_up_what_it_waits_for() {
        let (mut jb, t) = (JitterBuffer::default(), Instant::now());
        assert_eq!(jb.give_up_at(), None, "nothing held");
        let key = frame(10, 3, 0, true);
        jb.push(key[0].clone(), t);
        jb.push(key[2].clone(), t + 5 * MS);
        assert!(jb.release(t + 10 * MS).frames.is_empty());
        let at = jb.give_up_at().expect("waits for seq 11");
        assert_eq!(at, t + jb.wait(), "from the oldest packet of the frame");
        assert!(jb.release(at - MS).frames.is_empty() && jb.give_up_at() == Some(at));
        let r = jb.release(at);
        assert!(r.lost, "given up then");
        assert_eq!(jb.give_up_at(), None, "nothing left to wait for");
        jb.push(key[1].clone(), at);
        for p in frame(13, 2, 3000, false) {
            jb.push(p, at);
        }
        jb.release(at);
        assert_eq!(jb.give_up_at(), None, "whole frames are not waited for");
    }

    #[test]
    fn after_an_unrepaired_loss_only_a_keyframe_is_released() {
        let (mut jb, t) = (JitterBuffer::default(), Instant::now());
        let mut packets = frame(10, 2, 0, true);
        packets.extend(frame(12, 2, 3000, false).into_iter().skip(1)); // seq 12 lost
        packets.extend(frame(14, 2, 6000, false));
        packets.extend(frame(16, 2, 9000, true));
        packets.extend(frame(18, 1, 12000, false));
        let now = t + 10 * MS;
        for p in packets {
            jb.push(p, now);
        }
        assert_eq!(seqs(&jb.release(now)), [vec![10, 11]], "waits for seq 12");
        let later = now + jb.wait();
        let r = jb.release(later);
        assert_eq!(seqs(&r), [vec![16, 17], vec![18]], "the P frame at 14 needs the lost one");
        assert!(r.lost);
        let r = jb.release(later);
        assert!(!r.lost, "the keyframe restored the references");
    }

    #[test]
    fn a_late_packet_after_giving_up_is_dropped() {
        let (mut jb, t) = (JitterBuffer::default(), Instant::now());
        let key = frame(10, 2, 0, true);
        let p = frame(12, 3, 3000, false);
        jb.push(key[0].clone(), t);
        jb.push(key[1].clone(), t);
        jb.push(p[0].clone(), t);
        jb.push(p[2].clone(), t);
        jb.release(t);
        assert!(jb.release(t + MAX_WAIT).lost);
        jb.push(p[1].clone(), t + MAX_WAIT);
        assert!(jb.release(t + MAX_WAIT).frames.is_empty());
    }

    #[test]
    fn nothing_is_released_before_the_first_keyframe() {
        let (mut jb, t) = (JitterBuffer::default(), Instant::now());
        for p in frame(10, 2, 0, false) {
            jb.push(p, t);
        }
        let r = jb.release(t);
        assert!(r.frames.is_empty() && r.lost);
    }

    /// Browsers probe the path with padding-only packets between frames, on the video's own
    /// sequence numbers.
    #[test]
    fn padding_between_frames_is_passed_over() {
        let (mut jb, t) = (JitterBuffer::default(), Instant::now());
        let mut packets = frame(10, 2, 0, true);
        for seq in 12..14 {
            let payload = bytes::Bytes::new();
            packets.push(VideoPacket { seq, timestamp: 0, marker: false, payload });
        }
        packets.extend(frame(14, 2, 3000, false));
        for p in packets {
            jb.push(p, t);
        }
        let r = jb.release(t);
        assert_eq!(seqs(&r), [vec![10, 11], vec![14, 15]]);
        assert!(!r.lost);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let (mut jb, t) = (JitterBuffer::default(), Instant::now());
        for p in frame(65534, 4, 0, true) {
            jb.push(p, t);
        }
        assert_eq!(seqs(&jb.release(t)), [vec![65534, 65535, 0, 1]]);
    }

    #[test]
    fn the_wait_follows_how_long_repairs_take() {
        let (mut jb, t) = (JitterBuffer::default(), Instant::now());
        let key = frame(10, 3, 0, true);
        jb.push(key[0].clone(), t);
        jb.push(key[2].clone(), t);
        jb.push(key[1].clone(), t + 400 * MS);
        assert_eq!(jb.wait(), 860 * MS);
        assert!(jb.wait() <= MAX_WAIT);
    }

    #[test]
    fn a_stap_a_with_an_idr_is_a_keyframe() {
        assert!(carries_idr(&[0x78, 0, 2, 0x67, 1, 0, 2, 0x65, 1]));
        assert!(!carries_idr(&[0x78, 0, 2, 0x67, 1, 0, 2, 0x68, 1]));
        assert!(!carries_idr(&[0x78, 0, 9]), "cut short");
    }

    #[test]
    fn the_held_packets_are_bounded() {
        let (mut jb, t) = (JitterBuffer::default(), Instant::now());
        for i in 0..3000u16 {
            // Never a marker: nothing completes.
            let mut p = frame(i.wrapping_mul(2), 2, u32::from(i), true).remove(0);
            p.marker = false;
            jb.push(p, t);
        }
        assert!(jb.held.len() <= MAX_HELD);
    }
}
