//! TCP connect probe: is anything listening? (A frozen server still passes: its kernel
//! completes the handshake. Use [`crate::handshake`] or [`crate::MonitorProbe`] to catch that.)

use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

use crate::{Deadline, Observation, OutcomeClass};

/// Connect to `addr` within `deadline` and close. Blocks at most until the deadline.
pub fn probe_tcp(addr: SocketAddr, deadline: Deadline) -> Observation {
    let started = Instant::now();
    let left = deadline.remaining();
    let result = if left.is_zero() {
        Err(std::io::Error::from(std::io::ErrorKind::TimedOut))
    } else {
        TcpStream::connect_timeout(&addr, left)
    };
    let latency = started.elapsed();
    let (class, detail) = match result {
        Ok(_) => (OutcomeClass::Up, String::new()),
        Err(e) => {
            let class = match e.kind() {
                std::io::ErrorKind::ConnectionRefused => OutcomeClass::Refused,
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                    OutcomeClass::TimedOut
                }
                _ => OutcomeClass::ConnectionLost,
            };
            (class, e.to_string())
        }
    };
    Observation {
        class,
        latency,
        role: None,
        detail,
        error: None,
    }
}
