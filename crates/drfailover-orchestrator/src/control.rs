//! Requests to the running loop (`ack`, `switchover`), how they are answered, and the
//! control token that authorises them.
//!
//! A switchover request carries a [`Ticket`]: the request is *pending* until the
//! switchover is about to change something, then *committed*. Whoever asked may cancel it
//! only while it is pending ([`Ticket::cancel`]); once committed, the outcome is always
//! sent back. So the answer and the action agree: either the client is told the outcome,
//! or the request was cancelled before it changed anything.

use std::path::Path;
use std::sync::{Arc, Mutex};

use subtle::ConstantTimeEq;
use tokio::sync::oneshot;

/// How a request ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Done, with a one-line summary.
    Done(String),
    /// Refused or abandoned before anything changed (e.g. another switchover runs, the
    /// topology is not healthy, anti-flapping), with why.
    Refused(String),
    /// Started changing the topology and failed, with why.
    Failed(String),
}

impl Outcome {
    /// The one-line text of the outcome.
    pub fn text(&self) -> &str {
        match self {
            Outcome::Done(t) | Outcome::Refused(t) | Outcome::Failed(t) => t,
        }
    }
}

/// Where the loop sends a request's outcome (at most once).
pub type Reply = oneshot::Sender<Outcome>;

/// Waits for a request's outcome: `blocking_recv()` from a thread, `.await` from async code.
pub type Answer = oneshot::Receiver<Outcome>;

/// A request to the running loop (from the HTTP endpoint, the CLI or a test).
#[derive(Debug)]
pub enum Request {
    /// Lift the anti-flapping block.
    Ack(Reply),
    /// Switch the primary over to the named node; runs beside the failover loop.
    Switchover {
        /// The node to promote.
        target: String,
        /// Pending until the switchover changes something; cancellable until then.
        ticket: Ticket,
        /// Where the outcome goes.
        reply: Reply,
    },
}

impl Request {
    /// An `ack` request and where its answer comes. Cheap.
    pub fn ack() -> (Request, Answer) {
        let (tx, rx) = oneshot::channel();
        (Request::Ack(tx), rx)
    }

    /// A switchover request to `target`, its ticket (to cancel it) and where its answer
    /// comes. Cheap.
    pub fn switchover(target: &str) -> (Request, Ticket, Answer) {
        let (tx, rx) = oneshot::channel();
        let ticket = Ticket::new();
        (
            Request::Switchover {
                target: target.to_string(),
                ticket: ticket.clone(),
                reply: tx,
            },
            ticket,
            rx,
        )
    }
}

#[derive(Debug)]
enum TicketState {
    Pending,
    Committed,
    Cancelled(String),
}

/// The state of one switchover request, shared by the requester, the loop and the
/// switchover job. Cloning shares it. Every method takes a short lock and never blocks.
#[derive(Clone, Debug)]
pub struct Ticket(Arc<Mutex<TicketState>>);

impl Default for Ticket {
    fn default() -> Self {
        Ticket::new()
    }
}

impl Ticket {
    /// A pending ticket.
    pub fn new() -> Ticket {
        Ticket(Arc::new(Mutex::new(TicketState::Pending)))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, TicketState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Cancel the request if nothing was changed yet: returns `true` when it is (now or
    /// already) cancelled, `false` when the switchover is committed (its outcome will come).
    pub fn cancel(&self, why: &str) -> bool {
        let mut s = self.state();
        match &*s {
            TicketState::Pending => {
                *s = TicketState::Cancelled(why.to_string());
                true
            }
            TicketState::Cancelled(_) => true,
            TicketState::Committed => false,
        }
    }

    /// Called by the switchover right before its first change: `Ok` when it may go on
    /// (it is committed from now on), `Err(why)` when it was cancelled.
    pub fn commit(&self) -> Result<(), String> {
        let mut s = self.state();
        match &*s {
            TicketState::Pending | TicketState::Committed => {
                *s = TicketState::Committed;
                Ok(())
            }
            TicketState::Cancelled(why) => Err(why.clone()),
        }
    }

    /// Why the request was cancelled, if it was.
    pub fn cancelled(&self) -> Option<String> {
        match &*self.state() {
            TicketState::Cancelled(why) => Some(why.clone()),
            _ => None,
        }
    }

    /// Whether the switchover committed (changed or is changing the topology).
    pub fn committed(&self) -> bool {
        matches!(&*self.state(), TicketState::Committed)
    }
}

/// The bearer token that authorises mutating requests (`POST /switchover`, `POST /ack`).
/// Its `Debug` never shows it.
#[derive(Clone)]
pub struct ControlToken(Arc<[u8]>);

impl std::fmt::Debug for ControlToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ControlToken(***)")
    }
}

/// Shortest token accepted.
pub const MIN_TOKEN_LEN: usize = 16;

impl ControlToken {
    /// A token from text (surrounding white space removed): at least [`MIN_TOKEN_LEN`]
    /// visible ASCII characters. The error never contains the text.
    pub fn new(text: &str) -> Result<ControlToken, String> {
        let t = text.trim();
        if t.len() < MIN_TOKEN_LEN {
            return Err(format!(
                "the token is shorter than {MIN_TOKEN_LEN} characters"
            ));
        }
        if !t.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("the token must be visible ASCII characters (no spaces)".into());
        }
        Ok(ControlToken(Arc::from(t.as_bytes())))
    }

    /// Read the token from `path` (a regular file of at most 4 KiB, read bounded). Blocks
    /// on local file I/O. The error names the file, never its content.
    pub fn from_file(path: &Path) -> Result<ControlToken, String> {
        let text = drfailover_files::read_text(path, drfailover_files::SECRET_FILE_LIMIT)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        ControlToken::new(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Whether `presented` is the token, in time independent of where they differ.
    pub fn matches(&self, presented: &[u8]) -> bool {
        self.0.len() == presented.len() && bool::from(self.0.ct_eq(presented))
    }

    /// The token as text, for a client sending it (`Authorization: Bearer …`).
    pub fn expose(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_is_cancelled_only_before_it_commits() {
        let t = Ticket::new();
        assert!(t.cancel("client gone"));
        assert_eq!(t.commit(), Err("client gone".into()));
        let t = Ticket::new();
        assert_eq!(t.commit(), Ok(()));
        assert!(!t.cancel("client gone"));
        assert!(t.committed() && t.cancelled().is_none());
    }

    #[test]
    fn tokens_compare_whole_and_never_show() {
        let t = ControlToken::new("  0123456789abcdef-secret\n").unwrap();
        assert!(t.matches(b"0123456789abcdef-secret"));
        assert!(!t.matches(b"0123456789abcdef-secreT"));
        assert!(!t.matches(b"0123456789abcdef-secret2"));
        assert!(!t.matches(b""));
        assert!(!format!("{t:?}").contains("secret"));
        assert!(ControlToken::new("short").is_err());
        assert!(ControlToken::new("0123456789abcdef with space").is_err());
    }
}
