//! The lifecycle machine, driven directly: no sockets, no clock, time moved by hand.

use super::*;
use duet_protocol::{
    CallOptions, CallStatus, ClientMessage as C, CloseReason, ErrorCode, Limits, ServerMessage as S,
};

const RING: Duration = Duration::from_secs(30);
const GRACE: Duration = Duration::from_secs(20);
const MARGIN: Duration = Duration::from_secs(3);

struct Rig {
    m: Lifecycle,
    t0: Instant,
    now: Instant,
}

impl Rig {
    fn new(uid: &str) -> Rig {
        let t0 = Instant::now();
        let mut m =
            Lifecycle::new(LifecycleConfig { margin: MARGIN, ..LifecycleConfig::default() }, t0);
        m.on_connected(t0, &welcome(uid));
        Rig { m, t0, now: t0 }
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        if self.m.poll_timeout().is_some_and(|t| t <= self.now) {
            self.m.handle_timeout(self.now);
        }
    }

    fn recv(&mut self, msg: S) -> Vec<Output> {
        self.m.on_message(self.now, msg);
        self.drain()
    }

    fn drain(&mut self) -> Vec<Output> {
        std::iter::from_fn(|| self.m.poll_output()).collect()
    }

    /// Alice calls bob; returns the conversation and its call id, outputs drained.
    fn calling(&mut self, acked: bool) -> (ConvId, CallId) {
        let (conv, id) =
            self.m.call(self.now, "bob", Some("d".into()), CallOptions::default()).unwrap();
        self.m.offer_ready(self.now, conv, "offer".into()).unwrap();
        self.drain();
        if acked {
            self.recv(S::Ringing { call_id: id.clone() });
        }
        (conv, id)
    }

    fn ringing(&mut self, id: &str, from: &str) -> ConvId {
        let out = self.recv(incoming(id, from));
        match out.as_slice() {
            [Output::Incoming { conv, .. }] => *conv,
            other => panic!("expected one Incoming, got {other:?}"),
        }
    }
}

fn welcome(uid: &str) -> Welcome {
    Welcome { uid: uid.into(), ring_timeout: RING, grace: GRACE, limits: Limits::default() }
}

fn incoming(id: &str, from: &str) -> S {
    S::Incoming {
        call_id: id.into(),
        from: from.into(),
        data: Some("hi".into()),
        options: CallOptions::default(),
        sdp: Some("offer".into()),
        preconnect: false,
    }
}

/// The server's word that our call `ours` is merged into bob's call "theirs" (glare).
fn merged_into_bobs(ours: CallId) -> S {
    S::Merged {
        call_id: ours,
        into: IncomingCall {
            call_id: "theirs".into(),
            from: "bob".into(),
            data: None,
            options: CallOptions::default(),
            sdp: Some("bob-offer".into()),
            preconnect: false,
        },
    }
}

fn sent(out: &[Output]) -> Vec<C> {
    out.iter()
        .filter_map(|o| if let Output::Send(m) = o { Some(m.clone()) } else { None })
        .collect()
}

fn events(out: &[Output], conv: ConvId) -> Vec<CallEvent> {
    out.iter()
        .filter_map(|o| match o {
            Output::Event { conv: c, event } if *c == conv => Some(event.clone()),
            _ => None,
        })
        .collect()
}

// ---- every app action in every state ----

#[derive(Debug, Clone, Copy, PartialEq)]
enum St {
    /// Caller, the media layer is still making the offer.
    Preparing,
    CallingUnacked,
    CallingAcked,
    Ringing,
    /// Callee, the app accepted and the media layer is making the answer.
    Answering,
    /// Caller turned callee by a glare merge, the media layer making the answer.
    MergedAnswering,
    Accepting,
    ConnectedCaller,
    ConnectedCallee,
    Closed,
}

const ALL: [St; 10] = [
    St::Preparing,
    St::CallingUnacked,
    St::CallingAcked,
    St::Ringing,
    St::Answering,
    St::MergedAnswering,
    St::Accepting,
    St::ConnectedCaller,
    St::ConnectedCallee,
    St::Closed,
];

/// A machine with one conversation in state `st` (for alice; the peer is bob).
fn in_state(st: St) -> (Rig, ConvId) {
    let mut r = Rig::new("alice");
    let conv = match st {
        St::Preparing => {
            let (conv, _) = r.m.call(r.now, "bob", None, CallOptions::default()).unwrap();
            r.drain();
            conv
        }
        St::CallingUnacked => r.calling(false).0,
        St::CallingAcked => r.calling(true).0,
        St::Ringing => r.ringing("in1", "bob"),
        St::Answering => {
            let conv = r.ringing("in1", "bob");
            r.m.begin_accept(r.now, conv).unwrap();
            r.drain();
            conv
        }
        St::MergedAnswering => {
            let (conv, id) = r.calling(true);
            r.recv(S::Merged {
                call_id: id,
                into: IncomingCall {
                    call_id: "in1".into(),
                    from: "bob".into(),
                    data: None,
                    options: CallOptions::default(),
                    sdp: Some("offer".into()),
                    preconnect: false,
                },
            });
            conv
        }
        St::Accepting => {
            let conv = r.ringing("in1", "bob");
            r.m.begin_accept(r.now, conv).unwrap();
            r.m.answer_ready(r.now, conv, "answer".into()).unwrap();
            r.drain();
            conv
        }
        St::ConnectedCaller => {
            let (conv, id) = r.calling(true);
            r.recv(S::Response {
                call_id: id,
                status: CallStatus::Accepted,
                sdp: Some("answer".into()),
            });
            conv
        }
        St::ConnectedCallee => {
            let conv = r.ringing("in1", "bob");
            r.m.begin_accept(r.now, conv).unwrap();
            r.m.answer_ready(r.now, conv, "answer".into()).unwrap();
            r.recv(S::Response { call_id: "in1".into(), status: CallStatus::Accepted, sdp: None });
            conv
        }
        St::Closed => {
            let (conv, id) = r.calling(true);
            r.recv(S::Response { call_id: id, status: CallStatus::Rejected, sdp: None });
            conv
        }
    };
    (r, conv)
}

fn expected_state(st: St) -> ConversationState {
    match st {
        St::Preparing | St::CallingUnacked | St::CallingAcked | St::MergedAnswering => {
            ConversationState::Calling
        }
        St::Ringing => ConversationState::Ringing,
        St::Answering | St::Accepting => ConversationState::Accepting,
        St::ConnectedCaller | St::ConnectedCallee => ConversationState::Connected,
        St::Closed => ConversationState::Closed,
    }
}

#[test]
fn every_state_reads_back() {
    for st in ALL {
        let (r, conv) = in_state(st);
        assert_eq!(r.m.state(conv), expected_state(st), "{st:?}");
    }
}

#[test]
fn accept_in_every_state() {
    for st in ALL {
        let (mut r, conv) = in_state(st);
        let res = r.m.begin_accept(r.now, conv);
        let out = r.drain();
        match st {
            St::Ringing => {
                assert_eq!(res, Ok(()));
                assert_eq!(
                    out,
                    vec![Output::AnswerNeeded {
                        conv,
                        call_id: "in1".into(),
                        remote_sdp: Some("offer".into()),
                        options: CallOptions::default(),
                    }],
                    "the media layer answers the offer that came with the call"
                );
                assert!(sent(&out).is_empty(), "nothing goes out before the answer exists");
                assert_eq!(r.m.state(conv), ConversationState::Accepting);
            }
            St::Closed => assert_eq!(res, Err(ActionError::Closed(None)), "{st:?}"),
            _ => {
                assert!(matches!(res, Err(ActionError::InvalidState(_))), "{st:?}: {res:?}");
                assert!(out.is_empty(), "{st:?}: a refused accept sends nothing");
            }
        }
    }
}

#[test]
fn answer_ready_in_every_state() {
    for st in ALL {
        let (mut r, conv) = in_state(st);
        let res = r.m.answer_ready(r.now, conv, "answer".into());
        let out = r.drain();
        match st {
            St::Answering | St::MergedAnswering => {
                assert_eq!(res, Ok(()), "{st:?}");
                assert_eq!(
                    sent(&out),
                    vec![C::Accept { call_id: "in1".into(), sdp: Some("answer".into()) }],
                    "{st:?}"
                );
            }
            St::Closed => assert_eq!(res, Err(DescriptionRefused::Closed)),
            _ => {
                assert_eq!(res, Err(DescriptionRefused::WrongPhase), "{st:?}");
                assert!(out.is_empty(), "{st:?}");
            }
        }
    }
}

#[test]
fn offer_ready_in_every_state() {
    for st in ALL {
        let (mut r, conv) = in_state(st);
        let res = r.m.offer_ready(r.now, conv, "offer".into());
        let out = r.drain();
        match st {
            St::Preparing => {
                assert_eq!(res, Ok(()));
                assert!(
                    matches!(sent(&out).as_slice(), [C::Invite { to, sdp: Some(sdp), .. }] if to == "bob" && sdp == "offer")
                );
            }
            St::Closed => assert_eq!(res, Err(DescriptionRefused::Closed)),
            _ => {
                assert_eq!(res, Err(DescriptionRefused::WrongPhase), "{st:?}");
                assert!(out.is_empty(), "{st:?}");
            }
        }
    }
}

#[test]
fn media_failure_in_every_state_ends_the_call_with_an_error() {
    for st in ALL {
        let (mut r, conv) = in_state(st);
        let id = r.m.call_id(conv);
        r.m.media_failed(r.now, conv, CallError::MediaSetup { detail: "no camera".into() });
        let out = r.drain();
        if st == St::Closed {
            assert!(out.is_empty());
            continue;
        }
        assert_eq!(
            events(&out, conv),
            vec![
                CallEvent::Failed(CallError::MediaSetup { detail: "no camera".into() }),
                CallEvent::Closed(EndReason::Failed)
            ],
            "{st:?}"
        );
        let told_server = sent(&out) == vec![C::Hangup { call_id: id.unwrap() }];
        assert_eq!(told_server, st != St::Preparing, "{st:?}: the server hears of calls it knows");
    }
}

#[test]
fn candidates_wait_for_the_description_they_belong_with() {
    let cand =
        |n: &str| Signal::Candidate { candidate: n.into(), sdp_mid: None, sdp_mline_index: None };
    // Caller: gathered while the offer is made, sent after the invite.
    let (mut r, conv) = in_state(St::Preparing);
    r.m.signal(conv, cand("c1")).unwrap();
    assert!(r.drain().is_empty());
    r.m.offer_ready(r.now, conv, "offer".into()).unwrap();
    let msgs = sent(&r.drain());
    assert!(matches!(msgs[0], C::Invite { .. }));
    assert!(matches!(&msgs[1], C::Signal { signal, .. } if *signal == cand("c1")));
    // Callee: gathered while the answer is made, sent after the accept.
    let (mut r, conv) = in_state(St::Answering);
    r.m.signal(conv, cand("c2")).unwrap();
    assert!(r.drain().is_empty());
    r.m.answer_ready(r.now, conv, "answer".into()).unwrap();
    let msgs = sent(&r.drain());
    assert!(matches!(msgs[0], C::Accept { .. }));
    assert!(matches!(&msgs[1], C::Signal { signal, .. } if *signal == cand("c2")));
}

#[test]
fn reject_in_every_state() {
    for st in ALL {
        let (mut r, conv) = in_state(st);
        let res = r.m.reject(r.now, conv);
        let out = r.drain();
        match st {
            St::Ringing => {
                assert_eq!(res, Ok(()));
                assert_eq!(sent(&out), vec![C::Reject { call_id: "in1".into(), busy: false }]);
                assert!(
                    events(&out, conv).is_empty(),
                    "a local reject tells the app nothing it did not do"
                );
                assert_eq!(r.m.state(conv), ConversationState::Closed);
            }
            St::Closed => assert_eq!(res, Err(ActionError::Closed(None))),
            _ => {
                assert!(matches!(res, Err(ActionError::InvalidState(_))), "{st:?}");
                assert_eq!(
                    r.m.state(conv),
                    expected_state(st),
                    "{st:?}: a refused reject changes nothing"
                );
            }
        }
    }
}

#[test]
fn close_in_every_state_hangs_up_once() {
    for st in ALL {
        let (mut r, conv) = in_state(st);
        let id = r.m.call_id(conv);
        r.m.close(r.now, conv);
        let out = r.drain();
        assert_eq!(r.m.state(conv), ConversationState::Closed, "{st:?}");
        assert!(events(&out, conv).is_empty(), "{st:?}: no events for a local close");
        if st == St::Closed {
            assert!(out.is_empty(), "closing a closed conversation does nothing");
        } else {
            let expected =
                if st == St::Preparing { vec![] } else { vec![C::Hangup { call_id: id.unwrap() }] };
            assert_eq!(sent(&out), expected, "{st:?}: the server hears of calls it knows");
            assert!(out.contains(&Output::Released { conv }), "{st:?}: media released");
        }
        r.m.close(r.now, conv);
        assert!(r.drain().is_empty(), "{st:?}: a second close does nothing");
    }
}

#[test]
fn a_new_call_in_every_state_hangs_up_the_previous_one() {
    for st in ALL {
        let (mut r, old) = in_state(st);
        let old_id = r.m.call_id(old);
        let (new, new_id) = r.m.call(r.now, "carol", None, CallOptions::default()).unwrap();
        r.m.offer_ready(r.now, new, "offer".into()).unwrap();
        let out = r.drain();
        let msgs = sent(&out);
        match old_id {
            // The server never heard of a call still preparing its offer.
            Some(_) if st == St::Preparing => {
                assert!(matches!(msgs[0], C::Invite { .. }), "{st:?}");
                assert_eq!(events(&out, old), vec![CallEvent::Closed(EndReason::Replaced)]);
            }
            Some(old_id) => {
                assert_eq!(
                    msgs[0],
                    C::Hangup { call_id: old_id },
                    "{st:?}: the old call is hung up first"
                );
                assert_eq!(
                    events(&out, old),
                    vec![CallEvent::Closed(EndReason::Replaced)],
                    "{st:?}"
                );
            }
            None => assert!(events(&out, old).is_empty()),
        }
        assert!(
            matches!(msgs.last(), Some(C::Invite { call_id, to, .. }) if *call_id == new_id && to == "carol"),
            "{st:?}"
        );
        assert_eq!(r.m.state(old), ConversationState::Closed);
        assert_eq!(r.m.state(new), ConversationState::Calling);
    }
}

#[test]
fn signal_in_every_state() {
    let cand = || Signal::Candidate { candidate: "c".into(), sdp_mid: None, sdp_mline_index: None };
    for st in ALL {
        let (mut r, conv) = in_state(st);
        let res = r.m.signal(conv, cand());
        let out = r.drain();
        match st {
            St::Ringing => assert!(matches!(res, Err(ActionError::InvalidState(_))), "{st:?}"),
            St::Closed => assert_eq!(res, Err(ActionError::Closed(None))),
            St::Preparing | St::Answering | St::MergedAnswering => {
                assert_eq!(res, Ok(()), "{st:?}");
                assert!(sent(&out).is_empty(), "{st:?}: held until the description goes out");
            }
            _ => {
                assert_eq!(res, Ok(()), "{st:?}");
                assert_eq!(sent(&out).len(), 1, "{st:?}");
            }
        }
    }
}

/// Every server message that ends a call, in every state: the conversation ends exactly
/// once, with the reason the server gave.
#[test]
fn server_close_in_every_state() {
    for st in ALL {
        let (mut r, conv) = in_state(st);
        let id = r.m.call_id(conv).unwrap_or_else(|| "gone".into());
        let out = r.recv(S::Closed { call_id: id.clone(), reason: CloseReason::Hangup });
        if st == St::Closed {
            assert!(out.is_empty(), "a late close for a closed call is ignored");
        } else {
            assert_eq!(events(&out, conv), vec![CallEvent::Closed(EndReason::Hangup)], "{st:?}");
        }
        assert!(
            r.recv(S::Closed { call_id: id, reason: CloseReason::Hangup }).is_empty(),
            "{st:?}: duplicate ignored"
        );
    }
}

/// Every response in every state: only the ones that fit change anything.
#[test]
fn responses_in_every_state() {
    for st in ALL {
        for status in
            [CallStatus::Accepted, CallStatus::Rejected, CallStatus::Busy, CallStatus::Timeout]
        {
            let (mut r, conv) = in_state(st);
            let id = r.m.call_id(conv).unwrap_or_else(|| "gone".into());
            let out = r.recv(S::Response { call_id: id, status, sdp: Some("answer".into()) });
            let ev = events(&out, conv);
            match (st, status) {
                (St::CallingUnacked | St::CallingAcked, CallStatus::Accepted) => {
                    assert_eq!(ev, vec![CallEvent::Response(CallStatus::Accepted)]);
                    assert!(out.contains(&Output::Established {
                        conv,
                        remote_sdp: Some("answer".into())
                    }));
                    assert_eq!(r.m.state(conv), ConversationState::Connected);
                }
                (St::CallingUnacked | St::CallingAcked, s) => {
                    assert_eq!(ev[0], CallEvent::Response(s), "{st:?} {s:?}");
                    assert!(
                        matches!(ev[1], CallEvent::Closed(_)),
                        "a final answer closes the conversation"
                    );
                    assert_eq!(r.m.state(conv), ConversationState::Closed);
                }
                (St::Accepting, CallStatus::Accepted) => {
                    assert!(ev.is_empty(), "the callee hears no response of its own accept");
                    assert!(out.contains(&Output::Established { conv, remote_sdp: None }));
                }
                (St::MergedAnswering, _) => {
                    assert!(ev.is_empty(), "no answer sent yet, so nothing fits")
                }
                _ => {
                    assert!(ev.is_empty(), "{st:?} {status:?}: out-of-place response ignored");
                    assert_eq!(r.m.state(conv), expected_state(st), "{st:?} {status:?}");
                }
            }
        }
    }
}

// ---- the named scenarios ----

#[test]
fn cancel_while_ringing_sends_hangup_and_the_callee_hears_cancelled() {
    let mut caller = Rig::new("alice");
    let (conv, id) = caller.calling(true);
    caller.m.close(caller.now, conv);
    assert_eq!(sent(&caller.drain()), vec![C::Hangup { call_id: id.clone() }]);

    let mut callee = Rig::new("bob");
    let conv = callee.ringing(&id, "alice");
    let out = callee.recv(S::Closed { call_id: id, reason: CloseReason::Cancelled });
    assert_eq!(events(&out, conv), vec![CallEvent::Closed(EndReason::Cancelled)]);
}

#[test]
fn accept_after_the_caller_cancelled_is_refused_and_sends_nothing() {
    let mut r = Rig::new("bob");
    let conv = r.ringing("c1", "alice");
    r.recv(S::Closed { call_id: "c1".into(), reason: CloseReason::Cancelled });
    assert_eq!(r.m.begin_accept(r.now, conv), Err(ActionError::Closed(None)));
    assert!(sent(&r.drain()).is_empty());
}

#[test]
fn accept_racing_a_cancel_ends_in_closed() {
    let mut r = Rig::new("bob");
    let conv = r.ringing("c1", "alice");
    r.m.begin_accept(r.now, conv).unwrap();
    r.m.answer_ready(r.now, conv, "answer".into()).unwrap();
    r.drain();
    // The cancel crossed our accept; the server answers the accept with not_in_call.
    let out = r.recv(S::Closed { call_id: "c1".into(), reason: CloseReason::Cancelled });
    assert_eq!(events(&out, conv), vec![CallEvent::Closed(EndReason::Cancelled)]);
    let out = r.recv(S::error(ErrorCode::NotInCall, "no such call", Some("c1")));
    assert!(out.is_empty(), "the late error finds nothing to fail");
}

#[test]
fn incoming_while_in_a_call_is_declined_busy_without_bothering_the_app() {
    let (mut r, conv) = in_state(St::ConnectedCaller);
    let out = r.recv(incoming("c2", "carol"));
    assert_eq!(sent(&out), vec![C::Reject { call_id: "c2".into(), busy: true }]);
    assert!(!out.iter().any(|o| matches!(o, Output::Incoming { .. })));
    assert_eq!(r.m.state(conv), ConversationState::Connected);
}

#[test]
fn duplicate_incoming_rings_once() {
    let mut r = Rig::new("bob");
    r.ringing("c1", "alice");
    assert!(r.recv(incoming("c1", "alice")).is_empty());
}

#[test]
fn glare_merges_into_the_call_that_reached_the_server_first() {
    // Alice calls bob while bob's call to alice, which reached the server first, rings.
    let mut r = Rig::new("alice");
    let (conv, ours) = r.calling(false);
    let out = r.recv(incoming("theirs", "bob"));
    assert!(out.is_empty(), "the crossing call is held, not shown and not declined");
    let out = r.recv(merged_into_bobs(ours));
    assert_eq!(
        out,
        vec![Output::AnswerNeeded {
            conv,
            call_id: "theirs".into(),
            remote_sdp: Some("bob-offer".into()),
            options: CallOptions::default(),
        }]
    );
    assert_eq!(r.m.state(conv), ConversationState::Calling, "still an outgoing call to the app");
    r.m.answer_ready(r.now, conv, "alice-answer".into()).unwrap();
    assert_eq!(
        sent(&r.drain()),
        vec![C::Accept { call_id: "theirs".into(), sdp: Some("alice-answer".into()) }]
    );
    let out =
        r.recv(S::Response { call_id: "theirs".into(), status: CallStatus::Accepted, sdp: None });
    assert_eq!(
        events(&out, conv),
        vec![CallEvent::Response(CallStatus::Accepted)],
        "the app sees its call answered"
    );
    assert_eq!(r.m.state(conv), ConversationState::Connected);
    assert_eq!(r.m.call_id(conv).as_deref(), Some("theirs"));
}

#[test]
fn the_glare_winner_side_sees_an_ordinary_accept() {
    // Bob's side: his call reached the server first; alice's client accepts it for her.
    let mut r = Rig::new("bob");
    let (conv, id) = r.m.call(r.now, "alice", None, CallOptions::default()).unwrap();
    r.m.offer_ready(r.now, conv, "offer".into()).unwrap();
    r.drain();
    r.recv(S::Ringing { call_id: id.clone() });
    let out =
        r.recv(S::Response { call_id: id, status: CallStatus::Accepted, sdp: Some("a".into()) });
    assert_eq!(events(&out, conv), vec![CallEvent::Response(CallStatus::Accepted)]);
}

#[test]
fn a_held_glare_call_is_declined_if_our_call_is_answered_instead() {
    let mut r = Rig::new("alice");
    let (_, ours) = r.calling(true);
    r.recv(incoming("theirs", "bob"));
    let out = r.recv(S::Response { call_id: ours, status: CallStatus::Accepted, sdp: None });
    assert!(sent(&out).contains(&C::Reject { call_id: "theirs".into(), busy: true }));
}

#[test]
fn a_call_crossing_ours_before_our_invite_leaves_is_held_for_the_merge() {
    // Bob's call reaches alice while her offer is still being made: her invite will reach
    // the server second, so the server merges hers into his. Declining his as busy here
    // would end both.
    let mut r = Rig::new("alice");
    let (conv, ours) = r.m.call(r.now, "bob", None, CallOptions::default()).unwrap();
    r.drain();
    let out = r.recv(incoming("theirs", "bob"));
    assert!(out.is_empty(), "held, not shown and not declined: {out:?}");
    r.m.offer_ready(r.now, conv, "offer".into()).unwrap();
    assert!(matches!(sent(&r.drain()).as_slice(), [C::Invite { .. }]));
    let out = r.recv(merged_into_bobs(ours));
    assert!(matches!(out.as_slice(), [Output::AnswerNeeded { .. }]), "{out:?}");
}

#[test]
fn a_held_glare_call_is_declined_when_our_call_ends_first() {
    let mut r = Rig::new("alice");
    let (conv, ours) = r.calling(true);
    r.recv(incoming("theirs", "bob"));
    r.m.close(r.now, conv);
    assert_eq!(
        sent(&r.drain()),
        vec![C::Reject { call_id: "theirs".into(), busy: true }, C::Hangup { call_id: ours },],
        "nothing is left ringing unseen"
    );
}

#[test]
fn merged_for_an_unknown_or_settled_call_is_ignored() {
    let (mut r, conv) = in_state(St::ConnectedCaller);
    let out = r.recv(S::Merged {
        call_id: "nope".into(),
        into: IncomingCall {
            call_id: "x".into(),
            from: "bob".into(),
            data: None,
            options: CallOptions::default(),
            sdp: None,
            preconnect: false,
        },
    });
    assert!(out.is_empty());
    assert_eq!(r.m.state(conv), ConversationState::Connected);
}

#[test]
fn out_of_order_messages_before_the_call_exist_are_ignored() {
    let mut r = Rig::new("bob");
    for m in [
        S::Response { call_id: "c9".into(), status: CallStatus::Accepted, sdp: None },
        S::Ringing { call_id: "c9".into() },
        S::Signal { call_id: "c9".into(), signal: Signal::EndOfCandidates },
        S::Closed { call_id: "c9".into(), reason: CloseReason::Hangup },
        S::error(ErrorCode::NotInCall, "x", Some("c9")),
    ] {
        assert!(r.recv(m).is_empty());
    }
    // And the call they were early for still works when it arrives.
    r.ringing("c9", "alice");
}

#[test]
fn a_signal_reaches_the_media_layer_only_for_a_live_call() {
    let (mut r, conv) = in_state(St::ConnectedCaller);
    let id = r.m.call_id(conv).unwrap();
    let out = r.recv(S::Signal { call_id: id, signal: Signal::EndOfCandidates });
    assert_eq!(out, vec![Output::RemoteSignal { conv, signal: Signal::EndOfCandidates }]);
}

#[test]
fn unreachable_callee_fails_then_closes() {
    let mut r = Rig::new("alice");
    let (conv, id) = r.calling(false);
    let out = r.recv(S::Closed { call_id: id, reason: CloseReason::Unreachable });
    assert_eq!(
        events(&out, conv),
        vec![
            CallEvent::Failed(CallError::Unreachable { uid: "bob".into() }),
            CallEvent::Closed(EndReason::Unreachable)
        ]
    );
}

#[test]
fn server_errors_fail_an_unanswered_invite_but_spare_retries() {
    let mut r = Rig::new("alice");
    let (conv, id) = r.calling(false);
    assert!(r.recv(S::error(ErrorCode::DuplicateCallId, "dup", Some(&id))).is_empty());
    assert!(r.recv(S::error(ErrorCode::InvalidState, "dup", Some(&id))).is_empty());
    let out = r.recv(S::error(ErrorCode::InvalidRequest, "bad uid", Some(&id)));
    assert!(matches!(
        events(&out, conv).as_slice(),
        [
            CallEvent::Failed(CallError::Server { code: ErrorCode::InvalidRequest, .. }),
            CallEvent::Closed(EndReason::Failed)
        ]
    ));
}

#[test]
fn not_in_call_for_a_live_call_ends_it() {
    let (mut r, conv) = in_state(St::ConnectedCallee);
    let out = r.recv(S::error(ErrorCode::NotInCall, "gone", Some("in1")));
    assert_eq!(events(&out, conv).last(), Some(&CallEvent::Closed(EndReason::Failed)));
}

#[test]
fn bad_arguments_are_refused_at_the_call_site() {
    let mut r = Rig::new("alice");
    assert!(matches!(
        r.m.call(r.now, "", None, CallOptions::default()),
        Err(ActionError::InvalidArgument(_))
    ));
    assert!(matches!(
        r.m.call(r.now, "alice", None, CallOptions::default()),
        Err(ActionError::InvalidArgument(_))
    ));
    let big = "x".repeat(Limits::default().max_data_bytes + 1);
    assert!(matches!(
        r.m.call(r.now, "bob", Some(big), CallOptions::default()),
        Err(ActionError::InvalidArgument(_))
    ));
    assert!(r.drain().is_empty(), "nothing sent for a refused call");
}

// ---- time ----

#[test]
fn a_ring_the_server_never_ends_ends_locally() {
    let mut r = Rig::new("alice");
    let (conv, id) = r.calling(true);
    r.advance(RING);
    assert!(r.drain().is_empty(), "the server's own timeout comes first");
    r.advance(MARGIN);
    let out = r.drain();
    assert_eq!(
        events(&out, conv),
        vec![CallEvent::Response(CallStatus::Timeout), CallEvent::Closed(EndReason::Timeout)]
    );
    assert_eq!(sent(&out), vec![C::Hangup { call_id: id }]);

    let mut r = Rig::new("bob");
    let conv = r.ringing("c1", "alice");
    r.advance(RING + MARGIN);
    assert_eq!(
        events(&r.drain(), conv),
        vec![CallEvent::Closed(EndReason::Timeout)],
        "the phone stops ringing"
    );
}

#[test]
fn an_active_call_has_no_ring_deadline() {
    let (mut r, conv) = in_state(St::ConnectedCaller);
    r.advance(RING * 10);
    assert!(r.drain().is_empty());
    assert_eq!(r.m.state(conv), ConversationState::Connected);
    assert_eq!(r.m.poll_timeout(), None);
}

// ---- the connection ----

#[test]
fn a_short_disconnect_keeps_calls_and_restates_them() {
    let (mut r, conv) = in_state(St::ConnectedCaller);
    r.m.on_disconnected(r.now);
    r.advance(GRACE);
    assert!(r.drain().is_empty(), "within grace nothing ends");
    let calls = r.m.restatements(r.now);
    assert_eq!(calls.len(), 1);
    assert_eq!(
        (calls[0].role, calls[0].state, calls[0].peer.as_str()),
        (Role::Caller, RestatedState::Active, "bob")
    );
    r.m.on_connected(r.now, &welcome("alice"));
    r.advance(GRACE * 2);
    assert_eq!(r.m.state(conv), ConversationState::Connected);
}

#[test]
fn a_long_disconnect_ends_calls_with_connection_lost() {
    let (mut r, conv) = in_state(St::ConnectedCallee);
    r.m.on_disconnected(r.now);
    r.advance(GRACE + MARGIN);
    let out = r.drain();
    assert_eq!(
        events(&out, conv),
        vec![
            CallEvent::Failed(CallError::ConnectionLost),
            CallEvent::Closed(EndReason::ConnectionLost)
        ]
    );
    // The hang-up waits for the connection, so a server that kept the call learns of it.
    r.m.on_connected(r.now, &welcome("alice"));
    assert_eq!(sent(&r.drain()), vec![C::Hangup { call_id: "in1".into() }]);
}

#[test]
fn what_is_said_while_disconnected_goes_out_on_reconnect() {
    let mut r = Rig::new("alice");
    r.m.on_disconnected(r.now);
    let (conv, id) = r.m.call(r.now, "bob", None, CallOptions::default()).unwrap();
    r.m.offer_ready(r.now, conv, "offer".into()).unwrap();
    assert!(sent(&r.drain()).is_empty(), "nothing is sent while disconnected");
    assert!(r.m.restatements(r.now).is_empty(), "an invite the server never saw is not restated");
    r.m.on_connected(r.now, &welcome("alice"));
    assert!(matches!(sent(&r.drain()).as_slice(), [C::Invite { call_id, .. }] if *call_id == id));
}

#[test]
fn restatements_describe_each_state() {
    let cases = [
        (St::Preparing, None),
        (St::Answering, Some((Role::Callee, RestatedState::Ringing, false))),
        (St::CallingUnacked, None),
        (St::CallingAcked, Some((Role::Caller, RestatedState::Ringing, true))),
        (St::Ringing, Some((Role::Callee, RestatedState::Ringing, false))),
        (St::MergedAnswering, Some((Role::Callee, RestatedState::Ringing, false))),
        (St::Accepting, Some((Role::Callee, RestatedState::Accepting, true))),
        (St::ConnectedCaller, Some((Role::Caller, RestatedState::Active, false))),
        (St::ConnectedCallee, Some((Role::Callee, RestatedState::Active, false))),
        (St::Closed, None),
    ];
    for (st, want) in cases {
        let (mut r, _) = in_state(st);
        r.advance(Duration::from_secs(2));
        let got = r.m.restatements(r.now);
        match want {
            None => assert!(got.is_empty(), "{st:?}"),
            Some((role, state, has_sdp)) => {
                assert_eq!((got[0].role, got[0].state), (role, state), "{st:?}");
                assert_eq!(got[0].sdp.is_some(), has_sdp, "{st:?}");
                let ringing = state != RestatedState::Active;
                assert_eq!(got[0].ring_elapsed_ms, if ringing { 2000 } else { 0 }, "{st:?}");
            }
        }
    }
}

#[test]
fn an_unconfirmed_accept_is_repeated_after_a_reconnect() {
    let (mut r, _) = in_state(St::Accepting);
    r.m.on_disconnected(r.now);
    r.m.on_connected(r.now, &welcome("alice"));
    assert_eq!(
        sent(&r.drain()),
        vec![C::Accept { call_id: "in1".into(), sdp: Some("answer".into()) }]
    );
}

#[test]
fn welcome_sets_the_deadlines() {
    let mut r = Rig::new("alice");
    r.m.on_connected(
        r.now,
        &Welcome {
            uid: "alice".into(),
            ring_timeout: Duration::from_secs(5),
            grace: GRACE,
            limits: Limits::default(),
        },
    );
    let (conv, _) = r.calling(true);
    r.advance(Duration::from_secs(5) + MARGIN);
    assert_eq!(r.m.state(conv), ConversationState::Closed);
    let _ = r.t0;
}

// ---- pre-connect ----

fn incoming_preconnect(id: &str) -> S {
    match incoming(id, "bob") {
        S::Incoming { call_id, from, data, options, sdp, .. } => {
            S::Incoming { call_id, from, data, options, sdp, preconnect: true }
        }
        _ => unreachable!(),
    }
}

fn early_answer(sdp: &str) -> Signal {
    Signal::Description { sdp_type: SdpType::Answer, sdp: sdp.into() }
}

fn candidate(n: u32) -> Signal {
    Signal::Candidate { candidate: format!("candidate:{n}"), sdp_mid: None, sdp_mline_index: None }
}

/// Alice's machine with a pre-connecting call from bob ringing; its early answer made.
fn pre_connected() -> (Rig, ConvId) {
    let mut r = Rig::new("alice");
    let out = r.recv(incoming_preconnect("c1"));
    let conv = match out.as_slice() {
        [Output::Incoming { conv, .. }, Output::PreconnectNeeded { conv: c, remote_sdp, .. }] => {
            assert_eq!((c, remote_sdp.as_str()), (conv, "offer"));
            *conv
        }
        other => panic!("expected Incoming and PreconnectNeeded, got {other:?}"),
    };
    // A candidate gathered before the answer is out waits for it.
    r.m.signal(conv, candidate(1)).unwrap();
    assert!(r.drain().is_empty());
    r.m.answer_ready(r.now, conv, "answer".into()).unwrap();
    let signals: Vec<C> = sent(&r.drain());
    assert_eq!(
        signals,
        vec![
            C::Signal { call_id: "c1".into(), signal: early_answer("answer") },
            C::Signal { call_id: "c1".into(), signal: candidate(1) },
        ]
    );
    assert_eq!(r.m.state(conv), ConversationState::Ringing);
    (r, conv)
}

#[test]
fn a_pre_connecting_callee_answers_while_it_rings_and_accepts_at_once() {
    let (mut r, conv) = pre_connected();
    r.m.signal(conv, candidate(2)).unwrap();
    assert_eq!(sent(&r.drain()).len(), 1, "later candidates go out as they come");
    r.m.begin_accept(r.now, conv).unwrap();
    let out = r.drain();
    assert_eq!(sent(&out), vec![C::Accept { call_id: "c1".into(), sdp: Some("answer".into()) }]);
    assert!(!out.iter().any(|o| matches!(o, Output::AnswerNeeded { .. })), "{out:?}");
    let out = r.recv(S::Response { call_id: "c1".into(), status: CallStatus::Accepted, sdp: None });
    assert!(out.contains(&Output::Established { conv, remote_sdp: None }), "{out:?}");
}

#[test]
fn an_accept_while_the_early_answer_is_made_goes_out_with_it() {
    let mut r = Rig::new("alice");
    let conv = match r.recv(incoming_preconnect("c1")).as_slice() {
        [Output::Incoming { conv, .. }, Output::PreconnectNeeded { .. }] => *conv,
        other => panic!("{other:?}"),
    };
    r.m.begin_accept(r.now, conv).unwrap();
    assert!(r.drain().is_empty(), "no second answer is asked for");
    r.m.answer_ready(r.now, conv, "answer".into()).unwrap();
    assert_eq!(
        sent(&r.drain()),
        vec![C::Accept { call_id: "c1".into(), sdp: Some("answer".into()) }]
    );
}

#[test]
fn a_pre_connected_call_ends_like_any_ringing_call() {
    for end in [CloseReason::Cancelled, CloseReason::Timeout, CloseReason::AnsweredElsewhere] {
        let (mut r, conv) = pre_connected();
        let out = r.recv(S::Closed { call_id: "c1".into(), reason: end });
        assert!(out.contains(&Output::Released { conv }), "{end:?}: {out:?}");
    }
    let (mut r, conv) = pre_connected();
    r.m.reject(r.now, conv).unwrap();
    let out = r.drain();
    assert!(out.contains(&Output::Released { conv }));
    assert_eq!(sent(&out), vec![C::Reject { call_id: "c1".into(), busy: false }]);
}

#[test]
fn a_callee_with_pre_connect_off_waits_for_the_accept() {
    let mut r = Rig::new("alice");
    r.m.config.preconnect = false;
    let out = r.recv(incoming_preconnect("c1"));
    assert!(matches!(out.as_slice(), [Output::Incoming { .. }]), "{out:?}");
    let conv = match out[0] {
        Output::Incoming { conv, .. } => conv,
        _ => unreachable!(),
    };
    assert!(r.m.signal(conv, candidate(1)).is_err(), "nothing is signalled while it rings");
}

#[test]
fn a_caller_applies_an_early_answer_once_and_not_again_at_the_accept() {
    let mut r = Rig::new("alice");
    let (conv, id) = r.calling(true);
    let signal = |s: Signal| S::Signal { call_id: id.clone(), signal: s };
    let out = r.recv(signal(early_answer("early")));
    assert_eq!(out, vec![Output::EarlyAnswer { conv, sdp: "early".into() }]);
    assert!(r.recv(signal(early_answer("again"))).is_empty(), "a repeat is ignored");
    let out = r.recv(signal(candidate(1)));
    assert_eq!(out, vec![Output::RemoteSignal { conv, signal: candidate(1) }]);
    assert_eq!(r.m.state(conv), ConversationState::Calling, "still ringing");
    let accepted =
        S::Response { call_id: id, status: CallStatus::Accepted, sdp: Some("early".into()) };
    let out = r.recv(accepted);
    assert!(out.contains(&Output::Established { conv, remote_sdp: None }), "{out:?}");
}

#[test]
fn a_pre_connected_callee_restates_its_ring_without_the_early_answer() {
    let (mut r, conv) = pre_connected();
    let ringing = r.m.restatements(r.now);
    assert_eq!((ringing.len(), ringing[0].sdp.as_deref()), (1, None), "{ringing:?}");
    r.m.begin_accept(r.now, conv).unwrap();
    let accepting = r.m.restatements(r.now);
    assert_eq!(accepting[0].state, RestatedState::Accepting);
    assert_eq!(accepting[0].sdp.as_deref(), Some("answer"), "the answer, once accepting");
}
