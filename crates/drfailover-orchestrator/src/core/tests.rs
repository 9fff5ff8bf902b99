//! The decision rules without servers: rounds are built by hand, time is injected.

use super::*;
use drfailover_probe::OutcomeClass;

use crate::facts::{IoState, ReplicaFacts};
use crate::gtid::GtidState;

fn nodes() -> Vec<NodeSpec> {
    (1..=3)
        .map(|i| NodeSpec {
            name: format!("db{i}"),
            host: format!("10.0.0.{i}"),
            port: 3306,
            priority: if i == 3 { 10 } else { 0 },
            never_promote: false,
        })
        .collect()
}

fn primary(seq: u64, semi_sync: bool) -> NodeProbe {
    NodeProbe::Reached(Box::new(NodeFacts {
        server_id: 1,
        log_bin: true,
        gtid_strict_mode: true,
        binlog_pos: GtidPos::parse(&format!("0-1-{seq}")).unwrap(),
        binlog_state: GtidState::parse(&format!("0-1-{seq}")).unwrap(),
        current_pos: GtidPos::parse(&format!("0-1-{seq}")).unwrap(),
        semi_sync_master_enabled: semi_sync,
        semi_sync_master_active: semi_sync,
        semi_sync_master_clients: 2,
        semi_sync_after_sync: true,
        semi_sync_master_timeout_ms: HOLD_TIMEOUT_MS,
        ..NodeFacts::default()
    }))
}

fn replica(id: u32, received: u64, io: IoState, heartbeats: u64) -> NodeProbe {
    let pos = GtidPos::parse(&format!("0-1-{received}")).unwrap();
    NodeProbe::Reached(Box::new(NodeFacts {
        server_id: id,
        read_only: true,
        log_bin: true,
        gtid_strict_mode: true,
        binlog_pos: pos.clone(),
        binlog_state: GtidState::parse(&format!("0-1-{received}")).unwrap(),
        slave_pos: pos.clone(),
        current_pos: pos.clone(),
        semi_sync_slave_enabled: true,
        replication: vec![ReplicaFacts {
            connection_name: String::new(),
            master_host: "10.0.0.1".into(),
            master_port: 3306,
            io,
            sql_running: true,
            using_gtid: true,
            received: pos,
            heartbeats,
            heartbeat_period: Duration::from_millis(200),
            read_position: ("bin.000001".into(), received * 100),
            seconds_behind: Some(0),
            last_sql_errno: 0,
            last_error: String::new(),
        }],
        ..NodeFacts::default()
    }))
}

fn down(class: OutcomeClass) -> NodeProbe {
    NodeProbe::Failed {
        class,
        detail: "test".into(),
    }
}

fn round(at: Instant, nodes: Vec<NodeProbe>) -> Round {
    Round {
        at,
        nodes,
        leader: true,
        locks_held: 3,
    }
}

fn healthy(core: &mut Core, t0: Instant, semi_sync: bool) {
    let d = core.step(&round(
        t0,
        vec![
            primary(100, semi_sync),
            replica(2, 100, IoState::Running, 1),
            replica(3, 100, IoState::Running, 1),
        ],
    ));
    assert!(d.actions.is_empty());
    assert_eq!(core.analysis().code(), "healthy");
}

/// `fall` (3) rounds 20 ms apart with the same probes, from `t0 + 60 ms`; the last decision,
/// with every notice given on the way.
fn crash(core: &mut Core, t0: Instant, nodes: Vec<NodeProbe>) -> Decision {
    let mut notices = Vec::new();
    let mut last = Decision::default();
    for i in 0..3u64 {
        last = core.step(&round(
            t0 + Duration::from_millis(60 + 20 * i),
            nodes.clone(),
        ));
        notices.append(&mut last.notices);
    }
    last.notices = notices;
    last
}

/// Whether the plan's risks include one `pick` matches.
fn has_risk(risks: Option<&Risks>, pick: impl Fn(&Risk) -> bool) -> bool {
    risks.is_some_and(|r| r.0.iter().any(pick))
}

/// Whether the latest round was blocked by the zero-loss gate with a risk `pick` matches.
fn blocked_by_risk(core: &Core, pick: impl Fn(&Risk) -> bool) -> bool {
    match core.blocked() {
        Some(Blocked::DataLossRisk(risks)) => has_risk(Some(risks), pick),
        _ => false,
    }
}

fn failover(d: &Decision) -> Option<&FailoverPlan> {
    d.actions.iter().find_map(|a| match a {
        Action::Failover(p) => Some(p),
        _ => None,
    })
}

#[test]
fn a_crash_the_replicas_confirm_promotes_the_replica_that_received_most() {
    let mut core = Core::new(nodes(), Policy::default());
    let t0 = Instant::now();
    healthy(&mut core, t0, true);
    // db3 has the higher priority but received less: db2 is chosen.
    let d = crash(
        &mut core,
        t0,
        vec![
            down(OutcomeClass::Refused),
            replica(2, 120, IoState::Connecting, 1),
            replica(3, 110, IoState::Connecting, 1),
        ],
    );
    let plan = failover(&d).expect("failover");
    assert_eq!(plan.candidate, 1);
    assert_eq!(plan.repoint, vec![2]);
    assert!(!plan.old_may_be_alive, "refused: the process is gone");
    assert!(plan.risk.is_none());
}

#[test]
fn equally_advanced_replicas_are_chosen_by_priority() {
    let mut core = Core::new(nodes(), Policy::default());
    let t0 = Instant::now();
    healthy(&mut core, t0, true);
    let d = crash(
        &mut core,
        t0,
        vec![
            down(OutcomeClass::Refused),
            replica(2, 120, IoState::Connecting, 1),
            replica(3, 120, IoState::Connecting, 1),
        ],
    );
    assert_eq!(failover(&d).expect("failover").candidate, 2);
}

#[test]
fn replicas_still_receiving_mean_only_the_orchestrator_lost_the_primary() {
    let mut core = Core::new(nodes(), Policy::default());
    let t0 = Instant::now();
    healthy(&mut core, t0, true);
    let mut notices = Vec::new();
    for i in 1..=10u64 {
        // Heartbeats keep arriving on both replicas.
        let d = core.step(&round(
            t0 + Duration::from_millis(100 * i),
            vec![
                down(OutcomeClass::TimedOut),
                replica(2, 100, IoState::Running, 1 + i),
                replica(3, 100, IoState::Running, 1 + i),
            ],
        ));
        assert!(d.actions.is_empty(), "no action while replicas receive");
        notices.extend(d.notices);
    }
    assert_eq!(core.analysis().code(), "primary_unreachable");
    let unreachable: Vec<_> = notices
        .iter()
        .filter(|n| n.kind == EventKind::PrimaryUnreachable)
        .collect();
    assert_eq!(unreachable.len(), 1, "said once per episode: {notices:?}");
}

#[test]
fn a_silent_primary_is_dead_once_replicas_received_nothing_for_two_heartbeats() {
    let mut core = Core::new(nodes(), Policy::default());
    let t0 = Instant::now();
    healthy(&mut core, t0, true);
    let silent = |ms: u64| {
        round(
            t0 + Duration::from_millis(ms),
            vec![
                down(OutcomeClass::TimedOut),
                replica(2, 100, IoState::Running, 1),
                replica(3, 100, IoState::Running, 1),
            ],
        )
    };
    assert!(failover(&core.step(&silent(100))).is_none());
    assert!(failover(&core.step(&silent(200))).is_none());
    // Third failed probe (fall = 3) and 400 ms (= 2 heartbeat periods) without progress.
    let d = core.step(&silent(400));
    let plan = failover(&d).expect("failover");
    assert!(plan.old_may_be_alive, "timed out: it may be frozen");
}

#[test]
fn semi_sync_inactive_blocks_automatic_promotion_unless_loss_is_allowed() {
    for allow in [false, true] {
        let policy = Policy {
            allow_data_loss: allow,
            ..Policy::default()
        };
        let mut core = Core::new(nodes(), policy);
        let t0 = Instant::now();
        healthy(&mut core, t0, false);
        let d = crash(
            &mut core,
            t0,
            vec![
                down(OutcomeClass::Refused),
                replica(2, 100, IoState::Connecting, 1),
                replica(3, 100, IoState::Connecting, 1),
            ],
        );
        if allow {
            let plan = failover(&d).expect("allowed");
            assert!(has_risk(plan.risk.as_ref(), |r| matches!(
                r,
                Risk::SemiSyncInactive {
                    enabled: false,
                    active: false,
                    ..
                }
            )));
        } else {
            assert!(failover(&d).is_none());
            assert!(d
                .notices
                .iter()
                .any(|n| n.kind == EventKind::FailoverBlocked));
            assert!(
                blocked_by_risk(&core, |r| matches!(r, Risk::SemiSyncInactive { .. })),
                "{:?}",
                core.blocked()
            );
        }
    }
}

#[test]
fn an_unreachable_semi_sync_replica_blocks_promotion() {
    let mut core = Core::new(nodes(), Policy::default());
    let t0 = Instant::now();
    healthy(&mut core, t0, true);
    let d = crash(
        &mut core,
        t0,
        vec![
            down(OutcomeClass::Refused),
            replica(2, 100, IoState::Connecting, 1),
            down(OutcomeClass::TimedOut),
        ],
    );
    assert!(failover(&d).is_none());
    assert!(d
        .notices
        .iter()
        .any(|n| n.kind == EventKind::FailoverBlocked));
    assert!(
        blocked_by_risk(
            &core,
            |r| matches!(r, Risk::AckerUnreachable(n) if n.id == 2)
        ),
        "{:?}",
        core.blocked()
    );
}

#[test]
fn errant_transactions_and_never_promote_exclude_a_candidate() {
    let mut specs = nodes();
    specs[2].never_promote = true;
    let mut core = Core::new(specs, Policy::default());
    let t0 = Instant::now();
    healthy(&mut core, t0, true);
    let mut errant = replica(2, 120, IoState::Connecting, 1);
    if let NodeProbe::Reached(f) = &mut errant {
        f.binlog_state = GtidState::parse("0-1-120,0-2-5").unwrap();
    }
    let d = crash(
        &mut core,
        t0,
        vec![
            down(OutcomeClass::Refused),
            errant,
            replica(3, 120, IoState::Connecting, 1),
        ],
    );
    assert!(failover(&d).is_none());
    assert!(d
        .notices
        .iter()
        .any(|n| n.kind == EventKind::FailoverBlocked));
    let Some(Blocked::NoCandidate(excluded)) = core.blocked() else {
        panic!("expected no candidate, got {:?}", core.blocked());
    };
    let whys: Vec<(NodeId, &Excluded)> = excluded.iter().map(|e| (e.node.id, &e.why)).collect();
    assert!(
        matches!(whys.as_slice(), [(1, Excluded::Errant(ranges)), (2, Excluded::NeverPromote)]
            if ranges.len() == 1 && ranges[0].server == 2 && ranges[0].first == 1 && ranges[0].last == 5),
        "{whys:?}"
    );
}

#[test]
fn anti_flapping_blocks_a_second_failover_until_acknowledged() {
    let mut core = Core::new(nodes(), Policy::default());
    let t0 = Instant::now();
    healthy(&mut core, t0, true);
    let t1 = t0 + Duration::from_millis(100);
    let d = crash(
        &mut core,
        t1 - Duration::from_millis(100),
        vec![
            down(OutcomeClass::Refused),
            replica(2, 120, IoState::Connecting, 1),
            replica(3, 120, IoState::Connecting, 1),
        ],
    );
    let plan = failover(&d).unwrap().clone();
    core.failover_finished(&plan, Ok(()), t1);
    assert_eq!(core.primary(), Some(plan.candidate));
    let second = |at: Instant| {
        let mut nodes = vec![
            down(OutcomeClass::Refused),
            replica(2, 120, IoState::Connecting, 1),
            replica(3, 120, IoState::Connecting, 1),
        ];
        nodes[plan.candidate] = down(OutcomeClass::Refused);
        if let NodeProbe::Reached(f) = &mut nodes[1] {
            f.replication[0].master_host = "10.0.0.3".into();
        }
        round(at, nodes)
    };
    // The new primary (db3) dies a minute later: blocked.
    let mut notices = Vec::new();
    for i in 0..3u64 {
        let d = core.step(&second(t1 + Duration::from_millis(60_000 + 20 * i)));
        assert!(failover(&d).is_none());
        notices.extend(d.notices);
    }
    assert!(
        notices.iter().any(|n| n.kind == EventKind::FailoverBlocked),
        "{notices:?}"
    );
    assert!(
        matches!(core.blocked(), Some(Blocked::AntiFlapping { .. })),
        "{:?}",
        core.blocked()
    );
    core.acknowledge();
    let d = core.step(&second(t1 + Duration::from_secs(61)));
    // No longer anti-flapping; the zero-loss gate now speaks (db3 was never seen as a
    // primary with semi-sync active).
    assert!(failover(&d).is_none());
    assert!(
        blocked_by_risk(&core, |r| matches!(r, Risk::SemiSyncInactive { .. })),
        "{:?}",
        core.blocked()
    );
}

#[test]
fn a_former_primary_is_fenced_on_sight_and_rejoins_when_its_history_is_a_prefix() {
    let mut core = Core::new(nodes(), Policy::default());
    let t0 = Instant::now();
    healthy(&mut core, t0, true);
    let t1 = t0 + Duration::from_millis(100);
    let d = crash(
        &mut core,
        t1 - Duration::from_millis(100),
        vec![
            down(OutcomeClass::Refused),
            replica(2, 120, IoState::Connecting, 1),
            replica(3, 120, IoState::Connecting, 1),
        ],
    );
    let plan = failover(&d).unwrap().clone();
    core.failover_finished(&plan, Ok(()), t1);
    let new = plan.candidate;
    let mut new_primary = primary(120, true);
    if let NodeProbe::Reached(f) = &mut new_primary {
        f.server_id = new as u32 + 1;
    }
    let mut other = replica(2, 120, IoState::Running, 5);
    if let NodeProbe::Reached(f) = &mut other {
        f.replication[0].master_host = format!("10.0.0.{}", new + 1);
    }
    // The old primary comes back writable: fenced before anything else.
    let mut back = round(
        t1 + Duration::from_secs(1),
        vec![primary(120, true), other.clone(), other.clone()],
    );
    back.nodes[new] = new_primary.clone();
    let d = core.step(&back);
    assert!(
        matches!(d.actions.first(), Some(Action::Fence { node: 0, .. })),
        "{:?}",
        d.actions
    );
    core.fenced(0);
    // Fenced (read-only), nothing extra: rejoin.
    let mut fenced = primary(120, true);
    if let NodeProbe::Reached(f) = &mut fenced {
        f.read_only = true;
    }
    back.nodes[0] = fenced.clone();
    let d = core.step(&back);
    assert!(
        d.actions.contains(&Action::Rejoin { node: 0, to: new }),
        "{:?}",
        d.actions
    );
    // With transactions the new primary lacks: stays fenced, and says which.
    if let NodeProbe::Reached(f) = &mut fenced {
        f.binlog_state = GtidState::parse("0-1-125").unwrap();
    }
    back.nodes[0] = fenced;
    let d = core.step(&back);
    assert!(!d.actions.iter().any(|a| matches!(a, Action::Rejoin { .. })));
    assert!(d.notices.iter().any(|n| n.kind == EventKind::Fenced));
    assert_eq!(
        core.fencing().1.get(&0).map(String::as_str),
        Some("0-1-121..125")
    );
}

#[test]
fn only_the_lock_holder_acts() {
    let mut core = Core::new(nodes(), Policy::default());
    let t0 = Instant::now();
    healthy(&mut core, t0, true);
    let mut notices = Vec::new();
    for i in 0..3u64 {
        let mut r = round(
            t0 + Duration::from_millis(100 + 20 * i),
            vec![
                down(OutcomeClass::Refused),
                replica(2, 120, IoState::Connecting, 1),
                replica(3, 120, IoState::Connecting, 1),
            ],
        );
        r.leader = false;
        let d = core.step(&r);
        assert!(d.actions.is_empty());
        notices.extend(d.notices);
    }
    assert!(notices.iter().any(|n| n.kind == EventKind::FailoverBlocked));
    assert_eq!(core.blocked(), Some(&Blocked::NotLeader));
}

#[test]
fn a_second_writer_beside_a_healthy_primary_is_split_brain_and_fenced() {
    let mut core = Core::new(nodes(), Policy::default());
    let t0 = Instant::now();
    healthy(&mut core, t0, true);
    let writable_replica = with(replica(3, 100, IoState::Running, 2), |f| {
        f.read_only = false
    });
    let d = core.step(&round(
        t0 + Duration::from_millis(100),
        vec![
            primary(100, true),
            replica(2, 100, IoState::Running, 2),
            writable_replica,
        ],
    ));
    assert_eq!(core.primary(), Some(0), "the healthy primary is kept");
    assert!(d
        .notices
        .iter()
        .any(|n| n.kind == EventKind::SplitBrain && n.node == Some(2)));
    assert!(
        matches!(d.actions.as_slice(), [Action::Fence { node: 2, .. }]),
        "{:?}",
        d.actions
    );
}

#[test]
fn a_primary_promoted_elsewhere_is_adopted_announced_and_its_predecessor_fenced_on_sight() {
    let mut core = Core::new(nodes(), Policy::default());
    let t0 = Instant::now();
    healthy(&mut core, t0, true);
    // Someone made db2 writable while db1 is unreachable.
    let promoted = with(replica(2, 100, IoState::Connecting, 1), |f| {
        f.read_only = false;
        f.replication.clear();
    });
    let d = core.step(&round(
        t0 + Duration::from_millis(100),
        vec![
            down(OutcomeClass::TimedOut),
            promoted,
            replica(3, 100, IoState::Connecting, 1),
        ],
    ));
    assert_eq!(core.primary(), Some(1));
    assert_eq!(core.generation(), 1);
    assert!(
        d.actions.contains(&Action::Announce { old: 0, new: 1 }),
        "{:?}",
        d.actions
    );
    assert!(d
        .notices
        .iter()
        .any(|n| n.kind == EventKind::StepCompleted && n.writers == Some((Some(0), Some(1)))));
    assert!(failover(&d).is_none(), "adopted, not promoted again");
    assert_eq!(
        core.fencing().0,
        vec![0],
        "the old primary is fenced on sight"
    );
}

/// `probe` with its facts changed by `change`.
fn with(probe: NodeProbe, change: impl FnOnce(&mut NodeFacts)) -> NodeProbe {
    match probe {
        NodeProbe::Reached(mut f) => {
            change(&mut f);
            NodeProbe::Reached(f)
        }
        failed => failed,
    }
}

/// The problems `validate` finds in a first round of `nodes` (empty when it accepts it).
fn problems(nodes: Vec<NodeProbe>) -> Vec<Problem> {
    let core = Core::new(self::nodes(), Policy::default());
    match core.validate(&round(Instant::now(), nodes)) {
        Ok(primary) => {
            assert_eq!(primary, 0, "the writable node is the primary");
            Vec::new()
        }
        Err(problems) => {
            assert!(!problems.is_empty(), "refused without a reason");
            problems
        }
    }
}

fn sound() -> Vec<NodeProbe> {
    vec![
        primary(100, true),
        replica(2, 100, IoState::Running, 1),
        replica(3, 100, IoState::Running, 1),
    ]
}

#[test]
fn validate_accepts_a_gtid_primary_with_its_replicas() {
    assert!(problems(sound()).is_empty());
}

#[test]
fn validate_refuses_two_writers_and_no_writer_naming_the_nodes() {
    let mut two = sound();
    two[2] = with(two[2].clone(), |f| f.read_only = false);
    let found = problems(two);
    assert!(
        found.iter().any(|p| matches!(p, Problem::SeveralWriters(w)
            if w.len() == 2 && w[0].starts_with("db1") && w[1].starts_with("db3"))),
        "{found:?}"
    );

    let mut none = sound();
    none[0] = with(none[0].clone(), |f| f.read_only = true);
    let found = problems(none);
    assert!(found.contains(&Problem::NoWriter), "{found:?}");
}

#[test]
fn validate_refuses_unreachable_nodes_and_what_it_cannot_manage() {
    type Breaker = Box<dyn Fn(&mut Vec<NodeProbe>)>;
    type Expected = Box<dyn Fn(&Problem) -> bool>;
    let on = |label: &str, name: &str| label.starts_with(name);
    let cases: Vec<(Breaker, Expected)> = vec![
        (
            Box::new(|n| n[1] = down(OutcomeClass::Refused)),
            Box::new(
                move |p| matches!(p, Problem::Unreachable { node, class: OutcomeClass::Refused, .. } if on(node, "db2")),
            ),
        ),
        (
            Box::new(|n| n[1] = with(n[1].clone(), |f| f.gtid_strict_mode = false)),
            Box::new(move |p| matches!(p, Problem::GtidStrictModeOff(node) if on(node, "db2"))),
        ),
        (
            Box::new(|n| n[0] = with(n[0].clone(), |f| f.log_bin = false)),
            Box::new(move |p| matches!(p, Problem::NoBinlog(node) if on(node, "db1"))),
        ),
        (
            Box::new(|n| n[2] = with(n[2].clone(), |f| f.replication[0].using_gtid = false)),
            Box::new(move |p| matches!(p, Problem::NoGtid(node) if on(node, "db3"))),
        ),
        (
            Box::new(|n| {
                n[2] = with(n[2].clone(), |f| {
                    f.replication[0].master_host = "192.0.2.9".into()
                })
            }),
            Box::new(move |p| {
                matches!(p, Problem::StrangerMaster { node, master }
                    if on(node, "db3") && master == "192.0.2.9:3306")
            }),
        ),
        (
            Box::new(|n| {
                n[1] = with(n[1].clone(), |f| {
                    let mut second = f.replication[0].clone();
                    second.connection_name = "other".into();
                    f.replication.push(second);
                })
            }),
            Box::new(
                move |p| matches!(p, Problem::MultiSource { node, connections: 2 } if on(node, "db2")),
            ),
        ),
        (
            Box::new(|n| {
                n[2] = with(n[2].clone(), |f| {
                    f.replication[0].master_host = "10.0.0.2".into()
                })
            }),
            Box::new(move |p| matches!(p, Problem::ChainedReplica { node, .. } if on(node, "db3"))),
        ),
        (
            Box::new(|n| n[1] = with(n[1].clone(), |f| f.replication.clear())),
            Box::new(move |p| matches!(p, Problem::Detached { node, .. } if on(node, "db2"))),
        ),
    ];
    for (i, (break_it, expected)) in cases.into_iter().enumerate() {
        let mut nodes = sound();
        break_it(&mut nodes);
        let found = problems(nodes);
        assert!(
            found.iter().any(expected),
            "case {i}: expected problem not found in {found:?}"
        );
    }
}

#[test]
fn refusals_read_as_sentences_naming_the_nodes() {
    let primary = NodeRef {
        id: 0,
        name: "db1".into(),
    };
    let text = Blocked::NoCandidate(vec![Exclusion {
        node: NodeRef {
            id: 1,
            name: "db2".into(),
        },
        why: Excluded::Lag {
            behind_secs: 400,
            limit: Duration::from_secs(300),
        },
    }])
    .describe(&primary, &"facts");
    assert_eq!(
        text,
        "dead primary db1: no candidate to promote (db2: 400 s behind (limit 300 s))"
    );
}

/// The primary with its semi-sync state replaced: `clients` replicas acknowledging, the
/// server's timeout `timeout_ms`, semi-sync master `enabled`.
fn primary_sync(clients: u32, timeout_ms: u64, enabled: bool) -> NodeProbe {
    let NodeProbe::Reached(mut f) = primary(100, true) else {
        unreachable!()
    };
    f.semi_sync_master_clients = clients;
    f.semi_sync_master_active = enabled && clients > 0;
    f.semi_sync_master_enabled = enabled;
    f.semi_sync_master_timeout_ms = timeout_ms;
    NodeProbe::Reached(f)
}

fn sync_round(at: Instant, p: NodeProbe, leader: bool) -> Round {
    Round {
        at,
        nodes: vec![
            p,
            replica(2, 100, IoState::Running, 1),
            replica(3, 100, IoState::Running, 1),
        ],
        leader,
        locks_held: if leader { 3 } else { 0 },
    }
}

#[test]
fn the_servers_own_semi_sync_timeout_is_held_and_a_change_by_someone_else_is_an_event() {
    let mut core = Core::new(nodes(), Policy::default());
    let t0 = Instant::now();
    // Not the leader: nothing is changed.
    let d = core.step(&sync_round(t0, primary_sync(2, 3000, true), false));
    assert!(d.actions.is_empty(), "{:?}", d.actions);
    let d = core.step(&sync_round(t0, primary_sync(2, 3000, true), true));
    assert_eq!(d.actions, vec![Action::HoldCommits { node: 0 }]);
    assert_eq!(core.sync_guard().original_timeout_ms(), Some(3000));
    // Not asked twice while it is being done.
    let d = core.step(&sync_round(t0, primary_sync(2, 3000, true), true));
    assert!(d.actions.is_empty(), "{:?}", d.actions);
    let d = core.step(&sync_round(
        t0,
        primary_sync(2, HOLD_TIMEOUT_MS, true),
        true,
    ));
    assert!(d.actions.is_empty() && d.notices.is_empty());
    // Someone sets it to 1 s: an event, and it is held again.
    let d = core.step(&sync_round(t0, primary_sync(2, 1000, true), true));
    assert_eq!(d.actions, vec![Action::HoldCommits { node: 0 }]);
    assert!(
        d.notices
            .iter()
            .any(|n| n.kind == EventKind::StepFailed && n.reason.contains("changed to 1000 ms")),
        "{:?}",
        d.notices
    );
    assert_eq!(core.sync_guard().original_timeout_ms(), Some(1000));
}

#[test]
fn only_the_orchestrator_falls_back_to_async_after_sync_fallback_and_resumes_when_a_replica_can_acknowledge(
) {
    let policy = Policy {
        sync_fallback: Some(Duration::from_secs(3)),
        ..Policy::default()
    };
    let mut core = Core::new(nodes(), policy);
    let t0 = Instant::now();
    let d = core.step(&sync_round(
        t0,
        primary_sync(0, HOLD_TIMEOUT_MS, true),
        true,
    ));
    assert!(d.actions.is_empty());
    let d = core.step(&sync_round(
        t0 + Duration::from_millis(2900),
        primary_sync(0, HOLD_TIMEOUT_MS, true),
        true,
    ));
    assert!(d.actions.is_empty(), "too early: {:?}", d.actions);
    // Acknowledgements came back meanwhile: the clock starts again.
    core.step(&sync_round(
        t0 + Duration::from_millis(2950),
        primary_sync(1, HOLD_TIMEOUT_MS, true),
        true,
    ));
    let d = core.step(&sync_round(
        t0 + Duration::from_millis(3100),
        primary_sync(0, HOLD_TIMEOUT_MS, true),
        true,
    ));
    assert!(d.actions.is_empty(), "{:?}", d.actions);
    let d = core.step(&sync_round(
        t0 + Duration::from_millis(6200),
        primary_sync(0, HOLD_TIMEOUT_MS, true),
        true,
    ));
    let suspend = d.actions.first().cloned().expect("a fallback");
    assert!(
        matches!(&suspend, Action::SuspendSemiSync { node: 0, reason } if reason.contains("sync_fallback_ms = 3000")),
        "{suspend:?}"
    );
    core.sync_action_done(&suspend, true);
    assert!(core.sync_guard().suspended(0));
    // Asynchronous now, replicas receiving with semi-sync enabled: resume.
    let d = core.step(&sync_round(
        t0 + Duration::from_millis(6300),
        primary_sync(0, HOLD_TIMEOUT_MS, false),
        true,
    ));
    assert_eq!(d.actions, vec![Action::ResumeSemiSync { node: 0 }]);
    core.sync_action_done(&d.actions[0], true);
    assert!(!core.sync_guard().suspended(0));
    let d = core.step(&sync_round(
        t0 + Duration::from_millis(6400),
        primary_sync(2, HOLD_TIMEOUT_MS, true),
        true,
    ));
    assert!(d.actions.is_empty());
}

#[test]
fn a_primary_not_seen_healthy_or_sync_fallback_never_keeps_commits_waiting() {
    // Never: a notice once, no fallback however long.
    let policy = Policy {
        sync_fallback: None,
        ..Policy::default()
    };
    let mut core = Core::new(nodes(), policy);
    let t0 = Instant::now();
    let mut notices = Vec::new();
    for s in 0..10 {
        let d = core.step(&sync_round(
            t0 + Duration::from_secs(s * 60),
            primary_sync(0, HOLD_TIMEOUT_MS, true),
            true,
        ));
        assert!(d.actions.is_empty(), "{:?}", d.actions);
        notices.extend(d.notices);
    }
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(notices[0].reason.contains("never"), "{}", notices[0].reason);

    // A primary the orchestrator cannot reach is never switched to async.
    let mut core = Core::new(nodes(), Policy::default());
    healthy(&mut core, t0, true);
    for s in 1..30 {
        let d = core.step(&round(
            t0 + Duration::from_secs(s),
            vec![
                down(OutcomeClass::TimedOut),
                replica(2, 100, IoState::Running, s),
                replica(3, 100, IoState::Running, s),
            ],
        ));
        assert!(
            !d.actions
                .iter()
                .any(|a| matches!(a, Action::SuspendSemiSync { .. })),
            "{:?}",
            d.actions
        );
    }
}

#[test]
fn a_refused_primary_every_replica_lost_fails_over_in_one_round_a_silent_one_waits_for_fall() {
    let t0 = Instant::now();
    let lost = |class| {
        vec![
            down(class),
            replica(2, 100, IoState::Connecting, 1),
            replica(3, 100, IoState::Connecting, 1),
        ]
    };
    // Refused (the process is gone) and both IO threads reconnecting: dead at once.
    let mut core = Core::new(nodes(), Policy::default());
    healthy(&mut core, t0, true);
    let d = core.step(&round(
        t0 + Duration::from_millis(50),
        lost(OutcomeClass::Refused),
    ));
    let plan = failover(&d).expect("failover in the first round");
    assert!(plan.facts.primary.crash_confirmed);
    assert!(
        plan.facts.to_string().contains("crash confirmed"),
        "{}",
        plan.facts
    );

    // One replica still receiving: no crash confirmed (the orchestrator's view alone).
    let mut core = Core::new(nodes(), Policy::default());
    healthy(&mut core, t0, true);
    let mut mixed = lost(OutcomeClass::Refused);
    mixed[2] = replica(3, 100, IoState::Running, 2);
    let d = core.step(&round(t0 + Duration::from_millis(50), mixed));
    assert!(failover(&d).is_none());
    assert_eq!(core.analysis().code(), "primary_suspect");

    // Timed out (frozen or cut off): a second failed probe first, even with the replicas
    // agreeing.
    let mut core = Core::new(nodes(), Policy::default());
    healthy(&mut core, t0, true);
    let d = core.step(&round(
        t0 + Duration::from_millis(50),
        lost(OutcomeClass::TimedOut),
    ));
    assert!(failover(&d).is_none());
    let d = core.step(&round(
        t0 + Duration::from_millis(70),
        lost(OutcomeClass::TimedOut),
    ));
    let plan = failover(&d).expect("failover at the second failed probe");
    assert!(plan.facts.primary.silence_confirmed);
    assert!(!plan.facts.primary.crash_confirmed);
}

/// A replica as read during a round: its progress first read at `first` ms, last at `last`.
fn read_between(probe: NodeProbe, t0: Instant, first: u64, last: u64) -> NodeProbe {
    with(probe, |f| {
        f.progress_seen_at = Some(t0 + Duration::from_millis(first));
        f.replication_read_at = Some(t0 + Duration::from_millis(last));
    })
}

#[test]
fn a_silent_primary_fails_over_at_its_second_failed_probe_once_the_replicas_reads_span_two_heartbeats(
) {
    let t0 = Instant::now();
    // Round 1 (ends at 300 ms): the primary times out; both replicas received one more
    // heartbeat, first read at 100 ms, nothing new up to 300 ms: 200 ms of silence.
    let first = |core: &mut Core| {
        let d = core.step(&round(
            t0 + Duration::from_millis(300),
            vec![
                down(OutcomeClass::TimedOut),
                read_between(replica(2, 100, IoState::Running, 2), t0, 100, 300),
                read_between(replica(3, 100, IoState::Running, 2), t0, 100, 300),
            ],
        ));
        assert!(
            failover(&d).is_none(),
            "one failed probe, 200 ms of silence"
        );
        assert_eq!(core.analysis().code(), "primary_suspect");
    };
    let second = |core: &mut Core, last_read: [u64; 2], heartbeats: [u64; 2]| {
        core.step(&round(
            t0 + Duration::from_millis(520),
            vec![
                down(OutcomeClass::TimedOut),
                read_between(
                    replica(2, 100, IoState::Running, heartbeats[0]),
                    t0,
                    if heartbeats[0] == 2 {
                        100
                    } else {
                        last_read[0]
                    },
                    last_read[0],
                ),
                read_between(
                    replica(3, 100, IoState::Running, heartbeats[1]),
                    t0,
                    if heartbeats[1] == 2 {
                        100
                    } else {
                        last_read[1]
                    },
                    last_read[1],
                ),
            ],
        ))
    };

    // Round 2: reads up to 510 ms still show nothing new: 410 ms >= 2 x 200 ms heartbeats.
    let mut core = Core::new(nodes(), Policy::default());
    healthy(&mut core, t0, true);
    first(&mut core);
    let d = second(&mut core, [510, 510], [2, 2]);
    let plan = failover(&d).expect("silence confirmed at the second failed probe");
    assert!(plan.facts.primary.silence_confirmed);
    assert!(plan.old_may_be_alive, "timed out: it may be frozen");
    assert!(
        plan.facts.to_string().contains("silence confirmed"),
        "{}",
        plan.facts
    );

    // The silence counts up to the replicas' last read, not to the round's end.
    let mut core = Core::new(nodes(), Policy::default());
    healthy(&mut core, t0, true);
    first(&mut core);
    let d = second(&mut core, [450, 450], [2, 2]);
    assert!(failover(&d).is_none(), "350 ms read < 2 heartbeats");

    // A primary slow but alive: one replica still receives heartbeats. Never a failover,
    // whatever the number of failed probes below `fall`.
    let mut core = Core::new(nodes(), Policy::default());
    healthy(&mut core, t0, true);
    first(&mut core);
    let d = second(&mut core, [510, 510], [2, 3]);
    assert!(failover(&d).is_none(), "a replica still receives");
    assert!(!matches!(core.analysis(), Analysis::DeadPrimary { .. }));
}

// Starting over an interrupted failover (`resume.rs`).

const NOW_MS: u64 = 1_800_000_000_000;

/// The state a predecessor saved while db1 was healthy with `sound()` replicas, `age` ago.
fn saved(age: Duration) -> SavedState {
    let mut core = Core::new(nodes(), Policy::default());
    healthy(&mut core, Instant::now(), true);
    let primary = core.saved_primary(NOW_MS - age.as_millis() as u64);
    assert!(primary.is_some(), "a healthy primary's facts are saved");
    SavedState {
        primary,
        ..SavedState::default()
    }
}

/// A core started over `nodes` (the primary db1 down) with `loaded`; the resumption.
fn resumed(nodes: Vec<NodeProbe>, loaded: Loaded) -> (Core, Result<Resumption, Vec<Problem>>) {
    let mut core = Core::new(self::nodes(), Policy::default());
    let first = round(Instant::now(), nodes);
    let problems = core
        .validate(&first)
        .expect_err("the start-up check refuses");
    let r = core.resume(&first, problems, loaded, NOW_MS, Duration::from_secs(60));
    (core, r)
}

/// The replicas after a predecessor cut them off from the dead primary.
fn cut_off() -> Vec<NodeProbe> {
    vec![
        down(OutcomeClass::Refused),
        replica(2, 100, IoState::Stopped, 1),
        replica(3, 100, IoState::Stopped, 1),
    ]
}

fn detached(probe: NodeProbe) -> NodeProbe {
    with(probe, |f| f.replication.clear())
}

#[test]
fn a_primary_dead_at_start_with_fresh_saved_facts_is_failed_over() {
    let (mut core, r) = resumed(cut_off(), Loaded::Found(saved(Duration::from_secs(5))));
    let r = r.expect("resumed");
    assert_eq!(r.primary.id, 0);
    assert_eq!(r.facts, Ok(Duration::from_secs(5)));
    assert_eq!(core.analysis().code(), "no_primary");
    let d = crash(&mut core, Instant::now(), cut_off());
    let plan = failover(&d).expect("failover");
    assert_eq!(plan.old_primary, 0);
    assert_eq!(plan.risk, None);
}

#[test]
fn without_proof_a_dead_primary_at_start_is_managed_but_never_promoted() {
    let stale = Loaded::Found(saved(Duration::from_secs(600)));
    let mut other = saved(Duration::from_secs(1));
    other.primary.as_mut().unwrap().name = "db2".into();
    let mut moved = saved(Duration::from_secs(1));
    moved.primary.as_mut().unwrap().address = "10.0.0.9:3306".into();
    let future = Loaded::Found(SavedState {
        primary: saved(Duration::ZERO).primary.map(|p| SavedPrimary {
            seen_at_unix_ms: NOW_MS + 3_600_000,
            ..p
        }),
        ..SavedState::default()
    });
    let cases = [
        (Loaded::NotConfigured, "no state_dir is configured"),
        (Loaded::Missing, "no state file"),
        (
            Loaded::Unreadable("x: syntax error".into()),
            "unusable: x: syntax error",
        ),
        (Loaded::Found(SavedState::default()), "records no primary"),
        (stale, "600 s old (state_max_age_s = 60)"),
        (future, "3600 s in the future"),
        (
            Loaded::Found(moved),
            "db1 (10.0.0.9:3306) is not the node the replicas follow",
        ),
    ];
    for (loaded, says) in cases {
        let (mut core, r) = resumed(cut_off(), loaded.clone());
        let r = r.unwrap_or_else(|p| panic!("{loaded:?}: refused {p:?}"));
        assert!(r.facts.is_err(), "{loaded:?}");
        assert!(r.to_string().contains("no automatic promotion"), "{r}");
        let d = crash(&mut core, Instant::now(), cut_off());
        assert!(failover(&d).is_none(), "{loaded:?}");
        assert!(
            blocked_by_risk(&core, |r| matches!(r, Risk::FactsDistrusted { .. })),
            "{loaded:?}: {:?}",
            core.blocked()
        );
        let text = d
            .notices
            .iter()
            .find(|n| n.kind == EventKind::FailoverBlocked)
            .map(|n| n.reason.clone())
            .unwrap_or_default();
        assert!(text.contains(says), "{loaded:?}: {text}");
    }
    // A state naming another node than the one the replicas follow: the replicas win, the
    // state is no proof.
    let (_, r) = resumed(cut_off(), Loaded::Found(other));
    assert!(matches!(
        r.expect("resumed").facts,
        Err(Distrust::OtherPrimary { .. })
    ));
}

#[test]
fn saved_facts_that_no_replica_bears_out_are_no_proof() {
    let mut state = saved(Duration::from_secs(2));
    state.primary.as_mut().unwrap().replicated = GtidPos::parse("0-1-5000").unwrap();
    let (mut core, r) = resumed(cut_off(), Loaded::Found(state));
    assert!(r.expect("resumed").facts.is_ok());
    let d = crash(&mut core, Instant::now(), cut_off());
    assert!(failover(&d).is_none());
    assert!(blocked_by_risk(&core, |r| matches!(
        r,
        Risk::SavedPositionMissing { .. }
    )));
    let text = core.blocked().unwrap().describe(&core.node_ref(0), &"");
    assert!(
        text.contains("had received 0-1-5000") && text.contains("contradicts"),
        "{text}"
    );
}

#[test]
fn a_node_never_seen_at_start_may_have_acknowledged() {
    let nodes = vec![
        down(OutcomeClass::Refused),
        replica(2, 100, IoState::Stopped, 1),
        down(OutcomeClass::TimedOut),
    ];
    let (mut core, r) = resumed(nodes.clone(), Loaded::Found(saved(Duration::from_secs(1))));
    r.expect("resumed");
    crash(&mut core, Instant::now(), nodes);
    assert!(blocked_by_risk(&core, |r| matches!(
        r,
        Risk::AckerUnreachable(n) if n.id == 2
    )));
}

#[test]
fn an_interrupted_promotion_is_finished_with_the_same_candidate() {
    // Stopped after detaching db2 (equal to db3, which has the higher priority).
    let mut state = saved(Duration::from_secs(1));
    state.promotion = Some(SavedPromotion {
        old_primary: "db1".into(),
        candidate: "db2".into(),
        candidate_received: GtidPos::parse("0-1-100").unwrap(),
        step: PromotionStep::Detached,
        started_at_unix_ms: NOW_MS - 2_000,
    });
    let world = vec![
        down(OutcomeClass::Refused),
        detached(replica(2, 100, IoState::Stopped, 1)),
        replica(3, 100, IoState::Stopped, 1),
    ];
    let (mut core, r) = resumed(world.clone(), Loaded::Found(state.clone()));
    let r = r.expect("resumed");
    assert_eq!(r.detached.len(), 1);
    assert!(
        r.to_string().contains("stopped after step `detached`"),
        "{r}"
    );
    let d = crash(&mut core, Instant::now(), world);
    let plan = failover(&d).expect("failover");
    assert_eq!(plan.candidate, 1, "the predecessor's candidate");
    assert_eq!(plan.repoint, vec![2]);

    // Stopped after making db2 writable: adopted, and the promotion finished.
    let world = vec![
        down(OutcomeClass::Refused),
        with(detached(replica(2, 100, IoState::Stopped, 1)), |f| {
            f.read_only = false
        }),
        replica(3, 100, IoState::Stopped, 1),
    ];
    let (mut core, r) = resumed(world.clone(), Loaded::Found(state.clone()));
    assert_eq!(r.expect("resumed").writable.map(|w| w.id), Some(1));
    let d = core.step(&round(Instant::now(), world));
    assert_eq!(core.primary(), Some(1));
    assert!(
        d.actions.iter().any(|a| matches!(
            a,
            Action::FinishPromotion { old: 0, new: 1, repoint } if repoint == &vec![2]
        )),
        "{:?}",
        d.actions
    );

    // Stopped after repointing db3 too: the old primary is still the one to take over.
    let world = vec![
        down(OutcomeClass::Refused),
        with(detached(replica(2, 100, IoState::Stopped, 1)), |f| {
            f.read_only = false
        }),
        with(replica(3, 100, IoState::Running, 1), |f| {
            f.replication[0].master_host = "10.0.0.2".into()
        }),
    ];
    let (mut core, r) = resumed(world.clone(), Loaded::Found(state));
    assert_eq!(r.expect("resumed").primary.id, 0);
    let d = core.step(&round(Instant::now(), world));
    assert_eq!(core.primary(), Some(1));
    assert!(
        d.actions
            .iter()
            .any(|a| matches!(a, Action::FinishPromotion { old: 0, new: 1, .. })),
        "{:?}",
        d.actions
    );
}

#[test]
fn only_what_an_interrupted_failover_leaves_is_resumed() {
    // The primary answers: nothing to resume (the problems stand).
    let (_, r) = resumed(
        vec![
            with(primary(100, true), |f| f.read_only = true),
            replica(2, 100, IoState::Running, 1),
            replica(3, 100, IoState::Running, 1),
        ],
        Loaded::Found(saved(Duration::from_secs(1))),
    );
    assert!(r.is_err());
    // Something else is wrong too.
    let mut bad = cut_off();
    bad[1] = with(bad[1].clone(), |f| f.gtid_strict_mode = false);
    let (_, r) = resumed(bad, Loaded::Found(saved(Duration::from_secs(1))));
    assert!(matches!(r, Err(p) if p.iter().any(|p| matches!(p, Problem::GtidStrictModeOff(_)))));
    // The primary refuses this orchestrator's credentials (alive), or nobody answers.
    let mut denied = cut_off();
    denied[0] = down(OutcomeClass::AuthFailed);
    let (_, r) = resumed(denied, Loaded::Found(saved(Duration::from_secs(1))));
    assert!(r.is_err());
    let (_, r) = resumed(
        vec![down(OutcomeClass::Refused); 3],
        Loaded::Found(saved(Duration::from_secs(1))),
    );
    assert!(r.is_err());
    // The replicas follow different nodes.
    let mut split = cut_off();
    split[2] = with(split[2].clone(), |f| {
        f.replication[0].master_host = "10.0.0.2".into()
    });
    let (_, r) = resumed(split, Loaded::Found(saved(Duration::from_secs(1))));
    assert!(r.is_err());
}

#[test]
fn old_primaries_the_state_names_may_be_down_at_start_and_are_fenced_on_sight() {
    // db2 is the primary since a failover; db1, the old primary, is still down.
    let world = || {
        vec![
            down(OutcomeClass::Refused),
            with(detached(replica(2, 100, IoState::Stopped, 1)), |f| {
                f.read_only = false
            }),
            with(replica(3, 100, IoState::Running, 1), |f| {
                f.replication[0].master_host = "10.0.0.2".into()
            }),
        ]
    };
    let start = |state: SavedState| {
        let mut core = Core::new(nodes(), Policy::default());
        let first = round(Instant::now(), world());
        let problems = core.validate(&first).expect_err("db1 is unreachable");
        let r = core.resume_former(&first, problems, &Loaded::Found(state));
        (core, r)
    };
    let (mut core, r) = start(SavedState {
        former_primaries: vec!["db1".into()],
        ..SavedState::default()
    });
    assert_eq!(
        r.expect("started").iter().map(|n| n.id).collect::<Vec<_>>(),
        vec![0]
    );
    core.step(&round(Instant::now(), world()));
    assert_eq!(core.analysis().code(), "healthy");
    assert_eq!(core.primary(), Some(1));
    assert_eq!(core.former_primaries(), vec!["db1".to_string()]);
    // Back and writable: fenced on sight.
    let mut back = world();
    back[0] = primary(100, true);
    let d = core.step(&round(Instant::now(), back));
    assert!(
        d.actions
            .iter()
            .any(|a| matches!(a, Action::Fence { node: 0, .. })),
        "{:?}",
        d.actions
    );
    // A node the state does not name stays a start-up refusal.
    let (_, r) = start(SavedState::default());
    assert!(r.is_err());
}
