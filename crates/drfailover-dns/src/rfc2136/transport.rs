//! One DNS exchange over UDP, falling back to TCP when the reply is truncated (TC), bounded by
//! a time budget. Blocking std sockets.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

/// Why one exchange failed: both kinds are worth another attempt.
#[derive(Debug)]
pub enum ExchangeError {
    /// No reply within the budget.
    Timeout(String),
    /// A socket error (connection refused, unreachable, reset, …).
    Io(String),
}

impl std::fmt::Display for ExchangeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExchangeError::Timeout(s) | ExchangeError::Io(s) => f.write_str(s),
        }
    }
}

fn io(what: &str, e: std::io::Error) -> ExchangeError {
    if matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    ) {
        ExchangeError::Timeout(format!("{what}: timed out"))
    } else {
        ExchangeError::Io(format!("{what}: {e}"))
    }
}

fn left(end: Instant, what: &str) -> Result<Duration, ExchangeError> {
    end.checked_duration_since(Instant::now())
        .filter(|d| *d >= Duration::from_millis(1))
        .ok_or_else(|| ExchangeError::Timeout(format!("{what}: timed out")))
}

/// Send `request` (id `id`) to `server` and return the reply's bytes. UDP first unless
/// `tcp_only`; a reply with TC set is asked again over TCP. Blocks at most `budget`.
pub fn exchange(
    server: SocketAddr,
    request: &[u8],
    id: u16,
    budget: Duration,
    tcp_only: bool,
) -> Result<Vec<u8>, ExchangeError> {
    let end = Instant::now() + budget;
    if !tcp_only {
        let reply = udp(server, request, id, end)?;
        let truncated = reply.get(2).is_some_and(|flags| flags & 0x02 != 0);
        if !truncated {
            return Ok(reply);
        }
        log::debug!("{server}: truncated UDP reply, asking again over TCP");
    }
    tcp(server, request, id, end)
}

fn udp(
    server: SocketAddr,
    request: &[u8],
    id: u16,
    end: Instant,
) -> Result<Vec<u8>, ExchangeError> {
    let local: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse().expect("literal")
    } else {
        "[::]:0".parse().expect("literal")
    };
    let socket = UdpSocket::bind(local).map_err(|e| io("UDP bind", e))?;
    socket.connect(server).map_err(|e| io("UDP connect", e))?;
    socket.send(request).map_err(|e| io("UDP send", e))?;
    let mut buf = vec![0u8; 65535];
    loop {
        socket
            .set_read_timeout(Some(left(end, "UDP reply")?))
            .map_err(|e| io("UDP socket", e))?;
        let n = socket.recv(&mut buf).map_err(|e| io("UDP reply", e))?;
        // Only the reply to this request (id matches, QR set); anything else is ignored.
        if n >= 12 && u16::from_be_bytes([buf[0], buf[1]]) == id && buf[2] & 0x80 != 0 {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

fn tcp(
    server: SocketAddr,
    request: &[u8],
    id: u16,
    end: Instant,
) -> Result<Vec<u8>, ExchangeError> {
    let mut stream = TcpStream::connect_timeout(&server, left(end, "TCP connect")?)
        .map_err(|e| io("TCP connect", e))?;
    let _ = stream.set_nodelay(true);
    stream
        .set_write_timeout(Some(left(end, "TCP send")?))
        .map_err(|e| io("TCP socket", e))?;
    let len = u16::try_from(request.len())
        .map_err(|_| ExchangeError::Io("request larger than 64 KiB".into()))?;
    let mut framed = Vec::with_capacity(request.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(request);
    stream.write_all(&framed).map_err(|e| io("TCP send", e))?;
    loop {
        let mut len = [0u8; 2];
        read_exact(&mut stream, &mut len, end)?;
        let mut reply = vec![0u8; u16::from_be_bytes(len) as usize];
        read_exact(&mut stream, &mut reply, end)?;
        if reply.len() >= 12 && u16::from_be_bytes([reply[0], reply[1]]) == id {
            return Ok(reply);
        }
    }
}

fn read_exact(stream: &mut TcpStream, buf: &mut [u8], end: Instant) -> Result<(), ExchangeError> {
    let mut filled = 0;
    while filled < buf.len() {
        stream
            .set_read_timeout(Some(left(end, "TCP reply")?))
            .map_err(|e| io("TCP socket", e))?;
        match stream.read(&mut buf[filled..]) {
            Ok(0) => return Err(ExchangeError::Io("TCP reply: connection closed".into())),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io("TCP reply", e)),
        }
    }
    Ok(())
}
