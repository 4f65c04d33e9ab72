//! Every fuzz target on stable, briefly: its seeds, then seeded mutations and random bytes.
//! Not a fuzzer (scripts/fuzz is), but it keeps the bodies building and their assertions
//! true on the inputs that matter most, in CI (`scripts/fuzz --smoke`).

use std::path::Path;

/// Inputs tried per target beyond its seeds.
const ROUNDS: usize = 20_000;

/// xorshift64*: deterministic, so a failure here repeats.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n.max(1) as u64).unwrap_or(0)
    }
}

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds").join(target);
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| std::fs::read(entry.expect("an entry").path()).expect("a seed"))
        .collect();
    seeds.sort();
    seeds
}

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut input = seed.to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(4) {
            0 if !input.is_empty() => {
                let at = rng.below(input.len());
                input[at] = rng.next().to_le_bytes()[0];
            }
            1 if !input.is_empty() => input.truncate(rng.below(input.len())),
            2 => {
                let at = rng.below(input.len() + 1);
                let specials = b"\"{}[]:,\\0\x80\xff";
                input.insert(at, specials[rng.below(specials.len())]);
            }
            _ => {
                let from = rng.below(input.len() + 1);
                let copy = input[from..].to_vec();
                input.extend_from_slice(&copy);
            }
        }
    }
    input
}

fn smoke(target: &str, body: fn(&[u8])) {
    let seeds = seeds(target);
    assert!(!seeds.is_empty(), "{target} has no seeds");
    let mut rng = Rng(0x5eed_0000 + target.len() as u64);
    for seed in &seeds {
        body(seed);
    }
    for round in 0..ROUNDS {
        let input = if round % 4 == 0 {
            (0..rng.below(256)).map(|_| rng.next().to_le_bytes()[0]).collect()
        } else {
            let seed = &seeds[rng.below(seeds.len())];
            mutate(&mut rng, seed)
        };
        body(&input);
    }
}

#[test]
fn protocol_parser() {
    smoke("protocol_parser", duet_fuzz::protocol_parser);
}

#[test]
fn token_verify() {
    smoke("token_verify", duet_fuzz::token_verify);
}

#[test]
fn turn_credentials() {
    smoke("turn_credentials", duet_fuzz::turn_credentials);
}

#[test]
fn h264_depacketizer() {
    smoke("h264_depacketizer", duet_fuzz::h264_depacketizer);
}

/// The upstream bug `stap_a_fits` guards against. When rtc-rtp fixes it this test fails:
/// the guard (here and in duet-core) can then go.
#[test]
#[should_panic(expected = "index out of bounds")]
fn rtc_rtp_panics_on_a_stap_a_with_a_cut_length() {
    use rtc_rtp::packetizer::Depacketizer;
    // STAP-A, one NAL unit of 1 byte, then one byte of a second length field.
    let packet = bytes::Bytes::from_static(&[0x78, 0x00, 0x01, 0x65, 0x00]);
    assert!(!duet_fuzz::stap_a_fits(&packet));
    let _ = rtc_rtp::codec::h264::H264Packet::default().depacketize(&packet);
}
