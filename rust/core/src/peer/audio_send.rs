//! From a LocalStream to RTP, for audio: the sending pipeline owns the Opus encoder on its
//! own thread; async tasks gather the stream's 10 ms frames into the encoder's 20 ms chunks
//! (so the thread wakes once per packet, not per frame) and move packets out.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use duet_media::{AudioChunker, AudioEncoder, AudioFrame};
use rtc::media::Sample;
use tokio::sync::{broadcast, mpsc, watch};
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::rtp_transceiver::RtpSender;

use super::pipeline::{self, PipelineInput};
use super::track::{binding, duration_for_ticks};
use crate::task::TaskHandle;

/// Packets the pipeline may have encoded ahead of the task that writes them.
const ENCODED_QUEUE: usize = 16;

/// One call's audio sending. Dropping it stops its thread and tasks.
pub(crate) struct AudioSend {
    /// Packets sent so far.
    pub packets_sent: watch::Receiver<u64>,
    _tasks: Vec<TaskHandle>,
}

impl AudioSend {
    pub(crate) fn start(
        track: Arc<TrackLocalStaticSample>,
        sender: Arc<dyn RtpSender>,
        frames: broadcast::Receiver<Arc<AudioFrame>>,
        mut encoder: Box<dyn AudioEncoder>,
        connected: watch::Receiver<bool>,
    ) -> std::io::Result<AudioSend> {
        let (packets_tx, packets) = mpsc::channel::<Vec<u8>>(ENCODED_QUEUE);
        let input = pipeline::spawn("duet-audio-send", move |batch: Vec<Vec<i16>>| {
            for chunk in batch {
                match encoder.encode(&chunk) {
                    // The writer is gone only when the call is ending.
                    Ok(packet) => drop(packets_tx.blocking_send(packet)),
                    Err(e) => tracing::warn!("audio encode failed: {e}"),
                }
            }
        })?;
        let (sent_tx, packets_sent) = watch::channel(0);
        let tasks = vec![
            TaskHandle::spawn(feed_frames(frames, connected.clone(), input)),
            TaskHandle::spawn(write_packets(track, sender, packets, connected, sent_tx)),
        ];
        Ok(AudioSend { packets_sent, _tasks: tasks })
    }
}

async fn feed_frames(
    mut frames: broadcast::Receiver<Arc<AudioFrame>>,
    mut connected: watch::Receiver<bool>,
    input: PipelineInput<Vec<i16>>,
) {
    if connected.wait_for(|c| *c).await.is_err() {
        return;
    }
    let mut chunker = AudioChunker::new();
    loop {
        let frame = match frames.recv().await {
            Ok(f) => f,
            // Lost audio is lost; the receiver conceals it.
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let mut chunk = chunker.push(&frame);
        while let Some(full) = chunk {
            if !pipeline::offer(&input, full) {
                return;
            }
            chunk = chunker.pop();
        }
    }
}

async fn write_packets(
    track: Arc<TrackLocalStaticSample>,
    sender: Arc<dyn RtpSender>,
    mut packets: mpsc::Receiver<Vec<u8>>,
    mut connected: watch::Receiver<bool>,
    sent: watch::Sender<u64>,
) {
    if connected.wait_for(|c| *c).await.is_err() {
        return;
    }
    let Some((ssrc, pt)) = binding(&track, &sender).await else {
        tracing::warn!("audio track never bound; sending nothing");
        return;
    };
    let packet_time = duration_for_ticks(960, 48_000);
    while let Some(packet) = packets.recv().await {
        let sample = Sample {
            data: Bytes::from(packet),
            duration: packet_time,
            ..Sample::new(Instant::now())
        };
        if track.sample_writer(ssrc, pt).write_sample(&sample).await.is_err() {
            return;
        }
        sent.send_modify(|n| *n += 1);
    }
}
