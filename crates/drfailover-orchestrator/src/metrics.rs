//! `/metrics`: the orchestrator's figures in the Prometheus text format (0.0.4), written by
//! the Prometheus client library (`prometheus-client`), which escapes label values (`"`,
//! `\`, new lines) so any node name gives valid exposition text.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// Figures for `/metrics` and `/status`.
#[derive(Clone, Debug, Default)]
pub struct Figures {
    /// Failovers performed.
    pub failovers: u64,
    /// Switchovers performed.
    pub switchovers: u64,
    /// First failed probe → failover decided, of the last failover.
    pub last_detection: Option<Duration>,
    /// Failover decided → new primary writable, of the last failover.
    pub last_promotion: Option<Duration>,
    /// Failover blocked notices given.
    pub blocked: u64,
}

/// One node's state for the per-node gauges.
#[derive(Clone, Debug)]
pub struct NodeState<'a> {
    /// Its name (a label value, escaped by the library).
    pub name: &'a str,
    /// It answered the last probe.
    pub up: bool,
    /// It is writable (`read_only=0`).
    pub writable: bool,
    /// The orchestrator takes it as the primary.
    pub primary: bool,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeLabel {
    node: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SinkLabel {
    sink: SinkKind,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct SinkKind(&'static str);

impl EncodeLabelValue for SinkKind {
    fn encode(
        &self,
        encoder: &mut prometheus_client::encoding::LabelValueEncoder<'_>,
    ) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.0)
    }
}

type F64Gauge = Gauge<f64, AtomicU64>;

fn counter(value: u64) -> Counter {
    let c = Counter::default();
    c.inc_by(value);
    c
}

fn gauge(value: f64) -> F64Gauge {
    let g = F64Gauge::default();
    g.set(value);
    g
}

/// The exposition text for `figures`, leadership, `nodes` and the sinks' `(kind, failed,
/// dropped)` totals. Allocates the text (a few KiB); no I/O.
pub fn render(
    figures: &Figures,
    leader: bool,
    nodes: &[NodeState<'_>],
    sinks: &[(&'static str, u64, u64)],
) -> String {
    let mut r = Registry::default();
    let bool_gauge = |b: bool| {
        let g = Gauge::<i64>::default();
        g.set(i64::from(b));
        g
    };
    r.register(
        "drfailover_orchestrator_failovers",
        "Automatic failovers performed",
        counter(figures.failovers),
    );
    r.register(
        "drfailover_orchestrator_switchovers",
        "Planned switchovers performed",
        counter(figures.switchovers),
    );
    r.register(
        "drfailover_orchestrator_failovers_blocked",
        "Failovers refused (zero-loss gate, anti-flapping, no candidate, not the leader)",
        counter(figures.blocked),
    );
    r.register(
        "drfailover_orchestrator_last_detection_seconds",
        "First failed probe to failover decision, last failover",
        gauge(figures.last_detection.map_or(f64::NAN, |d| d.as_secs_f64())),
    );
    r.register(
        "drfailover_orchestrator_last_promotion_seconds",
        "Failover decision to new primary writable, last failover",
        gauge(figures.last_promotion.map_or(f64::NAN, |d| d.as_secs_f64())),
    );
    r.register(
        "drfailover_orchestrator_leader",
        "1 when this orchestrator holds the lock on a majority of the nodes",
        bool_gauge(leader),
    );
    let per_node = |value: fn(&NodeState<'_>) -> bool| {
        let family = Family::<NodeLabel, Gauge>::default();
        for n in nodes {
            family
                .get_or_create(&NodeLabel {
                    node: n.name.to_string(),
                })
                .set(i64::from(value(n)));
        }
        family
    };
    r.register(
        "drfailover_orchestrator_node_up",
        "1 when the node answered the last probe",
        per_node(|n| n.up),
    );
    r.register(
        "drfailover_orchestrator_node_writable",
        "1 when the node is writable (read_only=0)",
        per_node(|n| n.writable),
    );
    r.register(
        "drfailover_orchestrator_node_primary",
        "1 for the node the orchestrator takes as primary",
        per_node(|n| n.primary),
    );
    let failed = Family::<SinkLabel, Counter>::default();
    let dropped = Family::<SinkLabel, Counter>::default();
    for &(kind, f, d) in sinks {
        let label = SinkLabel {
            sink: SinkKind(kind),
        };
        failed.get_or_create(&label).inc_by(f);
        dropped.get_or_create(&label).inc_by(d);
    }
    r.register(
        "drfailover_orchestrator_sink_failures",
        "Events a sink failed to deliver (hook exit status, webhook or SNS error)",
        failed,
    );
    r.register(
        "drfailover_orchestrator_sink_dropped",
        "Events dropped because a sink's queue was full",
        dropped,
    );
    let mut text = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &r);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let nodes = [
            NodeState {
                name: "db\"1",
                up: true,
                writable: true,
                primary: true,
            },
            NodeState {
                name: "db\\2\nx",
                up: false,
                writable: false,
                primary: false,
            },
        ];
        let text = render(&Figures::default(), true, &nodes, &[("hook", 2, 1)]);
        assert!(
            text.contains("drfailover_orchestrator_node_up{node=\"db\\\"1\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("drfailover_orchestrator_node_up{node=\"db\\\\2\\nx\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("drfailover_orchestrator_failovers_total 0"),
            "{text}"
        );
        assert!(
            text.contains("drfailover_orchestrator_sink_failures_total{sink=\"hook\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("drfailover_orchestrator_leader 1\n"),
            "{text}"
        );
    }
}
