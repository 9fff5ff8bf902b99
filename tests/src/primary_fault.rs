//! The three ways a program's primary (node 0) is replaced by node 1 in the client-side
//! failover tests and benchmarks: a crash, a freeze, a switchover.

use crate::Topology;

/// A fault of node 0 followed by the promotion of node 1.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PrimaryFault {
    /// `kill -9` of node 0, then [`Topology::promote`] of node 1.
    Kill9,
    /// `SIGSTOP` of node 0, then [`Topology::promote_fast`] of node 1 at once (thaw node 0
    /// with [`Topology::thaw`] afterwards).
    Freeze,
    /// Node 0 fenced read-only, node 1 caught up, then promoted.
    Switchover,
}

impl PrimaryFault {
    /// Every fault, in the order reports list them.
    pub const ALL: [PrimaryFault; 3] = [
        PrimaryFault::Kill9,
        PrimaryFault::Freeze,
        PrimaryFault::Switchover,
    ];

    /// How reports name it: `kill -9`, `SIGSTOP`, `switchover`.
    pub fn name(self) -> &'static str {
        match self {
            PrimaryFault::Kill9 => "kill -9",
            PrimaryFault::Freeze => "SIGSTOP",
            PrimaryFault::Switchover => "switchover",
        }
    }

    /// Inflict it on `topo`: node 1 is writable when this returns. Blocking: tens of ms
    /// (a switchover waits for node 1 to catch up).
    pub fn inflict(self, topo: &mut Topology) -> Result<(), String> {
        match self {
            PrimaryFault::Kill9 => {
                topo.kill9(0)?;
                topo.promote(1)
            }
            PrimaryFault::Freeze => {
                topo.freeze(0)?;
                topo.promote_fast(1)
            }
            PrimaryFault::Switchover => {
                topo.fence(0)?;
                topo.wait_replicated(0, 1)?;
                topo.promote(1)
            }
        }
    }
}
