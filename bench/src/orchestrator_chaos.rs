//! Orchestrated faults with data checks (`--only orchestrator --chaos N`): every trial a fresh
//! topology (primary + 2 semi-sync replicas in a network namespace of its own), default
//! orchestrator settings, 16 writer threads through a drfailover client plus one client
//! pinned to the primary's address, one fault of a random kind. Per trial: acknowledged
//! writes lost, writes the old primary acknowledged after the promotion that the new primary
//! lacks, whether a failover happened where none should, the writable nodes at the end, and
//! fault → writable. One kind runs two orchestrator processes (`drfailover orchestrate`) and
//! kills the leader with SIGKILL in the middle of its promotion; another kills the only one
//! there and starts it again.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use drfailover_testkit::{DirectWriter, Topology};

use crate::orchestrator::{config_text, lost_on, Running, Writers};
use crate::orchestrator_process::{KillMidPromotion, Process};

/// A fault kind of the chaos run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChaosFault {
    /// `kill -9` of the primary.
    Kill,
    /// SIGSTOP of the primary for 3 s (thawed after the promotion).
    Stop,
    /// Every packet to the primary dropped (healed after the promotion).
    Blackhole,
    /// Only the orchestrator's host loses the primary: no failover may happen.
    PartitionFromOrchestrator,
    /// `kill -9` of the primary, then of the candidate as soon as the promotion starts.
    CandidateKilledDuringPromotion,
    /// `kill -9` of the primary and of a replica at the same moment.
    ReplicaLostToo,
    /// Two orchestrators over the same topology, `kill -9` of the primary.
    TwoOrchestrators,
    /// Two orchestrator processes; `kill -9` of the primary, then of the leading
    /// orchestrator's process after the first, second, third or fourth step of its promotion
    /// (before the candidate is writable): the other must finish it.
    OrchestratorKilledMidPromotion,
    /// The only orchestrator process (with a `state_dir`); `kill -9` of the primary, then the
    /// orchestrator dies in the middle of its promotion (after detaching the candidate, after
    /// making it writable, or SIGKILLed at its first to fourth step event) and a new process
    /// with the same configuration is started: it must finish the promotion.
    OrchestratorRestartedMidPromotion,
}

impl ChaosFault {
    /// Every kind, in table order.
    pub const ALL: [ChaosFault; 9] = [
        ChaosFault::Kill,
        ChaosFault::Stop,
        ChaosFault::Blackhole,
        ChaosFault::PartitionFromOrchestrator,
        ChaosFault::CandidateKilledDuringPromotion,
        ChaosFault::ReplicaLostToo,
        ChaosFault::TwoOrchestrators,
        ChaosFault::OrchestratorKilledMidPromotion,
        ChaosFault::OrchestratorRestartedMidPromotion,
    ];

    /// Table name.
    pub fn name(self) -> &'static str {
        match self {
            ChaosFault::Kill => "kill -9",
            ChaosFault::Stop => "SIGSTOP",
            ChaosFault::Blackhole => "blackhole",
            ChaosFault::PartitionFromOrchestrator => "partition orchestrator-primary",
            ChaosFault::CandidateKilledDuringPromotion => "candidate killed mid-promotion",
            ChaosFault::ReplicaLostToo => "replica lost too",
            ChaosFault::TwoOrchestrators => "two orchestrators",
            ChaosFault::OrchestratorKilledMidPromotion => "orchestrator killed mid-promotion",
            ChaosFault::OrchestratorRestartedMidPromotion => "orchestrator restarted mid-promotion",
        }
    }

    /// Whether a promotion is the right outcome (else none may happen: a partition between
    /// the orchestrator and a healthy primary; or the zero-loss gate may refuse one when a
    /// replica that may hold acknowledged writes is gone).
    pub fn must_promote(self) -> bool {
        matches!(
            self,
            ChaosFault::Kill
                | ChaosFault::Stop
                | ChaosFault::Blackhole
                | ChaosFault::TwoOrchestrators
                | ChaosFault::OrchestratorKilledMidPromotion
                | ChaosFault::OrchestratorRestartedMidPromotion
        )
    }
}

/// One trial's outcome.
#[derive(Debug)]
pub struct ChaosTrial {
    /// Fault → writable, when a node was promoted.
    pub writable: Option<Duration>,
    /// Acknowledged writes (library and pinned client) missing on the writable node.
    pub lost: u64,
    /// Writes the old primary acknowledged after the promotion that the new primary lacks.
    pub old_acks: u64,
    /// A promotion where none may happen.
    pub false_failover: bool,
    /// Writable nodes among those still running at the end.
    pub writable_nodes: usize,
    /// Promotions counted (over every orchestrator).
    pub promotions: usize,
}

const THREADS: usize = 16;

/// Nodes answering with `read_only = 0`.
fn writable_nodes(topo: &Topology) -> Vec<usize> {
    (0..topo.nodes().len())
        .filter(|&i| {
            topo.node(i)
                .sql_value("SELECT @@read_only")
                .ok()
                .flatten()
                .as_deref()
                == Some("0")
        })
        .collect()
}

/// One trial of `fault` on a fresh topology. Blocks for the trial (seconds).
pub fn trial(fault: ChaosFault) -> Result<ChaosTrial, String> {
    if fault == ChaosFault::OrchestratorKilledMidPromotion {
        return orchestrator_killed_mid_promotion();
    }
    if fault == ChaosFault::OrchestratorRestartedMidPromotion {
        return orchestrator_restarted_mid_promotion();
    }
    let mut topo = Topology::primary_replicas_in_lab(2)?;
    let orch = Running::start(&topo)?;
    let second = if fault == ChaosFault::TwoOrchestrators {
        Some(Running::start(&topo)?)
    } else {
        None
    };
    let writers = Writers::start(&topo, THREADS)?;
    writers.wait_progress(300, Duration::from_secs(30))?;
    let direct = DirectWriter::start(&topo, 0, Duration::from_secs(1), 1u64 << 40, |id| {
        format!("INSERT INTO bench_o VALUES ({id})")
    });
    std::thread::sleep(Duration::from_millis(100 + rand::random::<u64>() % 200));
    let mut dead: HashSet<usize> = HashSet::new();
    match fault {
        ChaosFault::Kill
        | ChaosFault::TwoOrchestrators
        | ChaosFault::OrchestratorKilledMidPromotion
        | ChaosFault::OrchestratorRestartedMidPromotion => {
            topo.kill9(0)?;
            dead.insert(0);
        }
        ChaosFault::CandidateKilledDuringPromotion => {
            topo.kill9(0)?;
            dead.insert(0);
        }
        ChaosFault::Stop => topo.freeze(0)?,
        ChaosFault::Blackhole => topo.blackhole(0)?,
        ChaosFault::PartitionFromOrchestrator => topo.partition_from_host(0)?,
        ChaosFault::ReplicaLostToo => {
            topo.kill9(0)?;
            topo.kill9(2)?;
            dead.extend([0, 2]);
        }
    }
    let at = Instant::now();
    if fault == ChaosFault::CandidateKilledDuringPromotion {
        let candidate = orch.wait_started(Duration::from_secs(20))?;
        if let Some(i) = topo.nodes().iter().position(|n| n.name() == candidate) {
            topo.kill9(i)?;
            dead.insert(i);
        }
    }
    let promoted = if fault.must_promote() {
        let first = match &second {
            None => orch.wait_completed(1, Duration::from_secs(30))?,
            Some(other) => {
                let t = Instant::now();
                loop {
                    if let Ok(c) = orch.wait_completed(1, Duration::from_millis(5)) {
                        break c;
                    }
                    if let Ok(c) = other.wait_completed(1, Duration::from_millis(5)) {
                        break c;
                    }
                    if t.elapsed() > Duration::from_secs(30) {
                        return Err("no failover within 30 s".into());
                    }
                }
            }
        };
        Some(first)
    } else {
        // Give the orchestrator time to (wrongly) act: several detection budgets.
        std::thread::sleep(Duration::from_secs(3));
        orch.completed_first()
    };
    if promoted.is_some() {
        writers.wait_progress(300, Duration::from_secs(30))?;
    }
    match fault {
        ChaosFault::Stop => topo.thaw(0)?,
        ChaosFault::Blackhole => topo.heal(0)?,
        ChaosFault::PartitionFromOrchestrator => topo.heal_from_host(0)?,
        _ => {}
    }
    // The old primary (if alive) may now misbehave; the orchestrator fences it on sight.
    std::thread::sleep(Duration::from_millis(1000));
    let direct = direct.stop();
    let acked = writers.acked.lock().unwrap().clone();
    let _ = writers.finish();
    let promotions = orch.completed_count() + second.as_ref().map_or(0, Running::completed_count);
    drop(second);
    drop(orch);
    outcome(
        &topo, fault, at, promoted, &dead, &direct, &acked, promotions,
    )
}

/// Kill -9 of the primary under two orchestrator processes; the leader is itself killed with
/// SIGKILL as soon as the bench reads its k-th promotion step event (k = 1 to 4, at random):
/// the kill lands at that step or a later one (the leader runs on meanwhile), up to just
/// after the candidate was made writable. The other must finish the promotion, or adopt it
/// and repoint the rest. Fault → writable is fault → the first event saying the new primary
/// was made writable (by either) or adopted.
fn orchestrator_killed_mid_promotion() -> Result<ChaosTrial, String> {
    let fault = ChaosFault::OrchestratorKilledMidPromotion;
    let mut topo = Topology::primary_replicas_in_lab(2)?;
    let config = topo.dir().join("orchestrator.toml");
    std::fs::write(&config, config_text(&topo)).map_err(|e| format!("write config: {e}"))?;
    let steps = 1 + (rand::random::<u64>() % 4) as usize;
    let first = Process::start(&config, Some(KillMidPromotion { steps }))?;
    first.wait_status(
        "it leads a healthy topology",
        Duration::from_secs(30),
        |s| s["leader"] == true && s["analysis"] == "healthy",
    )?;
    let second = Process::start(&config, None)?;
    second.wait_status(
        "the second orchestrator sees a healthy primary",
        Duration::from_secs(30),
        |s| s["analysis"] == "healthy",
    )?;
    let (writers, direct, at, dead) =
        kill_primary_until_exit(&mut topo, &first, "the leader was not killed mid-promotion")?;
    if first.killed_at().is_none() {
        return Err(format!("the leader exited by itself: {:?}", first.exited()));
    }
    // The other finishes the promotion (or, when the kill came after the candidate was made
    // writable, adopts it and repoints the rest).
    second.wait_leading(
        "the other orchestrator leads a healthy topology",
        &format!("after the leader was killed at step {steps}"),
    )?;
    let reached: Vec<String> = first
        .lines()
        .iter()
        .skip_while(|(_, kind, _)| kind != "failover_started")
        .filter(|(_, kind, _)| kind == "step_completed")
        .map(|(_, _, reason)| reason.clone())
        .collect();
    eprintln!(
        "chaos: the leader was killed on reading its step {steps}; its steps seen: {reached:?}"
    );
    two_process_outcome(&topo, fault, at, &dead, first, second, writers, direct)
}

/// Kill -9 of the primary under one orchestrator process that keeps its state in a
/// `state_dir`; the orchestrator dies in the middle of its promotion — at its `after_detach`
/// or `after_writable` failpoint (it exits there as if killed), or SIGKILLed on reading its
/// k-th promotion step event (k = 1 to 4; a promotion's step events come out once the
/// candidate is writable, so these kills land while it repoints, enables semi-sync or
/// announces) — and a new process with the same configuration is started at once. It must
/// finish the promotion from the saved state. Fault → writable is fault → the first event
/// (of either process) saying the new primary was made writable or adopted.
fn orchestrator_restarted_mid_promotion() -> Result<ChaosTrial, String> {
    let fault = ChaosFault::OrchestratorRestartedMidPromotion;
    let mut topo = Topology::primary_replicas_in_lab(2)?;
    let state_dir = topo.dir().join("orchestrator-state");
    std::fs::create_dir_all(&state_dir).map_err(|e| format!("create state_dir: {e}"))?;
    let config = topo.dir().join("orchestrator.toml");
    let text = format!(
        "[orchestrator]\nstate_dir = \"{}\"\n\n{}",
        state_dir.display(),
        config_text(&topo)
    );
    std::fs::write(&config, text).map_err(|e| format!("write config: {e}"))?;
    let (kill, failpoint, how) = match rand::random::<u64>() % 3 {
        0 => (
            None,
            Some("after_detach"),
            "after detaching the candidate".to_string(),
        ),
        1 => (
            None,
            Some("after_writable"),
            "after making it writable".to_string(),
        ),
        _ => {
            let steps = 1 + (rand::random::<u64>() % 4) as usize;
            (
                Some(KillMidPromotion { steps }),
                None,
                format!("SIGKILL at step event {steps}"),
            )
        }
    };
    let first = Process::start_with(&config, kill, failpoint)?;
    first.wait_status(
        "it leads a healthy topology",
        Duration::from_secs(30),
        |s| s["leader"] == true && s["analysis"] == "healthy",
    )?;
    let (writers, direct, at, dead) = kill_primary_until_exit(
        &mut topo,
        &first,
        &format!("the orchestrator did not die mid-promotion ({how})"),
    )?;
    let second = Process::start(&config, None)?;
    second.wait_leading(
        "the restarted orchestrator leads a healthy topology",
        &format!("after the orchestrator died ({how})"),
    )?;
    eprintln!(
        "chaos: the orchestrator died {how}; the restarted one said: {:?}",
        second
            .lines()
            .iter()
            .find(|(_, kind, reason)| kind == "step_completed" && reason.starts_with("resuming"))
            .map(|(_, _, reason)| reason.clone())
    );
    two_process_outcome(&topo, fault, at, &dead, first, second, writers, direct)
}

/// Library writers and a client pinned to the primary, then kill -9 of the primary at a
/// random moment, then wait (up to 30 s) for the orchestrator process `first` to die in its
/// promotion; `failure` names the error when it does not. Returns the writers, the pinned
/// client, the fault's instant and the dead nodes.
fn kill_primary_until_exit(
    topo: &mut Topology,
    first: &Process,
    failure: &str,
) -> Result<(Writers, DirectWriter, Instant, HashSet<usize>), String> {
    let writers = Writers::start(topo, THREADS)?;
    writers.wait_progress(300, Duration::from_secs(30))?;
    let direct = DirectWriter::start(topo, 0, Duration::from_secs(1), 1u64 << 40, |id| {
        format!("INSERT INTO bench_o VALUES ({id})")
    });
    std::thread::sleep(Duration::from_millis(100 + rand::random::<u64>() % 200));
    topo.kill9(0)?;
    let at = Instant::now();
    let t = Instant::now();
    while first.exited().is_none() {
        if t.elapsed() > Duration::from_secs(30) {
            return Err(format!(
                "{failure} within 30 s (events: {:?})",
                first.lines()
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok((writers, direct, at, [0].into()))
}

/// The end of a trial with two orchestrator processes, the first of which died in its
/// promotion and the second finished or adopted it: fault → the first event of either saying
/// the new primary was made writable or adopted, the writers' progress after it, then the
/// data checks ([`outcome`]); one promotion counts whether completed by either or made by the
/// first and adopted by the second.
#[allow(clippy::too_many_arguments)]
fn two_process_outcome(
    topo: &Topology,
    fault: ChaosFault,
    at: Instant,
    dead: &HashSet<usize>,
    first: Process,
    second: Process,
    writers: Writers,
    direct: DirectWriter,
) -> Result<ChaosTrial, String> {
    let writable_at = [
        first.first("step_completed", "make writable"),
        second.first("step_completed", "make writable"),
        second.first("step_completed", "adopted"),
    ]
    .into_iter()
    .flatten()
    .min()
    .ok_or("no event says the new primary was made writable or adopted")?;
    writers.wait_progress(300, Duration::from_secs(30))?;
    std::thread::sleep(Duration::from_millis(1000));
    let direct = direct.stop();
    let acked = writers.acked.lock().unwrap().clone();
    let _ = writers.finish();
    let adopted = usize::from(
        first.count("failover_completed") == 0
            && second.first("step_completed", "adopted").is_some(),
    );
    let promotions =
        first.count("failover_completed") + second.count("failover_completed") + adopted;
    drop(second);
    drop(first);
    outcome(
        topo,
        fault,
        at,
        Some((writable_at, String::new())),
        dead,
        &direct,
        &acked,
        promotions,
    )
}

/// The data checks at the end of a trial: the writable nodes among those alive, the
/// acknowledged writes (library `acked` and pinned client `direct`) missing there, the pinned
/// client's writes acknowledged after `promoted` that the new primary lacks.
#[allow(clippy::too_many_arguments)]
fn outcome(
    topo: &Topology,
    fault: ChaosFault,
    at: Instant,
    promoted: Option<(Instant, String)>,
    dead: &HashSet<usize>,
    direct: &[drfailover_testkit::DirectAck],
    acked: &[u64],
    promotions: usize,
) -> Result<ChaosTrial, String> {
    let writable: Vec<usize> = writable_nodes(topo)
        .into_iter()
        .filter(|i| !dead.contains(i))
        .collect();
    let (lost, old_acks) = match writable.first() {
        Some(&w) => {
            let mut all = acked.to_vec();
            all.extend(direct.iter().map(|(id, _, _)| *id));
            let lost = lost_on(topo, w, &all)?;
            let old_acks = match promoted {
                Some((writable_at, _)) if w != 0 => {
                    let late: Vec<u64> = direct
                        .iter()
                        .filter(|(_, _, ok)| *ok >= writable_at)
                        .map(|(id, _, _)| *id)
                        .collect();
                    lost_on(topo, w, &late)?
                }
                _ => 0,
            };
            (lost, old_acks)
        }
        None => (0, 0),
    };
    Ok(ChaosTrial {
        writable: promoted.map(|(t, _)| t.saturating_duration_since(at)),
        lost,
        old_acks,
        false_failover: fault == ChaosFault::PartitionFromOrchestrator && promotions > 0,
        writable_nodes: writable.len(),
        promotions,
    })
}
