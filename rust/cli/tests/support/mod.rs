//! What the `duet` binary's tests share: starting it, reading its lines, free ports.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

pub mod nginx;
pub mod redis;

/// The `duet` binary under test. A `duet serve` it starts keeps push registrations under
/// the system's temporary directory, never in the user's ~/.local/share (`serve` below gives
/// each server a directory of its own, removed when it stops).
pub fn duet() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_duet"));
    c.env_remove("DUET_SECRET");
    c.env("DUET_DATA_DIR", std::env::temp_dir().join("duet-cli-tests"));
    c
}

/// A child whose stdout lines arrive on a channel, killed on drop (and its data directory,
/// if it has one, removed).
pub struct Running {
    pub child: Child,
    pub lines: mpsc::Receiver<String>,
    pub data_dir: Option<std::path::PathBuf>,
}

impl Running {
    pub fn start(cmd: &mut Command) -> Running {
        let mut child =
            cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("spawn duet");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Running { child, lines, data_dir: None }
    }

    /// The first line from now on that contains `needle`; panics with the lines it
    /// passed over (a client that gave up says why there) if none comes within 20 s.
    pub fn line_containing(&self, needle: &str) -> String {
        let mut passed = Vec::new();
        loop {
            let line = self.lines.recv_timeout(Duration::from_secs(20)).unwrap_or_else(|_| {
                panic!("no line containing {needle:?}; before that: {passed:#?}")
            });
            if line.contains(needle) {
                return line;
            }
            passed.push(line);
        }
    }

    /// Waits for the child to exit; its status and the JSON lines it printed from now on.
    pub fn rest(mut self) -> (i32, Vec<Value>) {
        let status = self.child.wait().expect("wait for duet");
        // Every line, up to the end of its output: the reader thread may not have passed on
        // the last ones (the summary) yet when the child is reaped, and a clean run under
        // load once missed it. The bound is for a child whose output some other process
        // still holds open.
        let mut events = Vec::new();
        while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(10)) {
            events.push(serde_json::from_str(&l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")));
        }
        (status.code().unwrap_or(-1), events)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = &self.data_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

pub fn free_port() -> u16 {
    // The kernel may give a port just released to the next bind(0), and the tests of one
    // binary run in parallel: two of them once got the same port, and a client spoke TLS
    // to the other test's plain server. A port is handed out once per process.
    static GIVEN: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    loop {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        let port = listener.local_addr().expect("its address").port();
        if GIVEN.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(port) {
            return port;
        }
    }
}

/// The port of a server's `http://127.0.0.1:PORT` URL.
pub fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().and_then(|p| p.parse().ok()).expect("a URL ending in a port")
}

/// `duet serve` on a free port, in development mode; returns it and its URL.
pub fn serve(extra: &[&str]) -> (Running, String) {
    let listen = format!("127.0.0.1:{}", free_port());
    // The port is this server's alone while it runs, so it names the directory too.
    let data_dir =
        std::env::temp_dir().join(format!("duet-cli-test-{}-{listen}", std::process::id()));
    let mut server = Running::start(
        duet()
            .args(["serve", "--listen", &listen, "--turn-listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(&data_dir)
            .args(extra),
    );
    server.data_dir = Some(data_dir);
    let line = server.line_containing("listening on");
    let url = line.rsplit(' ').next().expect("the URL ends the line").to_owned();
    (server, url)
}
