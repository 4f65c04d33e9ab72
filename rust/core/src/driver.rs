//! The one task per VideoCall that does I/O: it feeds the lifecycle machine what the
//! socket and the clock say, sends what the machine says, keeps the connection alive, and
//! reconnects with backoff when it drops.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use duet_protocol::{ClientMessage, Limits, ServerMessage, TokenBucket};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Interval, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;

use crate::backoff::Backoff;
use crate::client::Client;
use crate::lifecycle::{Output, Welcome};
use crate::peer::MediaEvent;
use crate::signaling::{handshake, ConnectError, ConnectionState, ServerInfo, Socket};
use crate::sync::lock;

#[derive(Debug, Clone)]
pub struct ReconnectPolicy {
    pub initial_delay: Duration,
    pub max_delay: Duration,
    /// How long one connection attempt, up to `welcome`, may take.
    pub attempt_timeout: Duration,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            attempt_timeout: Duration::from_secs(10),
        }
    }
}

struct Connection {
    ws: Socket,
    awaiting_pong: bool,
    nonce: u64,
    /// The server's rate limit, kept on this side too: a message the server would drop
    /// (an invite, a candidate) waits here instead.
    pace: TokenBucket,
}

impl Connection {
    fn new(ws: Socket, limits: &Limits) -> Self {
        let now = Instant::now();
        let mut pace = TokenBucket::for_sender(limits, now);
        pace.try_take(now); // the hello
        Connection { ws, awaiting_pong: false, nonce: 0, pace }
    }

    async fn send(&mut self, msg: &ClientMessage) -> Result<(), ()> {
        let wait = self.pace.time_until_token(Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        self.pace.try_take(Instant::now());
        self.ws.send(Message::Text(duet_protocol::encode(msg).into())).await.map_err(|_| ())
    }
}

type Attempt = Pin<Box<dyn Future<Output = Result<(Socket, ServerInfo), ConnectError>> + Send>>;

// One value of it lives for one turn of the loop; boxing the socket would buy nothing.
#[allow(clippy::large_enum_variant)]
enum Wake {
    Actions,
    Deadline,
    Frame(Option<Result<Message, tokio_tungstenite::tungstenite::Error>>),
    Keepalive,
    RetryDue,
    Media(MediaEvent),
    Attempted(Result<(Socket, ServerInfo), ConnectError>),
}

pub(crate) async fn run(
    client: Arc<Client>,
    ws: Socket,
    info: ServerInfo,
    policy: ReconnectPolicy,
    mut media: mpsc::UnboundedReceiver<MediaEvent>,
) {
    let mut conn = Some(Connection::new(ws, &info.limits));
    let mut keepalive = keepalive_interval(info.keepalive);
    let mut backoff = Backoff::new(policy.initial_delay, policy.max_delay);
    let mut retry_at: Option<tokio::time::Instant> = None;
    let mut attempt: Option<Attempt> = None;

    loop {
        flush_outputs(&client, &mut conn).await;
        if client.is_stopping() {
            // `stop` may have come after the flush above: send its hang-ups before closing.
            flush_outputs(&client, &mut conn).await;
            if let Some(mut c) = conn.take() {
                let _ = c.ws.close(None).await;
            }
            return;
        }
        if conn.is_none() && attempt.is_none() && retry_at.is_none() {
            lock(&client.machine).on_disconnected(Instant::now());
            client.set_connection_state(ConnectionState::Reconnecting);
            retry_at = Some(tokio::time::Instant::now() + backoff.next_delay());
        }
        let deadline = lock(&client.machine).poll_timeout();
        let connected = conn.is_some();

        let wake = tokio::select! {
            _ = client.wake.notified() => Wake::Actions,
            _ = sleep_until_opt(deadline) => Wake::Deadline,
            frame = next_frame(&mut conn) => Wake::Frame(frame),
            _ = keepalive.tick(), if connected => Wake::Keepalive,
            _ = sleep_until_tokio(retry_at), if attempt.is_none() && retry_at.is_some() => Wake::RetryDue,
            result = poll_attempt(&mut attempt) => Wake::Attempted(result),
            Some(event) = media.recv() => Wake::Media(event),
        };

        match wake {
            Wake::Actions => {}
            Wake::Media(event) => client.handle_media_event(event),
            Wake::Deadline => lock(&client.machine).handle_timeout(Instant::now()),
            Wake::Frame(Some(Ok(Message::Text(text)))) => {
                if let Some(c) = conn.as_mut() {
                    c.awaiting_pong = false;
                }
                on_text(&client, &text);
            }
            Wake::Frame(Some(Ok(Message::Close(_)) | Err(_)) | None) => {
                tracing::info!("signaling connection lost; reconnecting");
                conn = None;
            }
            Wake::Frame(Some(Ok(_))) => {
                if let Some(c) = conn.as_mut() {
                    c.awaiting_pong = false;
                }
            }
            Wake::Keepalive => {
                let c = conn.as_mut().expect("keepalive ticks only while connected");
                if c.awaiting_pong {
                    tracing::info!("no answer to keepalive; reconnecting");
                    conn = None;
                } else {
                    c.nonce += 1;
                    c.awaiting_pong = true;
                    let ping = ClientMessage::Ping { nonce: c.nonce };
                    if c.send(&ping).await.is_err() {
                        conn = None;
                    }
                }
            }
            Wake::RetryDue => {
                retry_at = None;
                let url = client.url.clone();
                let hello = client.hello(Instant::now());
                let timeout = policy.attempt_timeout;
                attempt = Some(Box::pin(async move { handshake(&url, &hello, timeout).await }));
            }
            Wake::Attempted(result) => {
                attempt = None;
                match result {
                    Ok((ws, info)) => {
                        tracing::info!("signaling reconnected");
                        backoff.reset();
                        conn = Some(Connection::new(ws, &info.limits));
                        keepalive = keepalive_interval(info.keepalive);
                        lock(&client.machine).on_connected(Instant::now(), &welcome_of(&info));
                        *lock(&client.info) = info;
                        client.set_connection_state(ConnectionState::Connected);
                    }
                    Err(e) => {
                        // A refused token stays refused until the app gives a new one
                        // (`VideoCall::update_token`); retrying slowly lets it.
                        tracing::warn!("reconnect failed: {e}");
                        if let ConnectError::Refused { code, message } = e {
                            client.set_connection_state(ConnectionState::Refused { code, message });
                        }
                        retry_at = Some(tokio::time::Instant::now() + backoff.next_delay());
                    }
                }
            }
        }
    }
}

pub(crate) fn welcome_of(info: &ServerInfo) -> Welcome {
    Welcome {
        uid: info.uid.clone(),
        ring_timeout: info.ring_timeout,
        grace: info.grace,
        limits: info.limits,
    }
}

fn on_text(client: &Client, text: &str) {
    let msg = match duet_protocol::decode_server(text) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!("ignoring a server message we cannot read: {e}");
            return;
        }
    };
    match &msg {
        ServerMessage::Pong { .. } => return,
        ServerMessage::Error { code, message, call_id } => {
            tracing::warn!(?code, ?call_id, "server error: {message}");
        }
        _ => tracing::debug!(?msg, "from server"),
    }
    lock(&client.machine).on_message(Instant::now(), msg);
}

/// Sends what the machine wants sent and hands everything else to the client, holding the
/// machine's lock only to drain it.
async fn flush_outputs(client: &Client, conn: &mut Option<Connection>) {
    loop {
        let outputs: Vec<Output> = {
            let mut m = lock(&client.machine);
            std::iter::from_fn(|| m.poll_output()).collect()
        };
        if outputs.is_empty() {
            return;
        }
        for out in outputs {
            match out {
                Output::Send(msg) => {
                    tracing::debug!(?msg, "to server");
                    let sent = match conn.as_mut() {
                        Some(c) => c.send(&msg).await.is_ok(),
                        None => false,
                    };
                    if !sent {
                        *conn = None;
                        lock(&client.machine).requeue(msg);
                    }
                }
                other => client.handle_output(other),
            }
        }
    }
}

async fn next_frame(
    conn: &mut Option<Connection>,
) -> Option<Result<Message, tokio_tungstenite::tungstenite::Error>> {
    match conn {
        Some(c) => c.ws.next().await,
        None => std::future::pending().await,
    }
}

/// A ping every `period`, the first one `period` from now (the handshake just proved the
/// connection alive).
fn keepalive_interval(period: Duration) -> Interval {
    let mut i = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    i.set_missed_tick_behavior(MissedTickBehavior::Delay);
    i
}

async fn poll_attempt(attempt: &mut Option<Attempt>) -> Result<(Socket, ServerInfo), ConnectError> {
    match attempt {
        Some(a) => a.await,
        None => std::future::pending().await,
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    sleep_until_tokio(deadline.map(tokio::time::Instant::from_std)).await
}

async fn sleep_until_tokio(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => sleep_until(d).await,
        None => std::future::pending().await,
    }
}
