//! One task per WebSocket: the `hello` handshake, size and rate limits, keepalive, and the
//! relay between the socket and the hub. Everything about calls is the switchboard's; this
//! module only decides what a frame is and whether it may pass.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use duet_protocol::{
    check_device_id, check_push_token, decode_client, encode, CallRestatement, ClientMessage,
    ErrorCode, PushToken, ServerMessage, PROTOCOL_VERSION,
};
use tokio::sync::watch;
use tokio::time::{sleep_until, timeout, Instant};
use tokio_tungstenite::tungstenite;

use crate::drain::{RunState, CLOSE_DRAINING, DRAINING_REASON};
use crate::gate::Ticket;
use crate::hub::{Event, CLOSE_POLICY};
use crate::outbox::{Outbound, Outbox};
use crate::rate_limit::{Admission, RateLimiter};
use crate::refusals::{self, Limit};
use crate::shared::Shared;
use crate::switchboard::DeviceKey;
use crate::token::{self, TokenError};

/// WebSocket close codes (RFC 6455), beside the hub's.
const CLOSE_GOING_AWAY: u16 = 1001;
const CLOSE_INVALID_DATA: u16 = 1007;
const CLOSE_TOO_BIG: u16 = 1009;

/// How long a closing connection waits for the client's close frame. Reading until it comes
/// means the client's last frames are consumed, so the socket ends with FIN rather than a
/// reset that could destroy the error message sent just before.
const CLOSE_LINGER: Duration = Duration::from_secs(1);

/// Serves one WebSocket; `ticket` holds its places in the gate until it ends.
pub(crate) async fn run(socket: WebSocket, shared: Arc<Shared>, ticket: Arc<Ticket>) {
    let _open = shared.open.open();
    shared.metrics.connection_opened();
    let mut conn = Connection::new(socket, &shared);
    // Upgraded after the drain began (its request was read before the listener closed).
    if *conn.state.borrow() != RunState::Running {
        return conn.leave().await;
    }
    if let Some(sign_in) = conn.handshake(&ticket).await {
        ticket.signed_in();
        conn.serve(sign_in).await;
    }
}

/// What a valid `hello` said.
struct SignIn {
    device: DeviceKey,
    calls: Vec<CallRestatement>,
    woken_for: Option<String>,
}

struct Connection {
    socket: WebSocket,
    shared: Arc<Shared>,
    limiter: RateLimiter,
    state: watch::Receiver<RunState>,
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
            state: shared.state.clone(),
            shared: Arc::clone(shared),
            last_heard: now,
        }
    }

    /// Waits for a valid `hello`. Frames that are not JSON are answered `malformed` and the
    /// wait goes on (to its deadline); any other message closes the connection.
    async fn handshake(&mut self, ticket: &Ticket) -> Option<SignIn> {
        let deadline = Instant::now() + self.shared.config.hello_timeout;
        loop {
            let frame = tokio::select! {
                frame = self.socket.recv() => frame,
                () = sleep_until(deadline) => {
                    refusals::record(Limit::HelloTimeout, self.shared.config.hello_timeout, &ticket.ip());
                    let msg =
                        ServerMessage::error(ErrorCode::HelloRequired, "no hello in time", None);
                    self.close_with(Some(msg), CLOSE_POLICY).await;
                    return None;
                }
                _ = self.state.changed() => {
                    self.leave().await;
                    return None;
                }
            };
            match self.inbound(frame) {
                Inbound::Message(ClientMessage::Hello {
                    v,
                    token,
                    device_id,
                    calls,
                    woken_for,
                }) => {
                    return match self.authenticate(v, &token, &device_id) {
                        Ok(device) => Some(SignIn { device, calls, woken_for }),
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
        check_device_id(device_id).map_err(|e| (ErrorCode::InvalidRequest, e.to_string()))?;
        Ok(DeviceKey { uid: claims.sub, device_id: device_id.to_owned() })
    }

    async fn serve(mut self, sign_in: SignIn) {
        let SignIn { device, calls, woken_for } = sign_in;
        let conn = self.shared.next_conn_id();
        let outbox = Arc::new(Outbox::new(self.shared.config.connections.outbound_queue_bytes));
        tracing::debug!(?device, conn, "connected");
        let welcome = Box::new(self.shared.welcome(&device));
        let hello = Event::Connect {
            device: device.clone(),
            conn,
            calls,
            woken_for,
            welcome,
            outbox: outbox.clone(),
        };
        if self.shared.hub.send(hello).await.is_err() {
            return;
        }
        let silence = self.shared.config.keepalive.saturating_mul(3);
        loop {
            tokio::select! {
                out = outbox.pop() => match out {
                    Outbound::Text(text) => {
                        if !self.send_text(text).await {
                            break;
                        }
                    }
                    Outbound::Close { last_word, code } => {
                        self.close_with_text(Some(last_word), code).await;
                        break;
                    }
                    Outbound::Reconnect => {
                        self.shared.metrics.drain_close_sent();
                        self.close_frame(CLOSE_DRAINING, DRAINING_REASON).await;
                        break;
                    }
                },
                frame = self.socket.recv() => {
                    self.last_heard = Instant::now();
                    if !self.on_frame(&device, conn, frame).await {
                        break;
                    }
                }
                () = sleep_until(self.last_heard + silence) => {
                    tracing::debug!(?device, conn, "silent too long");
                    self.close_with(None, CLOSE_GOING_AWAY).await;
                    break;
                }
                _ = self.state.changed() => {
                    // A server shutdown drops the connection like a crash would: no goodbye,
                    // and nothing for the hub, which is gone too.
                    if *self.state.borrow() == RunState::Stopped {
                        return;
                    }
                    self.write_queued(&outbox).await;
                    self.leave().await;
                    break;
                }
            }
        }
        tracing::debug!(?device, conn, "disconnected");
        let gone = Event::Disconnect { device, conn, outbox, unsent: Vec::new() };
        let _ = self.shared.hub.send(gone).await;
    }

    /// Handles one frame of a signed-in connection; false once the connection is done.
    async fn on_frame(
        &mut self,
        device: &DeviceKey,
        conn: u64,
        frame: Option<Result<Message, axum::Error>>,
    ) -> bool {
        match self.inbound(frame) {
            Inbound::Message(ClientMessage::Ping { nonce }) => {
                self.send(&ServerMessage::Pong { nonce }).await
            }
            Inbound::Message(ClientMessage::Hello { .. }) => {
                let msg = ServerMessage::error(
                    ErrorCode::InvalidState,
                    "this connection already said hello",
                    None,
                );
                self.send(&msg).await
            }
            Inbound::Message(ClientMessage::RegisterPush { push }) => {
                let answer = register_push(&self.shared, device, Some(push)).await;
                self.send(&answer).await
            }
            Inbound::Message(ClientMessage::UnregisterPush) => {
                let answer = register_push(&self.shared, device, None).await;
                self.send(&answer).await
            }
            Inbound::Message(msg) => {
                let event = Event::Message { device: device.clone(), conn, msg };
                self.shared.hub.send(event).await.is_ok()
            }
            Inbound::Refuse(msg) => self.send(&msg).await,
            Inbound::Fatal(msg) => {
                self.close_with(Some(msg), CLOSE_POLICY).await;
                false
            }
            Inbound::Abort(code) => {
                self.close_with(None, code).await;
                false
            }
            Inbound::Nothing => true,
            Inbound::Gone => false,
        }
    }

    /// Writes what the hub had queued for this connection by now, so that a drain loses
    /// none of it (what comes later goes back to the hub with the outbox, as on any drop).
    async fn write_queued(&mut self, outbox: &Outbox) {
        while let Some(Outbound::Text(text)) = outbox.try_pop() {
            if !self.send_text(text).await {
                return;
            }
        }
    }

    /// The server is draining (or stopping): the client is told to reconnect elsewhere
    /// with the documented close, unless the server is already gone.
    async fn leave(&mut self) {
        if *self.state.borrow() == RunState::Draining {
            self.shared.metrics.drain_close_sent();
            self.close_frame(CLOSE_DRAINING, DRAINING_REASON).await;
        }
    }

    /// Classifies a frame: rate limit first (every frame counts), then size, then parsing.
    fn inbound(&mut self, frame: Option<Result<Message, axum::Error>>) -> Inbound {
        let text = match frame {
            Some(Ok(Message::Text(text))) => Some(text),
            Some(Ok(Message::Binary(_))) => None,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => return Inbound::Nothing,
            Some(Ok(Message::Close(_))) | None => return Inbound::Gone,
            Some(Err(e)) => return abort_for(e),
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
            Some(Ok(msg)) => {
                self.shared.metrics.received(&msg);
                Inbound::Message(msg)
            }
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
        self.shared.metrics.sent(msg);
        self.send_text(encode(msg)).await
    }

    async fn send_text(&mut self, text: String) -> bool {
        // A client that stops reading must not hold this task forever.
        let write_timeout = self.shared.config.keepalive.saturating_mul(3);
        let frame = Message::Text(text.into());
        matches!(timeout(write_timeout, self.socket.send(frame)).await, Ok(Ok(())))
    }

    /// Says `last_word` (if any), closes with `code`, and lingers for the client's close.
    async fn close_with(&mut self, last_word: Option<ServerMessage>, code: u16) {
        if let Some(msg) = &last_word {
            self.shared.metrics.sent(msg);
        }
        self.close_with_text(last_word.map(|m| encode(&m)), code).await;
    }

    async fn close_with_text(&mut self, last_word: Option<String>, code: u16) {
        if let Some(text) = last_word {
            if !self.send_text(text).await {
                return;
            }
        }
        self.close_frame(code, "").await;
    }

    /// Sends a close frame and lingers for the client's (see `CLOSE_LINGER`).
    async fn close_frame(&mut self, code: u16, reason: &str) {
        let close = Message::Close(Some(CloseFrame { code, reason: reason.into() }));
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

/// Keeps (or with `None` forgets) the device's push token, and says how that went.
/// The store is the push module's, not the hub's: registering never waits on calls.
async fn register_push(
    shared: &Shared,
    device: &DeviceKey,
    push: Option<PushToken>,
) -> ServerMessage {
    let (uid, device_id) = (device.uid.clone(), device.device_id.clone());
    let stored = match push {
        Some(push) => {
            if let Err(e) = check_push_token(&push) {
                return ServerMessage::error(ErrorCode::InvalidRequest, e.to_string(), None);
            }
            shared.push.register(uid, device_id, push).await.map(|()| ServerMessage::PushRegistered)
        }
        None => {
            shared.push.unregister(uid, device_id).await.map(|()| ServerMessage::PushUnregistered)
        }
    };
    stored.unwrap_or_else(|e| {
        tracing::warn!(?device, "push registration not kept: {e}");
        ServerMessage::error(
            ErrorCode::InvalidState,
            format!("push registration not kept: {e}"),
            None,
        )
    })
}

fn rate_message(limits: &duet_protocol::Limits) -> String {
    format!(
        "over {} messages a second (burst {}); message dropped",
        limits.messages_per_second, limits.message_burst
    )
}

/// What a failed read calls for: a close saying why, when the client broke a rule (a frame
/// over the hard size limit, a text frame that is not UTF-8), else nothing (it is gone).
fn abort_for(e: axum::Error) -> Inbound {
    match e.into_inner().downcast::<tungstenite::Error>().map(|e| *e) {
        Ok(tungstenite::Error::Capacity(_)) => Inbound::Abort(CLOSE_TOO_BIG),
        Ok(tungstenite::Error::Utf8(_)) => Inbound::Abort(CLOSE_INVALID_DATA),
        _ => Inbound::Gone,
    }
}
