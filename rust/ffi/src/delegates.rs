//! The app's delegates and sinks (foreign traits), and the adapters that let duet-core call
//! them: each converts duet-core's values into this crate's and calls the app.
//!
//! No method returns a `Result`, as in the seeds' API: these are notifications, and there is
//! nothing the engine could do with an app's error. A foreign exception (Kotlin) surfaces
//! in Rust as a panic; duet-core's event thread survives one from a delegate, and the sink
//! adapters below catch one from a sink so that a faulty renderer cannot stop a call's
//! media.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use duet_core as core;

use crate::conversation::Conversation;
use crate::errors::CallError;
use crate::frame::VideoFrame;
use crate::records::{AudioFrame, CallStatus, ConnectionState, EndReason, MediaState};
use crate::streams::RemoteStream;

/// Hears about incoming calls, on the VideoCall's event thread (never the main thread).
#[uniffi::export(foreign)]
pub trait VideoCallDelegate: Send + Sync {
    /// Someone calls. Keep `conversation` and set its delegate to answer it (`accept` or
    /// `reject`); a conversation nobody holds is declined. `data` is the caller's
    /// `CallOptions.data`.
    fn did_receive_call_with_conversation(
        &self,
        conversation: Arc<Conversation>,
        data: Option<String>,
    );

    /// The signaling connection went down (`Reconnecting`), came back (`Connected`), or a
    /// reconnect was refused (`Refused`: e.g. the token expired; give a new one with
    /// `VideoCall.update_token`). A call in progress survives a loss shorter than the
    /// server's grace period (20 s by default). Not called for the initial connect.
    fn did_change_connection_state(&self, state: ConnectionState);

    /// The call whose push woke the app (`ClientConfig.woken_for`) is over for this
    /// device: cancelled, answered or declined on another device, timed out. `reason` is
    /// `None` when the server does not know the call (long over, or lost in a restart).
    /// End the system call screen shown for the push. A woken call that still rings comes
    /// to `did_receive_call_with_conversation` instead.
    fn did_end_woken_call(&self, call_id: String, reason: Option<EndReason>);
}

/// What happens to a conversation. Called on the VideoCall's event thread, in order. Events
/// that came before the delegate was set are delivered once it is. A delegate that falls
/// behind is not handed stale states: of the remote media and network quality changes,
/// only the newest of each waits for it (every other event does).
///
/// The conversation holds its delegate strongly: a delegate that holds its conversation
/// makes a cycle, which lasts until the app drops the conversation (e.g. in `did_close`).
#[uniffi::export(foreign)]
pub trait ConversationDelegate: Send + Sync {
    /// The callee answered (caller only). `Rejected`, `Busy` and `Timeout` are followed by
    /// `did_close`.
    fn did_receive_response(&self, status: CallStatus);
    /// The other party's media is here: set a video sink on it, pull or sink its audio.
    fn did_receive_stream(&self, stream: Arc<RemoteStream>);
    /// Something went wrong; `did_close` follows when it ended the call.
    fn did_fail_with_error(&self, error: CallError);
    /// The call ended other than by this side's own `close` or `reject`;
    /// `Conversation.close_reason()` says why.
    fn did_close(&self);
    /// The other party turned its camera or microphone off or on; also heard at the start
    /// of a call whose other party sends only one of them. Until then, assume both. May
    /// come before `did_receive_stream`; `RemoteStream.video_enabled()` says the same.
    fn did_change_remote_media(&self, video_enabled: bool, audio_enabled: bool);
    /// The media connection: `Reconnecting` when this side's path went down or its network
    /// changed (an ICE restart is under way), `PeerReconnecting` when the other party said
    /// its own did, `Connected` once media flows again. Unrecovered for 30 s, the call ends
    /// with `EndReason.NetworkLost`.
    fn did_change_media_state(&self, state: MediaState);
    /// The network quality of each side changed, 0 (nothing gets through) to 5
    /// (excellent): what this side receives (`local`) and what the other side receives
    /// (`remote`). `CallStats` carries the same levels.
    fn did_change_network_quality(&self, local: u8, remote: u8);
}

/// Receives decoded remote video, one frame at a time, on a media thread: a slow sink
/// delays the frames behind it, so copy the frame and hand rendering to another thread.
#[uniffi::export(foreign)]
pub trait VideoSink: Send + Sync {
    /// `frame`'s bytes are at `frame.data_address()` while `frame` is alive (see
    /// `VideoFrame`). Copy what you keep.
    fn on_video_frame(&self, frame: Arc<VideoFrame>);
}

/// Receives decoded remote audio, 10 ms at a time, for apps whose audio output is pushed
/// to. Apps whose output pulls use `RemoteStream.pull_audio` instead.
#[uniffi::export(foreign)]
pub trait AudioSink: Send + Sync {
    fn on_audio_frame(&self, frame: AudioFrame);
}

pub(crate) struct VideoCallDelegateAdapter(pub Arc<dyn VideoCallDelegate>);

impl core::VideoCallDelegate for VideoCallDelegateAdapter {
    fn did_receive_call_with_conversation(
        &self,
        conversation: Arc<core::Conversation>,
        data: Option<String>,
    ) {
        self.0.did_receive_call_with_conversation(Conversation::new(conversation), data);
    }

    fn did_change_connection_state(&self, state: core::ConnectionState) {
        self.0.did_change_connection_state(state.into());
    }

    fn did_end_woken_call(&self, call_id: String, reason: Option<core::EndReason>) {
        self.0.did_end_woken_call(call_id, reason.map(Into::into));
    }
}

pub(crate) struct ConversationDelegateAdapter(pub Arc<dyn ConversationDelegate>);

impl core::ConversationDelegate for ConversationDelegateAdapter {
    fn did_receive_response(&self, status: core::CallStatus) {
        self.0.did_receive_response(status.into());
    }

    fn did_receive_stream(&self, stream: Arc<core::RemoteStream>) {
        self.0.did_receive_stream(RemoteStream::new(stream));
    }

    fn did_fail_with_error(&self, error: core::CallError) {
        self.0.did_fail_with_error(error.into());
    }

    fn did_close(&self) {
        self.0.did_close();
    }

    fn did_change_remote_media(&self, video_enabled: bool, audio_enabled: bool) {
        self.0.did_change_remote_media(video_enabled, audio_enabled);
    }

    fn did_change_media_state(&self, state: core::MediaState) {
        self.0.did_change_media_state(state.into());
    }

    fn did_change_network_quality(&self, local: u8, remote: u8) {
        self.0.did_change_network_quality(local, remote);
    }
}

pub(crate) struct VideoSinkAdapter(pub Arc<dyn VideoSink>);

impl core::VideoSink for VideoSinkAdapter {
    fn on_video_frame(&self, frame: Arc<core::VideoFrame>) {
        // Shared with duet-core, not copied: the app's VideoFrame object keeps it alive.
        let frame = VideoFrame::new(frame);
        if catch_unwind(AssertUnwindSafe(|| self.0.on_video_frame(frame))).is_err() {
            tracing::error!("the app's video sink failed; later frames are still delivered");
        }
    }
}

pub(crate) struct AudioSinkAdapter(pub Arc<dyn AudioSink>);

impl core::AudioSink for AudioSinkAdapter {
    fn on_audio_frame(&self, frame: &core::AudioFrame) {
        let frame = AudioFrame::from(frame);
        if catch_unwind(AssertUnwindSafe(|| self.0.on_audio_frame(frame))).is_err() {
            tracing::error!("the app's audio sink failed; later frames are still delivered");
        }
    }
}
