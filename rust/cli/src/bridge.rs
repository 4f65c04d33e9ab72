//! Delegates that turn the engine's callbacks into a stream of events a CLI task can await.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use duet_core::{
    CallError, CallStatus, ConnectionState, Conversation, ConversationDelegate, MediaState,
    RemoteStream, VideoCallDelegate, VideoFrame, VideoSink,
};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use crate::video_check::VideoCheck;

#[derive(Debug)]
pub(crate) enum Happened {
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
    /// The signaling connection went down, came back, or was refused.
    Signaling(ConnectionState),
    /// The media connection went reconnecting (ICE restart) or came back.
    Media(MediaState),
    /// The network quality levels (this side, the other side), 0 to 5.
    Quality(u8, u8),
}

pub(crate) struct Bridge {
    tx: UnboundedSender<Happened>,
}

/// The remote video "screen": checks each frame (against the synthetic pattern when the
/// peer is Duet's) and says when the first one arrives.
pub(crate) struct Screen {
    pub(crate) video: VideoCheck,
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
    pub(crate) fn new() -> (Arc<Bridge>, Arc<Screen>, UnboundedReceiver<Happened>) {
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

    fn did_change_connection_state(&self, state: ConnectionState) {
        self.send(Happened::Signaling(state));
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
    fn did_change_media_state(&self, state: MediaState) {
        self.send(Happened::Media(state));
    }
    fn did_change_network_quality(&self, local: u8, remote: u8) {
        self.send(Happened::Quality(local, remote));
    }
}
