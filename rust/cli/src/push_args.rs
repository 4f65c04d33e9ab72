//! `duet serve`'s push flags: where registrations are kept, and the APNs and FCM
//! credentials. Pushes are off unless a service's credentials are given.

use std::path::PathBuf;

use clap::Args;

#[derive(Args, Clone)]
pub(crate) struct PushArgs {
    /// Where the server keeps what must survive a restart (push registrations). Default:
    /// $XDG_DATA_HOME/duet-server, or ~/.local/share/duet-server.
    #[arg(long, env = "DUET_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The APNs auth key (.p8) for VoIP pushes; with --apns-key-id and --apns-team-id.
    #[arg(long, env = "DUET_APNS_KEY", requires_all = ["apns_key_id", "apns_team_id"])]
    apns_key: Option<PathBuf>,
    /// The APNs key's id (10 characters).
    #[arg(long, env = "DUET_APNS_KEY_ID", requires = "apns_key")]
    apns_key_id: Option<String>,
    /// Your Apple developer team id.
    #[arg(long, env = "DUET_APNS_TEAM_ID", requires = "apns_key")]
    apns_team_id: Option<String>,
    /// Send every APNs push here instead of Apple's host for the token's environment.
    #[arg(long, env = "DUET_APNS_URL", requires = "apns_key")]
    apns_url: Option<String>,
    /// A Firebase service account's JSON key file, for FCM pushes.
    #[arg(long, env = "DUET_FCM_SERVICE_ACCOUNT")]
    fcm_service_account: Option<PathBuf>,
    /// Send FCM messages here instead of https://fcm.googleapis.com.
    #[arg(long, env = "DUET_FCM_URL", requires = "fcm_service_account")]
    fcm_url: Option<String>,
    /// Ask for FCM access tokens here instead of the service account's token_uri.
    #[arg(long, env = "DUET_FCM_TOKEN_URL", requires = "fcm_service_account")]
    fcm_token_url: Option<String>,
    /// Trust the CA certificates in this PEM file for the push endpoints, beside the web
    /// PKI's roots: for tests against local fakes (with --apns-url, --fcm-url) and private
    /// push gateways. Apple's and Google's endpoints need none.
    #[arg(long, env = "DUET_PUSH_CA_FILE")]
    push_ca_file: Option<PathBuf>,
    /// Devices of one uid with a push registration; one more drops the oldest.
    #[arg(long, env = "DUET_PUSH_MAX_TOKENS_PER_UID", default_value_t = 10)]
    push_max_tokens_per_uid: usize,
}

impl PushArgs {
    /// The server's push settings, with the key files read.
    pub(crate) fn config(self) -> Result<duet_server::PushConfig, String> {
        let apns = match (self.apns_key, self.apns_key_id, self.apns_team_id) {
            (Some(key), Some(key_id), Some(team_id)) => Some(duet_server::ApnsConfig {
                key_pem: read(&key, "--apns-key")?,
                key_id,
                team_id,
                url: self.apns_url,
            }),
            _ => None,
        };
        let fcm = match self.fcm_service_account {
            Some(path) => Some(duet_server::FcmConfig {
                service_account_json: read(&path, "--fcm-service-account")?,
                url: self.fcm_url,
                token_url: self.fcm_token_url,
            }),
            None => None,
        };
        let extra_roots = match &self.push_ca_file {
            Some(path) => crate::pem_certificates(path, "--push-ca-file")?,
            None => Vec::new(),
        };
        Ok(duet_server::PushConfig {
            data_dir: Some(self.data_dir.unwrap_or_else(default_data_dir)),
            apns,
            fcm,
            max_tokens_per_uid: self.push_max_tokens_per_uid,
            extra_roots,
            ..Default::default()
        })
    }
}

fn read(path: &std::path::Path, flag: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{flag} {}: {e}", path.display()))
}

/// The XDG data directory, so that a server started anywhere finds its registrations again
/// (a directory relative to wherever it was started would not).
fn default_data_dir() -> PathBuf {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("duet-server")
}
