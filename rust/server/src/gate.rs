//! Who may open a connection: at most `max_per_ip` open connections per address (per /64
//! for IPv6, which one host usually holds whole) and `max_pending` that have not signed in.
//! Each admitted connection holds a `Ticket`; dropping it gives its places back.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::config::ConnectionLimits;
use crate::refusals::{self, Limit};

#[derive(Debug)]
pub(crate) struct Gate {
    state: Mutex<State>,
    max_per_ip: usize,
    max_pending: usize,
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
    ip: IpAddr,
    pending: AtomicBool,
}

impl Gate {
    pub(crate) fn new(limits: &ConnectionLimits) -> Arc<Gate> {
        Arc::new(Gate {
            state: Mutex::default(),
            max_per_ip: limits.max_per_ip,
            max_pending: limits.max_pending,
        })
    }

    /// A ticket for a connection from `ip`, or the limit that refuses it (logged).
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Ticket> {
        let ip = bucket(ip);
        let mut state = self.lock();
        let from_ip = state.per_ip.get(&ip).copied().unwrap_or(0);
        if from_ip >= self.max_per_ip {
            drop(state);
            refusals::record(Limit::PerIp, self.max_per_ip, &ip);
            return None;
        }
        if state.pending >= self.max_pending {
            drop(state);
            refusals::record(Limit::Pending, self.max_pending, &ip);
            return None;
        }
        state.per_ip.insert(ip, from_ip + 1);
        state.pending += 1;
        Some(Ticket { gate: Arc::clone(self), ip, pending: AtomicBool::new(true) })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Ticket {
    /// The address the connection is counted under.
    pub(crate) fn ip(&self) -> IpAddr {
        self.ip
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
        if let Some(n) = state.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                state.per_ip.remove(&self.ip);
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
}
