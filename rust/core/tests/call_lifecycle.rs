//! The call lifecycle end to end: real duet-server on loopback, real WebSockets, 2 to 4
//! real clients. Each case ends in the documented state with the documented events on
//! both sides (docs/protocol.md, "One-page summary").

// A test that fails says so loudly; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use duet_core::*;
use duet_server::ServerConfig;
use support::proxy::Proxy;
use support::*;

#[tokio::test]
async fn accepted_call_streams_both_ways_and_hangs_up() {
    let srv = server(quick_config()).await;
    let mut alice = Peer::connect(&srv.http_url(), srv.secret(), "alice").await;
    let mut bob = Peer::connect(&srv.http_url(), srv.secret(), "bob").await;
    assert_eq!(alice.video.uid(), "alice");

    let out = alice.call("bob", Some("custom-data"));
    assert_eq!(out.state(), ConversationState::Calling);
    let (inc, data) = bob.called().await;
    assert_eq!(data.as_deref(), Some("custom-data"));
    assert_eq!(inc.remote_uid(), "alice");
    assert_eq!(inc.state(), ConversationState::Ringing);
    assert_eq!(inc.call_id(), out.call_id(), "both sides name the same call");

    inc.accept(small_stream()).unwrap();
    alice.response(CallStatus::Accepted).await;
    alice.stream().await;
    bob.stream().await;

    out.close();
    assert_eq!(out.close_reason(), Some(EndReason::Local));
    bob.closed(&inc, EndReason::Hangup).await;
    alice.quiet(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn rejected_call_tells_the_caller_and_closes() {
    let srv = server(quick_config()).await;
    let mut alice = Peer::connect(&srv.http_url(), srv.secret(), "alice").await;
    let mut bob = Peer::connect(&srv.http_url(), srv.secret(), "bob").await;
    let out = alice.call("bob", None);
    let (inc, _) = bob.called().await;
    inc.reject().unwrap();
    assert_eq!(inc.state(), ConversationState::Closed);
    alice.response(CallStatus::Rejected).await;
    alice.closed(&out, EndReason::Rejected).await;
    bob.quiet(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn a_user_in_a_call_is_busy() {
    let srv = server(quick_config()).await;
    let mut alice = Peer::connect(&srv.http_url(), srv.secret(), "alice").await;
    let mut bob = Peer::connect(&srv.http_url(), srv.secret(), "bob").await;
    let mut carol = Peer::connect(&srv.http_url(), srv.secret(), "carol").await;
    let (_out, inc) = alice.connected_call(&mut bob).await;

    let c = carol.call("bob", None);
    carol.response(CallStatus::Busy).await;
    carol.closed(&c, EndReason::Busy).await;
    bob.quiet(Duration::from_millis(100)).await;
    assert_eq!(inc.state(), ConversationState::Connected, "bob's call is untouched");
}

#[tokio::test]
async fn an_unanswered_call_times_out_on_both_sides() {
    let srv = server(quick_config()).await;
    let mut alice = Peer::connect(&srv.http_url(), srv.secret(), "alice").await;
    let mut bob = Peer::connect(&srv.http_url(), srv.secret(), "bob").await;
    assert_eq!(
        alice.video.ring_timeout(),
        Duration::from_millis(600),
        "the server's ring timeout reaches the client"
    );
    let out = alice.call("bob", None);
    let (inc, _) = bob.called().await;
    alice.response(CallStatus::Timeout).await;
    alice.closed(&out, EndReason::Timeout).await;
    bob.closed(&inc, EndReason::Timeout).await;
}

#[tokio::test]
async fn the_caller_cancels_while_the_phone_rings() {
    let srv = server(quick_config()).await;
    let mut alice = Peer::connect(&srv.http_url(), srv.secret(), "alice").await;
    let mut bob = Peer::connect(&srv.http_url(), srv.secret(), "bob").await;
    let out = alice.call("bob", None);
    let (inc, _) = bob.called().await;
    out.close();
    bob.closed(&inc, EndReason::Cancelled).await;
    assert_eq!(
        inc.accept(small_stream()),
        Err(ActionError::Closed(Some(EndReason::Cancelled))),
        "accept after cancel"
    );
    alice.quiet(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn the_callee_hangs_up_after_accepting() {
    let srv = server(quick_config()).await;
    let mut alice = Peer::connect(&srv.http_url(), srv.secret(), "alice").await;
    let mut bob = Peer::connect(&srv.http_url(), srv.secret(), "bob").await;
    let (out, inc) = alice.connected_call(&mut bob).await;
    inc.close();
    alice.closed(&out, EndReason::Hangup).await;
}

#[tokio::test]
async fn a_closed_conversation_lets_its_delegate_go() {
    let srv = server(quick_config()).await;
    let mut alice = Peer::connect(&srv.http_url(), srv.secret(), "alice").await;
    let mut bob = Peer::connect(&srv.http_url(), srv.secret(), "bob").await;
    let before = Arc::strong_count(&alice.recorder);
    let (out, inc) = alice.connected_call(&mut bob).await;
    assert!(Arc::strong_count(&alice.recorder) > before, "the conversation holds its delegate");
    inc.close();
    alice.closed(&out, EndReason::Hangup).await;
    // An app delegate that holds its conversation must not keep the pair alive for ever.
    eventually("the delegate is released", || Arc::strong_count(&alice.recorder) == before).await;
    drop(out);
}

#[tokio::test]
async fn the_first_device_to_accept_wins_and_the_others_stop_ringing() {
    let srv = server(quick_config()).await;
    let mut alice = Peer::connect(&srv.http_url(), srv.secret(), "alice").await;
    let mut phone = Peer::connect(&srv.http_url(), srv.secret(), "bob").await;
    let mut tablet = Peer::connect(&srv.http_url(), srv.secret(), "bob").await;
    let _out = alice.call("bob", None);
    let (on_phone, _) = phone.called().await;
    let (on_tablet, _) = tablet.called().await;
    on_phone.accept(small_stream()).unwrap();
    alice.response(CallStatus::Accepted).await;
    phone.stream().await;
    tablet.closed(&on_tablet, EndReason::AnsweredElsewhere).await;
    assert_eq!(
        on_tablet.accept(small_stream()),
        Err(ActionError::Closed(Some(EndReason::AnsweredElsewhere)))
    );
}

#[tokio::test]
async fn a_reject_on_one_device_declines_for_all() {
    let srv = server(quick_config()).await;
    let mut alice = Peer::connect(&srv.http_url(), srv.secret(), "alice").await;
    let mut phone = Peer::connect(&srv.http_url(), srv.secret(), "bob").await;
    let mut tablet = Peer::connect(&srv.http_url(), srv.secret(), "bob").await;
    let out = alice.call("bob", None);
    let (on_phone, _) = phone.called().await;
    let (on_tablet, _) = tablet.called().await;
    on_phone.reject().unwrap();
    alice.response(CallStatus::Rejected).await;
    alice.closed(&out, EndReason::Rejected).await;
    tablet.closed(&on_tablet, EndReason::DeclinedElsewhere).await;
}

#[tokio::test]
async fn glare_resolves_to_one_call_that_both_sides_see_answered() {
    let srv = server(quick_config()).await;
    let mut alice = Peer::connect(&srv.http_url(), srv.secret(), "alice").await;
    let mut bob = Peer::connect(&srv.http_url(), srv.secret(), "bob").await;
    // Both call at once; whichever reaches the server first survives.
    let a = alice.call("bob", None);
    let b = bob.call("alice", None);
    alice.response(CallStatus::Accepted).await;
    bob.response(CallStatus::Accepted).await;
    alice.stream().await;
    bob.stream().await;
    assert_eq!(a.state(), ConversationState::Connected);
    assert_eq!(b.state(), ConversationState::Connected);
    assert_eq!(a.call_id(), b.call_id(), "one call, not two");
    alice.quiet(Duration::from_millis(100)).await;
    bob.quiet(Duration::from_millis(100)).await;
    b.close();
    alice.closed(&a, EndReason::Hangup).await;
}

#[tokio::test]
async fn a_new_call_hangs_up_the_previous_one() {
    let srv = server(quick_config()).await;
    let mut alice = Peer::connect(&srv.http_url(), srv.secret(), "alice").await;
    let mut bob = Peer::connect(&srv.http_url(), srv.secret(), "bob").await;
    let mut carol = Peer::connect(&srv.http_url(), srv.secret(), "carol").await;
    let (first, with_bob) = alice.connected_call(&mut bob).await;
    let second = alice.call("carol", None);
    alice.closed(&first, EndReason::Replaced).await;
    bob.closed(&with_bob, EndReason::Hangup).await;
    let (inc, _) = carol.called().await;
    inc.accept(small_stream()).unwrap();
    alice.response(CallStatus::Accepted).await;
    assert_eq!(second.state(), ConversationState::Connected);
}

#[tokio::test]
async fn calling_a_user_with_no_device_fails_clearly() {
    let srv = server(quick_config()).await;
    let mut alice = Peer::connect(&srv.http_url(), srv.secret(), "alice").await;
    let out = alice.call("nobody", None);
    assert_eq!(alice.failed().await, CallError::Unreachable { uid: "nobody".into() });
    alice.closed(&out, EndReason::Unreachable).await;
}

#[tokio::test]
async fn bad_arguments_fail_at_the_call_site() {
    let srv = server(quick_config()).await;
    let alice = Peer::connect(&srv.http_url(), srv.secret(), "alice").await;
    let stream = || small_stream();
    assert!(matches!(
        alice.video.call("alice", stream(), CallOptions::default()),
        Err(ActionError::InvalidArgument(_))
    ));
    assert!(matches!(
        alice.video.call("", stream(), CallOptions::default()),
        Err(ActionError::InvalidArgument(_))
    ));
    let big = CallOptions { data: Some("x".repeat(100_000)), ..Default::default() };
    assert!(matches!(alice.video.call("bob", stream(), big), Err(ActionError::InvalidArgument(_))));
}

#[tokio::test]
async fn a_development_token_signs_in_and_bad_asks_get_clear_errors() {
    let dev = server(quick_config()).await;
    let token = fetch_development_token(&dev.http_url(), "alice").await.unwrap();
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let delegate = Arc::new(Recorder::new(tx));
    let video = VideoCall::connect(ClientConfig::new(dev.ws_url(), token), delegate).await.unwrap();
    assert_eq!(video.uid(), "alice");

    let err = fetch_development_token(&dev.http_url(), "").await.unwrap_err();
    assert!(
        matches!(err, ConnectError::Refused { code: ErrorCode::InvalidRequest, .. }),
        "{err:?}"
    );

    let production = server(ServerConfig { secret: Some("s3cret".into()), ..quick_config() }).await;
    let err = fetch_development_token(&production.http_url(), "alice").await.unwrap_err();
    assert!(matches!(err, ConnectError::Refused { code: ErrorCode::Unauthorized, .. }), "{err:?}");

    let err = fetch_development_token("http://127.0.0.1:1", "alice").await.unwrap_err();
    assert!(matches!(err, ConnectError::Unreachable(_)), "{err:?}");
    let err = fetch_development_token("ftp://x", "alice").await.unwrap_err();
    assert!(matches!(err, ConnectError::InvalidUrl { .. }), "{err:?}");
}

#[tokio::test]
async fn forged_and_expired_tokens_are_refused_at_connect() {
    let srv = server(quick_config()).await;
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let delegate = Arc::new(Recorder::new(tx));

    let forged = duet_server::token::mint("not-the-secret", "alice", Duration::from_secs(60));
    let err = VideoCall::connect(ClientConfig::new(srv.http_url(), forged), delegate.clone())
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err, ConnectError::Refused { code: duet_protocol::ErrorCode::Unauthorized, .. }),
        "{err:?}"
    );

    let expired = duet_server::token::mint_at(srv.secret(), "alice", 1_000, 2_000);
    let err = VideoCall::connect(ClientConfig::new(srv.http_url(), expired), delegate.clone())
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err, ConnectError::Refused { code: duet_protocol::ErrorCode::TokenExpired, .. }),
        "{err:?}"
    );

    let err = VideoCall::connect(ClientConfig::new("http://127.0.0.1:1", "t"), delegate)
        .await
        .err()
        .unwrap();
    assert!(matches!(err, ConnectError::Unreachable(_)), "{err:?}");
}

#[tokio::test]
async fn dropping_the_client_hangs_up_its_call() {
    let srv = server(quick_config()).await;
    let mut alice = Peer::connect(&srv.http_url(), srv.secret(), "alice").await;
    let mut bob = Peer::connect(&srv.http_url(), srv.secret(), "bob").await;
    let (_out, inc) = alice.connected_call(&mut bob).await;
    drop(alice);
    bob.closed(&inc, EndReason::Hangup).await;
}

#[tokio::test]
async fn an_incoming_conversation_nobody_keeps_is_declined() {
    let srv = server(quick_config()).await;
    let mut alice = Peer::connect(&srv.http_url(), srv.secret(), "alice").await;
    let mut bob = Peer::connect(&srv.http_url(), srv.secret(), "bob").await;
    let out = alice.call("bob", None);
    let (inc, _) = bob.called().await;
    drop(inc);
    alice.response(CallStatus::Rejected).await;
    alice.closed(&out, EndReason::Rejected).await;
}

#[tokio::test]
async fn shutdown_closes_the_connection_and_conversations_report_closed() {
    let srv = server(quick_config()).await;
    let mut alice = Peer::connect(&srv.http_url(), srv.secret(), "alice").await;
    let mut bob = Peer::connect(&srv.http_url(), srv.secret(), "bob").await;
    let (out, inc) = alice.connected_call(&mut bob).await;
    alice.video.shutdown().await;
    assert_eq!(out.state(), ConversationState::Closed);
    assert!(matches!(
        alice.video.call("bob", small_stream(), CallOptions::default()),
        Err(ActionError::Closed(None))
    ));
    bob.closed(&inc, EndReason::Hangup).await;
}

// ---- signaling that blinks ----

#[tokio::test]
async fn a_dropped_connection_during_a_call_resumes_it() {
    let srv = server(quick_config()).await;
    let proxy = Proxy::start(srv.local_addr()).await;
    let mut alice = Peer::connect(&proxy.url(), srv.secret(), "alice").await;
    let mut bob = Peer::connect(&srv.http_url(), srv.secret(), "bob").await;
    let (out, inc) = alice.connected_call(&mut bob).await;
    proxy.cut();
    eventually("alice notices the drop", || !alice.video.is_connected()).await;
    eventually("alice reconnects", || alice.video.is_connected()).await;
    // Past the grace period the call still stands on both sides.
    alice.quiet(Duration::from_millis(1000)).await;
    bob.quiet(Duration::from_millis(10)).await;
    assert_eq!(out.state(), ConversationState::Connected);
    assert_eq!(inc.state(), ConversationState::Connected);
    inc.close();
    alice.closed(&out, EndReason::Hangup).await;
}

#[tokio::test]
async fn a_dropped_connection_while_ringing_still_rings_and_can_be_answered() {
    let srv = server(ServerConfig { ring_timeout: Duration::from_secs(5), ..quick_config() }).await;
    let proxy = Proxy::start(srv.local_addr()).await;
    let mut alice = Peer::connect(&srv.http_url(), srv.secret(), "alice").await;
    let mut bob = Peer::connect(&proxy.url(), srv.secret(), "bob").await;
    let out = alice.call("bob", None);
    let (inc, _) = bob.called().await;
    proxy.cut();
    eventually("bob notices the drop", || !bob.video.is_connected()).await;
    eventually("bob reconnects", || bob.video.is_connected()).await;
    bob.quiet(Duration::from_millis(100)).await;
    assert_eq!(inc.state(), ConversationState::Ringing);
    inc.accept(small_stream()).unwrap();
    alice.response(CallStatus::Accepted).await;
    bob.stream().await;
    assert_eq!(out.state(), ConversationState::Connected);
}

#[tokio::test]
async fn an_accept_made_while_disconnected_arrives_after_the_reconnect() {
    let srv = server(ServerConfig {
        ring_timeout: Duration::from_secs(5),
        grace: Duration::from_secs(3),
        ..quick_config()
    })
    .await;
    let proxy = Proxy::start(srv.local_addr()).await;
    let mut alice = Peer::connect(&srv.http_url(), srv.secret(), "alice").await;
    let mut bob = Peer::connect(&proxy.url(), srv.secret(), "bob").await;
    let _out = alice.call("bob", None);
    let (inc, _) = bob.called().await;
    proxy.block();
    eventually("bob notices the drop", || !bob.video.is_connected()).await;
    inc.accept(small_stream()).unwrap();
    proxy.heal();
    alice.response(CallStatus::Accepted).await;
    bob.stream().await;
}

#[tokio::test]
async fn a_connection_lost_past_the_grace_period_ends_the_call_on_both_sides() {
    let srv = server(quick_config()).await;
    let proxy = Proxy::start(srv.local_addr()).await;
    let mut alice = Peer::connect(&proxy.url(), srv.secret(), "alice").await;
    let mut bob = Peer::connect(&srv.http_url(), srv.secret(), "bob").await;
    let (out, inc) = alice.connected_call(&mut bob).await;
    proxy.block();
    bob.closed(&inc, EndReason::PeerDisconnected).await;
    // Alice cannot hear the server; she gives up on her own after grace plus a margin.
    let lost = tokio::time::timeout(Duration::from_secs(10), alice.failed())
        .await
        .expect("alice gives up");
    assert_eq!(lost, CallError::ConnectionLost);
    alice.closed(&out, EndReason::ConnectionLost).await;
}

#[tokio::test]
async fn a_caller_lost_while_ringing_stops_the_callee_ringing() {
    let srv =
        server(ServerConfig { ring_timeout: Duration::from_secs(10), ..quick_config() }).await;
    let proxy = Proxy::start(srv.local_addr()).await;
    let alice = Peer::connect(&proxy.url(), srv.secret(), "alice").await;
    let mut bob = Peer::connect(&srv.http_url(), srv.secret(), "bob").await;
    let _out = alice.call("bob", None);
    let (inc, _) = bob.called().await;
    proxy.block();
    bob.closed(&inc, EndReason::Cancelled).await;
}

#[tokio::test]
async fn the_delegate_hears_the_connection_drop_return_and_be_refused() {
    use ConnectionState::*;
    let srv = server(quick_config()).await;
    let addr = srv.local_addr();
    let proxy = Proxy::start(addr).await;
    let alice = Peer::connect(&proxy.url(), srv.secret(), "alice").await;
    let states = || alice.recorder.connection_states();

    proxy.block();
    eventually("alice hears she is reconnecting", || states() == [Reconnecting]).await;
    proxy.heal();
    eventually("alice hears she is back", || states() == [Reconnecting, Connected]).await;

    // A server with another secret refuses her token, as one would an expired token.
    srv.shutdown().await;
    let srv =
        server(ServerConfig { listen: addr, secret: Some("another".into()), ..quick_config() })
            .await;
    eventually("alice hears the refusal", || states().len() == 4).await;
    assert_eq!(states()[2], Reconnecting);
    assert!(
        matches!(&states()[3], Refused { code: ErrorCode::Unauthorized, .. }),
        "{:?}",
        states()
    );
    alice.video.update_token(duet_server::token::mint(srv.secret(), "alice", PATIENCE));
    eventually("a new token lets her back", || states().len() == 5).await;
    assert_eq!(states()[4], Connected);
    assert!(alice.video.is_connected());
}

#[tokio::test]
async fn a_server_restart_during_a_call_does_not_end_it() {
    let srv = server(quick_config()).await;
    let addr = srv.local_addr();
    let mut alice = Peer::connect(&srv.http_url(), srv.secret(), "alice").await;
    let mut bob = Peer::connect(&srv.http_url(), srv.secret(), "bob").await;
    let (out, inc) = alice.connected_call(&mut bob).await;

    srv.shutdown().await;
    eventually("both notice", || !alice.video.is_connected() && !bob.video.is_connected()).await;
    let srv = server(duet_server::ServerConfig { listen: addr, ..quick_config() }).await;
    eventually("both reconnect", || alice.video.is_connected() && bob.video.is_connected()).await;

    alice.quiet(Duration::from_millis(1000)).await;
    bob.quiet(Duration::from_millis(10)).await;
    assert_eq!(out.state(), ConversationState::Connected);
    assert_eq!(inc.state(), ConversationState::Connected);
    // The new server knows the call: a hang-up reaches the other side at once.
    out.close();
    bob.closed(&inc, EndReason::Hangup).await;
    drop(srv);
}

#[tokio::test]
async fn a_server_restart_while_ringing_keeps_the_call_ringing() {
    let config = ServerConfig { ring_timeout: Duration::from_secs(5), ..quick_config() };
    let srv = server(config.clone()).await;
    let addr = srv.local_addr();
    let mut alice = Peer::connect(&srv.http_url(), srv.secret(), "alice").await;
    let mut bob = Peer::connect(&srv.http_url(), srv.secret(), "bob").await;
    let out = alice.call("bob", Some("before the restart"));
    let (inc, _) = bob.called().await;

    srv.shutdown().await;
    eventually("both notice", || !alice.video.is_connected() && !bob.video.is_connected()).await;
    let _srv = server(ServerConfig { listen: addr, ..config }).await;
    eventually("both reconnect", || alice.video.is_connected() && bob.video.is_connected()).await;

    bob.quiet(Duration::from_millis(100)).await;
    assert_eq!(inc.state(), ConversationState::Ringing);
    inc.accept(small_stream()).unwrap();
    alice.response(CallStatus::Accepted).await;
    alice.stream().await;
    bob.stream().await;
    assert_eq!(out.state(), ConversationState::Connected);
}

#[tokio::test]
async fn a_server_restart_while_ringing_still_times_out() {
    let srv =
        server(ServerConfig { ring_timeout: Duration::from_millis(1500), ..quick_config() }).await;
    let addr = srv.local_addr();
    let mut alice = Peer::connect(&srv.http_url(), srv.secret(), "alice").await;
    let mut bob = Peer::connect(&srv.http_url(), srv.secret(), "bob").await;
    let out = alice.call("bob", None);
    let (inc, _) = bob.called().await;
    srv.shutdown().await;
    let _srv = server(ServerConfig {
        listen: addr,
        ring_timeout: Duration::from_millis(1500),
        ..quick_config()
    })
    .await;
    alice.response(CallStatus::Timeout).await;
    alice.closed(&out, EndReason::Timeout).await;
    bob.closed(&inc, EndReason::Timeout).await;
}

#[tokio::test]
async fn actions_in_the_wrong_state_say_which() {
    let srv = server(quick_config()).await;
    let mut alice = Peer::connect(&srv.http_url(), srv.secret(), "alice").await;
    let mut bob = Peer::connect(&srv.http_url(), srv.secret(), "bob").await;
    let (out, inc) = alice.connected_call(&mut bob).await;
    let not_the_callee = Err(ActionError::InvalidState(WrongState::NotTheCallee));
    assert_eq!(out.accept(small_stream()), not_the_callee, "the caller accepts its own call");
    assert_eq!(out.reject(), not_the_callee, "the caller rejects its own call");
    assert_eq!(
        inc.accept(small_stream()),
        Err(ActionError::InvalidState(WrongState::AlreadyAccepted))
    );
    let late = inc.reject();
    assert_eq!(late, Err(ActionError::InvalidState(WrongState::NotRinging)));
    assert_eq!(
        late.unwrap_err().to_string(),
        "not allowed now: only a ringing incoming call can be rejected"
    );
    out.close();
    bob.closed(&inc, EndReason::Hangup).await;
}
