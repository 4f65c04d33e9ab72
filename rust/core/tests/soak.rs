//! Many calls in a row in one process leave memory, sockets and tasks flat. A test binary of
//! its own, so no other test's allocations move the figures.

// A test that fails says so loudly; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use duet_core::*;
use support::*;

const CALLS: usize = 50;
const WARM_UP: usize = 20;

/// Resident memory once freed memory has gone back to the system, so the figure tracks
/// what is live rather than the allocator's high-water mark.
fn rss_kib() -> u64 {
    // SAFETY: malloc_trim only releases free memory; nothing else holds allocator state here.
    unsafe { libc::malloc_trim(0) };
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// One whole call: ring, accept, the first decoded frame on both sides, hang up.
async fn one_call(alice: &mut Peer, bob: &mut Peer) -> u64 {
    let out = alice.call("bob", None);
    let (inc, _) = bob.called().await;
    inc.accept(small_stream()).unwrap();
    alice.response(CallStatus::Accepted).await;
    alice.stream().await;
    bob.stream().await;
    let (a, b) = (out.remote_stream().unwrap(), inc.remote_stream().unwrap());
    eventually("a frame each way", || a.frames_decoded() > 0 && b.frames_decoded() > 0).await;
    let in_call = rss_kib();
    out.close();
    bob.closed(&inc, EndReason::Hangup).await;
    in_call
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_calls_in_a_row_leave_memory_flat() {
    // Per-thread arenas would make RSS jump by tens of MiB whenever a worker thread first
    // allocates, which says nothing about leaks.
    // SAFETY: set before any call is made; mallopt only tunes the allocator.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
    let srv = server(quick_config()).await;
    let mut alice = Peer::connect(&srv.http_url(), srv.secret(), "alice").await;
    let mut bob = Peer::connect(&srv.http_url(), srv.secret(), "bob").await;
    let idle_before = rss_kib();
    let mut in_call = Vec::new();
    let mut after = Vec::new();
    let mut tasks_warm = 0;
    for n in 0..CALLS {
        in_call.push(one_call(&mut alice, &mut bob).await);
        tokio::time::sleep(Duration::from_millis(20)).await;
        after.push(rss_kib());
        if n + 1 == WARM_UP {
            tasks_warm = alive_tasks().await;
        }
    }
    let tasks = alive_tasks().await;
    let warm = after[WARM_UP - 1];
    let last = *after.last().unwrap();
    let per_call = in_call.iter().zip(&after).map(|(c, a)| c.saturating_sub(*a)).max().unwrap();
    let curve: Vec<u64> = after.iter().step_by(5).map(|k| k / 1024).collect();
    eprintln!("soak: RSS every 5 calls, MiB: {curve:?}");
    eprintln!(
        "soak: RSS idle {idle_before} KiB, after {WARM_UP} calls {warm} KiB, after {CALLS} calls \
         {last} KiB; in a call at most {per_call} KiB above idle; {tasks} tasks alive"
    );
    // The allocator's high-water mark swings by several MiB from call to call, so compare
    // the mean of the last ten calls with the mean of the ten after warming up: a call that
    // kept its peer connection (about 1 MiB each) would add tens of MiB.
    let mean = |s: &[u64]| s.iter().sum::<u64>() / s.len() as u64;
    let early = mean(&after[WARM_UP..WARM_UP + 10]);
    let late = mean(&after[CALLS - 10..]);
    assert!(
        late < early + 8 * 1024,
        "RSS grew from {early} KiB to {late} KiB (means of ten calls) over {} calls",
        CALLS - WARM_UP
    );
    assert!(tasks <= tasks_warm, "tasks alive grew from {tasks_warm} to {tasks}");
}

/// Live tasks once the ones a closed call leaves to wind down have had a moment to do so.
async fn alive_tasks() -> usize {
    tokio::time::sleep(Duration::from_millis(100)).await;
    tokio::runtime::Handle::current().metrics().num_alive_tasks()
}
