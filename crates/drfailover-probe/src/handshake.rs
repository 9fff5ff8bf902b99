//! TCP connect + MySQL greeting, without credentials, in pure Rust with millisecond deadlines.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use drfailover_mysql::Error;

use crate::{Deadline, Observation, OutcomeClass};

/// What the server's greeting said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Greeting {
    /// Server version string, e.g. `10.11.19-MariaDB-0+deb12u1-log` (MariaDB prefixes
    /// `5.5.5-`, which is removed).
    pub server_version: String,
    /// The connection id the server assigned.
    pub connection_id: u32,
}

/// Connect to `addr` and read the initial handshake packet, bounded by `deadline`.
/// Blocks at most until the deadline. Does not authenticate; the server logs an aborted
/// connection.
pub fn probe_handshake(addr: SocketAddr, deadline: Deadline) -> (Observation, Option<Greeting>) {
    let started = Instant::now();
    let result = handshake(addr, deadline);
    let latency = started.elapsed();
    match result {
        Ok(greeting) => (
            Observation {
                class: OutcomeClass::Up,
                latency,
                role: None,
                detail: greeting.server_version.clone(),
                error: None,
            },
            Some(greeting),
        ),
        Err((class, detail, error)) => (
            Observation {
                class,
                latency,
                role: None,
                detail,
                error,
            },
            None,
        ),
    }
}

type Failure = (OutcomeClass, String);

/// A failure with the server's typed error when it sent an error packet.
type TypedFailure = (OutcomeClass, String, Option<Error>);

fn untyped((class, detail): Failure) -> TypedFailure {
    (class, detail, None)
}

fn io_failure(e: std::io::Error) -> Failure {
    use std::io::ErrorKind::*;
    let class = match e.kind() {
        ConnectionRefused => OutcomeClass::Refused,
        TimedOut | WouldBlock => OutcomeClass::TimedOut,
        UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe => {
            OutcomeClass::ConnectionLost
        }
        _ => OutcomeClass::ConnectionLost,
    };
    (class, e.to_string())
}

fn remaining(deadline: Deadline) -> Result<Duration, Failure> {
    let left = deadline.remaining();
    if left.is_zero() {
        Err((OutcomeClass::TimedOut, "deadline expired".into()))
    } else {
        Ok(left)
    }
}

fn handshake(addr: SocketAddr, deadline: Deadline) -> Result<Greeting, TypedFailure> {
    let left = remaining(deadline).map_err(untyped)?;
    let mut stream = TcpStream::connect_timeout(&addr, left)
        .map_err(io_failure)
        .map_err(untyped)?;
    let payload = read_packet(|buf| read_exact_by(&mut stream, buf, deadline)).map_err(untyped)?;
    // An error packet in place of the greeting (e.g. 1040): the server's errno, SQLSTATE and
    // message, typed, classified by drfailover-mysql's one errno table.
    if let Some(e) = server_error(&payload) {
        return Err((
            OutcomeClass::from_error(&e),
            format!("{}: {}", e.errno(), e.message()),
            Some(e),
        ));
    }
    parse_greeting(&payload).map_err(untyped)
}

/// Longest greeting accepted (a real one is about 100 bytes).
pub const MAX_GREETING: usize = 64 * 1024;

/// Read one greeting packet with `read_exact` (the 4-byte packet header, then a payload of
/// 1..=[`MAX_GREETING`] bytes) and parse it. `read_exact` fills the whole buffer or fails;
/// the server's bytes are untrusted: a length out of range is a `ProtocolError`, and at most
/// `MAX_GREETING` bytes are allocated. No I/O of its own.
pub fn read_greeting(
    read_exact: impl FnMut(&mut [u8]) -> Result<(), (OutcomeClass, String)>,
) -> Result<Greeting, (OutcomeClass, String)> {
    parse_greeting(&read_packet(read_exact)?)
}

/// Read one packet's payload (see [`read_greeting`] for the bounds).
fn read_packet(
    mut read_exact: impl FnMut(&mut [u8]) -> Result<(), (OutcomeClass, String)>,
) -> Result<Vec<u8>, (OutcomeClass, String)> {
    let mut header = [0u8; 4];
    read_exact(&mut header)?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
    if len == 0 || len > MAX_GREETING {
        return Err((
            OutcomeClass::ProtocolError,
            format!("greeting length {len}"),
        ));
    }
    let mut payload = vec![0u8; len];
    read_exact(&mut payload)?;
    Ok(payload)
}

/// The server's error when `payload` is an error packet (`0xff`, errno, optional `#` and
/// SQLSTATE, message), else `None`. Untrusted bytes: invalid UTF-8 is replaced; a packet
/// without a SQLSTATE gets `HY000`. Pure.
pub fn server_error(payload: &[u8]) -> Option<Error> {
    if payload.first() != Some(&0xff) || payload.len() < 3 {
        return None;
    }
    let errno = u16::from_le_bytes([payload[1], payload[2]]);
    let mut message = &payload[3..];
    let mut sqlstate = std::borrow::Cow::Borrowed("HY000");
    if message.first() == Some(&b'#') && message.len() >= 6 {
        sqlstate = String::from_utf8_lossy(&message[1..6]);
        message = &message[6..];
    }
    Some(Error::from_server(
        errno.into(),
        &sqlstate,
        &String::from_utf8_lossy(message),
    ))
}

fn read_exact_by(
    stream: &mut TcpStream,
    mut buf: &mut [u8],
    deadline: Deadline,
) -> Result<(), Failure> {
    while !buf.is_empty() {
        stream
            .set_read_timeout(Some(remaining(deadline)?))
            .map_err(io_failure)?;
        match stream.read(buf) {
            Ok(0) => {
                return Err((
                    OutcomeClass::ConnectionLost,
                    "server closed the connection during the greeting".into(),
                ))
            }
            Ok(n) => buf = &mut buf[n..],
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_failure(e)),
        }
    }
    Ok(())
}

/// Parse a greeting payload (protocol 10) or an error packet sent in its place.
pub fn parse_greeting(payload: &[u8]) -> Result<Greeting, (OutcomeClass, String)> {
    match payload.first() {
        Some(0x0a) => {
            let rest = &payload[1..];
            let nul = rest.iter().position(|&b| b == 0).ok_or((
                OutcomeClass::ProtocolError,
                "unterminated server version".to_string(),
            ))?;
            let version = String::from_utf8_lossy(&rest[..nul]).into_owned();
            let id_bytes = rest.get(nul + 1..nul + 5).ok_or((
                OutcomeClass::ProtocolError,
                "greeting too short".to_string(),
            ))?;
            Ok(Greeting {
                server_version: version
                    .strip_prefix("5.5.5-")
                    .unwrap_or(&version)
                    .to_string(),
                connection_id: u32::from_le_bytes(id_bytes.try_into().expect("4 bytes")),
            })
        }
        Some(0xff) if payload.len() >= 3 => {
            let e = server_error(payload).expect("an error packet");
            Err((
                OutcomeClass::from_error(&e),
                format!("{}: {}", e.errno(), e.message()),
            ))
        }
        Some(other) => Err((
            OutcomeClass::ProtocolError,
            format!("unexpected greeting byte 0x{other:02x} (not a MySQL server?)"),
        )),
        None => Err((OutcomeClass::ProtocolError, "empty greeting".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_mariadb_greeting() {
        let mut p = vec![0x0a];
        p.extend_from_slice(b"5.5.5-10.11.19-MariaDB\0");
        p.extend_from_slice(&42u32.to_le_bytes());
        p.extend_from_slice(&[0; 8]);
        let g = parse_greeting(&p).unwrap();
        assert_eq!(g.server_version, "10.11.19-MariaDB");
        assert_eq!(g.connection_id, 42);
    }

    #[test]
    fn recognises_too_many_connections_in_place_of_a_greeting() {
        let mut p = vec![0xff];
        p.extend_from_slice(&1040u16.to_le_bytes());
        p.extend_from_slice(b"Too many connections");
        let (class, detail) = parse_greeting(&p).unwrap_err();
        assert_eq!(class, OutcomeClass::TooManyConnections);
        assert!(detail.contains("Too many connections"));
    }

    #[test]
    fn an_error_packet_keeps_the_servers_errno_and_sqlstate() {
        let mut p = vec![0xff];
        p.extend_from_slice(&1040u16.to_le_bytes());
        p.extend_from_slice(b"#08004Too many connections");
        let e = server_error(&p).unwrap();
        assert_eq!(
            (e.errno(), e.sqlstate(), e.message()),
            (1040, "08004", "Too many connections")
        );
        let (class, detail) = parse_greeting(&p).unwrap_err();
        assert_eq!(class, OutcomeClass::TooManyConnections);
        assert_eq!(detail, "1040: Too many connections");
        // Without a SQLSTATE marker: the general one, the whole rest is the message.
        let e = server_error(&[0xff, 0x15, 0x04, b'x']).unwrap();
        assert_eq!((e.errno(), e.sqlstate(), e.message()), (1045, "HY000", "x"));
        assert!(server_error(&[0x0a, 0, 0]).is_none());
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(
            parse_greeting(b"HTTP/1.1 400").unwrap_err().0,
            OutcomeClass::ProtocolError
        );
        assert_eq!(
            parse_greeting(b"").unwrap_err().0,
            OutcomeClass::ProtocolError
        );
    }
}
