//! Loopback addresses and ports for test servers, and a one-question DNS check.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::time::Duration;

use rand::Rng;

/// Pick `count` distinct loopback addresses (127.x.y.z) and one port that is free on all.
pub fn allocate(count: usize) -> (Vec<Ipv4Addr>, u16) {
    let mut rng = rand::thread_rng();
    loop {
        let port: u16 = rng.gen_range(20_000..60_000);
        let base: [u8; 2] = [rng.gen_range(10..250), rng.gen_range(1..250)];
        let ips: Vec<Ipv4Addr> = (0..count)
            .map(|i| Ipv4Addr::new(127, base[0], base[1], 10 + i as u8))
            .collect();
        let free = ips
            .iter()
            .all(|ip| TcpListener::bind(SocketAddr::from((*ip, port))).is_ok());
        if free {
            return (ips, port);
        }
    }
}

/// A TCP port free on 127.0.0.1 right now (the kernel's pick), for a server a test starts.
/// Panics when none can be bound.
pub fn free_loopback_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port on 127.0.0.1: {e}"))
}

/// A port that is free on 127.0.0.1 for both UDP and TCP right now (for DNS servers).
pub(crate) fn free_udp_and_tcp_port() -> Result<u16, String> {
    for _ in 0..100 {
        let udp = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let port = udp.local_addr().map_err(|e| e.to_string())?.port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err("no port free for both UDP and TCP on 127.0.0.1".into())
}

/// Ask the DNS server on 127.0.0.1:`port` one question (`name`, record type `qtype`: 1 = A,
/// 6 = SOA) over UDP; its reply's RCODE (0 = NOERROR), or `None` when nothing answered
/// within 100 ms. For "is the server up yet" checks.
pub(crate) fn dns_rcode(port: u16, name: &str, qtype: u16) -> Option<u8> {
    let sock = UdpSocket::bind("127.0.0.1:0").ok()?;
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .ok()?;
    let mut query = vec![0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.').filter(|l| !l.is_empty()) {
        query.push(label.len() as u8);
        query.extend_from_slice(label.as_bytes());
    }
    query.push(0);
    query.extend_from_slice(&qtype.to_be_bytes());
    query.extend_from_slice(&[0, 1]);
    sock.send_to(&query, ("127.0.0.1", port)).ok()?;
    let mut buf = [0u8; 512];
    match sock.recv_from(&mut buf) {
        Ok((n, _)) if n >= 12 => Some(buf[3] & 0x0f),
        _ => None,
    }
}
