//! Who may open a connection: at most `max_per_ip` open connections per address (per /64
//! for IPv6, which one host usually holds whole) and `max_pending` that have not signed in.
//! Each admitted connection holds a `Ticket`; dropping it gives its places back.
//!
//! A connection from a trusted proxy is counted under the client the proxy names
//! (`client_addr`), which only its WebSocket upgrade request says: it takes its address's
//! place then (`Ticket::attribute`), not when it is accepted.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use ipnet::IpNet;

use crate::client_addr;
use crate::config::ConnectionLimits;
use crate::refusals::{self, Limit};

#[derive(Debug)]
pub(crate) struct Gate {
    state: Mutex<State>,
    max_per_ip: usize,
    max_pending: usize,
    trusted_proxies: Vec<IpNet>,
}

#[derive(Debug, Default)]
struct State {
    per_ip: HashMap<IpAddr, usize>,
    pending: usize,
}

/// An admitted connection's places: one of its address's, and (until `signed_in`) one of
/// the pending ones.
#[derive(Debug)]
pub(crate) struct Ticket {
    gate: Arc<Gate>,
    peer: IpAddr,
    /// The address whose place the ticket holds: the peer's, or for a trusted proxy's
    /// connection the client's once `attribute` has named it.
    ip: OnceLock<IpAddr>,
    pending: AtomicBool,
}

/// A connection refused because its address has its share already.
#[derive(Debug)]
pub(crate) struct OverLimit;

impl Gate {
    pub(crate) fn new(limits: &ConnectionLimits) -> Arc<Gate> {
        Arc::new(Gate {
            state: Mutex::default(),
            max_per_ip: limits.max_per_ip,
            max_pending: limits.max_pending,
            trusted_proxies: limits.trusted_proxies.clone(),
        })
    }

    /// A ticket for a connection from `peer`, or the limit that refuses it (logged). A
    /// trusted proxy's connection takes no address's place yet (`Ticket::attribute`).
    pub(crate) fn admit(self: &Arc<Self>, peer: IpAddr) -> Option<Ticket> {
        let proxied = client_addr::is_trusted(peer, &self.trusted_proxies);
        let ip = bucket(peer);
        let mut state = self.lock();
        if !proxied && !self.has_room(&state, ip) {
            drop(state);
            refusals::record(Limit::PerIp, self.max_per_ip, &ip);
            return None;
        }
        if state.pending >= self.max_pending {
            drop(state);
            refusals::record(Limit::Pending, self.max_pending, &ip);
            return None;
        }
        state.pending += 1;
        let ticket = Ticket {
            gate: Arc::clone(self),
            peer,
            ip: OnceLock::new(),
            pending: AtomicBool::new(true),
        };
        if !proxied {
            *state.per_ip.entry(ip).or_insert(0) += 1;
            let _ = ticket.ip.set(ip);
        }
        Some(ticket)
    }

    fn has_room(&self, state: &State, ip: IpAddr) -> bool {
        state.per_ip.get(&ip).copied().unwrap_or(0) < self.max_per_ip
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Ticket {
    /// The address the connection is counted under (a proxy's until `attribute`).
    pub(crate) fn ip(&self) -> IpAddr {
        self.ip.get().copied().unwrap_or(self.peer)
    }

    /// Counts a trusted proxy's connection under the client its request's
    /// `X-Forwarded-For` values name, or refuses it (logged) if that address has its share.
    /// Nothing to do for a connection already counted.
    pub(crate) fn attribute<'a>(
        &self,
        forwarded_for: impl DoubleEndedIterator<Item = &'a str>,
    ) -> Result<(), OverLimit> {
        if self.ip.get().is_some() {
            return Ok(());
        }
        let gate = &self.gate;
        let ip = bucket(client_addr::client_of(self.peer, forwarded_for, &gate.trusted_proxies));
        let mut state = gate.lock();
        if !gate.has_room(&state, ip) {
            drop(state);
            refusals::record(Limit::PerIp, gate.max_per_ip, &ip);
            return Err(OverLimit);
        }
        // Under the lock, so no other attribution of this ticket can come between.
        if self.ip.set(ip).is_ok() {
            *state.per_ip.entry(ip).or_insert(0) += 1;
        }
        Ok(())
    }

    /// The connection said a valid `hello`: it no longer counts as pending.
    pub(crate) fn signed_in(&self) {
        if self.pending.swap(false, Ordering::Relaxed) {
            self.gate.lock().pending -= 1;
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut state = self.gate.lock();
        if self.pending.load(Ordering::Relaxed) {
            state.pending -= 1;
        }
        if let Some(ip) = self.ip.get() {
            if let Some(n) = state.per_ip.get_mut(ip) {
                *n -= 1;
                if *n == 0 {
                    state.per_ip.remove(ip);
                }
            }
        }
    }
}

/// The address a connection is counted under: IPv4 as is, IPv6 by its /64.
fn bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(max_per_ip: usize, max_pending: usize) -> Arc<Gate> {
        Gate::new(&ConnectionLimits { max_per_ip, max_pending, ..ConnectionLimits::default() })
    }

    #[test]
    fn one_address_gets_its_share_and_no_more() {
        let gate = gate(2, 100);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let (t1, _t2) = (gate.admit(a).unwrap(), gate.admit(a).unwrap());
        assert!(gate.admit(a).is_none());
        assert!(gate.admit(b).is_some());
        drop(t1);
        assert!(gate.admit(a).is_some());
    }

    #[test]
    fn signed_in_connections_leave_room_for_pending_ones() {
        let gate = gate(100, 2);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let (t1, _t2) = (gate.admit(ip).unwrap(), gate.admit(ip).unwrap());
        assert!(gate.admit(ip).is_none());
        t1.signed_in();
        let _t3 = gate.admit(ip).unwrap();
        drop(t1);
        assert!(gate.admit(ip).is_none(), "a signed-in ticket's drop frees no pending place");
    }

    #[test]
    fn an_ipv6_host_is_counted_by_its_64() {
        let gate = gate(1, 100);
        let _t = gate.admit("2001:db8::1".parse().unwrap()).unwrap();
        assert!(gate.admit("2001:db8::2:3".parse().unwrap()).is_none());
        assert!(gate.admit("2001:db8:0:1::1".parse().unwrap()).is_some());
    }

    #[test]
    fn a_trusted_proxys_connections_are_counted_under_the_clients_it_names() {
        let gate = Gate::new(&ConnectionLimits {
            max_per_ip: 1,
            trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
            ..ConnectionLimits::default()
        });
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let (t1, t2, t3) =
            (gate.admit(proxy).unwrap(), gate.admit(proxy).unwrap(), gate.admit(proxy).unwrap());
        t1.attribute(["198.51.100.1"].into_iter()).unwrap();
        assert_eq!(t1.ip(), "198.51.100.1".parse::<IpAddr>().unwrap());
        assert!(t2.attribute(["198.51.100.1"].into_iter()).is_err(), "that client has its share");
        t3.attribute(["198.51.100.2"].into_iter()).unwrap();
        // An untrusted peer's connection is its own, and says nothing of its client.
        let direct = gate.admit("198.51.100.2".parse().unwrap());
        assert!(direct.is_none(), "198.51.100.2 already holds its one place through the proxy");
        drop(t1);
        let again = gate.admit(proxy).unwrap();
        again.attribute(["198.51.100.1"].into_iter()).unwrap();
    }
}
