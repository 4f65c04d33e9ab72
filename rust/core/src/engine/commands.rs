//! What the app-facing handles ask of the engine. Each is a message to the one task that
//! owns the calls; the handles answer the app at once from their snapshot, and the engine
//! does the rest in order.

use std::sync::{Arc, Weak};

use duet_protocol::CallOptions as WireOptions;
use tokio::sync::{oneshot, watch};

use super::views::ConversationView;
use crate::conversation::Conversation;
use crate::lifecycle::ConvId;
use crate::peer::CallStats;
use crate::streams::LocalStream;

pub(crate) enum Command {
    /// Place a call (hanging up any call under way). The handle already checked the
    /// arguments and made the conversation.
    Call(Box<NewCall>),
    Accept {
        conv: ConvId,
        local: Arc<LocalStream>,
    },
    Reject {
        conv: ConvId,
    },
    /// Cancel while it rings, or hang up.
    Close {
        conv: ConvId,
    },
    /// The app let go of the conversation: hang it up if it is live, and forget it.
    Release {
        conv: ConvId,
    },
    Stats {
        conv: ConvId,
        reply: oneshot::Sender<Option<CallStats>>,
    },
    UpdateToken(String),
    /// The device's network changed: restart ICE on every call under way.
    NetworkChanged,
    /// `register_push` or `unregister_push`, answered once the server has kept it.
    Push {
        msg: duet_protocol::ClientMessage,
        reply: oneshot::Sender<Result<(), super::push::PushError>>,
    },
    /// Hang up every call, close the link, and end.
    Shutdown,
}

pub(crate) struct NewCall {
    pub conv: ConvId,
    pub to: String,
    pub data: Option<String>,
    pub options: WireOptions,
    pub local: Arc<LocalStream>,
    pub conversation: Weak<Conversation>,
    pub view: watch::Sender<ConversationView>,
}
