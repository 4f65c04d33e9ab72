//! Which address a connection is from when it comes through a proxy the operator trusts:
//! the nearest address in `X-Forwarded-For` that is not itself a trusted proxy.
//!
//! Read from the right, because each proxy appends the address it was reached from and only
//! the operator's own proxies are believed: everything left of the first untrusted hop was
//! written by that hop, which may be the client lying. A header from a peer that is not a
//! trusted proxy is never read at all.

use std::net::IpAddr;

use ipnet::IpNet;

/// The address to count a connection from `peer` under. `forwarded_for` is every
/// `X-Forwarded-For` value of the request, in order.
pub(crate) fn client_of<'a>(
    peer: IpAddr,
    forwarded_for: impl DoubleEndedIterator<Item = &'a str>,
    trusted: &[IpNet],
) -> IpAddr {
    let mut nearest = peer;
    if !is_trusted(peer, trusted) {
        return nearest;
    }
    for hop in forwarded_for.rev().flat_map(|value| value.rsplit(',')) {
        // A hop that does not parse (a name, "unknown", a port) ends the walk: nothing left
        // of it can be attributed, so the connection stays counted under the last proxy.
        let Ok(hop) = hop.trim().parse::<IpAddr>() else { return nearest };
        nearest = hop.to_canonical();
        if !is_trusted(nearest, trusted) {
            return nearest;
        }
    }
    nearest
}

/// Whether a connection from `ip` may say whom it forwards.
pub(crate) fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    let ip = ip.to_canonical();
    trusted.iter().any(|net| net.contains(&ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn trusted() -> Vec<IpNet> {
        vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()]
    }

    fn client(peer: &str, headers: &[&str]) -> IpAddr {
        client_of(ip(peer), headers.iter().copied(), &trusted())
    }

    #[test]
    fn an_untrusted_peer_is_its_own_address_whatever_it_says() {
        assert_eq!(client("203.0.113.9", &["198.51.100.1"]), ip("203.0.113.9"));
    }

    #[test]
    fn a_trusted_proxy_names_its_client() {
        assert_eq!(client("10.0.0.2", &["198.51.100.1"]), ip("198.51.100.1"));
    }

    #[test]
    fn what_the_client_wrote_itself_is_not_believed() {
        // The client sent "X-Forwarded-For: 1.2.3.4"; the proxy appended the real address.
        assert_eq!(client("10.0.0.2", &["1.2.3.4, 198.51.100.1"]), ip("198.51.100.1"));
        assert_eq!(client("10.0.0.2", &["1.2.3.4", "198.51.100.1"]), ip("198.51.100.1"));
    }

    #[test]
    fn a_chain_of_trusted_proxies_is_walked_through() {
        assert_eq!(client("10.0.0.2", &["198.51.100.1, 10.9.9.9"]), ip("198.51.100.1"));
    }

    #[test]
    fn without_a_usable_header_the_proxy_is_the_client() {
        assert_eq!(client("10.0.0.2", &[]), ip("10.0.0.2"));
        assert_eq!(client("10.0.0.2", &["unknown"]), ip("10.0.0.2"));
        assert_eq!(client("10.0.0.2", &["198.51.100.1, 10.0.0.7, garbage"]), ip("10.0.0.2"));
        assert_eq!(client("10.0.0.2", &["garbage, 10.0.0.7"]), ip("10.0.0.7"));
    }

    #[test]
    fn ipv4_mapped_addresses_count_as_ipv4() {
        assert_eq!(client("::ffff:10.0.0.2", &["::ffff:198.51.100.1"]), ip("198.51.100.1"));
        assert_eq!(client("::1", &["2001:db8::5"]), ip("2001:db8::5"));
    }
}
