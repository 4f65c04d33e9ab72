//! Delegates that turn the engine's callbacks into a stream of events a CLI task can await.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use duet_core::{
    CallError, CallStatus, Conversation, ConversationDelegate, RemoteStream, VideoCallDelegate,
    VideoFrame, VideoSink,
};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use crate::video_check::VideoCheck;

#[derive(Debug)]
pub enum Happened {
    Called(Arc<Conversation>, Option<String>),
    Response(CallStatus),
    Stream(#[allow(dead_code)] Arc<RemoteStream>),
    Failed(CallError),
    Closed,
    /// The first remote video frame decoded.
    FirstFrame,
    /// What the peer says it sends now: its camera or microphone went off or on.
    RemoteMedia {
        video: bool,
        audio: bool,
    },
}

pub struct Bridge {
    tx: UnboundedSender<Happened>,
}

/// The remote video "screen": checks each frame (against the synthetic pattern when the
/// peer is Duet's) and says when the first one arrives.
pub struct Screen {
    pub video: VideoCheck,
    first: AtomicBool,
    tx: UnboundedSender<Happened>,
}

impl VideoSink for Screen {
    fn on_video_frame(&self, frame: Arc<VideoFrame>) {
        self.video.on_frame(&frame);
        if !self.first.swap(true, Ordering::Relaxed) {
            let _ = self.tx.send(Happened::FirstFrame);
        }
    }
}

impl Bridge {
    pub fn new() -> (Arc<Bridge>, Arc<Screen>, UnboundedReceiver<Happened>) {
        let (tx, rx) = unbounded_channel();
        let screen = Arc::new(Screen {
            video: VideoCheck::default(),
            first: AtomicBool::new(false),
            tx: tx.clone(),
        });
        (Arc::new(Bridge { tx }), screen, rx)
    }

    fn send(&self, h: Happened) {
        let _ = self.tx.send(h);
    }
}

impl VideoCallDelegate for Bridge {
    fn did_receive_call_with_conversation(
        &self,
        conversation: Arc<Conversation>,
        data: Option<String>,
    ) {
        self.send(Happened::Called(conversation, data));
    }
}

impl ConversationDelegate for Bridge {
    fn did_receive_response(&self, status: CallStatus) {
        self.send(Happened::Response(status));
    }
    fn did_receive_stream(&self, stream: Arc<RemoteStream>) {
        self.send(Happened::Stream(stream));
    }
    fn did_fail_with_error(&self, error: CallError) {
        self.send(Happened::Failed(error));
    }
    fn did_close(&self) {
        self.send(Happened::Closed);
    }
    fn did_change_remote_media(&self, video_enabled: bool, audio_enabled: bool) {
        self.send(Happened::RemoteMedia { video: video_enabled, audio: audio_enabled });
    }
}
