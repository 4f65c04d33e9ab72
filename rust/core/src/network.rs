//! This machine's network addresses, for apps without a platform network monitor (the CLI,
//! desktop programs) to notice a change and call `VideoCall::network_changed`.

use std::net::IpAddr;

/// The addresses of this machine's interfaces, loopback and link-local left out, sorted:
/// two looks compare equal unless an address came or went.
pub fn local_addresses() -> Vec<IpAddr> {
    let Ok(interfaces) = rtc::shared::ifaces::ifaces() else { return Vec::new() };
    let mut out: Vec<IpAddr> = interfaces
        .iter()
        .filter_map(|i| i.addr.map(|a| a.ip()))
        .filter(|ip| !ip.is_loopback() && !is_link_local(ip))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

fn is_link_local(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}
