//! The vendored ICE agent (vendor/rtc-ice/DUET.md) connects in one round trip of checks
//! after the caller has the answer: the callee's first check, which routinely reaches the
//! caller before the callee's answer does (the answer goes through the signaling server),
//! is answered as soon as the answer comes rather than left for the callee to repeat 50 ms
//! later, and the caller's first check nominates its pair (aggressive nomination), so that
//! both sides select it as that check is answered instead of a nomination's round trip
//! after. Two sans-I/O agents and a virtual clock: no sockets, no timing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc::ice::agent::agent_config::AgentConfig;
use rtc::ice::candidate::candidate_host::CandidateHostConfig;
use rtc::ice::candidate::CandidateConfig;
use rtc::ice::mdns::MulticastDnsMode;
use rtc::ice::{Agent, Event};
use rtc::sansio::Protocol;
use rtc::shared::TaggedBytesMut;
use rtc::stun::attributes::ATTR_USE_CANDIDATE;
use rtc::stun::message::{Message, BINDING_REQUEST, BINDING_SUCCESS};

const CALLER: &str = "10.0.0.1:4000";
const CALLEE: &str = "10.0.0.2:5000";

fn agent(now: Instant, at: &str) -> Agent {
    let config = AgentConfig {
        multicast_dns_mode: MulticastDnsMode::Disabled,
        check_interval: Duration::from_millis(1),
        host_acceptance_min_wait: Some(Duration::ZERO),
        prflx_acceptance_min_wait: Some(Duration::ZERO),
        ..AgentConfig::default()
    };
    let crypto = rtc::crypto::default_provider().expect("a crypto provider");
    let mut agent = Agent::new(now, Arc::new(config), crypto).expect("an agent");
    agent.add_local_candidate(host(at)).expect("a local candidate");
    agent
}

fn host(at: &str) -> rtc::ice::candidate::Candidate {
    let addr: SocketAddr = at.parse().expect("an address");
    CandidateHostConfig {
        base_config: CandidateConfig {
            network: "udp".to_owned(),
            address: addr.ip().to_string(),
            port: addr.port(),
            component: 1,
            ..CandidateConfig::default()
        },
        ..CandidateHostConfig::default()
    }
    .new_candidate_host()
    .expect("a host candidate")
}

/// What an agent sends now, each as (the datagram, the STUN message in it).
fn sent(agent: &mut Agent) -> Vec<(TaggedBytesMut, Message)> {
    std::iter::from_fn(|| agent.poll_write())
        .map(|datagram| {
            let mut m = Message { raw: datagram.message.to_vec(), ..Message::default() };
            m.decode().expect("STUN");
            (datagram, m)
        })
        .collect()
}

/// Delivers datagrams to `to` as received at `now`, and returns what it reported.
fn deliver(to: &mut Agent, datagrams: Vec<(TaggedBytesMut, Message)>, now: Instant) -> Vec<Event> {
    for (mut datagram, _) in datagrams {
        let t = &mut datagram.transport;
        std::mem::swap(&mut t.local_addr, &mut t.peer_addr);
        datagram.now = now;
        let _ = to.handle_read(datagram);
    }
    std::iter::from_fn(|| to.poll_event()).map(|e| e.event).collect()
}

fn selected(events: &[Event]) -> bool {
    events.iter().any(|e| matches!(e, Event::SelectedCandidatePairChange(..)))
}

#[test]
fn both_sides_select_a_pair_one_round_trip_of_checks_after_the_answer() {
    let start = Instant::now();
    let mut caller = agent(start, CALLER);
    let mut callee = agent(start, CALLEE);
    let caller_credentials = caller.get_local_credentials().clone();
    let callee_credentials = callee.get_local_credentials().clone();

    // The callee has the offer: it starts at once and checks the caller's candidate.
    callee
        .start_connectivity_checks(start, false, caller_credentials.ufrag, caller_credentials.pwd)
        .expect("the callee starts");
    callee.add_remote_candidate(host(CALLER)).expect("the caller's candidate");
    callee.handle_timeout(start).expect("a run");
    let callee_checks = sent(&mut callee);
    assert!(
        callee_checks.iter().any(|(_, m)| m.typ == BINDING_REQUEST),
        "the callee checks the caller's candidate at once"
    );
    let callee_check_id = callee_checks[0].1.transaction_id;

    // Its check reaches the caller before its answer: the caller cannot answer it yet.
    let early = start + Duration::from_millis(50);
    deliver(&mut caller, callee_checks, early);
    assert!(sent(&mut caller).is_empty(), "no answer without the callee's credentials");

    // The answer comes a moment later. The held check is answered at once.
    let answered = early + Duration::from_millis(1);
    caller
        .start_connectivity_checks(answered, true, callee_credentials.ufrag, callee_credentials.pwd)
        .expect("the caller starts");
    caller.add_remote_candidate(host(CALLEE)).expect("the callee's candidate");
    let mut from_caller = sent(&mut caller);
    assert!(
        from_caller
            .iter()
            .any(|(_, m)| m.typ == BINDING_SUCCESS && m.transaction_id == callee_check_id),
        "the callee's early check is answered as the answer comes, not left to be repeated"
    );
    caller.handle_timeout(answered + Duration::from_millis(1)).expect("a run");
    let caller_checks = sent(&mut caller);
    assert!(
        caller_checks
            .iter()
            .any(|(_, m)| m.typ == BINDING_REQUEST && m.contains(ATTR_USE_CANDIDATE)),
        "the caller's first check nominates its pair"
    );
    from_caller.extend(caller_checks);

    // Half a round trip on: the callee's own check has succeeded and the caller's nominates
    // that pair, so the callee selects it and answers.
    let at_callee = answered + Duration::from_millis(50);
    let events = deliver(&mut callee, from_caller, at_callee);
    assert!(selected(&events), "the callee selects the pair the caller's first check nominated");

    // A round trip after its first check the caller has the answer, and selects the pair.
    let at_caller = at_callee + Duration::from_millis(50);
    let events = deliver(&mut caller, sent(&mut callee), at_caller);
    assert!(selected(&events), "the caller selects the pair its first check nominated");
}
