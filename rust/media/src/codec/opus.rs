//! Opus through libopus: 48 kHz mono, 20 ms packets, tuned for speech.

use opus::{Application, Bitrate, Channels};

use super::{AudioDecoder, AudioEncoder, CodecError, OPUS_FRAME_SAMPLES};
use crate::audio::SAMPLE_RATE;

/// libopus's own recommended ceiling for one packet.
const MAX_PACKET_BYTES: usize = 4000;
/// The longest frame an Opus packet can carry: 120 ms at 48 kHz. A remote browser may send
/// longer packets than our 20 ms, so decoding makes room for any.
const MAX_FRAME_SAMPLES: usize = 5760;

fn encode_error(e: opus::Error) -> CodecError {
    CodecError::Encode(e.to_string())
}

fn decode_error(e: opus::Error) -> CodecError {
    CodecError::Decode(e.to_string())
}

/// The loss the encoder plans its in-band FEC for.
const EXPECTED_LOSS_PERCENT: i32 = 10;

pub struct OpusEncoder {
    encoder: opus::Encoder,
    out: Vec<u8>,
}

impl OpusEncoder {
    /// 48 kHz mono, VoIP application. Opus accepts 6 kbps to 510 kbps.
    ///
    /// # Errors
    ///
    /// `InvalidConfig` for a bitrate outside that range, `Encode` if libopus cannot create the
    /// encoder.
    pub fn new(bitrate_bps: i32) -> Result<Self, CodecError> {
        if !(6_000..=510_000).contains(&bitrate_bps) {
            return Err(CodecError::InvalidConfig(format!(
                "Opus bitrate {bitrate_bps} bps is not in [6000, 510000]"
            )));
        }
        let mut encoder = opus::Encoder::new(SAMPLE_RATE, Channels::Mono, Application::Voip)
            .map_err(encode_error)?;
        encoder.set_bitrate(Bitrate::Bits(bitrate_bps)).map_err(encode_error)?;
        // In-band FEC: each packet also carries a coarse copy of the one before, which the
        // receiver decodes when that one was lost (`recover`). libopus adds it only when
        // told to expect loss; 10% costs little at speech bitrates.
        encoder.set_inband_fec(true).map_err(encode_error)?;
        encoder.set_packet_loss_perc(EXPECTED_LOSS_PERCENT).map_err(encode_error)?;
        Ok(OpusEncoder { encoder, out: vec![0; MAX_PACKET_BYTES] })
    }
}

impl AudioEncoder for OpusEncoder {
    fn encode(&mut self, pcm: &[i16]) -> Result<Vec<u8>, CodecError> {
        if pcm.len() != OPUS_FRAME_SAMPLES {
            return Err(CodecError::AudioFrameSize {
                expected: OPUS_FRAME_SAMPLES,
                got: pcm.len(),
            });
        }
        let len = self.encoder.encode(pcm, &mut self.out).map_err(encode_error)?;
        Ok(self.out[..len].to_vec())
    }
}

pub struct OpusDecoder {
    decoder: opus::Decoder,
    pcm: Vec<i16>,
    /// Concealment fills the length of the packets actually being received.
    last_samples: usize,
}

impl OpusDecoder {
    /// 48 kHz mono.
    ///
    /// # Errors
    ///
    /// `Decode` if libopus cannot create the decoder.
    pub fn new() -> Result<Self, CodecError> {
        let decoder = opus::Decoder::new(SAMPLE_RATE, Channels::Mono).map_err(decode_error)?;
        Ok(OpusDecoder {
            decoder,
            pcm: vec![0; MAX_FRAME_SAMPLES],
            last_samples: OPUS_FRAME_SAMPLES,
        })
    }
}

impl AudioDecoder for OpusDecoder {
    fn decode(&mut self, packet: &[u8]) -> Result<Vec<i16>, CodecError> {
        // libopus reads an empty packet as "lost": that is `conceal`'s job, not a packet.
        if packet.is_empty() {
            return Err(CodecError::EmptyPacket);
        }
        let n = self.decoder.decode(packet, &mut self.pcm, false).map_err(decode_error)?;
        if n > 0 {
            self.last_samples = n;
        }
        Ok(self.pcm[..n].to_vec())
    }

    fn conceal(&mut self) -> Result<Vec<i16>, CodecError> {
        let len = self.last_samples.min(MAX_FRAME_SAMPLES);
        let n = self.decoder.decode(&[], &mut self.pcm[..len], false).map_err(decode_error)?;
        Ok(self.pcm[..n].to_vec())
    }

    fn recover(&mut self, next_packet: &[u8]) -> Result<Vec<i16>, CodecError> {
        if next_packet.is_empty() {
            return self.conceal();
        }
        // With fec set, libopus decodes the FEC data `next_packet` carries for the packet
        // before it (or conceals, if it carries none), for the length asked.
        let len = self.last_samples.min(MAX_FRAME_SAMPLES);
        let n =
            self.decoder.decode(next_packet, &mut self.pcm[..len], true).map_err(decode_error)?;
        Ok(self.pcm[..n].to_vec())
    }
}
