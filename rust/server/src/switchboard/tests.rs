//! Every switchboard rule, with explicit time and no sockets.

use super::*;
use serde_json::{json, Value};

const RING: Duration = Duration::from_secs(30);
const GRACE: Duration = Duration::from_secs(20);
const MS: Duration = Duration::from_millis(1);

/// A switchboard and a clock. Devices are written "uid/device"; messages as JSON, so each
/// expectation reads like the protocol document.
struct Bench {
    sb: Switchboard,
    now: Instant,
}

type Got = Vec<(String, Value)>;

fn key(who: &str) -> DeviceKey {
    let (uid, device) = who.split_once('/').expect("uid/device");
    DeviceKey::new(uid, device)
}

fn got(sends: Sends) -> Got {
    sends
        .into_iter()
        .map(|(k, m)| {
            (format!("{}/{}", k.uid, k.device_id), serde_json::to_value(m).expect("serializes"))
        })
        .collect()
}

fn to(who: &str, msg: Value) -> (String, Value) {
    (who.to_owned(), msg)
}

fn closed(who: &str, call_id: &str, reason: &str) -> (String, Value) {
    to(who, json!({"type":"closed","call_id":call_id,"reason":reason}))
}

fn response(who: &str, call_id: &str, status: &str) -> (String, Value) {
    to(who, json!({"type":"response","call_id":call_id,"status":status}))
}

fn error_code(got: &Got) -> Vec<(&str, &str)> {
    got.iter()
        .map(|(who, m)| (who.as_str(), m["code"].as_str().unwrap_or("<not an error>")))
        .collect()
}

fn incoming(who: &str, call_id: &str, from: &str) -> (String, Value) {
    to(
        who,
        json!({"type":"incoming","call_id":call_id,"from":from,"options":{"ice_transport_policy":"all"},"sdp":"offer"}),
    )
}

fn candidate(n: u32) -> Value {
    json!({"kind":"candidate","candidate":format!("candidate:{n}")})
}

impl Bench {
    fn new() -> Self {
        Bench::with(|_| {})
    }

    fn with(tweak: impl FnOnce(&mut SwitchboardConfig)) -> Self {
        let mut config = SwitchboardConfig::new(
            RING,
            GRACE,
            &Limits { max_data_bytes: 16, ..Limits::default() },
        );
        tweak(&mut config);
        Bench { sb: Switchboard::new(config), now: Instant::now() }
    }

    fn connect(&mut self, who: &str) -> Got {
        got(self.sb.connect(self.now, &key(who), Vec::new()))
    }

    fn reconnect(&mut self, who: &str, calls: Value) -> Got {
        let calls = serde_json::from_value(calls).expect("restatements parse");
        got(self.sb.connect(self.now, &key(who), calls))
    }

    fn drop_connection(&mut self, who: &str) -> Got {
        got(self.sb.disconnect(self.now, &key(who), Vec::new()))
    }

    fn send(&mut self, who: &str, msg: Value) -> Got {
        let msg: ClientMessage = serde_json::from_value(msg).expect("client message parses");
        got(self.sb.handle(self.now, &key(who), msg))
    }

    fn invite(&mut self, who: &str, call_id: &str, callee: &str) -> Got {
        self.send(who, json!({"type":"invite","call_id":call_id,"to":callee,"sdp":"offer"}))
    }

    fn accept(&mut self, who: &str, call_id: &str) -> Got {
        self.send(who, json!({"type":"accept","call_id":call_id,"sdp":"answer"}))
    }

    fn signal(&mut self, who: &str, call_id: &str, n: u32) -> Got {
        self.send(who, json!({"type":"signal","call_id":call_id,"signal":candidate(n)}))
    }

    fn advance(&mut self, by: Duration) -> Got {
        self.now += by;
        got(self.sb.handle_timeout(self.now))
    }

    /// alice/a1 calling bob, who has devices b1 and b2.
    fn ringing() -> Self {
        let mut b = Bench::new();
        for who in ["alice/a1", "bob/b1", "bob/b2"] {
            assert_eq!(b.connect(who), vec![]);
        }
        assert_eq!(b.invite("alice/a1", "c1", "bob").len(), 3);
        b
    }

    /// The same call, accepted on b1.
    fn active() -> Self {
        let mut b = Bench::ringing();
        assert_eq!(b.accept("bob/b1", "c1").len(), 3);
        b
    }
}

// --- Invite ---

#[test]
fn an_invite_rings_every_connected_device_of_the_callee() {
    let mut b = Bench::new();
    b.connect("alice/a1");
    b.connect("bob/b1");
    b.connect("bob/b2");
    let out = b.send(
        "alice/a1",
        json!({"type":"invite","call_id":"c1","to":"bob","data":"hi","options":{"ice_transport_policy":"relay"},"sdp":"offer"}),
    );
    let incoming = json!({"type":"incoming","call_id":"c1","from":"alice","data":"hi","options":{"ice_transport_policy":"relay"},"sdp":"offer"});
    assert_eq!(
        out,
        vec![
            to("bob/b1", incoming.clone()),
            to("bob/b2", incoming),
            to("alice/a1", json!({"type":"ringing","call_id":"c1"})),
        ]
    );
    assert_eq!(b.sb.live_calls(), 1);
}

#[test]
fn an_invite_to_a_user_with_no_connected_device_is_unreachable() {
    let mut b = Bench::new();
    b.connect("alice/a1");
    assert_eq!(b.invite("alice/a1", "c1", "bob"), vec![closed("alice/a1", "c1", "unreachable")]);
    assert_eq!(b.sb.live_calls(), 0);
}

#[test]
fn an_invite_to_a_user_in_a_call_is_busy() {
    let mut b = Bench::ringing();
    b.connect("carol/c");
    // Bob is being rung: busy.
    assert_eq!(b.invite("carol/c", "c2", "bob"), vec![response("carol/c", "c2", "busy")]);
    // Alice is calling: busy too (any call, either role).
    assert_eq!(b.invite("carol/c", "c3", "alice"), vec![response("carol/c", "c3", "busy")]);
    b.accept("bob/b1", "c1");
    assert_eq!(b.invite("carol/c", "c4", "bob"), vec![response("carol/c", "c4", "busy")]);
    assert_eq!(b.sb.live_calls(), 1);
}

#[test]
fn glare_merges_the_second_call_into_the_first() {
    let mut b = Bench::ringing();
    let out =
        b.send("bob/b2", json!({"type":"invite","call_id":"c2","to":"alice","sdp":"bob-offer"}));
    assert_eq!(
        out,
        vec![to(
            "bob/b2",
            json!({"type":"merged","call_id":"c2","into":{"call_id":"c1","from":"alice","options":{"ice_transport_policy":"all"},"sdp":"offer"}})
        )]
    );
    assert_eq!(b.sb.live_calls(), 1);
    let out = b.accept("bob/b2", "c1");
    assert_eq!(
        out,
        vec![
            to(
                "alice/a1",
                json!({"type":"response","call_id":"c1","status":"accepted","sdp":"answer"})
            ),
            response("bob/b2", "c1", "accepted"),
            closed("bob/b1", "c1", "answered_elsewhere"),
        ]
    );
}

#[test]
fn a_merged_device_that_was_not_ringing_joins_the_call() {
    let mut b = Bench::new();
    b.connect("alice/a1");
    b.connect("bob/b1");
    b.invite("alice/a1", "c1", "bob");
    // b2 connects and immediately calls alice; it was rung on connect, and merging keeps it in.
    assert_eq!(b.connect("bob/b2"), vec![incoming("bob/b2", "c1", "alice")]);
    assert_eq!(b.invite("bob/b2", "c2", "alice")[0].1["type"], "merged");
    assert_eq!(
        b.accept("bob/b2", "c1")[0],
        to(
            "alice/a1",
            json!({"type":"response","call_id":"c1","status":"accepted","sdp":"answer"})
        )
    );
}

#[test]
fn a_new_call_from_a_device_in_a_call_ends_the_previous_one() {
    let mut b = Bench::active();
    b.connect("carol/c");
    let out = b.invite("alice/a1", "c2", "carol");
    assert_eq!(
        out,
        vec![
            closed("alice/a1", "c1", "replaced"),
            closed("bob/b1", "c1", "hangup"),
            incoming("carol/c", "c2", "alice"),
            to("alice/a1", json!({"type":"ringing","call_id":"c2"})),
        ]
    );
}

#[test]
fn a_new_call_from_a_ringing_caller_cancels_the_previous_one() {
    let mut b = Bench::ringing();
    // Calling bob again: the first call is cancelled, so bob is free for the second.
    let out = b.invite("alice/a1", "c2", "bob");
    assert_eq!(
        out[..3],
        [
            closed("alice/a1", "c1", "replaced"),
            closed("bob/b1", "c1", "cancelled"),
            closed("bob/b2", "c1", "cancelled")
        ]
    );
    assert_eq!(
        out[3..],
        [
            incoming("bob/b1", "c2", "alice"),
            incoming("bob/b2", "c2", "alice"),
            to("alice/a1", json!({"type":"ringing","call_id":"c2"}))
        ]
    );
}

#[test]
fn a_callee_that_calls_someone_else_ends_its_accepted_call() {
    let mut b = Bench::active();
    b.connect("carol/c");
    let out = b.invite("bob/b1", "c2", "carol");
    assert_eq!(out[..2], [closed("alice/a1", "c1", "hangup"), closed("bob/b1", "c1", "replaced")]);
}

#[test]
fn invalid_invites_are_refused() {
    let mut b = Bench::new();
    b.connect("alice/a1");
    b.connect("bob/b1");
    let long_uid = "u".repeat(duet_protocol::MAX_UID_BYTES + 1);
    let cases = [
        json!({"type":"invite","call_id":"c1","to":""}),
        json!({"type":"invite","call_id":"c1","to":long_uid}),
        json!({"type":"invite","call_id":"c1","to":"alice"}),
        json!({"type":"invite","call_id":"","to":"bob"}),
        json!({"type":"invite","call_id":"not a uuid!","to":"bob"}),
        json!({"type":"invite","call_id":"c1","to":"bob","data":"x".repeat(17)}),
    ];
    for case in cases {
        let out = b.send("alice/a1", case.clone());
        assert_eq!(error_code(&out), vec![("alice/a1", "invalid_request")], "{case}");
    }
    assert_eq!(b.sb.live_calls(), 0);
    // Data exactly at the limit is fine.
    let out = b
        .send("alice/a1", json!({"type":"invite","call_id":"c1","to":"bob","data":"x".repeat(16)}));
    assert_eq!(out.len(), 2);
}

#[test]
fn an_error_names_the_call() {
    let mut b = Bench::new();
    b.connect("alice/a1");
    let out = b.send("alice/a1", json!({"type":"invite","call_id":"c1","to":"alice"}));
    assert_eq!(out[0].1["call_id"], "c1");
}

#[test]
fn reusing_a_live_call_id_is_refused() {
    let mut b = Bench::ringing();
    b.connect("carol/c");
    b.connect("dave/d");
    let out = b.invite("carol/c", "c1", "dave");
    assert_eq!(error_code(&out), vec![("carol/c", "duplicate_call_id")]);
    assert_eq!(b.sb.live_calls(), 1);
}

#[test]
fn an_ended_call_id_may_be_used_again() {
    let mut b = Bench::ringing();
    b.send("alice/a1", json!({"type":"hangup","call_id":"c1"}));
    assert_eq!(b.invite("alice/a1", "c1", "bob").len(), 3);
}

// --- Accept, reject, timeout, hangup ---

#[test]
fn the_first_accept_wins() {
    let mut b = Bench::ringing();
    let out = b.accept("bob/b2", "c1");
    assert_eq!(
        out,
        vec![
            to(
                "alice/a1",
                json!({"type":"response","call_id":"c1","status":"accepted","sdp":"answer"})
            ),
            response("bob/b2", "c1", "accepted"),
            closed("bob/b1", "c1", "answered_elsewhere"),
        ]
    );
    // b1 is no longer part of the call.
    assert_eq!(error_code(&b.accept("bob/b1", "c1")), vec![("bob/b1", "not_in_call")]);
    // b2 accepting again, or the caller accepting, is the wrong state.
    assert_eq!(error_code(&b.accept("bob/b2", "c1")), vec![("bob/b2", "invalid_state")]);
    assert_eq!(error_code(&b.accept("alice/a1", "c1")), vec![("alice/a1", "invalid_state")]);
}

#[test]
fn an_accepted_call_no_longer_times_out() {
    let mut b = Bench::active();
    assert_eq!(b.advance(RING * 2), vec![]);
    assert_eq!(b.sb.next_deadline(), None);
}

#[test]
fn a_reject_declines_for_every_device() {
    let mut b = Bench::ringing();
    let out = b.send("bob/b1", json!({"type":"reject","call_id":"c1"}));
    assert_eq!(
        out,
        vec![response("alice/a1", "c1", "rejected"), closed("bob/b2", "c1", "declined_elsewhere")]
    );
    assert_eq!(b.sb.live_calls(), 0);
    assert_eq!(error_code(&b.accept("bob/b2", "c1")), vec![("bob/b2", "not_in_call")]);
}

#[test]
fn a_busy_reject_tells_the_caller_busy() {
    let mut b = Bench::ringing();
    let out = b.send("bob/b2", json!({"type":"reject","call_id":"c1","busy":true}));
    assert_eq!(
        out,
        vec![response("alice/a1", "c1", "busy"), closed("bob/b1", "c1", "declined_elsewhere")]
    );
}

#[test]
fn rejects_from_the_wrong_party_are_refused() {
    let mut b = Bench::ringing();
    assert_eq!(
        error_code(&b.send("alice/a1", json!({"type":"reject","call_id":"c1"}))),
        vec![("alice/a1", "invalid_state")]
    );
    b.accept("bob/b1", "c1");
    assert_eq!(
        error_code(&b.send("bob/b1", json!({"type":"reject","call_id":"c1"}))),
        vec![("bob/b1", "invalid_state")]
    );
    assert_eq!(
        error_code(&b.send("bob/b2", json!({"type":"reject","call_id":"c1"}))),
        vec![("bob/b2", "not_in_call")]
    );
}

#[test]
fn an_unanswered_call_times_out_at_its_deadline() {
    let mut b = Bench::ringing();
    assert_eq!(b.sb.next_deadline(), Some(b.now + RING));
    assert_eq!(b.advance(RING - MS), vec![]);
    let out = b.advance(MS);
    assert_eq!(
        out,
        vec![
            response("alice/a1", "c1", "timeout"),
            closed("bob/b1", "c1", "timeout"),
            closed("bob/b2", "c1", "timeout")
        ]
    );
    assert_eq!(b.sb.live_calls(), 0);
}

#[test]
fn the_caller_hanging_up_while_ringing_cancels() {
    let mut b = Bench::ringing();
    let out = b.send("alice/a1", json!({"type":"hangup","call_id":"c1"}));
    assert_eq!(out, vec![closed("bob/b1", "c1", "cancelled"), closed("bob/b2", "c1", "cancelled")]);
    // The ring timer died with the call.
    assert_eq!(b.advance(RING), vec![]);
}

#[test]
fn the_callee_hanging_up_while_ringing_rejects() {
    let mut b = Bench::ringing();
    let out = b.send("bob/b2", json!({"type":"hangup","call_id":"c1"}));
    assert_eq!(
        out,
        vec![response("alice/a1", "c1", "rejected"), closed("bob/b1", "c1", "declined_elsewhere")]
    );
}

#[test]
fn hanging_up_an_accepted_call_tells_only_the_other_party() {
    let mut b = Bench::active();
    assert_eq!(
        b.send("bob/b1", json!({"type":"hangup","call_id":"c1"})),
        vec![closed("alice/a1", "c1", "hangup")]
    );
    let mut b = Bench::active();
    assert_eq!(
        b.send("alice/a1", json!({"type":"hangup","call_id":"c1"})),
        vec![closed("bob/b1", "c1", "hangup")]
    );
    assert_eq!(b.sb.live_calls(), 0);
}

#[test]
fn messages_about_someone_elses_call_are_not_in_call() {
    let mut b = Bench::active();
    b.connect("mallory/m");
    b.connect("alice/a2");
    for who in ["mallory/m", "alice/a2", "bob/b2"] {
        for msg in [
            json!({"type":"hangup","call_id":"c1"}),
            json!({"type":"signal","call_id":"c1","signal":candidate(1)}),
            json!({"type":"accept","call_id":"c1"}),
            json!({"type":"reject","call_id":"c1"}),
        ] {
            assert_eq!(
                error_code(&b.send(who, msg.clone())),
                vec![(who, "not_in_call")],
                "{who} {msg}"
            );
        }
    }
    assert_eq!(b.sb.live_calls(), 1);
    assert_eq!(error_code(&b.accept("bob/b1", "nope")), vec![("bob/b1", "not_in_call")]);
}

// --- Signals ---

#[test]
fn signals_go_from_the_caller_to_every_ringing_device() {
    let mut b = Bench::ringing();
    let out = b.signal("alice/a1", "c1", 1);
    let relayed = json!({"type":"signal","call_id":"c1","signal":candidate(1)});
    assert_eq!(out, vec![to("bob/b1", relayed.clone()), to("bob/b2", relayed)]);
}

#[test]
fn a_ringing_device_may_not_signal_before_accepting() {
    let mut b = Bench::ringing();
    assert_eq!(error_code(&b.signal("bob/b1", "c1", 1)), vec![("bob/b1", "invalid_state")]);
}

#[test]
fn signals_flow_both_ways_once_accepted() {
    let mut b = Bench::active();
    assert_eq!(
        b.signal("alice/a1", "c1", 1),
        vec![to("bob/b1", json!({"type":"signal","call_id":"c1","signal":candidate(1)}))]
    );
    assert_eq!(
        b.signal("bob/b1", "c1", 2),
        vec![to("alice/a1", json!({"type":"signal","call_id":"c1","signal":candidate(2)}))]
    );
}

#[test]
fn a_device_connecting_while_a_call_rings_is_rung_with_the_signals_so_far() {
    let mut b = Bench::ringing();
    b.signal("alice/a1", "c1", 1);
    let out = b.connect("bob/b3");
    assert_eq!(
        out,
        vec![
            incoming("bob/b3", "c1", "alice"),
            to("bob/b3", json!({"type":"signal","call_id":"c1","signal":candidate(1)}))
        ]
    );
    // It is now one of the ringing devices.
    assert_eq!(b.accept("bob/b3", "c1").len(), 4);
}

// --- Dropped connections ---

#[test]
fn a_dropped_caller_returning_in_time_gets_what_was_queued() {
    let mut b = Bench::ringing();
    b.drop_connection("alice/a1");
    assert_eq!(
        b.accept("bob/b1", "c1"),
        vec![response("bob/b1", "c1", "accepted"), closed("bob/b2", "c1", "answered_elsewhere")]
    );
    assert_eq!(b.signal("bob/b1", "c1", 1), vec![]);
    b.now += GRACE - MS;
    let out = b.reconnect(
        "alice/a1",
        json!([{"call_id":"c1","role":"caller","peer":"bob","state":"ringing","sdp":"offer","ring_elapsed_ms":1000}]),
    );
    // Queued, in order; the restatement adds nothing the queue already said.
    assert_eq!(
        out,
        vec![
            to(
                "alice/a1",
                json!({"type":"response","call_id":"c1","status":"accepted","sdp":"answer"})
            ),
            to("alice/a1", json!({"type":"signal","call_id":"c1","signal":candidate(1)})),
        ]
    );
    assert_eq!(b.advance(GRACE), vec![]);
    assert_eq!(b.signal("alice/a1", "c1", 2).len(), 1);
}

#[test]
fn a_dropped_active_party_that_does_not_return_is_peer_disconnected() {
    let mut b = Bench::active();
    b.drop_connection("bob/b1");
    assert_eq!(b.advance(GRACE - MS), vec![]);
    assert_eq!(b.advance(MS), vec![closed("alice/a1", "c1", "peer_disconnected")]);
    assert_eq!(b.sb.live_calls(), 0);
    // Coming back later, restating it, it learns the call is over.
    let out = b.reconnect(
        "bob/b1",
        json!([{"call_id":"c1","role":"callee","peer":"alice","state":"active"}]),
    );
    assert_eq!(out, vec![closed("bob/b1", "c1", "peer_disconnected")]);
}

#[test]
fn a_ringing_call_whose_caller_is_gone_is_cancelled() {
    let mut b = Bench::ringing();
    b.drop_connection("alice/a1");
    assert_eq!(
        b.advance(GRACE),
        vec![closed("bob/b1", "c1", "cancelled"), closed("bob/b2", "c1", "cancelled")]
    );
}

#[test]
fn a_ringing_call_rings_on_while_the_callee_has_devices_left() {
    let mut b = Bench::with(|c| c.ring_timeout = RING * 10);
    for who in ["alice/a1", "bob/b1", "bob/b2"] {
        b.connect(who);
    }
    b.invite("alice/a1", "c1", "bob");
    b.drop_connection("bob/b1");
    assert_eq!(b.advance(GRACE), vec![]);
    assert_eq!(b.sb.live_calls(), 1);
    b.drop_connection("bob/b2");
    b.now += MS;
    assert_eq!(b.advance(GRACE), vec![closed("alice/a1", "c1", "peer_disconnected")]);
}

#[test]
fn a_device_with_no_calls_is_forgotten_at_once() {
    let mut b = Bench::new();
    b.connect("bob/b1");
    b.drop_connection("bob/b1");
    assert_eq!(b.sb.next_deadline(), None);
    assert_eq!(b.sb.dir.user_count(), 0);
    b.connect("alice/a1");
    assert_eq!(b.invite("alice/a1", "c1", "bob"), vec![closed("alice/a1", "c1", "unreachable")]);
}

#[test]
fn the_queue_for_an_absent_device_is_bounded() {
    let mut b = Bench::with(|c| c.max_queued = 3);
    for who in ["alice/a1", "bob/b1"] {
        b.connect(who);
    }
    b.invite("alice/a1", "c1", "bob");
    b.accept("bob/b1", "c1");
    b.drop_connection("bob/b1");
    for n in 0..10 {
        b.signal("alice/a1", "c1", n);
    }
    let out = b.reconnect(
        "bob/b1",
        json!([{"call_id":"c1","role":"callee","peer":"alice","state":"active"}]),
    );
    let numbers: Vec<&Value> = out.iter().map(|(_, m)| &m["signal"]["candidate"]).collect();
    assert_eq!(numbers, vec!["candidate:0", "candidate:1", "candidate:2"]);
}

#[test]
fn unsent_messages_of_a_dropped_connection_are_kept_first() {
    let mut b = Bench::active();
    let unsent = vec![ServerMessage::Signal {
        call_id: "c1".into(),
        signal: serde_json::from_value(candidate(0)).expect("signal"),
    }];
    b.sb.disconnect(b.now, &key("bob/b1"), unsent);
    b.signal("alice/a1", "c1", 1);
    let out = b.reconnect(
        "bob/b1",
        json!([{"call_id":"c1","role":"callee","peer":"alice","state":"active"}]),
    );
    let numbers: Vec<&Value> = out.iter().map(|(_, m)| &m["signal"]["candidate"]).collect();
    assert_eq!(numbers, vec!["candidate:0", "candidate:1"]);
}

#[test]
fn a_call_that_ended_during_the_drop_is_closed_once() {
    let mut b = Bench::active();
    b.drop_connection("bob/b1");
    b.send("alice/a1", json!({"type":"hangup","call_id":"c1"}));
    let out = b.reconnect(
        "bob/b1",
        json!([{"call_id":"c1","role":"callee","peer":"alice","state":"active"}]),
    );
    assert_eq!(out, vec![closed("bob/b1", "c1", "hangup")]);
}

#[test]
fn a_ringing_device_back_in_time_without_restating_is_rung_again() {
    let mut b = Bench::ringing();
    b.drop_connection("bob/b1");
    assert_eq!(b.connect("bob/b1"), vec![incoming("bob/b1", "c1", "alice")]);
}

#[test]
fn a_replacing_connection_restates_like_a_reconnect() {
    // The switchboard sees the same device connect again without a disconnect in between.
    let mut b = Bench::active();
    let out = b.reconnect(
        "bob/b1",
        json!([{"call_id":"c1","role":"callee","peer":"alice","state":"accepting","sdp":"answer"}]),
    );
    assert_eq!(out, vec![response("bob/b1", "c1", "accepted")]);
    assert_eq!(b.signal("alice/a1", "c1", 1).len(), 1);
}

// --- Server restarts: rebuilding from restatements ---

fn caller_active() -> Value {
    json!([{"call_id":"c1","role":"caller","peer":"bob","state":"active"}])
}

fn callee_active() -> Value {
    json!([{"call_id":"c1","role":"callee","peer":"alice","state":"active"}])
}

#[test]
fn an_active_call_is_rebuilt_from_both_restatements() {
    let mut b = Bench::new();
    assert_eq!(b.reconnect("alice/a1", caller_active()), vec![]);
    assert_eq!(b.sb.live_calls(), 1);
    // Alice's signals wait for bob's device to come back.
    assert_eq!(b.signal("alice/a1", "c1", 1), vec![]);
    b.now += GRACE / 2;
    let out = b.reconnect("bob/b1", callee_active());
    assert_eq!(
        out,
        vec![to("bob/b1", json!({"type":"signal","call_id":"c1","signal":candidate(1)}))]
    );
    assert_eq!(b.advance(GRACE), vec![]);
    assert_eq!(
        b.signal("bob/b1", "c1", 2),
        vec![to("alice/a1", json!({"type":"signal","call_id":"c1","signal":candidate(2)}))]
    );
}

#[test]
fn a_rebuilt_call_the_peer_never_restates_is_peer_disconnected() {
    let mut b = Bench::new();
    b.reconnect("bob/b1", callee_active());
    assert_eq!(b.advance(GRACE - MS), vec![]);
    assert_eq!(b.advance(MS), vec![closed("bob/b1", "c1", "peer_disconnected")]);
    // A late caller learns it from the tombstone.
    assert_eq!(
        b.reconnect("alice/a1", caller_active()),
        vec![closed("alice/a1", "c1", "peer_disconnected")]
    );
}

#[test]
fn a_rebuilt_ringing_call_keeps_its_deadline_and_rings_the_other_devices() {
    let mut b = Bench::new();
    b.connect("bob/b2");
    let out = b.reconnect(
        "bob/b1",
        json!([{"call_id":"c1","role":"callee","peer":"alice","state":"ringing","sdp":"offer","ring_elapsed_ms":25000}]),
    );
    assert_eq!(out, vec![incoming("bob/b2", "c1", "alice")]);
    let out = b.reconnect("alice/a1", json!([{"call_id":"c1","role":"caller","peer":"bob","state":"ringing","sdp":"offer","ring_elapsed_ms":25010}]));
    assert_eq!(out, vec![]);
    assert_eq!(b.advance(Duration::from_millis(4999)), vec![]);
    assert_eq!(
        b.advance(MS),
        vec![
            response("alice/a1", "c1", "timeout"),
            closed("bob/b1", "c1", "timeout"),
            closed("bob/b2", "c1", "timeout")
        ]
    );
}

#[test]
fn a_caller_re_sending_its_unacknowledged_invite_joins_the_call_the_callee_rebuilt() {
    let mut b = Bench::new();
    let ringing = json!([{"call_id":"c1","role":"callee","peer":"alice","state":"ringing","sdp":"offer","ring_elapsed_ms":1000}]);
    assert_eq!(b.reconnect("bob/b1", ringing), vec![]);
    b.connect("alice/a1");
    assert_eq!(
        b.invite("alice/a1", "c1", "bob"),
        vec![to("alice/a1", json!({"type":"ringing","call_id":"c1"}))]
    );
    // The deadline is the callee's, and the caller now hears it.
    assert_eq!(
        b.advance(RING - Duration::from_millis(1000)),
        vec![response("alice/a1", "c1", "timeout"), closed("bob/b1", "c1", "timeout")]
    );
    // Someone else re-using the id is still refused.
    b.reconnect(
        "bob/b1",
        json!([{"call_id":"c2","role":"callee","peer":"alice","state":"ringing"}]),
    );
    b.connect("carol/c1");
    assert_eq!(
        error_code(&b.invite("carol/c1", "c2", "bob")),
        vec![("carol/c1", "duplicate_call_id")]
    );
}

#[test]
fn a_rebuilt_ringing_call_past_its_deadline_times_out_at_once() {
    let mut b = Bench::new();
    b.reconnect("alice/a1", json!([{"call_id":"c1","role":"caller","peer":"bob","state":"ringing","ring_elapsed_ms":31000}]));
    assert_eq!(b.sb.next_deadline(), Some(b.now));
    assert_eq!(b.advance(Duration::ZERO), vec![response("alice/a1", "c1", "timeout")]);
}

#[test]
fn a_caller_restating_a_ringing_call_rings_the_connected_callee() {
    let mut b = Bench::new();
    b.connect("bob/b1");
    let out = b.reconnect(
        "alice/a1",
        json!([{"call_id":"c1","role":"caller","peer":"bob","state":"ringing","sdp":"offer"}]),
    );
    assert_eq!(out, vec![incoming("bob/b1", "c1", "alice")]);
    assert_eq!(
        b.accept("bob/b1", "c1")[0],
        to(
            "alice/a1",
            json!({"type":"response","call_id":"c1","status":"accepted","sdp":"answer"})
        )
    );
}

#[test]
fn an_accepting_callee_and_a_ringing_caller_make_an_accepted_call() {
    // Callee first.
    let mut b = Bench::new();
    let out = b.reconnect(
        "bob/b1",
        json!([{"call_id":"c1","role":"callee","peer":"alice","state":"accepting","sdp":"answer"}]),
    );
    assert_eq!(out, vec![response("bob/b1", "c1", "accepted")]);
    let out = b.reconnect(
        "alice/a1",
        json!([{"call_id":"c1","role":"caller","peer":"bob","state":"ringing","sdp":"offer"}]),
    );
    assert_eq!(
        out,
        vec![to(
            "alice/a1",
            json!({"type":"response","call_id":"c1","status":"accepted","sdp":"answer"})
        )]
    );
    assert_eq!(b.advance(GRACE), vec![]);

    // Caller first.
    let mut b = Bench::new();
    b.reconnect(
        "alice/a1",
        json!([{"call_id":"c1","role":"caller","peer":"bob","state":"ringing","sdp":"offer"}]),
    );
    let out = b.reconnect(
        "bob/b1",
        json!([{"call_id":"c1","role":"callee","peer":"alice","state":"accepting","sdp":"answer"}]),
    );
    assert_eq!(
        out,
        vec![
            to(
                "alice/a1",
                json!({"type":"response","call_id":"c1","status":"accepted","sdp":"answer"})
            ),
            response("bob/b1", "c1", "accepted"),
        ]
    );
    assert_eq!(b.signal("bob/b1", "c1", 1).len(), 1);
}

#[test]
fn a_caller_that_saw_the_accept_lets_the_other_ringing_devices_go() {
    let mut b = Bench::new();
    b.reconnect(
        "bob/b2",
        json!([{"call_id":"c1","role":"callee","peer":"alice","state":"ringing","sdp":"offer"}]),
    );
    let out = b.reconnect("alice/a1", caller_active());
    assert_eq!(out, vec![closed("bob/b2", "c1", "answered_elsewhere")]);
    assert_eq!(b.reconnect("bob/b1", callee_active()), vec![]);
    assert_eq!(b.signal("alice/a1", "c1", 1).len(), 1);
}

#[test]
fn a_hangup_for_an_unknown_call_leaves_a_tombstone_for_the_peer() {
    let mut b = Bench::new();
    b.connect("bob/b1");
    let out = b.send("bob/b1", json!({"type":"hangup","call_id":"c1"}));
    assert_eq!(error_code(&out), vec![("bob/b1", "not_in_call")]);
    assert_eq!(b.reconnect("alice/a1", caller_active()), vec![closed("alice/a1", "c1", "hangup")]);
    assert_eq!(b.sb.live_calls(), 0);
    // For a ringing call, the peer hears what it would have heard live.
    assert_eq!(
        b.reconnect(
            "alice/a2",
            json!([{"call_id":"c1","role":"caller","peer":"bob","state":"ringing"}])
        ),
        vec![response("alice/a2", "c1", "rejected")]
    );
    // Someone who is not bob's peer is not affected by bob's hangup.
    let out = b.reconnect(
        "carol/c",
        json!([{"call_id":"c1","role":"caller","peer":"dave","state":"active"}]),
    );
    assert_eq!(out, vec![]);
    assert_eq!(b.sb.live_calls(), 1);
}

#[test]
fn a_hangup_from_a_device_that_did_not_restate_ends_the_rebuilt_call() {
    let mut b = Bench::new();
    b.reconnect("alice/a1", caller_active());
    b.connect("bob/b1");
    assert_eq!(
        b.send("bob/b1", json!({"type":"hangup","call_id":"c1"})),
        vec![closed("alice/a1", "c1", "hangup")]
    );
}

#[test]
fn a_contradicting_restatement_is_not_in_call_and_changes_nothing() {
    let mut b = Bench::active();
    let out = b.reconnect(
        "carol/c",
        json!([{"call_id":"c1","role":"caller","peer":"bob","state":"active"}]),
    );
    assert_eq!(error_code(&out), vec![("carol/c", "not_in_call")]);
    let out = b.reconnect("alice/a2", caller_active());
    assert_eq!(error_code(&out), vec![("alice/a2", "not_in_call")]);
    let out = b.reconnect("bob/b2", callee_active());
    assert_eq!(error_code(&out), vec![("bob/b2", "not_in_call")]);
    assert_eq!(
        b.signal("alice/a1", "c1", 1),
        vec![to("bob/b1", json!({"type":"signal","call_id":"c1","signal":candidate(1)}))]
    );
}

#[test]
fn a_restatement_of_someone_elses_ended_call_is_not_in_call() {
    let mut b = Bench::active();
    b.send("alice/a1", json!({"type":"hangup","call_id":"c1"}));
    let out = b.reconnect(
        "carol/c",
        json!([{"call_id":"c1","role":"caller","peer":"bob","state":"active"}]),
    );
    assert_eq!(error_code(&out), vec![("carol/c", "not_in_call")]);
    assert_eq!(b.sb.live_calls(), 0);
}

#[test]
fn invalid_restatements_are_refused_one_by_one() {
    let mut b = Bench::new();
    let out = b.reconnect(
        "alice/a1",
        json!([
            {"call_id":"bad id","role":"caller","peer":"bob","state":"active"},
            {"call_id":"c2","role":"caller","peer":"alice","state":"active"},
            {"call_id":"c3","role":"caller","peer":"bob","state":"accepting"},
            {"call_id":"c4","role":"caller","peer":"","state":"active"},
            {"call_id":"c5","role":"caller","peer":"bob","state":"ringing","data":"x".repeat(17)},
            {"call_id":"c6","role":"caller","peer":"bob","state":"active"}
        ]),
    );
    assert_eq!(error_code(&out), vec![("alice/a1", "invalid_request"); 5]);
    assert_eq!(b.sb.live_calls(), 1);
}

#[test]
fn at_most_a_few_calls_may_be_restated() {
    let mut b = Bench::new();
    let calls: Vec<Value> = (0..MAX_RESTATED_CALLS + 2)
        .map(|i| json!({"call_id":format!("c{i}"),"role":"caller","peer":format!("p{i}"),"state":"active"}))
        .collect();
    let out = b.reconnect("alice/a1", Value::Array(calls));
    assert_eq!(error_code(&out), vec![("alice/a1", "invalid_request"); 2]);
    assert_eq!(b.sb.live_calls(), MAX_RESTATED_CALLS);
}

#[test]
fn tombstones_expire() {
    let mut b = Bench::with(|c| c.tombstone_ttl = Duration::from_secs(60));
    b.connect("alice/a1");
    b.invite("alice/a1", "c1", "bob");
    assert_eq!(b.sb.tombstones.len(), 1);
    assert_eq!(b.sb.next_deadline(), Some(b.now + Duration::from_secs(60)));
    b.advance(Duration::from_secs(60));
    assert!(b.sb.tombstones.is_empty());
    assert_eq!(b.sb.next_deadline(), None);
}

#[test]
fn stale_deadlines_are_not_reported() {
    let mut b = Bench::with(|c| c.tombstone_ttl = Duration::from_secs(3600));
    b.connect("alice/a1");
    b.connect("bob/b1");
    b.invite("alice/a1", "c1", "bob");
    b.accept("bob/b1", "c1");
    // The ring deadline went with the accept.
    assert_eq!(b.sb.next_deadline(), None);
    b.drop_connection("bob/b1");
    assert_eq!(b.sb.next_deadline(), Some(b.now + GRACE));
    b.reconnect("bob/b1", callee_active());
    assert_eq!(b.sb.next_deadline(), None);
}

#[test]
fn a_ringing_device_back_in_time_gets_each_signal_once() {
    let mut b = Bench::ringing();
    b.drop_connection("bob/b1");
    b.signal("alice/a1", "c1", 1);
    let out = b.reconnect(
        "bob/b1",
        json!([{"call_id":"c1","role":"callee","peer":"alice","state":"ringing","sdp":"offer"}]),
    );
    assert_eq!(
        out,
        vec![to("bob/b1", json!({"type":"signal","call_id":"c1","signal":candidate(1)}))]
    );
}

#[test]
fn a_ringing_device_restating_after_a_restart_gets_the_signals_since() {
    let mut b = Bench::new();
    b.reconnect(
        "alice/a1",
        json!([{"call_id":"c1","role":"caller","peer":"bob","state":"ringing","sdp":"offer"}]),
    );
    b.signal("alice/a1", "c1", 1);
    let out = b.reconnect(
        "bob/b1",
        json!([{"call_id":"c1","role":"callee","peer":"alice","state":"ringing","sdp":"offer"}]),
    );
    assert_eq!(
        out,
        vec![to("bob/b1", json!({"type":"signal","call_id":"c1","signal":candidate(1)}))]
    );
}

#[test]
fn glare_does_not_repeat_signals_the_merged_device_already_has() {
    let mut b = Bench::ringing();
    b.signal("alice/a1", "c1", 1);
    let out = b.invite("bob/b1", "c2", "alice");
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].1["type"], "merged");
}

#[test]
fn an_invite_that_never_rang_is_not_rebuilt_by_its_restatement() {
    let mut b = Bench::new();
    b.connect("alice/a1");
    b.invite("alice/a1", "c1", "bob");
    // Alice drops before reading `unreachable`, and after her grace restates the call.
    b.connect("bob/b1");
    let out = b.reconnect(
        "alice/a1",
        json!([{"call_id":"c1","role":"caller","peer":"bob","state":"ringing"}]),
    );
    assert_eq!(out, vec![closed("alice/a1", "c1", "unreachable")]);
    assert_eq!(b.sb.live_calls(), 0);
}

#[test]
fn a_call_restated_by_one_party_counts_only_for_that_party() {
    let mut b = Bench::new();
    for who in ["bob/b1", "carol/c", "dave/d"] {
        assert_eq!(b.connect(who), vec![]);
    }
    let claims = json!([
        {"call_id":"x1","role":"caller","peer":"bob","state":"active"},
        {"call_id":"x2","role":"callee","peer":"bob","state":"active"},
    ]);
    assert_eq!(b.reconnect("mallory/m", claims), vec![]);
    // Bob is not busy for Carol's call, and nobody but Mallory hears of the claims.
    let out = b.invite("carol/c", "c1", "bob");
    assert_eq!(
        out,
        vec![
            to(
                "bob/b1",
                json!({"type":"incoming","call_id":"c1","from":"carol","options":{"ice_transport_policy":"all"},"sdp":"offer"})
            ),
            to("carol/c", json!({"type":"ringing","call_id":"c1"})),
        ]
    );
    // Mallory is busy with its own claims.
    assert_eq!(b.invite("dave/d", "d1", "mallory"), vec![response("dave/d", "d1", "busy")]);
    // Past the grace period the claims end, told to Mallory alone.
    let out = b.advance(GRACE);
    assert!(out.iter().all(|(who, _)| who == "mallory/m"), "{out:?}");
}

// --- Pushes ---

impl Bench {
    /// alice/a1 invites bob, whose devices `reachable` a push can reach.
    fn invite_pushing(&mut self, call_id: &str, reachable: &[&str]) -> Got {
        let msg: ClientMessage = serde_json::from_value(
            json!({"type":"invite","call_id":call_id,"to":"bob","data":"d","sdp":"offer"}),
        )
        .expect("parses");
        let reachable: Vec<String> = reachable.iter().map(|s| (*s).to_owned()).collect();
        got(self.sb.handle_with(self.now, &key("alice/a1"), msg, &reachable))
    }

    fn woken(&mut self, who: &str, call_id: &str) -> Got {
        let mut out = self.connect(who);
        out.extend(got(self.sb.woken(&key(who), call_id)));
        out
    }
}

#[test]
fn a_callee_with_only_pushed_devices_rings_and_is_pushed() {
    let mut b = Bench::new();
    b.connect("alice/a1");
    b.connect("bob/b1");
    let out = b.invite_pushing("c1", &["b1", "b2"]);
    assert_eq!(out.len(), 2, "b1 rings, alice hears ringing: {out:?}");
    let orders = b.sb.take_pushes();
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0].devices, ["b2"], "the connected device is rung, not pushed");
    assert_eq!(orders[0].data.as_deref(), Some("d"));
    assert_eq!(orders[0].deadline, b.now + RING);

    let mut b = Bench::new();
    b.connect("alice/a1");
    assert_eq!(
        b.invite_pushing("c1", &["b9"]),
        vec![to("alice/a1", json!({"type":"ringing","call_id":"c1"}))]
    );
    // Pushed devices count as the callee being there: another caller hears busy.
    b.connect("carol/k1");
    assert_eq!(b.invite("carol/k1", "c2", "bob"), vec![response("carol/k1", "c2", "busy")]);
    // The woken device rings and can take the call.
    let out = b.woken("bob/b9", "c1");
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1["type"], "incoming");
    assert_eq!(b.accept("bob/b9", "c1").len(), 2);
}

#[test]
fn a_woken_device_learns_at_once_that_its_call_ended() {
    let mut b = Bench::new();
    b.connect("alice/a1");
    b.invite_pushing("c1", &["b9"]);
    b.send("alice/a1", json!({"type":"hangup","call_id":"c1"}));
    assert_eq!(b.woken("bob/b9", "c1"), vec![closed("bob/b9", "c1", "cancelled")]);

    // Answered by another device: while it lasts, and after it ended.
    let mut b = Bench::new();
    b.connect("alice/a1");
    b.connect("bob/b1");
    b.invite_pushing("c1", &["b9"]);
    b.accept("bob/b1", "c1");
    assert_eq!(b.woken("bob/b9", "c1"), vec![closed("bob/b9", "c1", "answered_elsewhere")]);
    b.send("alice/a1", json!({"type":"hangup","call_id":"c1"}));
    assert_eq!(b.woken("bob/b8", "c1"), vec![closed("bob/b8", "c1", "answered_elsewhere")]);

    // Timed out; and a call the server never knew (or not bob's).
    let mut b = Bench::new();
    b.connect("alice/a1");
    b.invite_pushing("c1", &["b9"]);
    b.advance(RING);
    assert_eq!(b.woken("bob/b9", "c1"), vec![closed("bob/b9", "c1", "timeout")]);
    assert_eq!(error_code(&b.woken("bob/b9", "nope")), [("bob/b9", "not_in_call")]);
    assert_eq!(error_code(&b.woken("carol/k1", "c1")), [("carol/k1", "not_in_call")]);
    assert_eq!(error_code(&b.woken("bob/b9", "../x")), [("bob/b9", "invalid_request")]);
}

// --- Pre-connect ---

fn early_invite(call_id: &str) -> Value {
    json!({"type":"invite","call_id":call_id,"to":"bob","sdp":"offer",
           "options":{"ice_transport_policy":"all","early_answer":true}})
}

fn preconnect_incoming(who: &str, call_id: &str) -> (String, Value) {
    to(
        who,
        json!({"type":"incoming","call_id":call_id,"from":"alice","sdp":"offer","preconnect":true,
               "options":{"ice_transport_policy":"all","early_answer":true}}),
    )
}

/// Asserts that no message in `out` lets a device pre-connect.
fn no_pre_connect(out: &Got) {
    assert!(out.iter().all(|(_, m)| m.get("preconnect").is_none()), "{out:?}");
}

#[test]
fn the_only_device_of_the_callee_pre_connects_and_signals_while_it_rings() {
    let mut b = Bench::new();
    b.connect("alice/a1");
    b.connect("bob/b1");
    let out = b.send("alice/a1", early_invite("c1"));
    assert_eq!(out[0], preconnect_incoming("bob/b1", "c1"));
    let answer = json!({"kind":"description","sdp_type":"answer","sdp":"answer"});
    let out = b.send("bob/b1", json!({"type":"signal","call_id":"c1","signal":answer}));
    assert_eq!(out, vec![to("alice/a1", json!({"type":"signal","call_id":"c1","signal":answer}))]);
    assert_eq!(
        b.signal("bob/b1", "c1", 1),
        vec![to("alice/a1", json!({"type":"signal","call_id":"c1","signal":candidate(1)}))]
    );
    // The call is bound to b1: a device that signs in while it rings is not rung.
    assert_eq!(b.connect("bob/b2"), vec![]);
    assert_eq!(error_code(&b.accept("bob/b2", "c1")), vec![("bob/b2", "not_in_call")]);
    assert_eq!(b.accept("bob/b1", "c1").len(), 2);
}

#[test]
fn a_call_ringing_on_two_devices_does_not_pre_connect() {
    let mut b = Bench::new();
    for who in ["alice/a1", "bob/b1", "bob/b2"] {
        b.connect(who);
    }
    no_pre_connect(&b.send("alice/a1", early_invite("c1")));
    assert_eq!(error_code(&b.signal("bob/b1", "c1", 1)), vec![("bob/b1", "invalid_state")]);
}

#[test]
fn a_caller_that_takes_no_early_answer_gets_no_pre_connect() {
    let mut b = Bench::new();
    b.connect("alice/a1");
    b.connect("bob/b1");
    assert_eq!(b.invite("alice/a1", "c1", "bob")[0], incoming("bob/b1", "c1", "alice"));
    assert_eq!(error_code(&b.signal("bob/b1", "c1", 1)), vec![("bob/b1", "invalid_state")]);
}

#[test]
fn a_callee_with_a_connected_and_a_pushed_device_does_not_pre_connect() {
    let mut b = Bench::new();
    b.connect("alice/a1");
    b.connect("bob/b1");
    let msg: ClientMessage = serde_json::from_value(early_invite("c1")).expect("parses");
    no_pre_connect(&got(b.sb.handle_with(
        b.now,
        &key("alice/a1"),
        msg,
        &["b1".into(), "b2".into()],
    )));
}

#[test]
fn the_only_device_woken_by_a_push_pre_connects_once_it_connects() {
    let mut b = Bench::new();
    b.connect("alice/a1");
    let msg: ClientMessage = serde_json::from_value(early_invite("c1")).expect("parses");
    got(b.sb.handle_with(b.now, &key("alice/a1"), msg, &["b1".into()]));
    let out = b.connect("bob/b1");
    assert_eq!(out, vec![preconnect_incoming("bob/b1", "c1")]);
    assert_eq!(b.signal("bob/b1", "c1", 1).len(), 1, "its candidates reach the caller");
}
