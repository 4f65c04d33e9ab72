//! `duet serve` as a service: settings from a file beside flags and environment variables,
//! the drain on SIGTERM, JSON logs.

// A test that fails says so loudly; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

/// A duet.toml in a temp dir of its own, removed when dropped.
struct ConfigFile(PathBuf);

impl ConfigFile {
    fn new(text: &str) -> ConfigFile {
        let dir =
            std::env::temp_dir().join(format!("duet-toml-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("duet.toml");
        std::fs::write(&path, text).unwrap();
        ConfigFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn file() -> ConfigFile {
    ConfigFile::new(&format!(
        r#"# Every key is a flag of duet serve, without its dashes.
listen = "127.0.0.1:{}"
turn_listen = "127.0.0.1:0"
ring_timeout = 11
grace = 12
drain-timeout = 7
max_devices_per_uid = 3
secret = "from-the-file"
"#,
        free_port()
    ))
}

/// The settings line `duet serve` prints once listening.
fn settings(cmd: &mut Command) -> String {
    let server = Running::start(cmd);
    server.line_containing("listening on");
    server.line_containing("settings:")
}

#[test]
fn the_file_gives_what_no_flag_or_variable_does() {
    let file = file();
    let line = settings(duet().args(["serve", "--config", file.path()]));
    assert!(
        line.contains("ring timeout 11 s, grace 12 s, drain timeout 7 s, max devices per uid 3"),
        "{line}"
    );
}

#[test]
fn a_variable_beats_the_file_and_a_flag_beats_both() {
    let file = file();
    let mut cmd = duet();
    cmd.args(["serve", "--config", file.path()])
        .env("DUET_RING_TIMEOUT", "21")
        .env("DUET_MAX_DEVICES_PER_UID", "4");
    let line = settings(&mut cmd);
    assert!(line.contains("ring timeout 21 s, grace 12 s"), "{line}");
    assert!(line.contains("max devices per uid 4"), "{line}");

    let mut cmd = duet();
    cmd.args(["serve", "--config", file.path(), "--ring-timeout", "31"])
        .env("DUET_RING_TIMEOUT", "21")
        .env("DUET_MAX_DEVICES_PER_UID", "4");
    let line = settings(&mut cmd);
    assert!(line.contains("ring timeout 31 s, grace 12 s"), "{line}");
    assert!(line.contains("max devices per uid 4"), "{line}");
}

#[test]
fn the_files_secret_makes_a_production_server() {
    let file = file();
    let server = Running::start(duet().args(["serve", "--config", file.path()]));
    server.line_containing("listening on");
    let line = server.line_containing("TURN relay");
    assert!(!line.contains("development"), "{line}");
    std::thread::sleep(Duration::from_millis(100));
    let rest: Vec<String> = server.lines.try_iter().collect();
    assert!(!rest.iter().any(|l| l.contains("development mode")), "{rest:?}");
}

#[test]
fn a_bad_file_stops_the_start_with_a_message() {
    let unknown = ConfigFile::new("ring_timeout = 5\nring_timout = 6\n");
    let out = duet().args(["serve", "--config", unknown.path()]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown key \"ring_timout\""), "{stderr}");

    let wrong_type = ConfigFile::new("ring_timeout = \"soon\"\n");
    let out = duet().args(["serve", "--config", wrong_type.path()]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("soon") && stderr.contains(wrong_type.path()), "{stderr}");

    let not_toml = ConfigFile::new("ring_timeout = = 5\n");
    let out = duet().args(["serve", "--config", not_toml.path()]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// SIGTERM: the server drains and exits 0; its logs, asked for as JSON, are one object a
/// line.
#[test]
fn sigterm_drains_and_exits_zero_with_json_logs() {
    let listen = format!("127.0.0.1:{}", free_port());
    let mut child = duet()
        .args(["serve", "--listen", &listen, "--turn-listen", "127.0.0.1:0"])
        .args(["--log-format", "json", "--drain-timeout", "3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(&listen).is_err() {
        assert!(Instant::now() < deadline, "duet serve did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "duet serve did not exit on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    let mut stdout = String::new();
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    assert!(stdout.contains("SIGTERM: draining") && stdout.contains("drained in"), "{stdout}");
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    let logs: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(logs.iter().all(|l| l["level"].is_string() && l["fields"].is_object()), "{stderr}");
    assert!(logs.iter().any(|l| l["fields"]["message"] == "drained"), "{stderr}");
}
