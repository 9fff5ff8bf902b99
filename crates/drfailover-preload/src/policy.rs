//! What to do with one managed handle around one statement: a pure state machine.
//!
//! Inputs are typed facts (the handle's [`HandleState`], the monitor's [`WriterNow`], the
//! statement's [`StatementKind`], the errno a call returned); outputs are decisions
//! ([`BeforeSend`], [`AfterFailure`]). No I/O, no clock: the FFI edge (`interpose.rs`) performs
//! what is decided. Costs: a few comparisons, no allocation.
//!
//! The rules:
//! - never sent → sent once to the writer, outside a transaction only;
//! - outcome unknown → the usual 2013, never re-sent, the handle moved before its next call;
//! - a transaction is never split: once its connection is lost, every statement fails until
//!   the program ends the transaction (`COMMIT` fails too, `ROLLBACK` succeeds);
//! - a handle connected under an older generation is moved to the writer before its next
//!   statement, between transactions only (inside one, the old node refuses or fails it);
//! - statements in flight on a node that stopped answering (declared down, or a writer left
//!   while suspect) are aborted at once ([`in_flight_abort`]); a writer left because it turned
//!   read-only while answering keeps them (they are refused and retried, or finish).

/// What the handle knows about its own connection. One per `MYSQL *`; used by the one thread
/// that owns the handle at a time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HandleState {
    /// The monitor's generation when this connection was made.
    pub generation: u64,
    /// The connection is known dead (a call failed with a lost connection): move before the
    /// next statement.
    pub lost: bool,
    /// The connection was lost inside a transaction the program has not ended yet.
    pub broken_transaction: bool,
    /// The node refused a statement as read-only: it is no longer the writer, whatever the
    /// monitor says yet, so the next move waits for a new generation.
    pub refused_read_only: bool,
}

/// The monitor's view of the writer at one instant (one atomic load).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriterNow {
    /// Whether a writer is known.
    pub known: bool,
    /// The generation (bumped on every writer change).
    pub generation: u64,
}

/// The statement about to run, as far as transactions are concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatementKind {
    /// Anything else (reads, writes, DDL, `SET`, …).
    Plain,
    /// `BEGIN`, `START TRANSACTION`, `XA START`: opens a transaction (and implicitly commits one).
    Begin,
    /// `COMMIT` or `mysql_commit`, and `mysql_autocommit(1)`: ends a transaction keeping it.
    Commit,
    /// `ROLLBACK` or `mysql_rollback` (not `ROLLBACK TO SAVEPOINT`): ends a transaction undoing it.
    Rollback,
    /// A call that changes only the session and is safe on any connection (`mysql_select_db`,
    /// `mysql_set_character_set`, `mysql_ping`).
    Session,
}

/// The decision before a statement is handed to the client library.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BeforeSend {
    /// Send it on the handle's connection as it is (the fast path).
    Send,
    /// Reconnect the handle to the current writer (waiting for one), then send.
    MoveThenSend,
    /// Do not send: fail with 2013, the transaction it belongs to was lost.
    FailLostTransaction,
    /// Do not send: the program ended a lost transaction. `succeed`: report success
    /// (`ROLLBACK`: the transaction is indeed rolled back) or 2013 (`COMMIT`: it was not
    /// committed). The handle leaves the lost-transaction state and moves before its next call.
    EndLostTransaction {
        /// Whether to report success.
        succeed: bool,
    },
}

/// The decision after the client library returned an error for a statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterFailure {
    /// Return the error as it is (an SQL error, or a retry already spent).
    Return,
    /// The statement certainly did not reach a server and no transaction is open: move the
    /// handle to the writer and send it once more.
    MoveAndRetry,
    /// The statement was refused as read-only outside a transaction (it did not run): wait for
    /// the writer to change, move there and send it once more.
    AwaitWriterAndRetry,
    /// The connection was lost: return 2013, mark the handle lost (moved before its next call),
    /// and when `transaction` the transaction lost (every statement fails until it ends).
    Lost {
        /// Whether a transaction was lost with it.
        transaction: bool,
    },
    /// A read-only node refused a statement inside a transaction: the transaction can never
    /// commit there and must not continue elsewhere. Like `Lost { transaction }`, and the
    /// handle's next move waits for a new writer.
    Refused {
        /// Whether the transaction is lost (not when the refused statement ended it).
        transaction: bool,
    },
}

/// How the client library's error number bears on failover.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureClass {
    /// The command was never written (the connection was already gone): 2006.
    NeverSent,
    /// The connection died after the command was written, or during the exchange: 2013,
    /// 2055, 2026-class read failures. Outcome unknown.
    LostAfterSend,
    /// Refused by a read-only server (1290, 1792): certainly not executed.
    ReadOnly,
    /// Any other error: the server answered.
    Other,
}

/// `CR_SERVER_GONE_ERROR`.
pub const CR_SERVER_GONE_ERROR: u32 = 2006;
/// `CR_SERVER_LOST`: the error this library reports for every lost connection.
pub const CR_SERVER_LOST: u32 = 2013;
/// `CR_SERVER_LOST_EXTENDED`.
pub const CR_SERVER_LOST_EXTENDED: u32 = 2055;
/// `CR_CONN_HOST_ERROR`: reported when no writer appeared in time for a connect.
pub const CR_CONN_HOST_ERROR: u32 = 2003;
/// `ER_OPTION_PREVENTS_STATEMENT` (`--read-only`).
pub const ER_OPTION_PREVENTS_STATEMENT: u32 = 1290;
/// `ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION`.
pub const ER_READ_ONLY_TRANSACTION: u32 = 1792;

/// Sort a client-library errno. Pure.
pub fn classify(errno: u32) -> FailureClass {
    match errno {
        CR_SERVER_GONE_ERROR => FailureClass::NeverSent,
        CR_SERVER_LOST | CR_SERVER_LOST_EXTENDED => FailureClass::LostAfterSend,
        ER_OPTION_PREVENTS_STATEMENT | ER_READ_ONLY_TRANSACTION => FailureClass::ReadOnly,
        _ => FailureClass::Other,
    }
}

/// Decide what to do before sending a statement on a handle in `state`, when the server last
/// reported `in_transaction` (`SERVER_STATUS_IN_TRANS`) and the monitor says `writer`. `kind`
/// is asked only while a lost transaction waits for its end (classifying costs a look at the
/// text). The fast path (nothing changed) is three comparisons.
pub fn before_send(
    state: &HandleState,
    in_transaction: bool,
    writer: WriterNow,
    kind: impl FnOnce() -> StatementKind,
) -> BeforeSend {
    if state.broken_transaction {
        return match kind() {
            StatementKind::Rollback => BeforeSend::EndLostTransaction { succeed: true },
            StatementKind::Commit | StatementKind::Begin => {
                BeforeSend::EndLostTransaction { succeed: false }
            }
            StatementKind::Plain | StatementKind::Session => BeforeSend::FailLostTransaction,
        };
    }
    if state.lost {
        return BeforeSend::MoveThenSend;
    }
    if writer.generation != state.generation && !in_transaction {
        return BeforeSend::MoveThenSend;
    }
    BeforeSend::Send
}

/// Whether a statement on a handle in `state` goes out as it is while its connection's
/// writer and generation are the current ones (then [`before_send`] says [`BeforeSend::Send`]
/// whatever the statement and the transaction): the statement path checks this once per
/// state change and compares one word per statement.
pub fn sends_as_is_on_its_writer(state: &HandleState) -> bool {
    !state.lost && !state.broken_transaction
}

/// Whether `mysql_ping` must move the handle before (or instead of) pinging: its connection is
/// known lost, or it belongs to an older generation and no transaction is open. A lost
/// transaction does not stop a ping: the handle is reconnected and its statements keep
/// failing until the program ends the transaction.
pub fn ping_moves(state: &HandleState, in_transaction: bool, writer: WriterNow) -> bool {
    state.lost || (writer.generation != state.generation && !in_transaction)
}

/// Which retries a statement already had: at most one of each kind. Both follow a failure
/// that certainly did not execute it, so it is executed at most once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retried {
    /// Moved to the writer and sent again after it certainly did not reach a server.
    pub moved: bool,
    /// Sent again on the new writer after a read-only refusal.
    pub awaited: bool,
}

/// Decide what to do after the statement failed with `errno`. `in_transaction`: the server's
/// last word before the statement; `retried`: the retries it already had.
pub fn after_failure(
    errno: u32,
    kind: StatementKind,
    in_transaction: bool,
    retried: Retried,
) -> AfterFailure {
    // A statement that opens a transaction counts as inside it: whether it ran or not, the
    // program believes a transaction began, and its next statements must not autocommit
    // on another connection.
    let transactional = in_transaction || kind == StatementKind::Begin;
    match classify(errno) {
        FailureClass::NeverSent if !transactional && !retried.moved => AfterFailure::MoveAndRetry,
        FailureClass::NeverSent | FailureClass::LostAfterSend => AfterFailure::Lost {
            // Ending statements end the transaction even when their outcome is unknown.
            transaction: transactional
                && !matches!(kind, StatementKind::Commit | StatementKind::Rollback),
        },
        FailureClass::ReadOnly
            if !in_transaction && !retried.awaited && kind != StatementKind::Begin =>
        {
            AfterFailure::AwaitWriterAndRetry
        }
        // Refused by a fenced node inside a transaction: that transaction can never commit
        // there, and must not continue elsewhere.
        FailureClass::ReadOnly if in_transaction => AfterFailure::Refused {
            transaction: !matches!(kind, StatementKind::Commit | StatementKind::Rollback),
        },
        FailureClass::ReadOnly | FailureClass::Other => AfterFailure::Return,
    }
}

/// What the monitor reported, as far as statements in flight are concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MonitorNews {
    /// Node `endpoint` was declared down (unreachable, frozen, crashed).
    NodeDown {
        /// The node's index into the configured endpoints.
        endpoint: usize,
    },
    /// The monitor left writer `old` (a failover started or completed).
    WriterLeft {
        /// The old writer's index into the configured endpoints.
        old: usize,
        /// Whether `old` still answers its probes (health up: it turned read-only, a
        /// switchover or a fence); not when it is suspect or down (frozen, unreachable).
        answering: bool,
    },
    /// Anything else.
    Other,
}

/// Which node's statements in flight to abort (their sockets shut down: each fails with
/// 2013, outcome unknown, never re-sent, and its handle moves before its next call). A node
/// that stopped answering takes its statements down at once, whether it was declared down or
/// only left as a suspect writer for a promoted node: waiting for it to be declared down would
/// hold every thread blocked on it for the detection time. A writer left while it still
/// answers keeps them: they are refused as read-only (and retried on the new writer) or finish.
/// Pure; a match.
pub fn in_flight_abort(news: MonitorNews) -> Option<usize> {
    match news {
        MonitorNews::NodeDown { endpoint } => Some(endpoint),
        MonitorNews::WriterLeft {
            old,
            answering: false,
        } => Some(old),
        MonitorNews::WriterLeft {
            answering: true, ..
        }
        | MonitorNews::Other => None,
    }
}

/// The handle's state after a [`AfterFailure::Lost`] decision.
pub fn mark_lost(state: &mut HandleState, transaction: bool) {
    state.lost = true;
    state.broken_transaction |= transaction;
}

/// The handle's state after an [`AfterFailure::Refused`] decision.
pub fn mark_refused(state: &mut HandleState, transaction: bool) {
    mark_lost(state, transaction);
    state.refused_read_only = true;
}

/// The handle's state after an [`BeforeSend::EndLostTransaction`] decision.
pub fn end_lost_transaction(state: &mut HandleState) {
    state.broken_transaction = false;
    state.lost = true;
}

/// The handle's state after it was reconnected to the writer of `generation`.
pub fn moved(state: &mut HandleState, generation: u64) {
    state.generation = generation;
    state.lost = false;
    state.refused_read_only = false;
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: WriterNow = WriterNow {
        known: true,
        generation: 3,
    };

    fn fresh() -> HandleState {
        HandleState {
            generation: 3,
            ..HandleState::default()
        }
    }

    #[test]
    fn nothing_changed_sends_as_is() {
        for kind in [
            StatementKind::Plain,
            StatementKind::Begin,
            StatementKind::Commit,
            StatementKind::Session,
        ] {
            assert_eq!(before_send(&fresh(), false, NOW, || kind), BeforeSend::Send);
            assert_eq!(before_send(&fresh(), true, NOW, || kind), BeforeSend::Send);
        }
    }

    #[test]
    fn a_state_that_sends_as_is_on_its_writer_is_sent_as_is_by_the_full_policy() {
        for lost in [false, true] {
            for broken_transaction in [false, true] {
                for refused_read_only in [false, true] {
                    let state = HandleState {
                        lost,
                        broken_transaction,
                        refused_read_only,
                        ..fresh()
                    };
                    let kinds = [
                        StatementKind::Plain,
                        StatementKind::Begin,
                        StatementKind::Commit,
                        StatementKind::Rollback,
                        StatementKind::Session,
                    ];
                    let always = kinds.iter().all(|&kind| {
                        [false, true].iter().all(|&in_tx| {
                            before_send(&state, in_tx, NOW, || kind) == BeforeSend::Send
                        })
                    });
                    assert_eq!(sends_as_is_on_its_writer(&state), always, "{state:?}");
                }
            }
        }
    }

    #[test]
    fn a_new_generation_moves_the_handle_between_transactions_only() {
        let old = HandleState {
            generation: 2,
            ..fresh()
        };
        assert_eq!(
            before_send(&old, false, NOW, || StatementKind::Plain),
            BeforeSend::MoveThenSend
        );
        assert_eq!(
            before_send(&old, true, NOW, || StatementKind::Plain),
            BeforeSend::Send,
            "inside a transaction the statement stays on its connection (a fenced node refuses it)"
        );
    }

    #[test]
    fn a_lost_handle_moves_before_its_next_statement() {
        let mut state = fresh();
        mark_lost(&mut state, false);
        assert_eq!(
            before_send(&state, false, NOW, || StatementKind::Plain),
            BeforeSend::MoveThenSend
        );
        moved(&mut state, 4);
        assert_eq!(
            before_send(
                &state,
                false,
                WriterNow {
                    known: true,
                    generation: 4
                },
                || StatementKind::Plain
            ),
            BeforeSend::Send
        );
    }

    #[test]
    fn ping_moves_a_lost_or_outdated_handle_even_with_a_lost_transaction() {
        let mut state = fresh();
        assert!(!ping_moves(&state, false, NOW));
        mark_lost(&mut state, true);
        assert!(ping_moves(&state, true, NOW));
        let old = HandleState {
            generation: 2,
            ..fresh()
        };
        assert!(ping_moves(&old, false, NOW));
        assert!(!ping_moves(&old, true, NOW));
    }

    #[test]
    fn never_sent_is_retried_once_outside_a_transaction() {
        assert_eq!(
            after_failure(
                CR_SERVER_GONE_ERROR,
                StatementKind::Plain,
                false,
                Retried::default()
            ),
            AfterFailure::MoveAndRetry
        );
        assert_eq!(
            after_failure(
                CR_SERVER_GONE_ERROR,
                StatementKind::Plain,
                false,
                Retried {
                    moved: true,
                    awaited: false
                }
            ),
            AfterFailure::Lost { transaction: false },
            "the one retry is spent"
        );
    }

    #[test]
    fn never_sent_inside_a_transaction_loses_the_transaction() {
        assert_eq!(
            after_failure(
                CR_SERVER_GONE_ERROR,
                StatementKind::Plain,
                true,
                Retried::default()
            ),
            AfterFailure::Lost { transaction: true }
        );
        assert_eq!(
            after_failure(
                CR_SERVER_GONE_ERROR,
                StatementKind::Begin,
                false,
                Retried::default()
            ),
            AfterFailure::Lost { transaction: true },
            "a BEGIN that did not arrive still opened a transaction in the program's mind"
        );
    }

    #[test]
    fn outcome_unknown_is_never_retried() {
        for errno in [CR_SERVER_LOST, CR_SERVER_LOST_EXTENDED] {
            for retried in [false, true] {
                let retried = Retried {
                    moved: retried,
                    awaited: retried,
                };
                assert_eq!(
                    after_failure(errno, StatementKind::Plain, false, retried),
                    AfterFailure::Lost { transaction: false }
                );
            }
            assert_eq!(
                after_failure(errno, StatementKind::Plain, true, Retried::default()),
                AfterFailure::Lost { transaction: true }
            );
        }
    }

    #[test]
    fn a_lost_commit_or_rollback_ends_the_transaction() {
        for kind in [StatementKind::Commit, StatementKind::Rollback] {
            assert_eq!(
                after_failure(CR_SERVER_LOST, kind, true, Retried::default()),
                AfterFailure::Lost { transaction: false }
            );
        }
    }

    #[test]
    fn a_lost_transaction_fails_every_statement_until_it_ends() {
        let mut state = fresh();
        mark_lost(&mut state, true);
        for in_tx in [false, true] {
            assert_eq!(
                before_send(&state, in_tx, NOW, || StatementKind::Plain),
                BeforeSend::FailLostTransaction
            );
            assert_eq!(
                before_send(&state, in_tx, NOW, || StatementKind::Session),
                BeforeSend::FailLostTransaction
            );
        }
        assert_eq!(
            before_send(&state, false, NOW, || StatementKind::Commit),
            BeforeSend::EndLostTransaction { succeed: false }
        );
        assert_eq!(
            before_send(&state, false, NOW, || StatementKind::Begin),
            BeforeSend::EndLostTransaction { succeed: false },
            "BEGIN would commit the lost transaction implicitly"
        );
        assert_eq!(
            before_send(&state, false, NOW, || StatementKind::Rollback),
            BeforeSend::EndLostTransaction { succeed: true }
        );
        end_lost_transaction(&mut state);
        assert_eq!(
            before_send(&state, false, NOW, || StatementKind::Plain),
            BeforeSend::MoveThenSend
        );
    }

    #[test]
    fn a_moved_statement_refused_as_read_only_still_waits_for_the_writer_once() {
        // Moved after it did not arrive, then refused by a node turning read-only (a
        // switchover under way): neither ran it, so it waits for the new writer once more.
        let moved = Retried {
            moved: true,
            awaited: false,
        };
        assert_eq!(
            after_failure(
                ER_OPTION_PREVENTS_STATEMENT,
                StatementKind::Plain,
                false,
                moved
            ),
            AfterFailure::AwaitWriterAndRetry
        );
        let both = Retried {
            moved: true,
            awaited: true,
        };
        assert_eq!(
            after_failure(
                ER_OPTION_PREVENTS_STATEMENT,
                StatementKind::Plain,
                false,
                both
            ),
            AfterFailure::Return
        );
    }

    #[test]
    fn read_only_refusals_wait_for_the_writer_outside_a_transaction() {
        for errno in [ER_OPTION_PREVENTS_STATEMENT, ER_READ_ONLY_TRANSACTION] {
            assert_eq!(
                after_failure(errno, StatementKind::Plain, false, Retried::default()),
                AfterFailure::AwaitWriterAndRetry
            );
            assert_eq!(
                after_failure(
                    errno,
                    StatementKind::Plain,
                    false,
                    Retried {
                        moved: false,
                        awaited: true
                    }
                ),
                AfterFailure::Return
            );
            assert_eq!(
                after_failure(errno, StatementKind::Plain, true, Retried::default()),
                AfterFailure::Refused { transaction: true }
            );
            assert_eq!(
                after_failure(errno, StatementKind::Commit, true, Retried::default()),
                AfterFailure::Refused { transaction: false }
            );
            let mut state = fresh();
            mark_refused(&mut state, true);
            assert!(state.lost && state.broken_transaction && state.refused_read_only);
            moved(&mut state, 4);
            assert!(!state.lost && !state.refused_read_only && state.broken_transaction);
        }
    }

    #[test]
    fn server_errors_are_returned_as_they_are() {
        for errno in [1062, 1064, 1146, 1213, 1205] {
            assert_eq!(
                after_failure(errno, StatementKind::Plain, false, Retried::default()),
                AfterFailure::Return
            );
            assert_eq!(
                after_failure(errno, StatementKind::Plain, true, Retried::default()),
                AfterFailure::Return
            );
        }
    }

    #[test]
    fn a_node_declared_down_loses_its_statements_in_flight() {
        assert_eq!(
            in_flight_abort(MonitorNews::NodeDown { endpoint: 1 }),
            Some(1)
        );
    }

    #[test]
    fn a_writer_left_while_not_answering_loses_its_statements_in_flight_at_once() {
        assert_eq!(
            in_flight_abort(MonitorNews::WriterLeft {
                old: 0,
                answering: false
            }),
            Some(0),
            "a frozen writer left for a promoted node: its blocked statements end now"
        );
    }

    #[test]
    fn a_writer_left_while_answering_keeps_its_statements_in_flight() {
        assert_eq!(
            in_flight_abort(MonitorNews::WriterLeft {
                old: 0,
                answering: true
            }),
            None,
            "a switchover: the old writer refuses them as read-only, so they are retried"
        );
        assert_eq!(in_flight_abort(MonitorNews::Other), None);
    }
}
