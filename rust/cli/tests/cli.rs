//! The `duet` binary as a user runs it: real processes, a real server on loopback.

mod support;

use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use support::*;

fn events(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// The lifecycle events, without the per-second stats.
fn names(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["event"].as_str().expect("every line has an event").to_owned())
        .filter(|e| e != "stats")
        .collect()
}

#[test]
fn demo_runs_a_whole_call_and_reports_it() {
    let out = duet().args(["demo", "--seconds", "1", "--json"]).output().unwrap();
    assert!(out.status.success(), "demo failed: {}", String::from_utf8_lossy(&out.stderr));
    let ev = events(&out);
    let by = |uid: &str| -> Vec<String> {
        names(&ev.iter().filter(|e| e["uid"] == uid).cloned().collect::<Vec<_>>())
    };
    assert_eq!(by("alice"), ["connected", "response", "stream", "first_frame", "closed"]);
    assert_eq!(by("bob"), ["connected", "called", "stream", "first_frame", "closed"]);
    assert!(ev.iter().any(|e| e["event"] == "stats"), "stats every second of the call");
    let called = ev.iter().find(|e| e["event"] == "called").unwrap();
    assert_eq!(called["from"], "alice");
    assert_eq!(called["data"], "hello from alice");
    assert_eq!(ev.iter().find(|e| e["event"] == "response").unwrap()["status"], "accepted");
    let bob_closed = ev.iter().find(|e| e["event"] == "closed" && e["uid"] == "bob").unwrap();
    assert_eq!(bob_closed["reason"], "hangup");
    let summary = ev.last().unwrap();
    assert_eq!(summary["event"], "summary");
    assert_eq!(summary["ok"], true);
    let setup = summary["setup_ms"].as_f64().unwrap();
    let first_frame = summary["first_frame_ms"].as_f64().unwrap();
    assert!(setup > 0.0 && first_frame >= setup, "{summary}");
    for side in ["alice", "bob"] {
        let s = &summary[side];
        let (sent, received, verified) = (
            s["frames_sent"].as_u64().unwrap(),
            s["frames_received"].as_u64().unwrap(),
            s["frames_verified"].as_u64().unwrap(),
        );
        assert!(sent >= 20, "{side} sent {sent} frames in a 1 s call: {summary}");
        assert!(verified >= 15 && verified == received, "{side}: {summary}");
    }
}

#[test]
fn demo_prints_readable_lines_without_json() {
    let out = duet().args(["demo", "--seconds", "1"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("[bob] called from=alice data=hello from alice"), "{text}");
    assert!(text.contains("[alice] response status=accepted"), "{text}");
}

#[test]
fn token_mints_a_jwt_and_refuses_a_bad_uid() {
    let out = duet()
        .args(["token", "--uid", "alice", "--secret", "s3cret", "--ttl", "60"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap();
    let claims = duet_server::token::verify("s3cret", token.trim(), now())
        .expect("the minted token verifies");
    assert_eq!(claims.sub, "alice");
    assert!(claims.exp <= now() + 60 && claims.exp > now());
    let out = duet().args(["token", "--uid", ""]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

fn now() -> u64 {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since_epoch.expect("the clock is after 1970").as_secs()
}

#[test]
fn call_and_answer_between_two_processes() {
    let (_server, url) = serve(&[]);
    let bob = Running::start(duet().args(["answer", "--server", &url, "--uid", "bob", "--json"]));
    bob.line_containing("\"connected\"");
    let out = duet()
        .args([
            "call",
            "--server",
            &url,
            "--uid",
            "alice",
            "--to",
            "bob",
            "--data",
            "hi",
            "--seconds",
            "1",
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let ev = events(&out);
    assert_eq!(names(&ev), ["connected", "response", "stream", "first_frame", "closed", "summary"]);
    let (code, rest) = bob.rest();
    assert_eq!(code, 0);
    assert_eq!(names(&rest), ["called", "stream", "first_frame", "closed", "summary"]);
    assert_eq!(rest[0]["data"], "hi");
    assert_eq!(event(&rest, "closed")["reason"], "hangup");
    // Two Duet peers: each checks the other's frames against the pattern.
    for summary in [event(&ev, "summary"), event(&rest, "summary")] {
        assert_eq!(summary["ok"], true, "{summary}");
        assert_eq!(summary["check"], "pattern", "{summary}");
        assert!(summary["frames_verified"].as_u64().unwrap() > 0, "{summary}");
        assert!(summary["audio_packets_sent"].as_u64().unwrap() > 0, "{summary}");
        assert!(summary["audio_frames_decoded"].as_u64().unwrap() > 0, "{summary}");
        // The figures bench/network reads (their values are its to measure).
        assert!(summary["frames_decoded"].as_u64().unwrap() > 0, "{summary}");
        assert!(summary["frames_corrupted"].is_u64(), "{summary}");
        assert!(summary["video"]["span_ms"].as_f64().unwrap() > 0.0, "{summary}");
        assert!(summary["video"]["freezes_over_500ms"].is_u64(), "{summary}");
        assert!(summary["unix_ms"].as_u64().unwrap() > 1_700_000_000_000, "{summary}");
    }
}

#[test]
fn ctrl_c_hangs_up_a_call_and_exits() {
    let (_server, url) = serve(&[]);
    let bob = Running::start(duet().args(["answer", "--server", &url, "--uid", "bob", "--json"]));
    bob.line_containing("\"connected\"");
    let mut alice = Running::start(duet().args([
        "call",
        "--server",
        &url,
        "--uid",
        "alice",
        "--to",
        "bob",
        "--seconds",
        "60",
        "--json",
    ]));
    // Stats are polled every second: the signal comes while the call's loop is busy.
    alice.line_containing("\"stats\"");
    let pid = alice.child.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while alice.child.try_wait().unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "duet call did not exit on Ctrl-C");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, rest) = alice.rest();
    assert_eq!(code, 0, "{rest:?}");
    assert_eq!(event(&rest, "closed")["reason"], "local");
    assert_eq!(event(&bob.rest().1, "closed")["reason"], "hangup");
}

fn event<'a>(events: &'a [Value], name: &str) -> &'a Value {
    events.iter().find(|e| e["event"] == name).unwrap_or_else(|| panic!("no {name} in {events:?}"))
}

#[test]
fn a_rejected_call_exits_non_zero() {
    let (_server, url) = serve(&[]);
    let bob = Running::start(
        duet().args(["answer", "--server", &url, "--uid", "bob", "--reject", "--json"]),
    );
    bob.line_containing("\"connected\"");
    let out = duet()
        .args(["call", "--server", &url, "--uid", "alice", "--to", "bob", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let ev = events(&out);
    assert_eq!(names(&ev), ["connected", "response", "closed", "summary"]);
    assert_eq!(ev[1]["status"], "rejected");
    assert_eq!(ev[3]["ok"], false);
    assert_eq!(bob.rest().0, 0);
}

#[test]
fn an_ignored_call_times_out() {
    let (_server, url) = serve(&["--ring-timeout", "1"]);
    let bob = Running::start(
        duet().args(["answer", "--server", &url, "--uid", "bob", "--ignore", "--json"]),
    );
    bob.line_containing("\"connected\"");
    let out = duet()
        .args(["call", "--server", &url, "--uid", "alice", "--to", "bob", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(events(&out)[1]["status"], "timeout");
    let (code, rest) = bob.rest();
    assert_eq!(code, 0);
    assert_eq!(event(&rest, "closed")["reason"], "timeout");
}

#[test]
fn a_refused_token_and_an_unreachable_server_exit_2_with_a_message() {
    let (_server, url) = serve(&["--secret", "production-secret"]);
    let out = duet()
        .args([
            "call",
            "--server",
            &url,
            "--uid",
            "alice",
            "--to",
            "bob",
            "--token",
            "forged.token.here",
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let ev = events(&out);
    assert_eq!(ev[0]["event"], "error");
    assert!(ev[0]["message"].as_str().unwrap().contains("refused"), "{ev:?}");

    // A production server mints no tokens for strangers.
    let out = duet()
        .args(["call", "--server", &url, "--uid", "alice", "--to", "bob", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));

    let dead = format!("http://127.0.0.1:{}", free_port());
    let out = duet()
        .args([
            "call", "--server", &dead, "--uid", "alice", "--to", "bob", "--secret", "x", "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(events(&out)[0]["message"].as_str().unwrap().contains("cannot reach"));
}
