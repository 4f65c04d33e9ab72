use super::*;
use serde_json::json;

#[test]
fn client_messages_round_trip_with_the_documented_shape() {
    let invite = ClientMessage::Invite {
        call_id: "c1".into(),
        to: "bob".into(),
        data: Some("hi".into()),
        options: CallOptions {
            ice_transport_policy: IceTransportPolicy::Relay,
            ..Default::default()
        },
        sdp: None,
    };
    let v: serde_json::Value = serde_json::from_str(&encode(&invite)).unwrap();
    assert_eq!(
        v,
        json!({"type":"invite","call_id":"c1","to":"bob","data":"hi",
               "options":{"ice_transport_policy":"relay"}})
    );
    assert_eq!(decode_client(&encode(&invite)).unwrap(), invite);
}

#[test]
fn defaults_fill_optional_fields() {
    let m = decode_client(r#"{"type":"invite","call_id":"c1","to":"bob"}"#).unwrap();
    assert_eq!(
        m,
        ClientMessage::Invite {
            call_id: "c1".into(),
            to: "bob".into(),
            data: None,
            options: CallOptions::default(),
            sdp: None
        }
    );
    let r = decode_client(r#"{"type":"reject","call_id":"c1"}"#).unwrap();
    assert_eq!(r, ClientMessage::Reject { call_id: "c1".into(), busy: false });
}

#[test]
fn unknown_types_and_fields_are_refused() {
    assert!(decode_client(r#"{"type":"explode"}"#).is_err());
    assert!(decode_client(r#"{"type":"hangup","call_id":"c1","extra":1}"#).is_err());
    assert!(decode_client(r#"{"type":"hangup"}"#).is_err());
    assert!(decode_client("not json").is_err());
    assert!(decode_client("[]").is_err());
}

#[test]
fn server_messages_round_trip() {
    let msgs = vec![
        ServerMessage::Response { call_id: "c".into(), status: CallStatus::Busy, sdp: None },
        ServerMessage::Closed { call_id: "c".into(), reason: CloseReason::AnsweredElsewhere },
        ServerMessage::Merged {
            call_id: "a".into(),
            into: IncomingCall {
                call_id: "b".into(),
                from: "alice".into(),
                data: None,
                options: CallOptions::default(),
                sdp: Some("v=0".into()),
                preconnect: false,
            },
        },
        ServerMessage::error(ErrorCode::RateLimited, "slow down", None),
        ServerMessage::Signal {
            call_id: "c".into(),
            signal: Signal::Candidate {
                candidate: "candidate:1 1 udp 1 127.0.0.1 9 typ host".into(),
                sdp_mid: Some("0".into()),
                sdp_mline_index: Some(0),
            },
        },
    ];
    for m in msgs {
        assert_eq!(decode_server(&encode(&m)).unwrap(), m);
    }
    let closed: serde_json::Value = serde_json::from_str(&encode(&ServerMessage::Closed {
        call_id: "c".into(),
        reason: CloseReason::PeerDisconnected,
    }))
    .unwrap();
    assert_eq!(closed, json!({"type":"closed","call_id":"c","reason":"peer_disconnected"}));
}

#[test]
fn identifiers_are_checked() {
    assert!(check_uid("alice").is_ok());
    assert!(check_uid("").is_err());
    assert!(check_uid(&"x".repeat(MAX_UID_BYTES + 1)).is_err());
    assert!(check_uid("a\nb").is_err());
    assert!(check_call_id("0b6f-77_aa").is_ok());
    assert!(check_call_id("../etc").is_err());
    assert!(check_device_id("").is_err());
}

/// Every JSON example in docs/protocol.md parses as the message it illustrates.
#[test]
fn protocol_doc_examples_parse() {
    let doc = include_str!("../../../docs/protocol.md");
    let mut seen = 0;
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        let dir = match line.trim() {
            "```json client" => "client",
            "```json server" => "server",
            _ => continue,
        };
        let body: String =
            lines.by_ref().take_while(|l| l.trim() != "```").collect::<Vec<_>>().join("\n");
        let ok = if dir == "client" {
            decode_client(&body).is_ok()
        } else {
            decode_server(&body).is_ok()
        };
        assert!(ok, "docs/protocol.md example does not parse as a {dir} message:\n{body}");
        seen += 1;
    }
    assert!(seen >= 15, "expected an example of every message, found {seen}");
}

#[test]
fn push_registrations_have_the_documented_shape() {
    let apns = ClientMessage::RegisterPush {
        push: PushToken::Apns {
            token: "ab12".into(),
            bundle_id: "com.example.app".into(),
            environment: ApnsEnvironment::Sandbox,
        },
    };
    let v: serde_json::Value = serde_json::from_str(&encode(&apns)).unwrap();
    assert_eq!(
        v,
        json!({"type":"register_push","push":{"service":"apns","token":"ab12",
               "bundle_id":"com.example.app","environment":"sandbox"}})
    );
    assert_eq!(encode(&ClientMessage::UnregisterPush), r#"{"type":"unregister_push"}"#);
    assert_eq!(encode(&ServerMessage::PushRegistered), r#"{"type":"push_registered"}"#);
    let hello =
        decode_client(r#"{"type":"hello","v":1,"token":"t","device_id":"d","woken_for":"c1"}"#);
    assert!(matches!(hello, Ok(ClientMessage::Hello { woken_for: Some(id), .. }) if id == "c1"));
    // An APNs token without its bundle id or environment is not a registration.
    assert!(decode_client(r#"{"type":"register_push","push":{"service":"apns","token":"ab"}}"#)
        .is_err());
}

#[test]
fn push_tokens_are_checked() {
    let fcm = |t: &str| PushToken::Fcm { token: t.into() };
    assert!(check_push_token(&fcm("dGVzdA:APA91b-x_y")).is_ok());
    assert!(check_push_token(&fcm("")).is_err());
    assert!(check_push_token(&fcm("a b")).is_err());
    assert!(check_push_token(&fcm(&"a".repeat(MAX_PUSH_TOKEN_BYTES + 1))).is_err());
    let apns = |t: &str, b: &str| PushToken::Apns {
        token: t.into(),
        bundle_id: b.into(),
        environment: ApnsEnvironment::Production,
    };
    assert!(check_push_token(&apns("0123abCD", "com.example.app")).is_ok());
    assert!(check_push_token(&apns("xyz", "com.example.app")).is_err());
    assert!(check_push_token(&apns("00", "com/example")).is_err());
}
