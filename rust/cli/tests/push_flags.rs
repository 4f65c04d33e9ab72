//! `duet serve`'s push flags: a key that cannot be read or used stops the server at once
//! with a message naming it, rather than failing every push later.

use std::process::Command;

fn serve(args: &[&str]) -> std::process::Output {
    // One directory per server: the tests run at once, and each removes its own.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("duet-cli-push-{}-{n}", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_duet"))
        .args(["serve", "--listen", "127.0.0.1:0", "--turn-listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(&dir)
        .args(args)
        .output()
        .expect("duet runs");
    let _ = std::fs::remove_dir_all(&dir);
    out
}

#[test]
fn unusable_push_credentials_stop_the_server_with_a_clear_error() {
    let out = serve(&["--apns-key", "/no/such.p8", "--apns-key-id", "K", "--apns-team-id", "T"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--apns-key /no/such.p8"), "{err}");

    let not_a_key = std::env::temp_dir().join(format!("duet-not-a-key-{}.p8", std::process::id()));
    std::fs::write(&not_a_key, "hello").expect("written");
    let out = serve(&[
        "--apns-key",
        not_a_key.to_str().expect("UTF-8"),
        "--apns-key-id",
        "K",
        "--apns-team-id",
        "T",
    ]);
    let _ = std::fs::remove_file(&not_a_key);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("APNs key"), "{err}");

    // A key id without its key is a usage error.
    let out = serve(&["--apns-key-id", "K"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--apns-key"));
}

#[test]
fn a_push_ca_file_without_certificates_stops_the_server() {
    let out = serve(&["--push-ca-file", "/no/such/ca.pem"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--push-ca-file /no/such/ca.pem"), "{err}");

    let empty = std::env::temp_dir().join(format!("duet-empty-ca-{}.pem", std::process::id()));
    std::fs::write(&empty, "no certificate here\n").expect("written");
    let out = serve(&["--push-ca-file", empty.to_str().expect("UTF-8")]);
    let _ = std::fs::remove_file(&empty);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no certificate"));
}
