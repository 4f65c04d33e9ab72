//! Waking devices that are not connected: their push registrations (`store`), and pushes
//! through APNs (`apns`) and FCM (`fcm`) over one HTTP/2 client (`h2`), signed with JWTs
//! (`jwt`), saying what `payload` builds.
//!
//! The hub decides whom to push while it handles an invite and hands the pushes to a
//! bounded queue; one task drains it, sending each push on a task of its own (HTTP/2
//! multiplexes them on one connection per service), so a slow or failing push service
//! never holds up calls.

mod apns;
mod fcm;
mod h2;
mod jwt;
mod payload;
mod redis_store;
mod store;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use duet_protocol::PushToken;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;

use crate::metrics::{Metrics, PushOutcome};

pub use apns::ApnsConfig;
pub use fcm::{FcmConfig, FcmSetupError};
pub use h2::HttpError;
pub use jwt::KeyError;
pub(crate) use payload::CallPush;
use store::{PushStore, SqliteStore};
pub use store::{StoreError, DEFAULT_MAX_REGISTRATIONS, DEFAULT_MAX_TOKENS_PER_UID};

/// Pushes waiting for the push task. The hub never waits for room: past this, a push is
/// dropped (and logged), and the call rings on the devices that are connected.
const QUEUE: usize = 1024;
/// Pushes in flight at once.
const IN_FLIGHT: usize = 64;

/// Push registrations and the push services. Pushes are off unless `apns` or `fcm` is set;
/// registrations are kept either way.
#[derive(Debug, Clone)]
pub struct PushConfig {
    /// Where registrations are kept (`push.sqlite3`); `None` keeps them in memory only.
    pub data_dir: Option<PathBuf>,
    pub apns: Option<ApnsConfig>,
    pub fcm: Option<FcmConfig>,
    /// Devices of one uid with a registration; one more evicts the oldest.
    pub max_tokens_per_uid: usize,
    /// Registrations in all; past this, new devices' registrations are refused.
    pub max_registrations: usize,
    /// Certificates (DER) trusted besides the web PKI's roots, for push endpoints behind a
    /// private CA (tests).
    pub extra_roots: Vec<Vec<u8>>,
}

impl Default for PushConfig {
    fn default() -> Self {
        PushConfig {
            data_dir: None,
            apns: None,
            fcm: None,
            max_tokens_per_uid: DEFAULT_MAX_TOKENS_PER_UID,
            max_registrations: DEFAULT_MAX_REGISTRATIONS,
            extra_roots: Vec::new(),
        }
    }
}

/// Why push could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum PushSetupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("APNs key: {0}")]
    ApnsKey(#[from] KeyError),
    #[error(transparent)]
    Fcm(#[from] FcmSetupError),
    #[error("push client: {0}")]
    Http(#[from] HttpError),
}

/// What a push service said about one push.
#[derive(Debug)]
pub(crate) enum Outcome {
    Delivered,
    /// The token is no longer valid (app uninstalled, token rotated): forget it.
    DeadToken,
    Failed(String),
}

/// One push to one device.
pub(crate) struct Job {
    pub uid: String,
    pub device_id: String,
    pub push: PushToken,
    pub call: CallPush,
}

/// The registrations and the way to the push task, shared by the hub (which pushes) and
/// the connections (which register).
pub(crate) struct Push {
    store: Arc<dyn PushStore>,
    services: Arc<Services>,
    queue: mpsc::Sender<Job>,
    metrics: Arc<Metrics>,
}

struct Services {
    apns: Option<apns::Apns>,
    fcm: Option<fcm::Fcm>,
}

impl Push {
    /// Opens the store, signs in to nothing yet (keys are checked now, tokens minted at the
    /// first push), and starts the push task.
    pub(crate) fn start(
        config: &PushConfig,
        metrics: Arc<Metrics>,
        redis: Option<&str>,
    ) -> Result<(Arc<Push>, JoinHandle<()>), PushSetupError> {
        let (per_uid, total) = (config.max_tokens_per_uid, config.max_registrations);
        // A cluster keeps registrations in its Redis, so the leader pushes a device that
        // registered through any node.
        let store: Arc<dyn PushStore> = match redis {
            Some(url) => Arc::new(redis_store::RedisStore::open(url, per_uid, total)?),
            None => Arc::new(SqliteStore::open(config.data_dir.as_deref(), per_uid, total)?),
        };
        let http = Arc::new(h2::H2Client::new(&config.extra_roots)?);
        let services = Arc::new(Services {
            apns: config.apns.as_ref().map(|c| apns::Apns::new(c, http.clone())).transpose()?,
            fcm: config.fcm.as_ref().map(|c| fcm::Fcm::new(c, http.clone())).transpose()?,
        });
        let (queue, jobs) = mpsc::channel(QUEUE);
        let task = tokio::spawn(run(jobs, services.clone(), store.clone(), metrics.clone()));
        Ok((Arc::new(Push { store, services, queue, metrics }), task))
    }

    /// The devices of `uid` a push can reach: registered for a service this server pushes
    /// through. A store that fails is logged and reaches no one, so the call still rings
    /// the devices that are connected.
    pub(crate) fn reachable(&self, uid: &str) -> Vec<(String, PushToken)> {
        if self.services.apns.is_none() && self.services.fcm.is_none() {
            return Vec::new();
        }
        match self.store.registrations(uid) {
            Ok(all) => all.into_iter().filter(|(_, push)| self.services.serves(push)).collect(),
            Err(e) => {
                tracing::warn!(uid, "push registrations unreadable: {e}");
                Vec::new()
            }
        }
    }

    /// Hands a push to the push task without waiting.
    pub(crate) fn enqueue(&self, job: Job) {
        if let Err(e) = self.queue.try_send(job) {
            self.metrics.pushed(PushOutcome::Dropped);
            tracing::warn!("push queue full or closed, push dropped: {e}");
        }
    }

    /// Keeps the device's token (on a blocking thread: it is a disk write).
    pub(crate) async fn register(
        &self,
        uid: String,
        device_id: String,
        push: PushToken,
    ) -> Result<(), StoreError> {
        let store = self.store.clone();
        blocking(move || store.register(&uid, &device_id, &push)).await
    }

    pub(crate) async fn unregister(
        &self,
        uid: String,
        device_id: String,
    ) -> Result<(), StoreError> {
        let store = self.store.clone();
        blocking(move || store.unregister(&uid, &device_id)).await
    }
}

impl Services {
    fn serves(&self, push: &PushToken) -> bool {
        match push {
            PushToken::Apns { .. } => self.apns.is_some(),
            PushToken::Fcm { .. } => self.fcm.is_some(),
        }
    }

    async fn send(&self, push: &PushToken, call: &CallPush) -> Outcome {
        match (push, &self.apns, &self.fcm) {
            (PushToken::Apns { token, bundle_id, environment }, Some(apns), _) => {
                apns.push(token, bundle_id, *environment, call).await
            }
            (PushToken::Fcm { token }, _, Some(fcm)) => fcm.push(token, call).await,
            _ => Outcome::Failed("no push service for this token".into()),
        }
    }
}

/// The push task: each job on a task of its own, at most `IN_FLIGHT` at once.
async fn run(
    mut jobs: mpsc::Receiver<Job>,
    services: Arc<Services>,
    store: Arc<dyn PushStore>,
    metrics: Arc<Metrics>,
) {
    let in_flight = Arc::new(Semaphore::new(IN_FLIGHT));
    while let Some(job) = jobs.recv().await {
        let Ok(permit) = in_flight.clone().acquire_owned().await else { return };
        let (services, store, metrics) = (services.clone(), store.clone(), metrics.clone());
        tokio::spawn(async move {
            let outcome = services.send(&job.push, &job.call).await;
            drop(permit);
            metrics.pushed(match outcome {
                Outcome::Delivered => PushOutcome::Delivered,
                Outcome::Failed(_) => PushOutcome::Failed,
                Outcome::DeadToken => PushOutcome::DeadToken,
            });
            settle(job, outcome, store).await;
        });
    }
}

/// Logs a failure, and forgets a token the service called dead.
async fn settle(job: Job, outcome: Outcome, store: Arc<dyn PushStore>) {
    let Job { uid, device_id, push, call } = job;
    match outcome {
        Outcome::Delivered => tracing::debug!(uid, device_id, call_id = call.call_id, "pushed"),
        Outcome::Failed(e) => {
            tracing::warn!(uid, device_id, call_id = call.call_id, "push failed: {e}")
        }
        Outcome::DeadToken => {
            tracing::info!(uid, device_id, "push token dead, registration removed");
            let token = push.token().to_owned();
            let removed = blocking(move || store.remove_dead(&uid, &device_id, &token)).await;
            if let Err(e) = removed {
                tracing::warn!("removing a dead push token: {e}");
            }
        }
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StoreError::Io(std::io::Error::other(e.to_string())))?
}

/// `t` in milliseconds since the Unix epoch, as the push payloads and the store count time.
pub(crate) fn unix_ms_at(t: SystemTime) -> u64 {
    let ms = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    u64::try_from(ms).unwrap_or(u64::MAX)
}

fn unix_ms() -> u64 {
    unix_ms_at(SystemTime::now())
}

fn unix_secs() -> u64 {
    unix_ms() / 1000
}
