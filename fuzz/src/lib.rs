//! The bodies of Duet's fuzz targets: each takes arbitrary bytes, must never panic, hang or
//! allocate without bound, and checks what must hold for any input (a parsed message
//! encodes back to itself, a minted token verifies, output is bounded by input).
//! `fuzz_targets/` wraps each for libFuzzer; `tests/smoke.rs` runs them on stable.

use bytes::Bytes;
use duet_protocol::{decode_client, decode_server, encode};
use duet_server::{token, turn_credentials};
use rtc_rtp::packetizer::Depacketizer;

const SECRET: &str = "fuzz-secret";
/// A fixed clock: 2026-01-01, so that expiry decisions do not depend on when it runs.
const NOW: u64 = 1_767_225_600;

/// The protocol parser: client and server messages from untrusted text. Whatever parses
/// must encode and parse back to the same message.
pub fn protocol_parser(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(msg) = decode_client(text) {
        let again = decode_client(&encode(&msg)).expect("an encoded client message parses");
        assert_eq!(again, msg);
        if let Some(id) = msg.call_id() {
            let _ = duet_protocol::check_call_id(id);
        }
    }
    if let Ok(msg) = decode_server(text) {
        let again = decode_server(&encode(&msg)).expect("an encoded server message parses");
        assert_eq!(again, msg);
    }
}

/// Token verification of untrusted text; and any valid uid's minted token verifies back to
/// that uid, while the same token under another secret does not.
pub fn token_verify(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = token::verify(SECRET, text, NOW);
    if duet_protocol::check_uid(text).is_ok() {
        let minted = token::mint_at(SECRET, text, NOW, NOW + 60);
        let claims = token::verify(SECRET, &minted, NOW).expect("a minted token verifies");
        assert_eq!(claims.sub, text);
        assert!(token::verify("another-secret", &minted, NOW).is_err());
    }
}

/// TURN REST credentials: `USERNAME\nPASSWORD` from untrusted bytes. A well-formed,
/// unexpired username verifies with the password minted for it, and with nothing else.
pub fn turn_credentials(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (username, password) = text.split_once('\n').unwrap_or((text, ""));
    let _ = turn_credentials::parse_username(username);
    let _ = turn_credentials::verify(SECRET, username, password, NOW);
    if let Ok(minted) = turn_credentials::password_for(SECRET, username, NOW) {
        assert!(turn_credentials::verify(SECRET, username, &minted, NOW).is_ok());
        if password != minted {
            assert!(turn_credentials::verify(SECRET, username, password, NOW).is_err());
        }
    }
}

/// The H.264 depacketizer as duet-core's `AccessUnitAssembler` drives it: a stream of RTP
/// payloads, each `is_partition_head` then `depacketize`d, after `stap_a_fits` (the check the
/// assembler needs: see `stap_a_fits`). Input: packets as `[len_hi, len_lo, payload...]`.
/// No packet may expand to more than twice its size plus a start code (STAP-A's 2-byte
/// lengths become 4-byte start codes), and a fragmented unit never exceeds what was fed.
pub fn h264_depacketizer(data: &[u8]) {
    let mut depacketizer = rtc_rtp::codec::h264::H264Packet::default();
    let mut fed = 0usize;
    let mut rest = data;
    while let [hi, lo, tail @ ..] = rest {
        let len = (usize::from(*hi) << 8 | usize::from(*lo)).min(tail.len());
        let (payload, next) = tail.split_at(len);
        rest = next;
        let payload = Bytes::copy_from_slice(payload);
        let _ = depacketizer.is_partition_head(&payload);
        fed += payload.len();
        if !stap_a_fits(&payload) {
            continue;
        }
        if let Ok(out) = depacketizer.depacketize(&payload) {
            assert!(out.len() <= (2 * payload.len() + 4).max(fed + 5), "{} from {}", out.len(), fed);
        }
    }
}

/// Whether every NAL unit length in a STAP-A payload (type 24) lies within it; true for any
/// other payload. rtc-rtp 0.21.1's depacketizer indexes past the end of a STAP-A whose last
/// length field is cut to one byte (a panic, found by this target): whatever feeds it
/// packets from a peer must check this first.
pub fn stap_a_fits(payload: &[u8]) -> bool {
    const STAP_A: u8 = 24;
    if payload.first().is_none_or(|b| b & 0x1f != STAP_A) {
        return true;
    }
    let mut at = 1;
    while at < payload.len() {
        let [hi, lo] = match payload.get(at..at + 2) {
            Some(&[hi, lo]) => [hi, lo],
            _ => return false,
        };
        at += 2 + (usize::from(hi) << 8 | usize::from(lo));
        if at > payload.len() {
            return false;
        }
    }
    true
}
