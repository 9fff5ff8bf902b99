//! What the core remembers of each node between rounds: its latest facts, its consecutive
//! failures (counted by [`HealthTracker`]) and when its replication last made progress.

use std::time::{Duration, Instant};

use drfailover_probe::{HealthTracker, OutcomeClass, TrackerConfig};

use crate::facts::{NodeFacts, NodeProbe};

/// A replica's progress marker: heartbeats received, read position and received GTIDs. Any
/// change means it heard from its primary.
type Progress = (u64, (String, u64), String);

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
    progress_at: Option<Instant>,
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
                let key = f.replica().map(|r| {
                    (
                        r.heartbeats,
                        r.read_position.clone(),
                        r.received.to_string(),
                    )
                });
                if key != self.progress || self.progress_at.is_none() {
                    self.progress = key;
                    self.progress_at = Some(at);
                }
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

    /// How long its replication progress has not moved, at `now`.
    pub fn silent_for(&self, now: Instant) -> Duration {
        self.progress_at
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t))
    }
}
