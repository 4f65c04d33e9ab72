//! A server drained for a restart (SIGTERM): its clients hear the close that says
//! "reconnect elsewhere", reconnect at once to its successor, and their call carries on.

#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use duet_core::*;
use duet_server::{ServerConfig, ServerHandle};
use support::*;

/// A server on `addr`, which a draining predecessor is about to let go of.
async fn successor(addr: SocketAddr) -> ServerHandle {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match duet_server::start(ServerConfig { listen: addr, ..quick_config() }).await {
            Ok(server) => return server,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => panic!("the successor cannot bind {addr}: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_servers_call_carries_on_on_its_successor() {
    let srv = server(quick_config()).await;
    let addr = srv.local_addr();
    let mut alice = Peer::connect(&srv.http_url(), srv.secret(), "alice").await;
    let mut bob = Peer::connect(&srv.http_url(), srv.secret(), "bob").await;
    let (out, inc) = alice.connected_call(&mut bob).await;

    let started = Instant::now();
    let drain = tokio::spawn(srv.drain(Duration::from_secs(10)));
    let next = successor(addr).await;
    // Not `is_connected()` alone: it still holds before a client has noticed the drain.
    // A client has moved once its delegate heard it connected again.
    eventually("both reconnect to the successor", || {
        [&alice, &bob].iter().all(|peer| {
            peer.video.is_connected()
                && peer.recorder.connection_states().contains(&ConnectionState::Connected)
        })
    })
    .await;
    let moved = started.elapsed();
    let report = drain.await.unwrap();
    assert_eq!(report.left_behind, 0, "every client left the drained server");
    println!(
        "both clients moved in {} ms; the drain took {} ms",
        moved.as_millis(),
        report.elapsed.as_millis()
    );

    // Not a failure: the clients went through Reconnecting, never Refused, and the call
    // did not end.
    for peer in [&alice, &bob] {
        let states = peer.recorder.connection_states();
        assert_eq!(
            states,
            [ConnectionState::Reconnecting, ConnectionState::Connected],
            "{}",
            peer.name
        );
    }
    alice.quiet(Duration::from_millis(300)).await;
    bob.quiet(Duration::from_millis(10)).await;
    assert_eq!(out.state(), ConversationState::Connected);
    assert_eq!(inc.state(), ConversationState::Connected);
    // The successor knows the call from the restatements: a hang-up reaches bob at once.
    out.close();
    bob.closed(&inc, EndReason::Hangup).await;
    drop(next);
}
