//! The calls the CLI places and answers: `duet call`, `duet answer` and `duet demo`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use duet_core::{
    CallOptions, CallStatus, ClientConfig, Conversation, EndReason, IceTransportPolicy,
    LocalStream, VideoCall,
};
use serde_json::json;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::bridge::{Bridge, Happened};
use crate::report::Reporter;
use crate::ClientArgs;

/// Exit status for a call that did not go as asked (rejected, busy, unanswered, failed).
const NOT_AS_ASKED: u8 = 1;
/// Exit status for a client that could not connect at all, or was used wrongly.
const CANNOT_CONNECT: u8 = 2;

pub enum AnswerMode {
    Accept,
    Reject,
    Ignore,
}

struct Client {
    video: VideoCall,
    bridge: Arc<Bridge>,
    events: UnboundedReceiver<Happened>,
    report: Reporter,
}

async fn connect(server_url: &str, token: String, report: Reporter) -> Result<Client, ExitCode> {
    let (bridge, events) = Bridge::new();
    match VideoCall::connect(ClientConfig::new(server_url, token), bridge.clone()).await {
        Ok(video) => {
            report.event(
                "connected",
                &[("as", json!(video.uid())), ("device", json!(video.device_id()))],
            );
            Ok(Client { video, bridge, events, report })
        }
        Err(e) => {
            report.error(&e.to_string());
            Err(ExitCode::from(CANNOT_CONNECT))
        }
    }
}

async fn connect_with_args(args: &ClientArgs, report: &Reporter) -> Result<Client, ExitCode> {
    let token = match args.token().await {
        Ok(t) => t,
        Err(e) => {
            report.error(&e);
            return Err(ExitCode::from(CANNOT_CONNECT));
        }
    };
    connect(&args.server, token, report.clone()).await
}

/// How a followed conversation went.
#[derive(Default)]
struct Outcome {
    status: Option<CallStatus>,
    streamed: bool,
    ended_by: Option<EndReason>,
    setup: Option<Duration>,
}

impl Client {
    /// Reports a conversation's events until it ends; once media flows, stays `stay`, then
    /// hangs up.
    async fn follow(&mut self, conv: &Conversation, stay: Duration, since: Instant) -> Outcome {
        let mut outcome = Outcome::default();
        let mut hang_up_at: Option<tokio::time::Instant> = None;
        loop {
            let hang_up = async {
                match hang_up_at {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                happened = self.events.recv() => match happened {
                    Some(Happened::Response(status)) => {
                        self.report.event("response", &[("status", json!(status_name(status)))]);
                        outcome.status = Some(status);
                        if status == CallStatus::Accepted {
                            outcome.setup = Some(since.elapsed());
                        }
                    }
                    Some(Happened::Stream(_)) => {
                        self.report.event("stream", &[]);
                        outcome.streamed = true;
                        hang_up_at = Some(tokio::time::Instant::now() + stay);
                    }
                    Some(Happened::Failed(e)) => self.report.error(&e.to_string()),
                    Some(Happened::Closed) | None => {
                        let reason = conv.close_reason().unwrap_or(EndReason::Failed);
                        self.report.event("closed", &[("reason", json!(reason.as_str()))]);
                        outcome.ended_by = Some(reason);
                        return outcome;
                    }
                    // The engine declines calls that arrive during one; nothing reaches here.
                    Some(Happened::Called(..)) => {}
                },
                _ = hang_up => return self.hang_up(conv, outcome),
                _ = tokio::signal::ctrl_c() => return self.hang_up(conv, outcome),
            }
        }
    }

    fn hang_up(&self, conv: &Conversation, mut outcome: Outcome) -> Outcome {
        conv.close();
        self.report.event("closed", &[("reason", json!(EndReason::Local.as_str()))]);
        outcome.ended_by = Some(EndReason::Local);
        outcome
    }

    async fn wait_for_call(&mut self) -> Option<(Arc<Conversation>, Option<String>)> {
        loop {
            tokio::select! {
                happened = self.events.recv() => match happened? {
                    Happened::Called(conv, data) => return Some((conv, data)),
                    _ => continue,
                },
                _ = tokio::signal::ctrl_c() => return None,
            }
        }
    }
}

pub async fn call(
    args: &ClientArgs,
    report: &Reporter,
    to: &str,
    data: Option<String>,
    relay: bool,
    stay: Duration,
) -> ExitCode {
    let mut client = match connect_with_args(args, report).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let policy = if relay { IceTransportPolicy::Relay } else { IceTransportPolicy::All };
    let outcome = place_call(&mut client, to, data, policy, stay).await;
    client.video.shutdown().await;
    match outcome {
        Some(o) if o.status == Some(CallStatus::Accepted) && o.streamed => ExitCode::SUCCESS,
        _ => ExitCode::from(NOT_AS_ASKED),
    }
}

async fn place_call(
    client: &mut Client,
    to: &str,
    data: Option<String>,
    policy: IceTransportPolicy,
    stay: Duration,
) -> Option<Outcome> {
    let since = Instant::now();
    let options = CallOptions { data, ice_transport_policy: policy };
    let conv = match client.video.call(to, Arc::new(LocalStream::default()), options) {
        Ok(c) => c,
        Err(e) => {
            client.report.error(&e.to_string());
            return None;
        }
    };
    conv.set_delegate(client.bridge.clone());
    Some(client.follow(&conv, stay, since).await)
}

pub async fn answer(
    args: &ClientArgs,
    report: &Reporter,
    mode: AnswerMode,
    stay: Duration,
) -> ExitCode {
    let mut client = match connect_with_args(args, report).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let ok = answer_one(&mut client, mode, stay).await;
    client.video.shutdown().await;
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(NOT_AS_ASKED)
    }
}

/// Waits for one call and treats it as asked; true if that went as asked.
async fn answer_one(client: &mut Client, mode: AnswerMode, stay: Duration) -> bool {
    let Some((conv, data)) = client.wait_for_call().await else { return false };
    client.report.event("called", &[("from", json!(conv.remote_uid())), ("data", json!(data))]);
    conv.set_delegate(client.bridge.clone());
    match mode {
        AnswerMode::Accept => {
            if let Err(e) = conv.accept(Arc::new(LocalStream::default())) {
                client.report.error(&e.to_string());
                return false;
            }
            client.follow(&conv, stay, Instant::now()).await.streamed
        }
        AnswerMode::Reject => match conv.reject() {
            Ok(()) => {
                client.report.event("closed", &[("reason", json!(EndReason::Local.as_str()))]);
                true
            }
            Err(e) => {
                client.report.error(&e.to_string());
                false
            }
        },
        AnswerMode::Ignore => {
            client.follow(&conv, stay, Instant::now()).await;
            true
        }
    }
}

pub async fn demo(report: &Reporter, stay: Duration) -> ExitCode {
    let config =
        duet_server::ServerConfig { listen: ([127, 0, 0, 1], 0).into(), ..Default::default() };
    let server = match duet_server::start(config).await {
        Ok(s) => s,
        Err(e) => {
            report.error(&format!("cannot start the embedded server: {e}"));
            return ExitCode::from(CANNOT_CONNECT);
        }
    };
    report.event("server", &[("url", json!(server.http_url()))]);
    let token =
        |uid: &str| duet_server::token::mint(server.secret(), uid, Duration::from_secs(600));
    let url = server.http_url();
    let (alice, bob) = tokio::join!(
        connect(&url, token("alice"), report.for_client("alice")),
        connect(&url, token("bob"), report.for_client("bob")),
    );
    let (Ok(mut alice), Ok(mut bob)) = (alice, bob) else {
        server.shutdown().await;
        return ExitCode::from(CANNOT_CONNECT);
    };

    // Bob answers whatever comes for as long as it lasts; alice decides when it ends.
    let bob_side = async {
        let ok = answer_one(&mut bob, AnswerMode::Accept, stay * 10).await;
        (ok, bob)
    };
    let alice_side = async {
        let outcome = place_call(
            &mut alice,
            "bob",
            Some("hello from alice".into()),
            IceTransportPolicy::All,
            stay,
        )
        .await;
        (outcome, alice)
    };
    let ((bob_ok, bob), (outcome, alice)) = tokio::join!(bob_side, alice_side);
    let alice_ok =
        outcome.as_ref().is_some_and(|o| o.status == Some(CallStatus::Accepted) && o.streamed);
    report.event(
        "summary",
        &[
            ("ok", json!(alice_ok && bob_ok)),
            ("setup_ms", json!(outcome.and_then(|o| o.setup).map(|d| d.as_secs_f64() * 1000.0))),
        ],
    );
    alice.video.shutdown().await;
    bob.video.shutdown().await;
    server.shutdown().await;
    if alice_ok && bob_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(NOT_AS_ASKED)
    }
}

fn status_name(s: CallStatus) -> &'static str {
    match s {
        CallStatus::Accepted => "accepted",
        CallStatus::Rejected => "rejected",
        CallStatus::Busy => "busy",
        CallStatus::Timeout => "timeout",
    }
}
