//! A client that writes straight to one node (no drfailover in between), to check what a
//! fenced or old primary acknowledges.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use drfailover_mysql::{ConnectOptions, Connection};

use crate::{Topology, APP_DATABASE, APP_PASSWORD, APP_USER};

/// One acknowledged write: its id, when it was sent, when the OK came.
pub type DirectAck = (u64, Instant, Instant);

/// A thread writing `insert(id)` for id = `first_id + 1, + 2, …` to node `node` as the app
/// user, one statement at a time, reconnecting (20 ms apart) whenever a statement fails.
/// Connect timeout `connect_timeout`, read timeout 30 s.
pub struct DirectWriter {
    acked: Arc<Mutex<Vec<DirectAck>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl DirectWriter {
    /// Start writing. Does not block.
    pub fn start(
        topo: &Topology,
        node: usize,
        connect_timeout: Duration,
        first_id: u64,
        insert: impl Fn(u64) -> String + Send + 'static,
    ) -> DirectWriter {
        let options = ConnectOptions::tcp(topo.node(node).ip().to_string(), topo.node(node).port());
        Self::start_with(options, connect_timeout, first_id, insert)
    }

    /// Like [`DirectWriter::start`], but through node `node`'s Unix socket: it still reaches
    /// the server when the network between the host and the node is cut. The app user must
    /// exist for `localhost` on that node (see [`Topology::allow_app_over_socket`]).
    pub fn over_socket(
        topo: &Topology,
        node: usize,
        first_id: u64,
        insert: impl Fn(u64) -> String + Send + 'static,
    ) -> DirectWriter {
        let options = ConnectOptions::unix(topo.node(node).socket());
        Self::start_with(options, Duration::from_secs(2), first_id, insert)
    }

    fn start_with(
        options: ConnectOptions,
        connect_timeout: Duration,
        first_id: u64,
        insert: impl Fn(u64) -> String + Send + 'static,
    ) -> DirectWriter {
        let mut options = options
            .user(APP_USER)
            .password(APP_PASSWORD)
            .database(APP_DATABASE);
        options.connect_timeout = connect_timeout;
        options.read_timeout = Some(Duration::from_secs(30));
        let acked: Arc<Mutex<Vec<DirectAck>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (acked, stop) = (acked.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut id = first_id;
                while !stop.load(Ordering::Relaxed) {
                    let Ok(mut c) = Connection::connect(&options) else {
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    };
                    while !stop.load(Ordering::Relaxed) {
                        id += 1;
                        let sent = Instant::now();
                        if c.query(&insert(id)).is_err() {
                            break;
                        }
                        acked.lock().unwrap().push((id, sent, Instant::now()));
                    }
                }
            })
        };
        DirectWriter {
            acked,
            stop,
            thread: Some(thread),
        }
    }

    /// The writes acknowledged so far.
    pub fn acked(&self) -> Vec<DirectAck> {
        self.acked.lock().unwrap().clone()
    }

    /// Stop writing (waits for the statement in flight, at most its read timeout) and return
    /// every acknowledged write.
    pub fn stop(mut self) -> Vec<DirectAck> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.acked()
    }
}

impl Drop for DirectWriter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
