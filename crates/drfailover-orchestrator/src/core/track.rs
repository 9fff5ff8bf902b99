//! What the core remembers of each node between rounds: its latest facts, its consecutive
//! failures (counted by [`HealthTracker`]) and when its replication last made progress.

use std::time::{Duration, Instant};

use drfailover_probe::{HealthTracker, OutcomeClass, TrackerConfig};

use crate::facts::{NodeFacts, NodeProbe, Progress};

/// One node's memory. Cheap to update (no allocation beyond cloning the facts).
#[derive(Clone, Debug, Default)]
pub(super) struct Track {
    /// The facts of the latest round that reached it.
    pub facts: Option<NodeFacts>,
    /// Consecutive failures; created at the first observation.
    health: Option<HealthTracker>,
    /// The class of its latest failure, until it answers again.
    pub last_failure: Option<OutcomeClass>,
    progress: Option<Progress>,
    /// When the current progress marker was first read.
    progress_at: Option<Instant>,
    /// When the replication status was last read.
    read_at: Option<Instant>,
}

impl Track {
    /// Take in this round's probe of the node.
    pub fn observe(&mut self, probe: &NodeProbe, fall: u32, at: Instant) {
        let health = self.health.get_or_insert_with(|| {
            HealthTracker::new(
                TrackerConfig {
                    fall,
                    ..TrackerConfig::default()
                },
                at,
            )
        });
        match probe {
            NodeProbe::Reached(f) => {
                let class = if f.read_only {
                    OutcomeClass::ReadOnly
                } else {
                    OutcomeClass::Up
                };
                health.observe(class, at);
                self.last_failure = None;
                let key = f.progress();
                let read_at = f.replication_read_at.unwrap_or(at);
                if key != self.progress || self.progress_at.is_none() {
                    self.progress = key;
                    self.progress_at = Some(f.progress_seen_at.unwrap_or(read_at));
                }
                self.read_at = Some(read_at);
                self.facts = Some((**f).clone());
            }
            NodeProbe::Failed { class, .. } => {
                // A failed probe is a failure whatever its class says.
                let counted = if class.is_alive() {
                    OutcomeClass::ProtocolError
                } else {
                    *class
                };
                health.observe(counted, at);
                self.last_failure = Some(*class);
            }
        }
    }

    /// Failed probes in a row (0 once it answers).
    pub fn failures(&self) -> u32 {
        self.health
            .as_ref()
            .map_or(0, HealthTracker::consecutive_failures)
    }

    /// How long its replication progress has not moved, as far as the reads up to `now`
    /// show: from the first read of the current marker to the latest read.
    pub fn silent_for(&self, now: Instant) -> Duration {
        let last_read = self.read_at.map_or(now, |r| r.min(now));
        self.progress_at
            .map_or(Duration::ZERO, |t| last_read.saturating_duration_since(t))
    }
}
