//! The vendored ICE agent (vendor/rtc-ice/DUET.md) connects in one round trip of checks
//! after the caller has the answer: the callee's first check, which routinely reaches the
//! caller before the callee's answer does (the answer goes through the signaling server),
//! is answered as soon as the answer comes rather than left for the callee to repeat 50 ms
//! later, and the caller's first check nominates its pair (aggressive nomination), so that
//! both sides select it as that check is answered instead of a nomination's round trip
//! after. The same holds after an ICE restart. And an agent whose connection does not come
//! runs at the fast tick for 2 s only (vendor/rtc-ice/DUET.md, "A slower tick"). Sans-I/O
//! agents and a virtual clock: no sockets, no timing.

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
use rtc::stun::message::{Message, TransactionId, BINDING_REQUEST, BINDING_SUCCESS};

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

/// Whether the datagrams answer `check` (a Binding success response to it).
fn answers(datagrams: &[(TaggedBytesMut, Message)], check: TransactionId) -> bool {
    datagrams.iter().any(|(_, m)| m.typ == BINDING_SUCCESS && m.transaction_id == check)
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
    let callee_check = callee_checks
        .iter()
        .find(|(_, m)| m.typ == BINDING_REQUEST)
        .map(|(_, m)| m.transaction_id)
        .expect("the callee checks the caller's candidate at once");

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
        answers(&from_caller, callee_check),
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

/// Runs both agents every 5 ms, each getting what the other sent, until both have
/// selected a pair; returns the time then.
fn connect(caller: &mut Agent, callee: &mut Agent, mut now: Instant) -> Instant {
    let (mut caller_selected, mut callee_selected) = (false, false);
    for _ in 0..20 {
        now += Duration::from_millis(5);
        caller.handle_timeout(now).expect("a run");
        callee.handle_timeout(now).expect("a run");
        let (to_callee, to_caller) = (sent(caller), sent(callee));
        callee_selected |= selected(&deliver(callee, to_callee, now));
        caller_selected |= selected(&deliver(caller, to_caller, now));
        if caller_selected && callee_selected {
            return now;
        }
    }
    panic!("the agents did not connect");
}

#[test]
fn after_an_ice_restart_an_early_check_is_answered_on_the_next_run() {
    let start = Instant::now();
    let mut caller = agent(start, CALLER);
    let mut callee = agent(start, CALLEE);
    let (ours, theirs) =
        (caller.get_local_credentials().clone(), callee.get_local_credentials().clone());
    caller.start_connectivity_checks(start, true, theirs.ufrag, theirs.pwd).expect("started");
    caller.add_remote_candidate(host(CALLEE)).expect("the callee's candidate");
    callee.start_connectivity_checks(start, false, ours.ufrag, ours.pwd).expect("started");
    callee.add_remote_candidate(host(CALLER)).expect("the caller's candidate");
    let now = connect(&mut caller, &mut callee, start);

    // The caller restarts ICE (its offer has new credentials); the callee takes the offer,
    // restarts too and checks the caller at once, before the caller has its answer.
    caller.generate_restart_credentials(String::new(), String::new()).expect("credentials");
    caller.apply_restart(now, true).expect("the caller restarts");
    let ours = caller.get_local_credentials().clone();
    callee.generate_restart_credentials(String::new(), String::new()).expect("credentials");
    callee.apply_restart(now, true).expect("the callee restarts");
    callee.set_remote_credentials(ours.ufrag, ours.pwd).expect("the offer's credentials");
    callee.add_remote_candidate(host(CALLER)).expect("the caller's candidate");
    let theirs = callee.get_local_credentials().clone();
    callee.handle_timeout(now + Duration::from_millis(1)).expect("a run");
    let checks = sent(&mut callee);
    let check = checks
        .iter()
        .find(|(_, m)| m.typ == BINDING_REQUEST)
        .map(|(_, m)| m.transaction_id)
        .expect("the callee checks the caller after its restart");
    let early = now + Duration::from_millis(50);
    deliver(&mut caller, checks, early);
    assert!(!answers(&sent(&mut caller), check), "no answer without the new credentials");

    // The answer comes: the restart sets the credentials without starting the agent again,
    // and the held check is answered on the caller's next run.
    caller.set_remote_credentials(theirs.ufrag, theirs.pwd).expect("the answer's credentials");
    caller.add_remote_candidate(host(CALLEE)).expect("the callee's candidate");
    caller.handle_timeout(early + Duration::from_millis(1)).expect("a run");
    assert!(
        answers(&sent(&mut caller), check),
        "the callee's early check is answered on the caller's next run, not left to be repeated"
    );
}

/// How many times `agent` runs (wakes its driver) in `from..until` of virtual time, run
/// whenever it asks and sent nothing back.
fn runs_between(agent: &mut Agent, from: Instant, until: Instant) -> usize {
    let mut runs = 0;
    while let Some(at) = agent.poll_timeout() {
        if at >= until {
            break;
        }
        agent.handle_timeout(at.max(from)).expect("a run");
        sent(agent);
        runs += 1;
    }
    runs
}

#[test]
fn a_connection_that_does_not_come_slows_the_agent_down_after_two_seconds() {
    let start = Instant::now();
    let mut caller = agent(start, CALLER);
    let theirs = agent(start, CALLEE).get_local_credentials().clone();
    caller.start_connectivity_checks(start, true, theirs.ufrag, theirs.pwd).expect("started");
    // A candidate that never answers: a peer whose network drops everything.
    caller.add_remote_candidate(host(CALLEE)).expect("the callee's candidate");
    let second = Duration::from_secs(1);
    let quick = runs_between(&mut caller, start, start + second);
    assert!(quick >= 500, "the first second runs at the 1 ms tick: {quick} runs");
    runs_between(&mut caller, start + second, start + 3 * second);
    let patient = runs_between(&mut caller, start + 3 * second, start + 13 * second);
    assert!(
        (400..=600).contains(&patient),
        "from 2 s on, at most one run per 20 ms (and the paced checks): {patient} in 10 s"
    );
}
