//! One task per WebSocket: the `hello` handshake, size and rate limits, keepalive, and the
//! relay between the socket and the hub. Everything about calls is the switchboard's; this
//! module only decides what a frame is and whether it may pass.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use duet_protocol::{
    check_device_id, decode_client, encode, CallRestatement, ClientMessage, ErrorCode,
    ServerMessage, PROTOCOL_VERSION,
};
use tokio::sync::{mpsc, watch};
use tokio::time::{sleep_until, timeout, Instant};
use tokio_tungstenite::tungstenite;

use crate::hub::{Event, Outbound, OUTBOX_CAPACITY};
use crate::rate_limit::{Admission, RateLimiter};
use crate::server::Shared;
use crate::switchboard::DeviceKey;
use crate::token::{self, TokenError};

/// WebSocket close codes (RFC 6455).
const CLOSE_NORMAL: u16 = 1000;
const CLOSE_GOING_AWAY: u16 = 1001;
const CLOSE_POLICY: u16 = 1008;
const CLOSE_TOO_BIG: u16 = 1009;

/// How long a closing connection waits for the client's close frame. Reading until it comes
/// means the client's last frames are consumed, so the socket ends with FIN rather than a
/// reset that could destroy the error message sent just before.
const CLOSE_LINGER: Duration = Duration::from_secs(1);

pub(crate) async fn run(socket: WebSocket, shared: Arc<Shared>) {
    let mut conn = Connection::new(socket, &shared);
    if let Some((device, calls)) = conn.handshake().await {
        conn.serve(device, calls).await;
    }
}

struct Connection {
    socket: WebSocket,
    shared: Arc<Shared>,
    limiter: RateLimiter,
    shutdown: watch::Receiver<bool>,
    last_heard: Instant,
}

/// What one frame from the client amounts to.
enum Inbound {
    Message(ClientMessage),
    /// Answer with this error; the connection stays open.
    Refuse(ServerMessage),
    /// Answer with this error and close.
    Fatal(ServerMessage),
    /// Close with this code, nothing said (the frame was too large to read).
    Abort(u16),
    /// A WebSocket-level ping or pong: it shows the client is alive, nothing more.
    Nothing,
    /// The client closed, or the socket failed.
    Gone,
}

impl Connection {
    fn new(socket: WebSocket, shared: &Arc<Shared>) -> Self {
        let now = Instant::now();
        Connection {
            socket,
            limiter: RateLimiter::new(&shared.config.limits, now.into_std()),
            shutdown: shared.shutdown.clone(),
            shared: Arc::clone(shared),
            last_heard: now,
        }
    }

    /// Waits for a valid `hello`. Frames that are not JSON are answered `malformed` and the
    /// wait goes on (to its deadline); any other message closes the connection.
    async fn handshake(&mut self) -> Option<(DeviceKey, Vec<CallRestatement>)> {
        let deadline = Instant::now() + self.shared.config.hello_timeout;
        loop {
            let frame = tokio::select! {
                frame = self.socket.recv() => frame,
                () = sleep_until(deadline) => {
                    let msg =
                        ServerMessage::error(ErrorCode::HelloRequired, "no hello in time", None);
                    self.close_with(Some(msg), CLOSE_POLICY).await;
                    return None;
                }
                _ = self.shutdown.changed() => return None,
            };
            match self.inbound(frame) {
                Inbound::Message(ClientMessage::Hello { v, token, device_id, calls }) => {
                    return match self.authenticate(v, &token, &device_id) {
                        Ok(device) => Some((device, calls)),
                        Err((code, message)) => {
                            self.close_with(
                                Some(ServerMessage::error(code, message, None)),
                                CLOSE_POLICY,
                            )
                            .await;
                            None
                        }
                    };
                }
                Inbound::Message(_) => {
                    let msg = ServerMessage::error(
                        ErrorCode::HelloRequired,
                        "the first message must be hello",
                        None,
                    );
                    self.close_with(Some(msg), CLOSE_POLICY).await;
                    return None;
                }
                Inbound::Refuse(msg) => {
                    if !self.send(&msg).await {
                        return None;
                    }
                }
                Inbound::Fatal(msg) => {
                    self.close_with(Some(msg), CLOSE_POLICY).await;
                    return None;
                }
                Inbound::Abort(code) => {
                    self.close_with(None, code).await;
                    return None;
                }
                Inbound::Nothing => {}
                Inbound::Gone => return None,
            }
        }
    }

    /// The device a `hello` speaks for, or why it is refused.
    fn authenticate(
        &self,
        v: u32,
        token: &str,
        device_id: &str,
    ) -> Result<DeviceKey, (ErrorCode, String)> {
        if v != PROTOCOL_VERSION {
            return Err((
                ErrorCode::UnsupportedVersion,
                format!("this server speaks protocol version {PROTOCOL_VERSION}"),
            ));
        }
        let claims = token::verify(&self.shared.secret, token, token::unix_now()).map_err(|e| {
            let code = if e == TokenError::Expired {
                ErrorCode::TokenExpired
            } else {
                ErrorCode::Unauthorized
            };
            (code, e.to_string())
        })?;
        check_device_id(device_id).map_err(|e| (ErrorCode::InvalidRequest, e))?;
        Ok(DeviceKey { uid: claims.sub, device_id: device_id.to_owned() })
    }

    async fn serve(mut self, device: DeviceKey, calls: Vec<CallRestatement>) {
        let conn = self.shared.next_conn_id();
        let (outbox, mut inbox) = mpsc::channel(OUTBOX_CAPACITY);
        tracing::debug!(?device, conn, "connected");
        let welcome = self.shared.welcome(&device);
        if !self.send(&welcome).await {
            return;
        }
        let hello = Event::Connect { device: device.clone(), conn, calls, outbox };
        if self.shared.hub.send(hello).await.is_err() {
            return;
        }
        let silence = self.shared.config.keepalive.saturating_mul(3);
        loop {
            tokio::select! {
                out = inbox.recv() => match out {
                    Some(Outbound::Message(msg)) => {
                        if !self.send(&msg).await {
                            break;
                        }
                    }
                    Some(Outbound::Close(msg)) => {
                        self.close_with(Some(msg), CLOSE_NORMAL).await;
                        break;
                    }
                    // The hub gave up on this connection (it could not keep up), or the
                    // server is shutting down, which drops connections without a goodbye.
                    None => {
                        if !*self.shutdown.borrow() {
                            self.close_with(None, CLOSE_GOING_AWAY).await;
                        }
                        break;
                    }
                },
                frame = self.socket.recv() => {
                    self.last_heard = Instant::now();
                    match self.inbound(frame) {
                        Inbound::Message(ClientMessage::Ping { nonce }) => {
                            if !self.send(&ServerMessage::Pong { nonce }).await {
                                break;
                            }
                        }
                        Inbound::Message(ClientMessage::Hello { .. }) => {
                            let msg = ServerMessage::error(
                                ErrorCode::InvalidState,
                                "this connection already said hello",
                                None,
                            );
                            if !self.send(&msg).await {
                                break;
                            }
                        }
                        Inbound::Message(msg) => {
                            let event = Event::Message { device: device.clone(), conn, msg };
                            if self.shared.hub.send(event).await.is_err() {
                                break;
                            }
                        }
                        Inbound::Refuse(msg) => {
                            if !self.send(&msg).await {
                                break;
                            }
                        }
                        Inbound::Fatal(msg) => {
                            self.close_with(Some(msg), CLOSE_POLICY).await;
                            break;
                        }
                        Inbound::Abort(code) => {
                            self.close_with(None, code).await;
                            break;
                        }
                        Inbound::Nothing => {}
                        Inbound::Gone => break,
                    }
                }
                () = sleep_until(self.last_heard + silence) => {
                    tracing::debug!(?device, conn, "silent too long");
                    self.close_with(None, CLOSE_GOING_AWAY).await;
                    break;
                }
                // A server shutdown drops the connection like a crash would: no goodbye.
                _ = self.shutdown.changed() => return,
            }
        }
        tracing::debug!(?device, conn, "disconnected");
        let _ = self.shared.hub.send(Event::Disconnect { device, conn, outbox: inbox }).await;
    }

    /// Classifies a frame: rate limit first (every frame counts), then size, then parsing.
    fn inbound(&mut self, frame: Option<Result<Message, axum::Error>>) -> Inbound {
        let text = match frame {
            Some(Ok(Message::Text(text))) => Some(text),
            Some(Ok(Message::Binary(_))) => None,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => return Inbound::Nothing,
            Some(Ok(Message::Close(_))) | None => return Inbound::Gone,
            Some(Err(e)) => {
                return if is_too_large(e) { Inbound::Abort(CLOSE_TOO_BIG) } else { Inbound::Gone };
            }
        };
        let limits = &self.shared.config.limits;
        let too_large = text.as_ref().is_some_and(|t| t.len() > limits.max_message_bytes);
        // Parsed before the rate check only to recognise pings, which must get through.
        let parsed = text.as_ref().filter(|_| !too_large).map(|t| decode_client(t.as_str()));
        let call_id = parsed
            .as_ref()
            .and_then(|p| p.as_ref().ok())
            .and_then(|m| m.call_id())
            .map(str::to_owned);
        let is_ping = matches!(parsed, Some(Ok(ClientMessage::Ping { .. })));

        let error = |code, message: String| ServerMessage::Error {
            code,
            message,
            call_id: call_id.clone(),
        };
        match self.limiter.admit(Instant::now().into_std(), is_ping) {
            Admission::Admit => {}
            Admission::Drop => {
                return Inbound::Refuse(error(ErrorCode::RateLimited, rate_message(limits)))
            }
            Admission::Close => {
                return Inbound::Fatal(error(ErrorCode::RateLimited, rate_message(limits)))
            }
        }
        match parsed {
            Some(Ok(msg)) => Inbound::Message(msg),
            Some(Err(e)) => Inbound::Refuse(error(ErrorCode::Malformed, e.to_string())),
            None if too_large => Inbound::Refuse(error(
                ErrorCode::MessageTooLarge,
                format!("messages are limited to {} bytes", limits.max_message_bytes),
            )),
            None => Inbound::Refuse(error(
                ErrorCode::Malformed,
                "messages are JSON in text frames".into(),
            )),
        }
    }

    /// Writes one message; false if the socket is done for.
    async fn send(&mut self, msg: &ServerMessage) -> bool {
        // A client that stops reading must not hold this task forever.
        let write_timeout = self.shared.config.keepalive.saturating_mul(3);
        let frame = Message::Text(encode(msg).into());
        matches!(timeout(write_timeout, self.socket.send(frame)).await, Ok(Ok(())))
    }

    /// Says `last_word` (if any), closes with `code`, and lingers for the client's close.
    async fn close_with(&mut self, last_word: Option<ServerMessage>, code: u16) {
        if let Some(msg) = last_word {
            if !self.send(&msg).await {
                return;
            }
        }
        let close = Message::Close(Some(CloseFrame { code, reason: "".into() }));
        if !matches!(timeout(CLOSE_LINGER, self.socket.send(close)).await, Ok(Ok(()))) {
            return;
        }
        let _ = timeout(CLOSE_LINGER, async {
            while let Some(Ok(frame)) = self.socket.recv().await {
                if matches!(frame, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }
}

fn rate_message(limits: &duet_protocol::Limits) -> String {
    format!(
        "over {} messages a second (burst {}); message dropped",
        limits.messages_per_second, limits.message_burst
    )
}

/// Whether a read failed because the frame was over the hard size limit.
fn is_too_large(e: axum::Error) -> bool {
    e.into_inner()
        .downcast::<tungstenite::Error>()
        .is_ok_and(|e| matches!(*e, tungstenite::Error::Capacity(_)))
}
