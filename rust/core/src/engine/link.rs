//! The engine's signaling link: one WebSocket, paced to the server's rate limit, kept
//! alive with pings, and closed cleanly.

use std::time::{Duration, Instant};

use duet_protocol::{ClientMessage, Limits, TokenBucket};
use futures_util::{SinkExt, StreamExt};
use tokio::time::{Interval, MissedTickBehavior};
use tokio_tungstenite::tungstenite::{self, Message};

use crate::signaling::Socket;

/// How long a closing link waits for the server's close frame. Reading until it comes
/// means the server's last frames are consumed, so the socket ends with FIN rather than a
/// reset, and what was sent just before the close (a reject, a hang-up) is read by the
/// server, not destroyed with the connection.
const CLOSE_LINGER: Duration = Duration::from_secs(1);

/// During a call the link is pinged this often, whatever the server's `keepalive_ms`.
const CALL_PING_PERIOD: Duration = Duration::from_secs(1);
/// During a call, how long the link may stay silent, a ping unanswered, before it is given
/// up. A call's own signaling (a hang-up, the peer's candidates, an ICE restart) must not
/// wait out the idle keepalive: at the default 15 s a dead link went unnoticed for 15–30 s
/// (issue 11). Four pings' worth, so that TCP retransmitting a pong on a lossy link is not
/// taken for a dead one.
const CALL_SILENCE: Duration = Duration::from_secs(4);

pub(super) struct Link {
    ws: Socket,
    awaiting_pong: bool,
    /// When the server was last heard from.
    last_heard: tokio::time::Instant,
    nonce: u64,
    /// The server's rate limit, kept on this side too: a message the server would drop
    /// (an invite, a candidate) waits here instead.
    pace: TokenBucket,
}

/// The link failed under a send: it is gone.
#[derive(Debug)]
pub(super) struct LinkLost;

impl Link {
    pub(super) fn new(ws: Socket, limits: &Limits) -> Self {
        let now = Instant::now();
        let mut pace = TokenBucket::for_sender(limits, now);
        pace.try_take(now); // the hello
        Link { ws, awaiting_pong: false, last_heard: tokio::time::Instant::now(), nonce: 0, pace }
    }

    pub(super) async fn send(&mut self, msg: &ClientMessage) -> Result<(), LinkLost> {
        let wait = self.pace.time_until_token(Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        self.pace.try_take(Instant::now());
        let frame = Message::Text(duet_protocol::encode(msg).into());
        self.ws.send(frame).await.map_err(|_| LinkLost)
    }

    /// The next frame from the server; anything heard proves the link alive.
    pub(super) async fn next_frame(&mut self) -> Option<Result<Message, tungstenite::Error>> {
        let frame = self.ws.next().await;
        self.awaiting_pong = false;
        self.last_heard = tokio::time::Instant::now();
        frame
    }

    /// On a keepalive tick: pings, or gives up on a link that has not answered the last
    /// ping and has been silent for `silence_limit`.
    pub(super) async fn keepalive(&mut self, silence_limit: Duration) -> Result<(), LinkLost> {
        if self.awaiting_pong {
            let silent = self.last_heard.elapsed();
            if silent < silence_limit {
                return Ok(());
            }
            tracing::info!("no answer to keepalive in {silent:?}; reconnecting");
            return Err(LinkLost);
        }
        self.nonce += 1;
        self.awaiting_pong = true;
        self.send(&ClientMessage::Ping { nonce: self.nonce }).await
    }

    /// Closes the WebSocket and lingers for the server's close frame (see `CLOSE_LINGER`).
    pub(super) async fn close(mut self) {
        if self.ws.close(None).await.is_err() {
            return;
        }
        let _ = tokio::time::timeout(CLOSE_LINGER, async {
            while let Some(Ok(frame)) = self.ws.next().await {
                if matches!(frame, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }
}

/// When the link is pinged and when it is given up: at the server's `keepalive_ms` while
/// idle, more often during a call (see `CALL_SILENCE`).
pub(super) struct Keepalive {
    idle: Duration,
    in_call: bool,
    ticks: Interval,
}

impl Keepalive {
    pub(super) fn new(idle: Duration) -> Self {
        Keepalive { idle, in_call: false, ticks: keepalive_interval(idle) }
    }

    /// Switches to the call schedule or back; the next ping is one new period from now.
    pub(super) fn set_in_call(&mut self, in_call: bool) {
        if in_call != self.in_call {
            self.in_call = in_call;
            self.ticks = keepalive_interval(self.period());
        }
    }

    fn period(&self) -> Duration {
        if self.in_call {
            self.idle.min(CALL_PING_PERIOD)
        } else {
            self.idle
        }
    }

    /// How long a link may stay silent with a ping unanswered (see `Link::keepalive`).
    pub(super) fn silence_limit(&self) -> Duration {
        if self.in_call {
            CALL_SILENCE.min(self.idle).max(self.period())
        } else {
            self.idle
        }
    }

    pub(super) async fn tick(&mut self) {
        self.ticks.tick().await;
    }
}

/// A ping every `period`, the first one `period` from now (the handshake just proved the
/// connection alive).
fn keepalive_interval(period: Duration) -> Interval {
    let mut i = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    i.set_missed_tick_behavior(MissedTickBehavior::Delay);
    i
}
