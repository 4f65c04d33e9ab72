//! Three `duet serve --redis` nodes on Debian's redis-server, behind Debian's nginx as
//! docs/deploy.md sets them up, with `duet call` and `duet answer` as the clients: every
//! lifecycle rule holds across nodes, a dead node loses no call and no ring deadline, and
//! a restarted Redis costs a reconnect, not a call.
//!
//! nginx listens on one port per node (`Nginx::start_cluster`): front `i` prefers node `i`
//! and falls back to the others, so a test places each client on the node it wants and a
//! client whose node dies reconnects through the same front to another.

// A test that fails says so loudly; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

#[path = "../../core/tests/support/mod.rs"]
mod sdk;
mod support;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::nginx::Nginx;
use support::redis::Redis;
use support::*;

/// Seconds a call rings: long enough for a dead leader's lease (3 s) to pass and the
/// clients to restate, short enough for a test.
const RING_TIMEOUT: u64 = 8;

struct Cluster {
    nodes: Vec<Option<Running>>,
    urls: Vec<String>,
    nginx: Nginx,
    redis: Redis,
    _one_at_a_time: std::sync::MutexGuard<'static, ()>,
}

/// One cluster at a time: five clusters of five processes each at once starve a 2-core
/// machine, and the scenarios' 5 s patience then fails about one run in two (a glare or a
/// ring event later than 5 s); one after another they pass.
static ONE_CLUSTER: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Cluster {
    fn start() -> Cluster {
        let one_at_a_time = ONE_CLUSTER.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let redis = Redis::start();
        let ring = RING_TIMEOUT.to_string();
        let mut nodes = Vec::new();
        let mut urls = Vec::new();
        for _ in 0..3 {
            let (node, url) = serve(&["--redis", &redis.url(), "--ring-timeout", &ring]);
            nodes.push(Some(node));
            urls.push(url);
        }
        let ports: Vec<u16> = urls.iter().map(|u| port_of(u)).collect();
        let nginx = Nginx::start_cluster(&ports);
        let cluster = Cluster { nodes, urls, nginx, redis, _one_at_a_time: one_at_a_time };
        cluster.wait_for_leader();
        cluster
    }

    fn front(&self, i: usize) -> String {
        self.nginx.front_url(i)
    }

    /// The node holding the leader lease, once one does.
    fn wait_for_leader(&self) -> usize {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(i) = (0..self.urls.len()).find(|i| {
                self.nodes[*i].is_some()
                    && metrics(&self.urls[*i]).contains("\nduet_cluster_leader 1")
            }) {
                return i;
            }
            assert!(Instant::now() < deadline, "no node leads the cluster");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills node `i` as a crash would (SIGKILL).
    fn kill(&mut self, i: usize) {
        drop(self.nodes[i].take());
    }
}

/// `GET /metrics` of a node, as text ("" if it does not answer).
fn metrics(url: &str) -> String {
    let addr = url.trim_start_matches("http://");
    let Ok(mut s) = std::net::TcpStream::connect(addr) else { return String::new() };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return String::new();
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn events<'a>(events: &'a [Value], name: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == name).collect()
}

fn event<'a>(all: &'a [Value], name: &str) -> &'a Value {
    events(all, name).into_iter().next().unwrap_or_else(|| panic!("no {name} in {all:?}"))
}

fn closed_reason(all: &[Value]) -> String {
    event(all, "closed")["reason"].as_str().unwrap().to_owned()
}

/// How a `duet answer` that accepted ended: its close reason, or `answered_elsewhere` when
/// the other device's accept had won before its own accept left (the SDK refuses it then).
fn outcome(all: &[Value]) -> String {
    let too_late = events(all, "error")
        .iter()
        .any(|e| e["message"].as_str().is_some_and(|m| m.contains("answered on another device")));
    if too_late {
        return "answered_elsewhere".to_owned();
    }
    closed_reason(all)
}

fn verified(all: &[Value]) -> u64 {
    event(all, "summary")["frames_verified"].as_u64().unwrap_or(0)
}

/// `duet answer` (accepting, or `--ignore`), connected before this returns.
fn answer(url: &str, uid: &str, extra: &[&str]) -> Running {
    let device = Running::start(
        duet()
            .args(["answer", "--server", url, "--uid", uid, "--seconds", "60", "--json"])
            .args(extra),
    );
    device.line_containing("\"connected\"");
    device
}

fn call(url: &str, uid: &str, to: &str, seconds: u64) -> Running {
    Running::start(
        duet()
            .args(["call", "--server", url, "--uid", uid, "--to", to, "--json"])
            .args(["--seconds", &seconds.to_string()]),
    )
}

/// Caller and callee on different nodes, the callee's two devices on two more: both ring,
/// the first accept wins and the other hears `answered_elsewhere`; the call has verified
/// media both ways; a third user calling the callee meanwhile hears `busy`.
#[test]
fn a_call_across_nodes_rings_every_device_and_one_wins() {
    let cluster = Cluster::start();
    let bob_here = answer(&cluster.front(1), "bob", &[]);
    let bob_there = answer(&cluster.front(2), "bob", &[]);
    let alice = call(&cluster.front(0), "alice", "bob", 4);
    alice.line_containing("\"stream\"");

    let (code, carol) = call(&cluster.front(2), "carol", "bob", 1).rest();
    assert_eq!(code, 1, "{carol:?}");
    assert_eq!(event(&carol, "response")["status"], "busy", "{carol:?}");

    let (code, alice) = alice.rest();
    assert_eq!(code, 0, "{alice:?}\n{}", cluster.nginx.error_log());
    assert!(verified(&alice) > 0, "{alice:?}");
    let (_, here) = bob_here.rest();
    let (_, there) = bob_there.rest();
    let mut outcomes = [outcome(&here), outcome(&there)];
    outcomes.sort();
    assert_eq!(outcomes, ["answered_elsewhere", "hangup"], "{here:?}\n{there:?}");
    let winner = if outcome(&here) == "hangup" { &here } else { &there };
    assert!(verified(winner) > 0, "{winner:?}");
}

/// Alice and Bob call each other at once from two nodes: one call survives, the other
/// caller answers it (docs/protocol.md, Glare), and both have media. Through the SDK (the
/// harness of rust/core/tests), so that both invites leave before either could hear of the
/// other's: two `duet call` processes would race their connections, and a client rung
/// before it has sent its own invite declines as busy, which is not glare.
#[test]
fn glare_across_nodes_merges_into_one_call() {
    let cluster = Cluster::start();
    let (near, far) = (cluster.front(0), cluster.front(1));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let secret = duet_server::token::DEV_SECRET;
        let mut alice = sdk::Peer::connect(&near, secret, "alice").await;
        let mut bob = sdk::Peer::connect(&far, secret, "bob").await;
        let a = alice.call("bob", None);
        let b = bob.call("alice", None);
        alice.response(duet_core::CallStatus::Accepted).await;
        bob.response(duet_core::CallStatus::Accepted).await;
        alice.stream().await;
        bob.stream().await;
        assert_eq!(a.call_id(), b.call_id(), "one call, not two");
        b.close();
        alice.closed(&a, duet_core::EndReason::Hangup).await;
    });
}

/// The node that took an invite (and leads the cluster, the hardest case: the ring
/// deadline lived there) is killed: the caller reconnects through nginx, the ring still
/// ends when it was due, for the caller and the callee.
#[test]
fn the_ring_ends_on_time_when_the_node_that_took_the_invite_dies() {
    let mut cluster = Cluster::start();
    let leader = cluster.wait_for_leader();
    let other = (leader + 1) % 3;
    let bob = answer(&cluster.front(other), "bob", &["--ignore"]);
    let placed = Instant::now();
    let alice = call(&cluster.front(leader), "alice", "bob", 1);
    bob.line_containing("\"called\"");
    cluster.kill(leader);

    let (code, alice) = alice.rest();
    let alice_done = placed.elapsed();
    assert_eq!(code, 1, "{alice:?}");
    assert_eq!(event(&alice, "response")["status"], "timeout", "{alice:?}");
    let (_, bob) = bob.rest();
    assert_eq!(closed_reason(&bob), "timeout", "{bob:?}");
    let due = Duration::from_secs(RING_TIMEOUT);
    assert!(
        alice_done >= due - Duration::from_millis(500) && alice_done < due + Duration::from_secs(3),
        "the ring ended {alice_done:?} after the invite, due at {due:?}"
    );
}

/// A node dies mid-call: media never passed through it, so the call goes on; the client
/// it held reconnects through nginx to another node and restates, and the hang-up at the
/// end reaches the other side.
#[test]
fn a_call_survives_its_nodes_death() {
    let mut cluster = Cluster::start();
    let bob = answer(&cluster.front(1), "bob", &[]);
    let alice = call(&cluster.front(0), "alice", "bob", 8);
    alice.line_containing("\"stream\"");
    cluster.kill(1);
    let (code, alice) = alice.rest();
    assert_eq!(code, 0, "{alice:?}\n{}", cluster.nginx.error_log());
    let (_, bob) = bob.rest();
    assert_eq!(closed_reason(&bob), "hangup", "{bob:?}");
    assert!(verified(&alice) > 0 && verified(&bob) > 0, "{alice:?}\n{bob:?}");
}

/// Redis restarts empty mid-call: the nodes reconnect, a leader is elected again, every
/// client restates, and the call ends normally.
#[test]
fn a_call_survives_a_redis_restart() {
    let mut cluster = Cluster::start();
    let bob = answer(&cluster.front(1), "bob", &[]);
    let alice = call(&cluster.front(0), "alice", "bob", 8);
    alice.line_containing("\"stream\"");
    cluster.redis.restart();
    cluster.wait_for_leader();
    let (code, alice) = alice.rest();
    assert_eq!(code, 0, "{alice:?}\n{}", cluster.nginx.error_log());
    let (_, bob) = bob.rest();
    assert_eq!(closed_reason(&bob), "hangup", "{bob:?}");
    assert!(metrics(&cluster.urls[0]).contains("duet_redis_up 1"));
}

/// SIGTERM on the leader: it drains and gives its lease up on the way out, so that another
/// node leads at its next refresh (half a second) rather than when the lease would have
/// run out (3 s).
#[test]
fn a_draining_leader_gives_up_its_lease() {
    let mut cluster = Cluster::start();
    let leader = cluster.wait_for_leader();
    let lease = cluster.redis.command(&["GET", "duet:leader"]);
    assert!(lease.starts_with('$') && !lease.starts_with("$-1"), "{lease:?}");
    let node = cluster.nodes[leader].as_mut().unwrap();
    let pid = node.child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while node.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the leader did not exit on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Without the release, the key would still name the drained node for up to 3 s.
    let after = cluster.redis.command(&["GET", "duet:leader"]);
    assert_ne!(after, lease, "the drained leader still holds the lease");
    cluster.nodes[leader] = None;
    let started = Instant::now();
    let next = cluster.wait_for_leader();
    assert_ne!(next, leader);
    println!("a new leader after {:?}", started.elapsed());
}
