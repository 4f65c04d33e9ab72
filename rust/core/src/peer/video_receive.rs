//! From RTP to the RemoteStream, for video: the receiving pipeline owns the jitter buffer,
//! the assembler, the decoder and the keyframe-request state on its own thread, and calls
//! the app's sink from there. An async task moves packets in and keyframe requests out; the
//! pipeline wakes by itself only when it has a deadline (a frame to give up, a keyframe
//! request to repeat).

use std::sync::Arc;
use std::time::{Duration, Instant};

use duet_media::{VideoDecoder, VideoFrame};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use tokio::sync::mpsc;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

use super::assembler::{AccessUnitAssembler, Assembled};
use super::jitter::{JitterBuffer, VideoPacket};
use super::pipeline::{self, PipelineInput};
use crate::streams::RemoteStream;
use crate::task::TaskHandle;

/// How often to repeat a keyframe request while the picture stays undecodable.
const KEYFRAME_RETRY: Duration = Duration::from_millis(300);

/// Frames released together beyond which only the newest is shown (see `Decoding::run`).
const MAX_SHOWN_AT_ONCE: usize = 8;

/// A receiving pipeline started before its track, so that the first packets find its
/// decoder made: OpenH264 takes 2 to 4 ms to make one, which webrtc-rs's driver (it announces
/// the track, and sends and receives for the whole connection) and the first frame waited
/// for when the decoder was made as the track arrived.
pub(crate) struct Prepared {
    input: PipelineInput<VideoPacket>,
    keyframe_requests: mpsc::Receiver<()>,
}

/// Starts a pipeline showing on `remote`; `decoder` makes its decoder on the pipeline's
/// thread (and reports its own failure), and the pipeline ends if it gives none.
pub(crate) fn prepare<D>(remote: Arc<RemoteStream>, decoder: D) -> std::io::Result<Prepared>
where
    D: FnOnce() -> Option<Box<dyn VideoDecoder>> + Send + 'static,
{
    let (keyframe_tx, keyframe_requests) = mpsc::channel(1);
    let make = move || decoder().map(|d| Decoding::new(d, remote, keyframe_tx));
    let input = pipeline::spawn_made("duet-video-receive", make, Decoding::run)?;
    Ok(Prepared { input, keyframe_requests })
}

/// Feeds a prepared pipeline from one remote video track; it ends with the track or the
/// handle.
pub(crate) fn start(track: Arc<dyn TrackRemote>, prepared: Prepared) -> TaskHandle {
    TaskHandle::spawn(relay(track, prepared.input, prepared.keyframe_requests))
}

/// Packets in, keyframe requests out, until the track ends.
async fn relay(
    track: Arc<dyn TrackRemote>,
    input: PipelineInput<VideoPacket>,
    mut keyframe_requests: mpsc::Receiver<()>,
) {
    let media_ssrc = track.ssrcs().await.first().copied().unwrap_or_default();
    loop {
        tokio::select! {
            event = track.poll() => match event {
                Some(TrackRemoteEvent::OnRtpPacket(p)) => {
                    let h = &p.header;
                    let packet = VideoPacket {
                        seq: h.sequence_number,
                        timestamp: h.timestamp,
                        marker: h.marker,
                        payload: p.payload,
                    };
                    if !pipeline::offer(&input, packet) {
                        return;
                    }
                }
                Some(TrackRemoteEvent::OnEnded) | None => return,
                Some(_) => {}
            },
            Some(()) = keyframe_requests.recv() => {
                let pli = PictureLossIndication { sender_ssrc: 0, media_ssrc };
                if track.write_rtcp(vec![Box::new(pli)]).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// The pipeline's state: one owner, on its thread.
struct Decoding {
    jitter: JitterBuffer,
    assembler: AccessUnitAssembler,
    decoder: Box<dyn VideoDecoder>,
    remote: Arc<RemoteStream>,
    first_ts: Option<u32>,
    need_keyframe: bool,
    last_request: Option<Instant>,
    request_keyframe: mpsc::Sender<()>,
}

impl Decoding {
    fn new(
        decoder: Box<dyn VideoDecoder>,
        remote: Arc<RemoteStream>,
        request_keyframe: mpsc::Sender<()>,
    ) -> Self {
        Decoding {
            jitter: JitterBuffer::default(),
            assembler: AccessUnitAssembler::default(),
            decoder,
            remote,
            first_ts: None,
            need_keyframe: false,
            last_request: None,
            request_keyframe,
        }
    }

    /// Decodes every whole frame the batch completes (each is a reference for the next) and
    /// shows them in order, as long as they are few: frames held behind a repaired loss come
    /// out together and are all worth showing, but a sink that fell far behind skips to the
    /// newest picture instead of delaying every later one. Returns when it must look again
    /// if no packet comes first.
    fn run(&mut self, batch: Vec<VideoPacket>) -> Option<Instant> {
        let now = Instant::now();
        for p in batch {
            if self.first_ts.is_none() {
                tracing::trace!(seq = p.seq, "video packet in");
            }
            self.jitter.push(p, now);
        }
        let released = self.jitter.release(now);
        if released.lost {
            tracing::trace!("video frames lost; waiting for a keyframe");
        }
        let show_all = released.frames.len() <= MAX_SHOWN_AT_ONCE;
        let mut newest: Option<VideoFrame> = None;
        for frame in released.frames {
            let Some(unit) = self.assemble(&frame) else { continue };
            // Timed for the first frame's log line only: nothing extra per frame after it.
            let first = (self.remote.frames_decoded() == 0).then(Instant::now);
            if let Some(picture) = self.decode(&unit.0, unit.1) {
                if let Some(started) = first {
                    let took = started.elapsed();
                    tracing::debug!(bytes = unit.0.len(), ?took, "first video frame decoded");
                }
                self.remote.count_decoded(&picture);
                if let Some(earlier) = newest.replace(picture).filter(|_| show_all) {
                    self.remote.show(earlier);
                }
            }
        }
        // Only a keyframe can restore what a lost or undecodable frame took away.
        self.need_keyframe = !self.jitter.has_references();
        if let Some(frame) = newest {
            self.remote.show(frame);
        }
        let repeat_request_at = self.ask_for_keyframe_if_needed();
        [self.jitter.give_up_at(), repeat_request_at].into_iter().flatten().min()
    }

    /// One whole frame's packets, in order, to an access unit.
    fn assemble(&mut self, frame: &[VideoPacket]) -> Option<(Vec<u8>, u32)> {
        for p in frame {
            match self.assembler.push(p.seq, p.timestamp, p.marker, &p.payload) {
                Assembled::Nothing => {}
                Assembled::Broken => break,
                Assembled::Unit(unit, ts) => return Some((unit, ts)),
            }
        }
        // A frame the depacketizer refused: treat it as lost.
        self.jitter.references_lost();
        None
    }

    fn decode(&mut self, unit: &[u8], ts: u32) -> Option<VideoFrame> {
        let base = *self.first_ts.get_or_insert(ts);
        let ts_us = u64::from(ts.wrapping_sub(base)) * 100 / 9;
        match self.decoder.decode(unit, ts_us) {
            Ok(Some(frame)) => Some(frame),
            Ok(None) => None,
            Err(e) => {
                tracing::debug!("video decode failed: {e}");
                // Whatever the decoder kept of it, later frames would refer to it.
                self.jitter.references_lost();
                None
            }
        }
    }

    /// Until a picture decodes (the first keyframe can be lost before NACK knows the
    /// stream), and after a loss NACK could not repair, keep asking for a keyframe. Returns
    /// when to ask again, while one is needed.
    fn ask_for_keyframe_if_needed(&mut self) -> Option<Instant> {
        let nothing_yet = self.remote.frames_decoded() == 0;
        if !(self.need_keyframe || nothing_yet) {
            return None;
        }
        if self.last_request.is_none_or(|t| t.elapsed() >= KEYFRAME_RETRY) {
            self.last_request = Some(Instant::now());
            // A request already waiting says the same.
            let _ = self.request_keyframe.try_send(());
        }
        self.last_request.map(|t| t + KEYFRAME_RETRY)
    }
}
