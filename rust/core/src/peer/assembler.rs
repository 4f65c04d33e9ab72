//! H.264 access units from RTP packets, for the video receiving pipeline.

use rtc::rtp::codec::h264::H264Packet;
use rtc::rtp::packetizer::Depacketizer;

/// Rebuilds H.264 access units from RTP packets as soon as each one's last packet (the
/// marker bit) arrives. rtc's SampleBuilder waits for the next frame's first packet to know
/// a frame ended, which costs every frame a frame interval of latency.
#[derive(Default)]
pub(crate) struct AccessUnitAssembler {
    depacketizer: H264Packet,
    unit: Vec<u8>,
    timestamp: Option<u32>,
    last_seq: Option<u16>,
    broken: bool,
}

/// What one packet completed.
#[derive(Debug, PartialEq)]
pub(crate) enum Assembled {
    Nothing,
    /// A whole access unit in Annex B, with its RTP timestamp.
    Unit(Vec<u8>, u32),
    /// An access unit lost a packet: it cannot be decoded; ask for a keyframe.
    Broken,
}

impl AccessUnitAssembler {
    pub(crate) fn push(
        &mut self,
        seq: u16,
        timestamp: u32,
        marker: bool,
        payload: &bytes::Bytes,
    ) -> Assembled {
        let gap = self.last_seq.is_some_and(|l| seq != l.wrapping_add(1));
        self.last_seq = Some(seq);
        if self.timestamp != Some(timestamp) {
            self.unit.clear();
            self.timestamp = Some(timestamp);
            // A unit that does not start at its first packet lost its head.
            self.broken = !self.depacketizer.is_partition_head(payload);
        } else if gap {
            self.broken = true;
        }
        if !stap_a_is_whole(payload) {
            // rtc-rtp 0.21.1 panics on a STAP-A whose last length field is cut short; a
            // peer must not be able to stop our video with one packet.
            self.broken = true;
        } else {
            match self.depacketizer.depacketize(payload) {
                Ok(bytes) => self.unit.extend_from_slice(&bytes),
                Err(_) => self.broken = true,
            }
        }
        if !marker {
            return Assembled::Nothing;
        }
        self.timestamp = None;
        if std::mem::take(&mut self.broken) {
            self.unit.clear();
            return Assembled::Broken;
        }
        Assembled::Unit(std::mem::take(&mut self.unit), timestamp)
    }
}

/// Whether a payload that is a STAP-A holds whole units: each 2-byte length field present,
/// and no unit running past the end. (Any other payload passes; the depacketizer checks it.)
/// `fuzz/src/lib.rs` mirrors this check to fuzz the depacketizer without building webrtc.
fn stap_a_is_whole(payload: &[u8]) -> bool {
    const STAP_A: u8 = 24;
    if payload.first().is_none_or(|b| b & 0x1f != STAP_A) {
        return true;
    }
    let mut at = 1;
    while at < payload.len() {
        let Some(&[hi, lo]) = payload.get(at..at + 2) else { return false };
        at += 2 + usize::from(u16::from_be_bytes([hi, lo]));
        if at > payload.len() {
            return false;
        }
    }
    true
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use std::time::Instant;

    use super::*;
    use duet_media::{read_counter, TestPattern, VideoEncoderConfig};
    use rtc::rtp::codec::h264::H264Payloader;
    use rtc::rtp::packetizer::{new_packetizer, Packetizer};
    use rtc::rtp::sequence::new_fixed_sequencer;

    use crate::peer::{SoftwareVideoCodecs, VideoCodecs};

    /// The sending side's real path for a keyframe: OpenH264, then webrtc-rs's H.264
    /// packetizer, as TrackLocalStaticSample does it.
    fn keyframe_packets() -> Vec<rtc::rtp::Packet> {
        let config =
            VideoEncoderConfig { width: 320, height: 240, fps: 30.0, max_bitrate_bps: 500_000 };
        let mut encoder = SoftwareVideoCodecs.encoder(config).unwrap();
        let unit = encoder.encode(&TestPattern::new(320, 240).frame(7, 0), true).unwrap().unwrap();
        assert!(unit.keyframe);
        let mut packetizer = new_packetizer(
            Instant::now(),
            1200,
            102,
            1,
            Box::new(H264Payloader::default()),
            Box::new(new_fixed_sequencer(1)),
            90_000,
        );
        packetizer.packetize(Instant::now(), &bytes::Bytes::from(unit.data), 3000).unwrap()
    }

    /// Browsers drop a first keyframe whose SPS and PPS do not come in one STAP-A packet, with
    /// the IDR's timestamp, right before it.
    #[test]
    fn a_keyframe_goes_out_as_stap_a_with_sps_and_pps_then_the_idr() {
        let packets = keyframe_packets();
        let first = &packets[0].payload;
        assert_eq!(first[0] & 0x1f, 24, "the first packet is a STAP-A");
        let mut types = Vec::new();
        let mut at = 1;
        while at + 2 <= first.len() {
            let len = u16::from_be_bytes([first[at], first[at + 1]]) as usize;
            types.push(first[at + 2] & 0x1f);
            at += 2 + len;
        }
        assert_eq!(types, [7, 8], "it aggregates exactly the SPS and the PPS");
        let idr = &packets[1].payload;
        let idr_type = match idr[0] & 0x1f {
            28 => idr[1] & 0x1f, // FU-A: the fragmented unit's type
            t => t,
        };
        assert_eq!(idr_type, 5, "the IDR follows");
        let ts = packets[0].header.timestamp;
        assert!(packets.iter().all(|p| p.header.timestamp == ts), "one timestamp for the unit");
        assert!(packets.last().unwrap().header.marker && !packets[0].header.marker);
    }

    #[test]
    fn the_packets_of_a_keyframe_reassemble_and_decode_to_the_picture_sent() {
        let mut assembler = AccessUnitAssembler::default();
        let mut unit = None;
        for p in keyframe_packets() {
            let h = &p.header;
            if let Assembled::Unit(u, _) =
                assembler.push(h.sequence_number, h.timestamp, h.marker, &p.payload)
            {
                unit = Some(u);
            }
        }
        let mut decoder = SoftwareVideoCodecs.decoder().unwrap();
        let frame = decoder.decode(&unit.expect("a whole unit"), 0).unwrap().expect("a picture");
        assert_eq!(read_counter(&frame), Some(7));
    }

    const SPS: [u8; 4] = [0x67, 0x42, 0xc0, 0x0d];
    const PPS: [u8; 3] = [0x68, 0xce, 0x3c];

    fn stap_a() -> Vec<u8> {
        let mut p = vec![0x78];
        for nal in [&SPS[..], &PPS[..]] {
            p.extend_from_slice(&(nal.len() as u16).to_be_bytes());
            p.extend_from_slice(nal);
        }
        p
    }

    /// An IDR split in two FU-A fragments.
    fn fu_a(start: bool, end: bool, body: &[u8]) -> Vec<u8> {
        let header = (0x80 * u8::from(start)) | (0x40 * u8::from(end)) | 5;
        let mut p = vec![0x7c, header];
        p.extend_from_slice(body);
        p
    }

    fn b(v: Vec<u8>) -> bytes::Bytes {
        bytes::Bytes::from(v)
    }

    #[test]
    fn a_keyframe_in_three_packets_comes_out_whole_on_its_marker() {
        let mut a = AccessUnitAssembler::default();
        assert_eq!(a.push(1, 900, false, &b(stap_a())), Assembled::Nothing);
        assert_eq!(a.push(2, 900, false, &b(fu_a(true, false, &[1, 2]))), Assembled::Nothing);
        let Assembled::Unit(unit, ts) = a.push(3, 900, true, &b(fu_a(false, true, &[3]))) else {
            panic!("expected a unit")
        };
        assert_eq!(ts, 900);
        let start = [0, 0, 0, 1];
        let mut want = Vec::new();
        for nal in [&SPS[..], &PPS[..], &[0x65, 1, 2, 3][..]] {
            want.extend_from_slice(&start);
            want.extend_from_slice(nal);
        }
        assert_eq!(unit, want);
    }

    #[test]
    fn a_lost_middle_packet_breaks_only_its_unit() {
        let mut a = AccessUnitAssembler::default();
        a.push(1, 900, false, &b(fu_a(true, false, &[1])));
        // seq 2 lost
        assert_eq!(a.push(3, 900, true, &b(fu_a(false, true, &[3]))), Assembled::Broken);
        let single = b(vec![0x41, 9, 9]);
        assert!(matches!(a.push(4, 3900, true, &single), Assembled::Unit(_, 3900)));
    }

    #[test]
    fn a_unit_missing_its_head_is_broken() {
        let mut a = AccessUnitAssembler::default();
        assert_eq!(a.push(7, 900, true, &b(fu_a(false, true, &[3]))), Assembled::Broken);
    }

    /// Found by fuzzing: a STAP-A whose last length field is one byte made rtc-rtp panic.
    #[test]
    fn a_stap_a_cut_short_breaks_its_unit_instead_of_panicking() {
        let mut a = AccessUnitAssembler::default();
        assert_eq!(a.push(1, 900, true, &b(vec![0x78, 0x00, 0x01, 0x65, 0x00])), Assembled::Broken);
        assert_eq!(a.push(2, 1800, true, &b(vec![0x78, 0x00, 0x09, 0x65])), Assembled::Broken);
        assert!(matches!(a.push(3, 2700, true, &b(stap_a())), Assembled::Unit(..)));
    }
}
