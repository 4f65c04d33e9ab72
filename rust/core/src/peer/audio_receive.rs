//! From RTP to the RemoteStream, for audio: the receiving pipeline owns the Opus decoder
//! and its loss concealment (PLC, and in-band FEC for the packet just before one that
//! came) on its own thread, and calls the app's audio sink from there.

use std::sync::Arc;

use duet_media::AudioDecoder;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

use super::pipeline::{self, PipelineInput};
use crate::streams::RemoteStream;
use crate::task::TaskHandle;

/// Packets lost in a row beyond which concealment stops: longer gaps are silence.
const MAX_CONCEALED: u16 = 5;

pub(crate) struct AudioPacket {
    seq: u16,
    timestamp: u32,
    payload: bytes::Bytes,
}

/// Starts the pipeline for one remote audio track; it ends with the track or the handle.
pub(crate) fn start(
    track: Arc<dyn TrackRemote>,
    remote: Arc<RemoteStream>,
    decoder: Box<dyn AudioDecoder>,
) -> std::io::Result<TaskHandle> {
    let mut decoding = Decoding { decoder, remote, last_seq: None, first_ts: None };
    let input = pipeline::spawn("duet-audio-receive", move |batch: Vec<AudioPacket>| {
        for p in batch {
            decoding.packet(&p);
        }
    })?;
    Ok(TaskHandle::spawn(relay(track, input)))
}

async fn relay(track: Arc<dyn TrackRemote>, input: PipelineInput<AudioPacket>) {
    while let Some(event) = track.poll().await {
        let p = match event {
            TrackRemoteEvent::OnRtpPacket(p) => p,
            TrackRemoteEvent::OnEnded => return,
            _ => continue,
        };
        let packet = AudioPacket {
            seq: p.header.sequence_number,
            timestamp: p.header.timestamp,
            payload: p.payload,
        };
        if !pipeline::offer(&input, packet) {
            return;
        }
    }
}

struct Decoding {
    decoder: Box<dyn AudioDecoder>,
    remote: Arc<RemoteStream>,
    last_seq: Option<u16>,
    first_ts: Option<u32>,
}

impl Decoding {
    fn packet(&mut self, p: &AudioPacket) {
        let base = *self.first_ts.get_or_insert(p.timestamp);
        let ts_us = u64::from(p.timestamp.wrapping_sub(base)) * 1000 / 48;
        if let Some(last) = self.last_seq {
            let lost = p.seq.wrapping_sub(last).wrapping_sub(1);
            if lost > 0 && lost <= MAX_CONCEALED {
                // Concealed, but for the last lost packet: this one carries a copy of it.
                for n in 1..=lost {
                    let pcm = if n == lost {
                        self.decoder.recover(&p.payload)
                    } else {
                        self.decoder.conceal()
                    };
                    if let Ok(pcm) = pcm {
                        self.remote.deliver_audio(&pcm, ts_us);
                    }
                }
            }
        }
        self.last_seq = Some(p.seq);
        match self.decoder.decode(&p.payload) {
            Ok(pcm) => self.remote.deliver_audio(&pcm, ts_us),
            Err(e) => tracing::debug!("audio decode failed: {e}"),
        }
    }
}
