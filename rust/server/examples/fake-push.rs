//! The push tests' fake APNs and FCM (tests/fake_push), as a process of its own, for the
//! Swift and Kotlin tests: they start it, start `duet serve` with the flags it prints, and
//! feed the pushes it prints to DuetCallKit's `handlePush` and `DuetPush.handleMessage`, as
//! an app gets them from PushKit and Firebase.
//!
//! `fake-push DIR` writes the test CA (`ca.pem`), the APNs key (`apns-key.p8`) and the FCM
//! service account (`fcm-service-account.json`) into DIR, then prints, one per line:
//!
//! - `fake-push listening on https://127.0.0.1:PORT`
//! - `serve-args ARG<TAB>ARG…`: the `duet serve` flags that push here (both services);
//! - `push JSON` for each push it accepted: `{"service", "token", "expiry", "payload",
//!   "received_unix_ms"}` (`payload`: APNs' JSON, or FCM's `data`), and after an FCM push
//!   `fcm-data FORM`: its `data` form-encoded (`k=v&k=v`, percent-escaped), so that a test
//!   without a JSON parser can read it;
//! - `problem TEXT` for anything in a request that Apple or Google would refuse (a bad JWT
//!   signature, a missing header): the request got a 403 and no push was printed.
//!
//! It exits when its stdin closes, so it never outlives the test that started it.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

#[path = "../tests/fake_push/mod.rs"]
mod fake_push;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: fake-push DIR (where it writes its CA, APNs key and service account)");
        std::process::exit(2);
    };
    // No stdin left: whoever started us is gone.
    std::thread::spawn(|| {
        let mut sink = [0u8; 64];
        while std::io::stdin().read(&mut sink).is_ok_and(|n| n > 0) {}
        std::process::exit(0);
    });
    let mut fake = fake_push::FakePush::start().await;
    let args = write_credentials(&fake, &dir);
    say(&format!("fake-push listening on {}", fake.url()));
    say(&format!("serve-args {}", args.join("\t")));
    let mut problems_seen = 0;
    loop {
        let push = tokio::time::timeout(Duration::from_millis(50), fake.pushes.recv()).await;
        let problems = fake.problems();
        for problem in &problems[problems_seen..] {
            say(&format!("problem {}", problem.replace('\n', " ")));
        }
        problems_seen = problems.len();
        match push {
            Ok(Some(push)) => print_push(&push),
            Ok(None) => return,
            Err(_) => {}
        }
    }
}

/// Writes the fake's CA and credentials into `dir`; the `duet serve` flags that use them.
fn write_credentials(fake: &fake_push::FakePush, dir: &std::path::Path) -> Vec<String> {
    std::fs::create_dir_all(dir).unwrap();
    let file = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().expect("a UTF-8 directory").to_owned()
    };
    let ca = file("ca.pem", &fake_push::pem("CERTIFICATE", &fake.pki.ca_der));
    let key = file("apns-key.p8", &fake.apns_key_pem);
    let account = file("fcm-service-account.json", &fake_push::service_account());
    let url = fake.url();
    [
        ("--push-ca-file", ca),
        ("--apns-key", key),
        ("--apns-key-id", fake_push::KEY_ID.to_owned()),
        ("--apns-team-id", fake_push::TEAM_ID.to_owned()),
        ("--apns-url", url.clone()),
        ("--fcm-service-account", account),
        ("--fcm-url", url.clone()),
        ("--fcm-token-url", format!("{url}/token")),
    ]
    .into_iter()
    .flat_map(|(flag, value)| [flag.to_owned(), value])
    .collect()
}

fn print_push(push: &fake_push::Push) {
    let received = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()
        - push.at.elapsed().as_millis();
    let line = json!({
        "service": push.service,
        "token": push.token,
        "expiry": push.expiry,
        "payload": push.payload,
        "received_unix_ms": u64::try_from(received).unwrap_or(u64::MAX),
    });
    say(&format!("push {line}"));
    if let Value::Object(data) = &push.payload {
        if push.service == "fcm" {
            let form: Vec<String> = data
                .iter()
                .map(|(k, v)| format!("{}={}", escape(k), escape(v.as_str().unwrap_or_default())))
                .collect();
            say(&format!("fcm-data {}", form.join("&")));
        }
    }
}

/// Percent-escapes all but RFC 3986's unreserved characters (what URLDecoder reads back).
fn escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
