use std::net::{Ipv4Addr, SocketAddr, TcpListener};

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
