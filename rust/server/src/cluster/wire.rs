//! What nodes say to each other through Redis, as JSON.

use duet_protocol::{CallRestatement, ClientMessage, ServerMessage};
use serde::{Deserialize, Serialize};

use crate::hub::ConnId;
use crate::switchboard::DeviceKey;

/// A node to the leader, on the inbox channel: a connection's events, as `hub::Event`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub(super) enum ToLeader {
    Connect {
        device: DeviceKey,
        conn: ConnId,
        calls: Vec<CallRestatement>,
        woken_for: Option<String>,
        welcome: Box<ServerMessage>,
    },
    Message {
        device: DeviceKey,
        conn: ConnId,
        msg: ClientMessage,
    },
    Disconnect {
        device: DeviceKey,
        conn: ConnId,
        /// What the node had for the connection and never wrote.
        unsent: Vec<String>,
    },
}

/// The leader to the node holding a connection, on the channel of the device's uid.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub(super) enum ToNode {
    /// Write this encoded message.
    Deliver { conn: ConnId, text: String },
    /// Write what is queued, then this last word, then close with `code`.
    Close { conn: ConnId, last_word: String, code: u16 },
}

pub(super) fn encode<T: Serialize>(value: &T) -> String {
    // Every field serializes: the derive cannot fail on these types.
    serde_json::to_string(value).unwrap_or_default()
}
