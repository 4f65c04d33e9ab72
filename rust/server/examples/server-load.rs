//! The engine of `bench/server-load`: what one signaling server costs per idle connection
//! and per call setup, beside a minimal relay built in the same run.
//!
//! The driver (no arguments, or `--idle N,N,..` / `--setups SECONDS` / `--repeats N`)
//! starts each server as a child process of this same binary (`child-duet`, `child-relay`),
//! so that the child's `/proc/PID/status` (VmRSS) and `/proc/PID/stat` (utime + stime)
//! hold the server alone, never the load generator. Loopback only; every loop is bounded.
#![allow(clippy::cast_precision_loss)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use duet_protocol::{encode, ClientMessage, Limits, Signal};
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Mutex, Semaphore};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

const SECRET: &str = "server-load-secret";
/// The size of each SDP in a setup, as the measurement had it.
const SDP_BYTES: usize = 3000;
/// Handshakes in flight at once while opening idle connections.
const CONNECT_CONCURRENCY: usize = 256;
/// Caller/callee pairs that run setups back to back.
const PAIRS: usize = 64;
/// The longest any single read in a setup may take before the run is declared broken.
const STEP: Duration = Duration::from_secs(10);

type Ws = WebSocketStream<TcpStream>;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Duet,
    Relay,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Duet => "duet-server",
            Kind::Relay => "minimal relay",
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build();
    let runtime = runtime.expect("a tokio runtime");
    match args.first().map(String::as_str) {
        Some("child-duet") => runtime.block_on(child_duet(args.get(1).cloned())),
        Some("child-relay") => runtime.block_on(child_relay()),
        _ => runtime.block_on(driver(&args)),
    }
}

// ---------------------------------------------------------------------------------------
// The servers under test, each in a child process: it prints its port, then runs until its
// stdin closes.

/// A single process, or with `redis` a node of the cluster on that Redis.
async fn child_duet(redis: Option<String>) {
    let config = duet_server::ServerConfig {
        redis,
        listen: "127.0.0.1:0".parse().expect("an address"),
        secret: Some(SECRET.to_owned()),
        ice: duet_server::IceConfig::None,
        // The bench measures cost, not policy: the rate limit is still checked per
        // message, it just never refuses.
        limits: Limits {
            messages_per_second: 1_000_000,
            message_burst: 1_000_000,
            ..Limits::default()
        },
        ..bench_config()
    };
    let server = duet_server::start(config).await.expect("the server starts");
    println!("{}", server.local_addr().port());
    wait_for_stdin_eof().await;
    server.shutdown().await;
}

/// The defaults, but for the bound on connections from one IP: the whole load comes from
/// 127.0.0.1.
fn bench_config() -> duet_server::ServerConfig {
    duet_server::ServerConfig {
        connections: duet_server::ConnectionLimits {
            max_per_ip: usize::MAX,
            ..duet_server::ConnectionLimits::default()
        },
        ..duet_server::ServerConfig::default()
    }
}

async fn wait_for_stdin_eof() {
    let _ = tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    })
    .await;
}

/// A minimal relay: the first text frame names the connection (answered `ok`); every later
/// one is `TO\nPAYLOAD` and PAYLOAD goes to the connection named TO. 4 KiB buffers, no JSON.
async fn child_relay() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    println!("{}", listener.local_addr().expect("an address").port());
    let routes: Routes = Arc::new(Mutex::new(HashMap::new()));
    let accept = async {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { continue };
            let _ = tcp.set_nodelay(true);
            tokio::spawn(relay_connection(tcp, Arc::clone(&routes)));
        }
    };
    tokio::select! {
        () = accept => {}
        () = wait_for_stdin_eof() => {}
    }
}

type Routes = Arc<Mutex<HashMap<String, mpsc::Sender<Message>>>>;

fn small_buffers() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0)
}

async fn relay_connection(tcp: TcpStream, routes: Routes) {
    let Ok(mut ws) = tokio_tungstenite::accept_async_with_config(tcp, Some(small_buffers())).await
    else {
        return;
    };
    let Some(Ok(Message::Text(name))) = ws.next().await else { return };
    let (tx, mut rx) = mpsc::channel(64);
    routes.lock().await.insert(name.to_string(), tx);
    // The client waits for this, so nothing is sent to a name not yet routed.
    if ws.send(Message::text("ok")).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            out = rx.recv() => match out {
                Some(msg) => if ws.send(msg).await.is_err() { break },
                None => break,
            },
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    let Some((to, payload)) = text.split_once('\n') else { continue };
                    let target = routes.lock().await.get(to).cloned();
                    if let Some(target) = target {
                        let _ = target.send(Message::text(payload)).await;
                    }
                }
                Some(Ok(_)) => {}
                _ => break,
            },
        }
    }
    routes.lock().await.remove(name.as_str());
}

// ---------------------------------------------------------------------------------------
// The driver.

struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn spawn(kind: Kind) -> Server {
        Server::spawn_with(kind, None)
    }

    /// With `redis`, a `duet serve --redis` node of the cluster on it.
    fn spawn_with(kind: Kind, redis: Option<&str>) -> Server {
        let role = match kind {
            Kind::Duet => "child-duet",
            Kind::Relay => "child-relay",
        };
        let exe = std::env::current_exe().expect("this binary's path");
        let mut child = Command::new(exe)
            .arg(role)
            .args(redis)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the server child starts");
        let stdout = child.stdout.take().expect("its stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("its port");
        let port = line.trim().parse().expect("a port number");
        Server { child, port }
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("a VmRSS line")
    }

    /// The child's CPU time so far (user + system).
    fn cpu(&self) -> Duration {
        cpu_of(self.child.id())
    }

    fn stop(mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

async fn driver(args: &[String]) {
    let mut idle_counts = vec![1000, 5000, 10_000];
    let mut setup_seconds = 5;
    let mut repeats = 3;
    // 0 is the plain single process, beside the clusters of 1, 2 and 3 nodes on Redis.
    let mut node_counts = vec![0, 1, 2, 3];
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let value = it.next().map_or("", String::as_str);
        match arg.as_str() {
            "--idle" => {
                idle_counts = value.split(',').filter_map(|n| n.parse().ok()).collect();
            }
            "--setups" => setup_seconds = value.parse().expect("--setups SECONDS"),
            "--repeats" => repeats = value.parse().expect("--repeats N"),
            "--nodes" => node_counts = value.split(',').filter_map(|n| n.parse().ok()).collect(),
            other => panic!("unknown argument {other}"),
        }
    }
    println!("# idle connections: server RSS per connection (KiB)");
    println!("| server | connections | sign-ins per second | RSS before (MiB) | RSS after (MiB) | KiB per connection |");
    println!("|---|---|---|---|---|---|");
    for &n in &idle_counts {
        for kind in [Kind::Duet, Kind::Relay] {
            idle(kind, n).await;
        }
    }
    if setup_seconds > 0 {
        println!();
        println!("# call setups per server CPU-second ({PAIRS} pairs, {setup_seconds} s runs, {repeats} runs: min / median / max)");
        println!("| server | setups per CPU-second | server CPU use (cores) |");
        println!("|---|---|---|");
        for kind in [Kind::Duet, Kind::Relay] {
            setups(kind, Duration::from_secs(setup_seconds), repeats).await;
        }
    }
    if setup_seconds > 0 && !node_counts.is_empty() {
        cluster_table(&node_counts, Duration::from_secs(setup_seconds), repeats).await;
    }
}

async fn idle(kind: Kind, n: usize) {
    let server = Server::spawn(kind);
    // One connection first, so that the runtime's lazily made parts are in the baseline.
    let warm = open(kind, server.port, 0).await;
    drop(warm);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = server.rss_kib();
    let permits = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let t0 = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 1..=n {
        let permits = Arc::clone(&permits);
        let port = server.port;
        tasks.spawn(async move {
            let _permit = permits.acquire().await.expect("the semaphore");
            open(kind, port, i).await
        });
    }
    let mut held = Vec::with_capacity(n);
    while let Some(ws) = tasks.join_next().await {
        held.push(ws.expect("a connection task"));
    }
    let rate = n as f64 / t0.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = server.rss_kib();
    let per = (after.saturating_sub(before)) as f64 / n as f64;
    println!(
        "| {} | {n} | {rate:.0} | {:.1} | {:.1} | {per:.1} |",
        kind.name(),
        before as f64 / 1024.0,
        after as f64 / 1024.0
    );
    drop(held);
    server.stop();
}

async fn connect(port: u16) -> Ws {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.expect("a TCP connection");
    tcp.set_nodelay(true).expect("TCP_NODELAY");
    let url = format!("ws://127.0.0.1:{port}/ws");
    let (ws, _) = tokio_tungstenite::client_async_with_config(url, tcp, Some(small_buffers()))
        .await
        .expect("a WebSocket");
    ws
}

/// A connection that has signed in (Duet: `hello` answered by `welcome`; relay: named).
async fn open(kind: Kind, port: u16, i: usize) -> Ws {
    let mut ws = connect(port).await;
    let uid = format!("u{i}");
    match kind {
        Kind::Duet => {
            let hello = ClientMessage::Hello {
                v: duet_protocol::PROTOCOL_VERSION,
                token: duet_server::token::mint(SECRET, &uid, Duration::from_secs(3600)),
                device_id: "d".to_owned(),
                calls: Vec::new(),
                woken_for: None,
            };
            ws.send(Message::text(encode(&hello))).await.expect("hello sent");
            let welcome = read_text(&mut ws).await;
            assert!(welcome.contains("\"welcome\""), "expected welcome, got {welcome}");
        }
        Kind::Relay => {
            ws.send(Message::text(uid)).await.expect("name sent");
            assert_eq!(read_text(&mut ws).await, "ok");
        }
    }
    ws
}

async fn read_text(ws: &mut Ws) -> String {
    loop {
        match tokio::time::timeout(STEP, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return t.to_string(),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

async fn setups(kind: Kind, duration: Duration, repeats: usize) {
    let mut rates = Vec::new();
    let mut loads = Vec::new();
    for _ in 0..repeats {
        let server = Server::spawn(kind);
        let mut pairs = Vec::new();
        for p in 0..PAIRS {
            let caller = open(kind, server.port, 2 * p).await;
            let callee = open(kind, server.port, 2 * p + 1).await;
            pairs.push((p, caller, callee));
        }
        let cpu0 = server.cpu();
        let t0 = Instant::now();
        let deadline = t0 + duration;
        let mut tasks = tokio::task::JoinSet::new();
        for (p, caller, callee) in pairs {
            tasks.spawn(setup_loop(kind, p, caller, callee, deadline));
        }
        let mut done = 0u64;
        while let Some(n) = tasks.join_next().await {
            done += n.expect("a pair's task");
        }
        let cpu = server.cpu().saturating_sub(cpu0).as_secs_f64();
        let wall = t0.elapsed().as_secs_f64();
        rates.push(done as f64 / cpu.max(0.001));
        loads.push(cpu / wall);
        server.stop();
    }
    let (r, l) = (summary(&mut rates, 0), summary(&mut loads, 2));
    println!("| {} | {r} | {l} |", kind.name());
}

/// A process's CPU time so far (user + system), from /proc/PID/stat.
fn cpu_of(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    // Fields after the command name, which is in parentheses and may hold spaces.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: u64 = fields[11].parse::<u64>().unwrap_or(0) + fields[12].parse().unwrap_or(0);
    let hz: u64 = std::env::var("CLK_TCK").ok().and_then(|v| v.parse().ok()).unwrap_or(100);
    Duration::from_millis(ticks * 1000 / hz)
}

fn summary(values: &mut [f64], decimals: usize) -> String {
    values.sort_by(f64::total_cmp);
    let pick = |i: usize| format!("{:.*}", decimals, values[i]);
    format!("{} / {} / {}", pick(0), pick(values.len() / 2), pick(values.len() - 1))
}

/// Setups back to back until `deadline`; returns how many completed.
async fn setup_loop(
    kind: Kind,
    pair: usize,
    mut caller: Ws,
    mut callee: Ws,
    deadline: Instant,
) -> u64 {
    let mut n = 0u64;
    while Instant::now() < deadline {
        let call_id = format!("p{pair}-c{n}");
        match kind {
            Kind::Duet => duet_setup(&mut caller, &mut callee, &call_id, pair).await,
            Kind::Relay => relay_setup(&mut caller, &mut callee, &call_id, pair).await,
        }
        n += 1;
    }
    n
}

fn sdp() -> String {
    "v=0\r\n".to_owned() + &"a=x".repeat(SDP_BYTES / 3)
}

fn candidate(i: u32) -> Signal {
    Signal::Candidate {
        candidate: format!("candidate:{i} 1 udp 2130706431 127.0.0.1 {} typ host", 50000 + i),
        sdp_mid: Some("0".into()),
        sdp_mline_index: Some(0),
    }
}

async fn send(ws: &mut Ws, msg: &ClientMessage) {
    ws.send(Message::text(encode(msg))).await.expect("sent");
}

/// Reads one message and checks it is of type `ty`.
async fn expect(ws: &mut Ws, ty: &str) {
    let text = read_text(ws).await;
    assert!(text.contains(&format!("\"type\":\"{ty}\"")), "expected {ty}, got {text}");
}

async fn duet_setup(caller: &mut Ws, callee: &mut Ws, call_id: &str, pair: usize) {
    let id = call_id.to_owned();
    let to = format!("u{}", 2 * pair + 1);
    let invite = ClientMessage::Invite {
        call_id: id.clone(),
        to,
        data: None,
        options: duet_protocol::CallOptions::default(),
        sdp: Some(sdp()),
    };
    send(caller, &invite).await;
    expect(callee, "incoming").await;
    expect(caller, "ringing").await;
    send(callee, &ClientMessage::Accept { call_id: id.clone(), sdp: Some(sdp()) }).await;
    expect(caller, "response").await;
    expect(callee, "response").await;
    for i in 0..4 {
        send(caller, &ClientMessage::Signal { call_id: id.clone(), signal: candidate(i) }).await;
        send(callee, &ClientMessage::Signal { call_id: id.clone(), signal: candidate(i) }).await;
    }
    for _ in 0..4 {
        expect(caller, "signal").await;
        expect(callee, "signal").await;
    }
    send(caller, &ClientMessage::Hangup { call_id: id }).await;
    expect(callee, "closed").await;
}

/// The same exchange through the relay: the callee stands in for the server's `ringing`
/// and `response` to itself is left out, so the relay moves 12 messages to Duet's 13.
async fn relay_setup(caller: &mut Ws, callee: &mut Ws, call_id: &str, pair: usize) {
    let caller_name = format!("u{}", 2 * pair);
    let callee_name = format!("u{}", 2 * pair + 1);
    let to_callee = |msg: &ClientMessage| format!("{callee_name}\n{}", encode(msg));
    let to_caller = |msg: &ClientMessage| format!("{caller_name}\n{}", encode(msg));
    let id = call_id.to_owned();
    let invite = ClientMessage::Invite {
        call_id: id.clone(),
        to: callee_name.clone(),
        data: None,
        options: duet_protocol::CallOptions::default(),
        sdp: Some(sdp()),
    };
    let ringing = ClientMessage::Hangup { call_id: id.clone() };
    caller.send(Message::text(to_callee(&invite))).await.expect("sent");
    read_text(callee).await;
    callee.send(Message::text(to_caller(&ringing))).await.expect("sent");
    read_text(caller).await;
    let accept = ClientMessage::Accept { call_id: id.clone(), sdp: Some(sdp()) };
    callee.send(Message::text(to_caller(&accept))).await.expect("sent");
    read_text(caller).await;
    for i in 0..4 {
        let signal = ClientMessage::Signal { call_id: id.clone(), signal: candidate(i) };
        caller.send(Message::text(to_callee(&signal))).await.expect("sent");
        callee.send(Message::text(to_caller(&signal))).await.expect("sent");
    }
    for _ in 0..4 {
        read_text(caller).await;
        read_text(callee).await;
    }
    let hangup = ClientMessage::Hangup { call_id: id };
    caller.send(Message::text(to_callee(&hangup))).await.expect("sent");
    read_text(callee).await;
}

// ---------------------------------------------------------------------------------------
// Across nodes: the same setups against `duet serve --redis` nodes sharing one
// redis-server, each pair's caller on one node and its callee on the next.

/// A redis-server of the bench's own: loopback, a free port, nothing persisted.
struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    fn start() -> RedisServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server starts (scripts/bootstrap installs it)");
        let deadline = Instant::now() + STEP;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server is not listening");
            std::thread::sleep(Duration::from_millis(20));
        }
        RedisServer { child, port }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Calls so far of each command (`INFO commandstats`).
    fn command_calls(&self) -> HashMap<String, u64> {
        let info = self.cli(&["INFO", "commandstats"]);
        let mut calls = HashMap::new();
        for line in info.lines() {
            let Some((name, stats)) = line.trim().split_once(':') else { continue };
            let Some(name) = name.strip_prefix("cmdstat_") else { continue };
            let n = stats.split(',').find_map(|kv| kv.strip_prefix("calls="));
            calls.insert(name.to_owned(), n.and_then(|n| n.parse().ok()).unwrap_or(0));
        }
        calls
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one run across nodes measured.
struct ClusterRun {
    per_second: f64,
    per_cpu_second: f64,
    cores: f64,
    /// Redis commands per setup, in all and by command; every one a request and its reply.
    commands: f64,
    by_command: Vec<(String, f64)>,
}

async fn cluster_table(node_counts: &[usize], duration: Duration, repeats: usize) {
    println!();
    println!(
        "# call setups across nodes ({PAIRS} pairs, {} s runs, {repeats} runs: min / median / max)",
        duration.as_secs()
    );
    println!("CPU is every duet process plus redis-server; 0 nodes is the plain single process.");
    println!("| nodes | setups per second | setups per CPU-second | CPU use (cores) | Redis commands per setup | by command (median run) |");
    println!("|---|---|---|---|---|---|");
    for &nodes in node_counts {
        let mut runs = Vec::new();
        for _ in 0..repeats {
            runs.push(cluster_run(nodes, duration).await);
        }
        let pick =
            |f: fn(&ClusterRun) -> f64, d| summary(&mut runs.iter().map(f).collect::<Vec<_>>(), d);
        let (rate, per_cpu) = (pick(|r| r.per_second, 0), pick(|r| r.per_cpu_second, 0));
        let (cores, commands) = (pick(|r| r.cores, 2), pick(|r| r.commands, 2));
        runs.sort_by(|a, b| a.per_cpu_second.total_cmp(&b.per_cpu_second));
        let median = &runs[runs.len() / 2];
        let by: Vec<String> =
            median.by_command.iter().map(|(c, n)| format!("{c} {n:.2}")).collect();
        let (commands, by) =
            if nodes == 0 { ("-".into(), "-".into()) } else { (commands, by.join(", ")) };
        println!("| {nodes} | {rate} | {per_cpu} | {cores} | {commands} | {by} |");
    }
}

/// One run: `nodes` nodes on a fresh redis-server (or, for 0, the plain single process).
async fn cluster_run(nodes: usize, duration: Duration) -> ClusterRun {
    let redis = (nodes > 0).then(RedisServer::start);
    let url = redis.as_ref().map(RedisServer::url);
    let servers: Vec<Server> =
        (0..nodes.max(1)).map(|_| Server::spawn_with(Kind::Duet, url.as_deref())).collect();
    if let Some(redis) = &redis {
        wait_for_leader(redis).await;
    }
    let mut pairs = Vec::new();
    for p in 0..PAIRS {
        let caller = open(Kind::Duet, servers[p % servers.len()].port, 2 * p).await;
        let callee = open(Kind::Duet, servers[(p + 1) % servers.len()].port, 2 * p + 1).await;
        pairs.push((p, caller, callee));
    }
    let pids: Vec<u32> =
        servers.iter().map(|s| s.child.id()).chain(redis.as_ref().map(|r| r.child.id())).collect();
    let cpu = || pids.iter().map(|&pid| cpu_of(pid)).sum::<Duration>();
    let (cpu0, calls0) = (cpu(), redis.as_ref().map(RedisServer::command_calls));
    let t0 = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (p, caller, callee) in pairs {
        tasks.spawn(setup_loop(Kind::Duet, p, caller, callee, t0 + duration));
    }
    let mut done = 0u64;
    while let Some(n) = tasks.join_next().await {
        done += n.expect("a pair's task");
    }
    let wall = t0.elapsed().as_secs_f64();
    let used = cpu().saturating_sub(cpu0).as_secs_f64();
    let calls1 = redis.as_ref().map(RedisServer::command_calls);
    let by_command = command_diff(calls0.unwrap_or_default(), calls1.unwrap_or_default(), done);
    for server in servers {
        server.stop();
    }
    if let Some(redis) = redis {
        redis.stop();
    }
    ClusterRun {
        per_second: done as f64 / wall,
        per_cpu_second: done as f64 / used.max(0.001),
        cores: used / wall,
        commands: by_command.iter().map(|(_, n)| n).sum(),
        by_command,
    }
}

/// Commands per setup between two `INFO commandstats`, most first (the `info` asked for
/// the second reading is left out: it is the bench's own).
fn command_diff(
    before: HashMap<String, u64>,
    after: HashMap<String, u64>,
    setups: u64,
) -> Vec<(String, f64)> {
    let mut diff: Vec<(String, f64)> = after
        .into_iter()
        .map(|(name, n)| {
            let mine = u64::from(name == "info");
            let d = n.saturating_sub(before.get(&name).copied().unwrap_or(0) + mine);
            (name, d as f64 / setups.max(1) as f64)
        })
        .filter(|(_, n)| *n > 0.0)
        .collect();
    diff.sort_by(|a, b| b.1.total_cmp(&a.1));
    diff
}

/// Until a node holds the lease, and a moment more: a new term has every client restate
/// (close 1012), so the bench's connections are opened after it.
async fn wait_for_leader(redis: &RedisServer) {
    let deadline = Instant::now() + STEP;
    while redis.cli(&["GET", "duet:leader"]).trim().is_empty() {
        assert!(Instant::now() < deadline, "no node took the leader lease");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
}
