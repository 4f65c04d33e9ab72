//! Answers a retransmitted TURN Allocate with the success it already had, in front of the
//! `turn` crate's server.
//!
//! When the success response to an Allocate is lost, the client sends the same request
//! again (same transaction ID). The crate sees a 5-tuple that already has an allocation and
//! answers 437 (Allocation Mismatch), so the client has no relay candidate, and a relay-only
//! call never connects: about 1 setup in 10 at 5% loss (issue 11). RFC 8656 (section 7.2)
//! lets a server remember the response to a retransmitted request; this does so for
//! successful Allocates only, since every other TURN request is safe to handle twice.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::net::UdpSocket;
use webrtc_util::Conn;

/// A client retransmits a request for 39.5 s at most (RFC 5389's Ti); a response kept
/// this long answers every retransmission.
const KEEP_FOR: Duration = Duration::from_secs(40);
/// Responses remembered at once, at most: the oldest go first. Each is about 100 bytes.
const CAPACITY: usize = 4096;

const ALLOCATE_REQUEST: u16 = 0x0003;
const ALLOCATE_SUCCESS: u16 = 0x0103;
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];

type TransactionId = [u8; 12];

/// A STUN message's type and transaction ID, if `datagram` is a STUN message.
fn stun_header(datagram: &[u8]) -> Option<(u16, TransactionId)> {
    let header = datagram.get(..20)?;
    if header[0] & 0xc0 != 0 || header[4..8] != MAGIC_COOKIE {
        return None;
    }
    let kind = u16::from_be_bytes([header[0], header[1]]);
    Some((kind, header[8..20].try_into().ok()?))
}

/// Whether `datagram` is a STUN message of `kind`. The socket asks before it takes the
/// replay's lock: nearly every datagram through the TURN server is relayed media.
fn is_stun(datagram: &[u8], kind: u16) -> bool {
    stun_header(datagram).is_some_and(|(k, _)| k == kind)
}

/// The successful Allocate responses sent lately, by client and transaction.
#[derive(Debug, Default)]
pub(crate) struct AllocateReplay {
    responses: HashMap<(SocketAddr, TransactionId), (Instant, Vec<u8>)>,
    order: VecDeque<(SocketAddr, TransactionId)>,
}

impl AllocateReplay {
    /// A datagram the server sends to `to` at `now`: kept if it grants an allocation.
    pub(crate) fn on_sent(&mut self, to: SocketAddr, datagram: &[u8], now: Instant) {
        let Some((ALLOCATE_SUCCESS, id)) = stun_header(datagram) else { return };
        self.forget_old(now);
        if self.order.len() >= CAPACITY {
            if let Some(oldest) = self.order.pop_front() {
                self.responses.remove(&oldest);
            }
        }
        if self.responses.insert((to, id), (now, datagram.to_vec())).is_none() {
            self.order.push_back((to, id));
        }
    }

    /// A datagram received from `from` at `now`: the response to send back instead of
    /// handing it to the server, if it repeats an Allocate that succeeded.
    pub(crate) fn answer(
        &mut self,
        from: SocketAddr,
        datagram: &[u8],
        now: Instant,
    ) -> Option<&[u8]> {
        let Some((ALLOCATE_REQUEST, id)) = stun_header(datagram) else { return None };
        self.forget_old(now);
        self.responses.get(&(from, id)).map(|(_, response)| response.as_slice())
    }

    fn forget_old(&mut self, now: Instant) {
        while let Some(oldest) = self.order.front() {
            let expired = self
                .responses
                .get(oldest)
                .is_none_or(|(at, _)| now.saturating_duration_since(*at) >= KEEP_FOR);
            if !expired {
                break;
            }
            self.responses.remove(oldest);
            self.order.pop_front();
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.responses.len()
    }
}

/// The TURN server's UDP socket, answering repeated Allocates from `AllocateReplay`.
pub(crate) struct ReplayingSocket {
    socket: Arc<UdpSocket>,
    replay: Mutex<AllocateReplay>,
}

impl ReplayingSocket {
    pub(crate) fn new(socket: Arc<UdpSocket>) -> Self {
        ReplayingSocket { socket, replay: Mutex::new(AllocateReplay::default()) }
    }

    fn replay(&self) -> std::sync::MutexGuard<'_, AllocateReplay> {
        // The cache holds no invariant a panic could break halfway.
        self.replay.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl Conn for ReplayingSocket {
    async fn connect(&self, addr: SocketAddr) -> webrtc_util::Result<()> {
        Ok(self.socket.connect(&addr).await?)
    }

    async fn recv(&self, buf: &mut [u8]) -> webrtc_util::Result<usize> {
        Ok(self.socket.recv(buf).await?)
    }

    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        loop {
            let (n, from) = self.socket.recv_from(buf).await?;
            let datagram = &buf[..n];
            let again = is_stun(datagram, ALLOCATE_REQUEST)
                .then(|| self.replay().answer(from, datagram, Instant::now()).map(<[u8]>::to_vec))
                .flatten();
            match again {
                // Lost like any datagram if it fails: the client asks again.
                Some(response) => drop(self.socket.send_to(&response, from).await),
                None => return Ok((n, from)),
            }
        }
    }

    async fn send(&self, buf: &[u8]) -> webrtc_util::Result<usize> {
        Ok(self.socket.send(buf).await?)
    }

    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> webrtc_util::Result<usize> {
        if is_stun(buf, ALLOCATE_SUCCESS) {
            self.replay().on_sent(target, buf, Instant::now());
        }
        Ok(self.socket.send_to(buf, target).await?)
    }

    fn local_addr(&self) -> webrtc_util::Result<SocketAddr> {
        Ok(self.socket.local_addr()?)
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        None
    }

    async fn close(&self) -> webrtc_util::Result<()> {
        Ok(())
    }

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: u16, id: u8) -> Vec<u8> {
        let mut m = kind.to_be_bytes().to_vec();
        m.extend([0, 4]);
        m.extend(MAGIC_COOKIE);
        m.extend([id; 12]);
        m.extend([0, 0x22, 0, 0]); // an attribute's worth of body
        m
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn a_repeated_allocate_gets_the_same_success() {
        let mut r = AllocateReplay::default();
        let t0 = Instant::now();
        assert_eq!(r.answer(addr(1), &message(ALLOCATE_REQUEST, 7), t0), None, "first time");
        let success = message(ALLOCATE_SUCCESS, 7);
        r.on_sent(addr(1), &success, t0);
        assert_eq!(r.answer(addr(1), &message(ALLOCATE_REQUEST, 7), t0), Some(&success[..]));
        assert_eq!(r.answer(addr(1), &message(ALLOCATE_REQUEST, 8), t0), None, "a new one");
        assert_eq!(r.answer(addr(2), &message(ALLOCATE_REQUEST, 7), t0), None, "another client");
        let late = t0 + KEEP_FOR;
        assert_eq!(r.answer(addr(1), &message(ALLOCATE_REQUEST, 7), late), None, "forgotten");
        assert_eq!(r.len(), 0);
    }

    #[test]
    fn only_allocate_successes_are_kept() {
        let mut r = AllocateReplay::default();
        let t0 = Instant::now();
        r.on_sent(addr(1), &message(0x0113, 1), t0); // an Allocate error (401)
        r.on_sent(addr(1), &message(0x0108, 2), t0); // a CreatePermission success
        r.on_sent(addr(1), b"not stun at all, but long enough to look", t0);
        r.on_sent(addr(1), &[0x40, 0x00, 0x00, 0x04, 1, 2, 3, 4], t0); // ChannelData
        assert_eq!(r.len(), 0);
        assert_eq!(r.answer(addr(1), &message(ALLOCATE_REQUEST, 1), t0), None);
    }

    #[test]
    fn the_cache_is_bounded() {
        let mut r = AllocateReplay::default();
        let t0 = Instant::now();
        for port in 0..u16::try_from(CAPACITY + 10).unwrap() {
            r.on_sent(addr(port), &message(ALLOCATE_SUCCESS, 1), t0);
        }
        assert_eq!(r.len(), CAPACITY);
        assert_eq!(r.answer(addr(0), &message(ALLOCATE_REQUEST, 1), t0), None, "oldest gone");
        assert!(r.answer(addr(20), &message(ALLOCATE_REQUEST, 1), t0).is_some());
    }
}
