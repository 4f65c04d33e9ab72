//! Getting the signaling link back: backoff between attempts, one attempt at a time, and
//! what the engine does when the link goes and comes back.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use duet_protocol::ClientMessage;

use super::link::{Keepalive, Link};
use super::{welcome_of, Engine};
use crate::backoff::Backoff;
use crate::signaling::{handshake, ConnectError, ConnectionState, Endpoint, ServerInfo, Socket};

/// How a client reconnects when its signaling connection drops.
#[derive(Debug, Clone)]
pub struct ReconnectPolicy {
    pub initial_delay: Duration,
    pub max_delay: Duration,
    /// How long one connection attempt, up to `welcome`, may take.
    pub attempt_timeout: Duration,
    /// How long a call's media connection may stay down, ICE restarts and all, before the
    /// call ends with `EndReason::NetworkLost`.
    pub media_timeout: Duration,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            attempt_timeout: Duration::from_secs(10),
            media_timeout: Duration::from_secs(30),
        }
    }
}

/// What the reconnect machinery is ready with.
pub(super) enum Step {
    RetryDue,
    Attempted(Box<Result<(Socket, ServerInfo), ConnectError>>),
}

type Attempt = Pin<Box<dyn Future<Output = Result<(Socket, ServerInfo), ConnectError>> + Send>>;

pub(super) struct Reconnect {
    policy: ReconnectPolicy,
    backoff: Backoff,
    retry_at: Option<tokio::time::Instant>,
    attempt: Option<Attempt>,
}

impl Reconnect {
    pub(super) fn new(policy: ReconnectPolicy) -> Self {
        let backoff = Backoff::new(policy.initial_delay, policy.max_delay);
        Reconnect { policy, backoff, retry_at: None, attempt: None }
    }

    pub(super) fn attempt_timeout(&self) -> Duration {
        self.policy.attempt_timeout
    }

    pub(super) fn media_timeout(&self) -> Duration {
        self.policy.media_timeout
    }

    /// Whether a retry is scheduled or an attempt is running.
    pub(super) fn under_way(&self) -> bool {
        self.retry_at.is_some() || self.attempt.is_some()
    }

    /// Schedules the next attempt after the backoff's delay.
    pub(super) fn schedule(&mut self) {
        self.retry_at = Some(tokio::time::Instant::now() + self.backoff.next_delay());
    }

    /// The server closed with `CLOSE_DRAINING`: the next attempt goes at once, with the
    /// backoff started over. "At once" is within the policy's initial delay, at random, so
    /// that the thousands of clients one drain lets go do not all arrive in the same
    /// millisecond.
    pub(super) fn at_once(&mut self) {
        self.backoff.reset();
        let spread = self.policy.initial_delay.mul_f64(crate::backoff::random_fraction());
        self.retry_at = Some(tokio::time::Instant::now() + spread);
    }

    /// Resolves when a scheduled retry is due, or with the running attempt's outcome.
    pub(super) async fn next(&mut self) -> Step {
        if let Some(a) = self.attempt.as_mut() {
            let result = a.await;
            self.attempt = None;
            return Step::Attempted(Box::new(result));
        }
        match self.retry_at {
            Some(at) => {
                tokio::time::sleep_until(at).await;
                self.retry_at = None;
                Step::RetryDue
            }
            None => std::future::pending().await,
        }
    }

    pub(super) fn attempt(&mut self, endpoint: Endpoint, hello: ClientMessage) {
        let timeout = self.policy.attempt_timeout;
        self.attempt = Some(Box::pin(async move { handshake(&endpoint, &hello, timeout).await }));
    }
}

impl Engine {
    /// The link is gone: calls wait out the grace period while the engine retries.
    pub(super) fn lost_link(&mut self) {
        self.machine.on_disconnected(Instant::now());
        self.client_view.send_modify(|v| v.connected = false);
        self.set_connection_state(ConnectionState::Reconnecting);
        self.reconnect.schedule();
    }

    pub(super) fn attempted(
        &mut self,
        now: Instant,
        result: Result<(Socket, ServerInfo), ConnectError>,
    ) {
        match result {
            Ok((ws, info)) => {
                tracing::info!("signaling reconnected");
                self.reconnect.backoff.reset();
                self.link = Some(Link::new(ws, &info.limits));
                self.keepalive = Keepalive::new(info.keepalive);
                // A registration whose answer the old connection never brought goes again.
                if let Some(msg) = self.push.unacknowledged() {
                    self.machine.requeue(msg);
                }
                self.machine.on_connected(now, &welcome_of(&info));
                self.client_view.send_modify(|v| {
                    v.uid.clone_from(&info.uid);
                    v.ice_servers.clone_from(&info.ice_servers);
                    v.ring_timeout = info.ring_timeout;
                    v.limits = info.limits;
                    v.connected = true;
                });
                self.info = info;
                self.set_connection_state(ConnectionState::Connected);
                self.link_back(now);
            }
            Err(e) => {
                // A refused token stays refused until the app gives a new one
                // (`VideoCall::update_token`); retrying slowly lets it.
                tracing::warn!("reconnect failed: {e}");
                if let ConnectError::Refused { code, message } = e {
                    self.set_connection_state(ConnectionState::Refused { code, message });
                }
                self.reconnect.schedule();
            }
        }
    }
}
