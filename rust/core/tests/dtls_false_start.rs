//! The vendored DTLS (vendor/rtc-dtls/DUET.md, "False start") lets the client, the callee,
//! protect media as soon as its last flight is out instead of half a round trip later, when
//! the server's Finished comes back: the callee's first frame then leaves right behind that
//! flight and reaches the caller a round trip earlier. Only with an AEAD suite, ECDHE and the
//! extended master secret, as webrtc-rs configures every call (RFC 7918's conditions); its
//! application data still waits for the handshake. Two sans-I/O endpoints configured as
//! webrtc-rs configures a call's: no sockets, no timing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use rtc::crypto::RTCCryptoProvider;
use rtc::dtls::cipher_suite::CipherSuiteId;
use rtc::dtls::config::{ClientAuthType, ConfigBuilder, ExtendedMasterSecretType, HandshakeConfig};
use rtc::dtls::crypto::Certificate;
use rtc::dtls::endpoint::{Endpoint, EndpointEvent};
use rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc::shared::TransportProtocol;

const CALLEE: &str = "10.0.0.2:5000";
const CALLER: &str = "10.0.0.1:4000";
/// What webrtc-rs exports for SRTP (`srtp::config::LABEL_EXTRACTOR_DTLS_SRTP`), as long as
/// two AES-128 keys and salts.
const SRTP_LABEL: &str = "EXTRACTOR-dtls_srtp";
const SRTP_KEYING_LEN: usize = 2 * (16 + 14);

fn addr(at: &str) -> SocketAddr {
    at.parse().expect("an address")
}

fn provider() -> Arc<dyn RTCCryptoProvider> {
    rtc::crypto::default_provider().expect("a crypto provider")
}

/// A call's DTLS configuration as webrtc-rs builds it (`RTCDtlsTransport`): a certificate
/// each side, client certificates required, the extended master secret required; the
/// fingerprint check is left out (both sides' certificates are fresh here).
fn config(
    is_client: bool,
    suites: &[CipherSuiteId],
    ems: ExtendedMasterSecretType,
) -> Arc<HandshakeConfig> {
    let provider = provider();
    let certificate = Certificate::generate_self_signed(vec!["duet".to_owned()], provider.crypto())
        .expect("a certificate");
    let config = ConfigBuilder::default()
        .with_crypto_provider(provider)
        .with_certificates(vec![certificate])
        .with_srtp_protection_profiles(vec![SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm])
        .with_cipher_suites(suites.to_vec())
        .with_client_auth(ClientAuthType::RequireAnyClientCert)
        .with_insecure_skip_verify(true)
        .with_extended_master_secret(ems)
        .build(is_client, None)
        .expect("a DTLS configuration");
    Arc::new(config)
}

struct Pair {
    callee: Endpoint,
    caller: Endpoint,
}

impl Pair {
    /// The callee is the DTLS client (it answers the offer with `setup:active`).
    fn new(callee: Arc<HandshakeConfig>, caller: Arc<HandshakeConfig>) -> Pair {
        let mut pair = Pair {
            callee: Endpoint::new(addr(CALLEE), TransportProtocol::UDP, None),
            caller: Endpoint::new(addr(CALLER), TransportProtocol::UDP, Some(caller)),
        };
        pair.callee.connect(Instant::now(), addr(CALLER), callee, None).expect("a ClientHello");
        pair
    }

    fn with(suites: &[CipherSuiteId], callee_ems: ExtendedMasterSecretType) -> Pair {
        let caller = config(false, suites, ExtendedMasterSecretType::Request);
        Pair::new(config(true, suites, callee_ems), caller)
    }

    /// Delivers what the callee has sent to the caller: (whether the caller completed, how
    /// many datagrams went).
    fn callee_sends(&mut self) -> (bool, usize) {
        deliver(&mut self.callee, &mut self.caller, CALLEE)
    }

    fn caller_sends(&mut self) -> (bool, usize) {
        deliver(&mut self.caller, &mut self.callee, CALLER)
    }

    fn callee_keys(&self) -> Option<Vec<u8>> {
        keys(&self.callee, CALLER)
    }

    fn caller_keys(&self) -> Option<Vec<u8>> {
        keys(&self.caller, CALLEE)
    }
}

fn deliver(from: &mut Endpoint, to: &mut Endpoint, from_addr: &str) -> (bool, usize) {
    let mut completed = false;
    let mut datagrams = 0;
    while let Some(transmit) = from.poll_transmit() {
        datagrams += 1;
        let events = to
            .read(Instant::now(), addr(from_addr), None, transmit.message)
            .expect("a datagram the peer takes");
        completed |= events.iter().any(|e| matches!(e, EndpointEvent::HandshakeComplete));
    }
    (completed, datagrams)
}

/// The SRTP keying material `endpoint` exports for its peer, once it can.
fn keys(endpoint: &Endpoint, peer: &str) -> Option<Vec<u8>> {
    let state = endpoint.get_connection_state(addr(peer))?;
    let material = state.export_keying_material(SRTP_LABEL, &[], SRTP_KEYING_LEN).ok()?;
    Some(material.as_ref().to_vec())
}

const GCM: CipherSuiteId = CipherSuiteId::Tls_Ecdhe_Ecdsa_With_Aes_128_Gcm_Sha256;

#[test]
fn the_callee_protects_media_as_its_last_flight_leaves() {
    let mut pair = Pair::with(&[GCM], ExtendedMasterSecretType::Require);
    assert_eq!(pair.callee_sends(), (false, 1), "the ClientHello");
    let (callee_ready, _) = pair.caller_sends();
    assert!(callee_ready, "the callee reports its keys as it sends its last flight");
    let early = pair.callee_keys().expect("the callee's keys before the caller's Finished");
    // Its timer still runs: the caller's Finished is what tells it the flight arrived.
    assert!(pair.callee.poll_timeout(&addr(CALLER)).is_some(), "the last flight is repeated");

    // Application data is not started early: written now, it waits for the handshake.
    pair.callee.write(Instant::now(), addr(CALLER), b"sctp").expect("a write");
    let (caller_ready, _) = pair.callee_sends();
    assert!(caller_ready, "the caller completes on the callee's last flight");
    assert_eq!(pair.caller_keys(), Some(early.clone()), "both sides hold the same keys");
    let (again, _) = pair.caller_sends();
    assert!(!again, "the callee reports its keys once, not again as its handshake completes");
    assert_eq!(pair.callee_keys(), Some(early));
    assert!(pair.callee.poll_timeout(&addr(CALLER)).is_none(), "nothing left to repeat");
    let (_, held) = pair.callee_sends();
    assert_eq!(held, 1, "the data written in false start goes once the handshake is done");
}

#[test]
fn without_the_extended_master_secret_the_callee_waits_for_the_caller() {
    let mut pair = Pair::with(&[GCM], ExtendedMasterSecretType::Disable);
    pair.callee_sends();
    assert!(!pair.caller_sends().0, "no false start: the keys would not cover the handshake");
    assert!(pair.callee_sends().0);
    assert!(pair.caller_sends().0, "the callee completes on the caller's Finished");
}

#[test]
fn without_an_aead_suite_the_callee_waits_for_the_caller() {
    let cbc = CipherSuiteId::Tls_Ecdhe_Ecdsa_With_Aes_256_Cbc_Sha;
    let mut pair = Pair::with(&[cbc], ExtendedMasterSecretType::Require);
    pair.callee_sends();
    assert!(!pair.caller_sends().0, "no false start with a CBC suite (RFC 7918 section 4)");
    assert!(pair.callee_sends().0);
    assert!(pair.caller_sends().0);
}
