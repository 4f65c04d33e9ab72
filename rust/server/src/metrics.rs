//! What `/metrics` reports, in Prometheus's text exposition format (version 0.0.4).
//!
//! Every count is an atomic bumped where the thing happens (a relaxed add: no lock, no
//! allocation on the hot path), and every label set is a fixed enum of this crate or the
//! protocol, never user input, so the output's size is bounded whatever clients send.
//! Written by hand: the format is a few lines per family, and a metrics crate would add a
//! registry and label hashing that fixed arrays do not need.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use duet_protocol::{CallStatus, ClientMessage, CloseReason, ErrorCode, ServerMessage};

use crate::refusals;

/// Client message types, in the order `client_index` numbers them.
const CLIENT_TYPES: [&str; 9] = [
    "hello",
    "invite",
    "accept",
    "reject",
    "hangup",
    "signal",
    "ping",
    "register_push",
    "unregister_push",
];
/// Server message types, in the order `server_index` numbers them.
const SERVER_TYPES: [&str; 12] = [
    "welcome",
    "incoming",
    "ringing",
    "response",
    "merged",
    "closed",
    "signal",
    "error",
    "pong",
    "push_registered",
    "push_unregistered",
    // Not a message: the WebSocket close frame a draining server sends (see `drain`).
    "drain_close",
];
/// What became of a push, in the order `PushOutcome` numbers them.
const PUSH_OUTCOMES: [&str; 4] = ["delivered", "failed", "dead_token", "dropped"];

/// What became of one push (`duet_pushes_total{outcome}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PushOutcome {
    /// The push service took it.
    Delivered = 0,
    /// The service refused it or could not be reached.
    Failed = 1,
    /// The service called the token dead; its registration is removed.
    DeadToken = 2,
    /// The push queue was full: never sent.
    Dropped = 3,
}

const ERROR_CODES: [&str; 14] = [
    "unsupported_version",
    "unauthorized",
    "token_expired",
    "hello_required",
    "malformed",
    "invalid_request",
    "message_too_large",
    "rate_limited",
    "not_in_call",
    "invalid_state",
    "duplicate_call_id",
    "replaced",
    "too_many_devices",
    "too_slow",
];

/// Why a call (or an invite that never rang) ended, as `duet_calls_ended_total` labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallEnd {
    Hangup,
    Cancelled,
    Rejected,
    Busy,
    Timeout,
    PeerDisconnected,
    Unreachable,
    Replaced,
    /// Glare: the invite was merged into the peer's crossing call.
    Merged,
    Other,
}

const CALL_ENDS: [&str; 10] = [
    "hangup",
    "cancelled",
    "rejected",
    "busy",
    "timeout",
    "peer_disconnected",
    "unreachable",
    "replaced",
    "merged",
    "other",
];

impl CallEnd {
    /// The reason a call ended, from what the switchboard told its parties: the caller's
    /// verdict if it got one, else the callee's.
    pub(crate) fn of(to_caller: Option<&ServerMessage>, to_callee: Option<&ServerMessage>) -> Self {
        [to_caller, to_callee]
            .into_iter()
            .flatten()
            .map(CallEnd::from_message)
            .find(|e| *e != CallEnd::Other)
            .unwrap_or(CallEnd::Other)
    }

    fn from_message(msg: &ServerMessage) -> Self {
        match msg {
            ServerMessage::Response { status, .. } => match status {
                CallStatus::Rejected => CallEnd::Rejected,
                CallStatus::Busy => CallEnd::Busy,
                CallStatus::Timeout => CallEnd::Timeout,
                CallStatus::Accepted => CallEnd::Other,
            },
            ServerMessage::Closed { reason, .. } => match reason {
                CloseReason::Hangup => CallEnd::Hangup,
                CloseReason::Cancelled => CallEnd::Cancelled,
                CloseReason::Timeout => CallEnd::Timeout,
                CloseReason::PeerDisconnected => CallEnd::PeerDisconnected,
                CloseReason::Unreachable => CallEnd::Unreachable,
                CloseReason::Replaced => CallEnd::Replaced,
                // Said to the callee's other devices; the caller's verdict names the end.
                CloseReason::AnsweredElsewhere | CloseReason::DeclinedElsewhere => CallEnd::Other,
            },
            ServerMessage::Merged { .. } => CallEnd::Merged,
            _ => CallEnd::Other,
        }
    }
}

/// Calls held right now, by state: counted from the switchboard when `/metrics` is read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CallCensus {
    pub ringing: u64,
    pub active: u64,
}

/// One server's counters. Shared by the connection tasks, the hub (and its switchboard).
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    connections_total: AtomicU64,
    messages_in: [AtomicU64; CLIENT_TYPES.len()],
    messages_out: [AtomicU64; SERVER_TYPES.len()],
    errors: [AtomicU64; ERROR_CODES.len()],
    calls_placed: AtomicU64,
    call_setups: AtomicU64,
    calls_ended: [AtomicU64; CALL_ENDS.len()],
    pushes: [AtomicU64; PUSH_OUTCOMES.len()],
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    pub(crate) fn connection_opened(&self) {
        bump(&self.connections_total);
    }

    pub(crate) fn received(&self, msg: &ClientMessage) {
        bump(&self.messages_in[client_index(msg)]);
    }

    /// A message handed to a connection to write; an `error` counts under its code too.
    pub(crate) fn sent(&self, msg: &ServerMessage) {
        bump(&self.messages_out[server_index(msg)]);
        if let ServerMessage::Error { code, .. } = msg {
            bump(&self.errors[error_index(*code)]);
        }
    }

    pub(crate) fn drain_close_sent(&self) {
        bump(&self.messages_out[SERVER_TYPES.len() - 1]);
    }

    /// An invite rang the callee's devices.
    pub(crate) fn call_placed(&self) {
        bump(&self.calls_placed);
    }

    /// A callee's device accepted: the call is set up.
    pub(crate) fn call_set_up(&self) {
        bump(&self.call_setups);
    }

    pub(crate) fn call_ended(&self, end: CallEnd) {
        bump(&self.calls_ended[end as usize]);
    }

    pub(crate) fn pushed(&self, outcome: PushOutcome) {
        bump(&self.pushes[outcome as usize]);
    }

    /// The exposition: these counters, `live` (what is measured when asked), and every
    /// limit's refusals.
    pub(crate) fn render(&self, live: &Live) -> String {
        let mut out = String::with_capacity(8 * 1024);
        let mut m = Writer(&mut out);
        m.gauge("duet_connections_open", "WebSocket connections open now.", live.connections);
        m.counter(
            "duet_connections_total",
            "WebSocket connections accepted since start.",
            load(&self.connections_total),
        );
        m.gauge("duet_draining", "1 while the server drains (SIGTERM), else 0.", live.draining);
        if let Some(n) = live.turn_allocations {
            m.gauge(
                "duet_turn_allocations",
                "Relay allocations the embedded TURN server holds now.",
                n,
            );
        }
        m.head("duet_calls", "gauge", "Calls held now, by state.");
        if let Some(census) = live.calls {
            m.labelled("duet_calls", "state", "ringing", census.ringing);
            m.labelled("duet_calls", "state", "active", census.active);
        }
        m.counter(
            "duet_calls_placed_total",
            "Invites that rang a callee.",
            load(&self.calls_placed),
        );
        m.counter("duet_call_setups_total", "Calls accepted.", load(&self.call_setups));
        m.family(
            "duet_calls_ended_total",
            "Calls ended, by reason.",
            "reason",
            &CALL_ENDS,
            &self.calls_ended,
        );
        m.family(
            "duet_errors_total",
            "error messages sent, by code.",
            "code",
            &ERROR_CODES,
            &self.errors,
        );
        m.family(
            "duet_messages_received_total",
            "Client messages read, by type.",
            "type",
            &CLIENT_TYPES,
            &self.messages_in,
        );
        m.family(
            "duet_messages_sent_total",
            "Server messages handed to connections, by type.",
            "type",
            &SERVER_TYPES,
            &self.messages_out,
        );
        m.family(
            "duet_pushes_total",
            "Pushes to APNs and FCM, by outcome.",
            "outcome",
            &PUSH_OUTCOMES,
            &self.pushes,
        );
        m.head("duet_limit_refusals_total", "counter", "Refusals by limit (process-wide).");
        for (limit, total) in refusals::totals() {
            m.labelled("duet_limit_refusals_total", "limit", limit, total);
        }
        for check in &live.extra {
            out.push_str(check);
        }
        out
    }
}

/// What `/metrics` measures at the moment it is read, beside the counters.
#[derive(Debug, Default)]
pub(crate) struct Live {
    pub connections: u64,
    pub draining: u64,
    /// `None` when the hub did not answer in time (then the family has no samples).
    pub calls: Option<CallCensus>,
    /// The embedded TURN server's allocations; `None` without one (no sample then).
    pub turn_allocations: Option<u64>,
    /// Families the readiness checks render themselves (a dependency's round-trip time).
    pub extra: Vec<String>,
}

fn load(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

struct Writer<'a>(&'a mut String);

impl Writer<'_> {
    // Writing to a String cannot fail: the results are ignored.
    fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = write!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
    }

    fn gauge(&mut self, name: &str, help: &str, value: u64) {
        self.head(name, "gauge", help);
        let _ = writeln!(self.0, "{name} {value}");
    }

    fn counter(&mut self, name: &str, help: &str, value: u64) {
        self.head(name, "counter", help);
        let _ = writeln!(self.0, "{name} {value}");
    }

    fn labelled(&mut self, name: &str, label: &str, value_of_label: &str, value: u64) {
        let _ = writeln!(self.0, "{name}{{{label}=\"{value_of_label}\"}} {value}");
    }

    fn family(
        &mut self,
        name: &str,
        help: &str,
        label: &str,
        names: &[&str],
        counts: &[AtomicU64],
    ) {
        self.head(name, "counter", help);
        for (l, count) in names.iter().zip(counts) {
            self.labelled(name, label, l, load(count));
        }
    }
}

fn client_index(msg: &ClientMessage) -> usize {
    match msg {
        ClientMessage::Hello { .. } => 0,
        ClientMessage::Invite { .. } => 1,
        ClientMessage::Accept { .. } => 2,
        ClientMessage::Reject { .. } => 3,
        ClientMessage::Hangup { .. } => 4,
        ClientMessage::Signal { .. } => 5,
        ClientMessage::Ping { .. } => 6,
        ClientMessage::RegisterPush { .. } => 7,
        ClientMessage::UnregisterPush => 8,
    }
}

fn server_index(msg: &ServerMessage) -> usize {
    match msg {
        ServerMessage::Welcome { .. } => 0,
        ServerMessage::Incoming { .. } => 1,
        ServerMessage::Ringing { .. } => 2,
        ServerMessage::Response { .. } => 3,
        ServerMessage::Merged { .. } => 4,
        ServerMessage::Closed { .. } => 5,
        ServerMessage::Signal { .. } => 6,
        ServerMessage::Error { .. } => 7,
        ServerMessage::Pong { .. } => 8,
        ServerMessage::PushRegistered => 9,
        ServerMessage::PushUnregistered => 10,
    }
}

fn error_index(code: ErrorCode) -> usize {
    match code {
        ErrorCode::UnsupportedVersion => 0,
        ErrorCode::Unauthorized => 1,
        ErrorCode::TokenExpired => 2,
        ErrorCode::HelloRequired => 3,
        ErrorCode::Malformed => 4,
        ErrorCode::InvalidRequest => 5,
        ErrorCode::MessageTooLarge => 6,
        ErrorCode::RateLimited => 7,
        ErrorCode::NotInCall => 8,
        ErrorCode::InvalidState => 9,
        ErrorCode::DuplicateCallId => 10,
        ErrorCode::Replaced => 11,
        ErrorCode::TooManyDevices => 12,
        ErrorCode::TooSlow => 13,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The label names are the protocol's own spellings, so a dashboard reads like the
    /// protocol document.
    #[test]
    fn labels_are_the_wire_names() {
        let codes = [
            ErrorCode::UnsupportedVersion,
            ErrorCode::Unauthorized,
            ErrorCode::TokenExpired,
            ErrorCode::HelloRequired,
            ErrorCode::Malformed,
            ErrorCode::InvalidRequest,
            ErrorCode::MessageTooLarge,
            ErrorCode::RateLimited,
            ErrorCode::NotInCall,
            ErrorCode::InvalidState,
            ErrorCode::DuplicateCallId,
            ErrorCode::Replaced,
            ErrorCode::TooManyDevices,
            ErrorCode::TooSlow,
        ];
        for code in codes {
            let wire = serde_json::to_string(&code).unwrap();
            assert_eq!(wire.trim_matches('"'), ERROR_CODES[error_index(code)]);
        }
        let pong = ServerMessage::Pong { nonce: 1 };
        assert_eq!(SERVER_TYPES[server_index(&pong)], "pong");
        let ping = ClientMessage::Ping { nonce: 1 };
        assert_eq!(CLIENT_TYPES[client_index(&ping)], "ping");
    }

    #[test]
    fn an_end_is_named_by_the_callers_verdict_first() {
        let id = "c".to_owned();
        let busy =
            ServerMessage::Response { call_id: id.clone(), status: CallStatus::Busy, sdp: None };
        let declined =
            ServerMessage::Closed { call_id: id.clone(), reason: CloseReason::DeclinedElsewhere };
        let hangup = ServerMessage::Closed { call_id: id, reason: CloseReason::Hangup };
        assert_eq!(CallEnd::of(Some(&busy), Some(&declined)), CallEnd::Busy);
        assert_eq!(CallEnd::of(None, Some(&hangup)), CallEnd::Hangup);
        assert_eq!(CallEnd::of(None, Some(&declined)), CallEnd::Other);
        assert_eq!(CallEnd::of(None, None), CallEnd::Other);
    }

    #[test]
    fn the_exposition_has_every_family_once() {
        let metrics = Metrics::default();
        metrics.sent(&ServerMessage::error(ErrorCode::TooSlow, "x", None));
        metrics.call_ended(CallEnd::Timeout);
        let live = Live { calls: Some(CallCensus { ringing: 2, active: 3 }), ..Live::default() };
        let text = metrics.render(&live);
        assert!(text.contains("duet_errors_total{code=\"too_slow\"} 1\n"), "{text}");
        assert!(text.contains("duet_messages_sent_total{type=\"error\"} 1\n"), "{text}");
        assert!(text.contains("duet_calls_ended_total{reason=\"timeout\"} 1\n"), "{text}");
        assert!(text.contains("duet_calls{state=\"active\"} 3\n"), "{text}");
        let types = text.lines().filter(|l| l.starts_with("# TYPE duet_errors_total ")).count();
        assert_eq!(types, 1);
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (_, value) = line.rsplit_once(' ').unwrap();
            assert!(value.parse::<f64>().is_ok(), "a sample line ends with its value: {line}");
        }
    }
}
