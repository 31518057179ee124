//! The health policy: from a session, what was observed and `now`, the decisions to take.
//! Pure, so "15 minutes of silence" is a value in a test, not a wait.

use crate::loop_status::LoopStatus;
use crate::record::SessionRecord;
use crate::state::{apply, Event, SessionState};
use crate::time::Timestamp;
use std::time::Duration;

/// Tunables of the health policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthPolicy {
    /// Stuck threshold for records that carry none (default 15 minutes).
    pub stuck_after: Duration,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        HealthPolicy {
            stuck_after: Duration::from_secs(15 * 60),
        }
    }
}

/// What the multiplexer shows of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MuxObservation {
    /// The session exists and its program runs.
    Alive {
        /// Last output in the pane, if known.
        activity: Option<Timestamp>,
    },
    /// The session exists but its program exited (the pane is kept dead for us to read).
    Exited {
        /// The program's exit status, if known.
        status: Option<i32>,
    },
    /// No such session.
    Gone,
}

/// Everything seen of one session at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// The multiplexer's view.
    pub mux: MuxObservation,
    /// The loop's `status.json`, if readable.
    pub loop_status: Option<LoopStatus>,
    /// When `status.json` last changed, if known.
    pub status_changed: Option<Timestamp>,
}

/// One thing the orchestrator should do to a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Record the loop's progress.
    Advance(Event),
    /// Mark the session stuck (publish `session:stuck` once).
    MarkStuck {
        /// The latest activity seen.
        last_activity: Timestamp,
        /// The threshold that was passed.
        stuck_after: Duration,
    },
    /// The stuck session shows activity again.
    ClearStuck,
    /// Kill the session: it is older than its `max_duration`.
    KillForDuration,
    /// Mark the session failed: its tmux session or loop is gone.
    MarkFailed {
        /// What was seen.
        reason: String,
    },
}

impl Decision {
    /// The lifecycle event that carries out this decision for `record`.
    pub fn event(&self, record: &SessionRecord) -> Event {
        match self {
            Decision::Advance(ev) => ev.clone(),
            Decision::MarkStuck {
                last_activity,
                stuck_after,
            } => Event::Idle {
                last_activity: *last_activity,
                stuck_after: *stuck_after,
            },
            Decision::ClearStuck => Event::Activity,
            Decision::KillForDuration => Event::DurationExceeded {
                created: record.created(),
                max: record.max_duration(),
            },
            Decision::MarkFailed { reason } => Event::MuxGone { reason: reason.clone() },
        }
    }
}

/// The decisions for one session, and the latest activity seen (to persist).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    /// In order; each applies to the state the previous one produced.
    pub decisions: Vec<Decision>,
    /// The latest of every activity signal, never earlier than the record's.
    pub last_activity: Timestamp,
    /// The state after all decisions.
    pub state: SessionState,
}

/// Decides what to do with `record` given `obs` at `now`.
///
/// Rules: the loop's reports move the state first (so a loop that completed and exited is
/// Completed, not Failed); a vanished tmux session or an exited loop that reported nothing
/// final is Failed; age beyond `max_duration` kills; silence beyond the stuck threshold marks a
/// Running session Stuck once per episode, and activity after that clears it. Time that went
/// backwards (now before the record's activity or creation) yields no time-based decision.
pub fn assess(record: &SessionRecord, obs: &Observation, now: Timestamp, policy: &HealthPolicy) -> Assessment {
    let mut state = record.state.clone();
    let mut decisions = Vec::new();
    let mut last_activity = record.last_activity;
    for t in [obs.status_changed, mux_activity(obs.mux)].into_iter().flatten() {
        if t > last_activity && t <= now {
            last_activity = t;
        }
    }
    if state.is_terminal() {
        return Assessment {
            decisions,
            last_activity,
            state,
        };
    }
    let mut take = |d: Decision, state: &mut SessionState| {
        if let Ok(next) = apply(state, &d.event(record), now) {
            *state = next;
            decisions.push(d);
        }
    };

    if let Some(status) = &obs.loop_status {
        for ev in progress_events(&state, status) {
            take(Decision::Advance(ev), &mut state);
        }
    }
    match obs.mux {
        MuxObservation::Gone => take(
            Decision::MarkFailed {
                reason: "tmux session ended unexpectedly".into(),
            },
            &mut state,
        ),
        // A blocked loop exits by contract (status 2) and waits for `resume` to restart it.
        MuxObservation::Exited { .. } if matches!(state, SessionState::Blocked { .. }) => {}
        MuxObservation::Exited { status } => {
            let reason = match status {
                Some(code) => format!("agent loop exited with status {code} before reporting an end"),
                None => "agent loop exited before reporting an end".to_owned(),
            };
            take(Decision::MarkFailed { reason }, &mut state);
        }
        MuxObservation::Alive { .. } => {}
    }
    if !state.is_terminal()
        && now
            .since(record.created())
            .is_some_and(|age| age > record.max_duration())
    {
        take(Decision::KillForDuration, &mut state);
    }
    let stuck_after = record.stuck_after(policy.stuck_after);
    match &state {
        SessionState::Running { .. } => take(
            Decision::MarkStuck {
                last_activity,
                stuck_after,
            },
            &mut state,
        ),
        SessionState::Stuck { since, .. } if last_activity > *since => take(Decision::ClearStuck, &mut state),
        _ => {}
    }
    Assessment {
        decisions,
        last_activity,
        state,
    }
}

fn mux_activity(mux: MuxObservation) -> Option<Timestamp> {
    match mux {
        MuxObservation::Alive { activity } => activity,
        _ => None,
    }
}

/// The events that bring `state` up to what the loop reports, or none when it adds nothing
/// (the same iteration again, or an old report that would free a stuck session).
pub fn progress_events(state: &SessionState, status: &LoopStatus) -> Vec<Event> {
    let Some(ev) = status.event() else {
        return Vec::new();
    };
    match (state, &ev) {
        // Same iteration and stories: nothing new.
        (
            SessionState::Running { iteration, stories },
            Event::LoopRunning {
                iteration: i,
                stories: s,
            },
        ) if iteration == i && stories == s => Vec::new(),
        // A stuck session is only freed by real progress, not by re-reading the same status.
        (SessionState::Stuck { last_iteration, .. }, Event::LoopRunning { iteration: i, .. })
            if i <= last_iteration =>
        {
            Vec::new()
        }
        // A loop that blocked before we saw it run: it ran first.
        (SessionState::Starting, Event::LoopBlocked { iteration, .. }) => vec![
            Event::LoopRunning {
                iteration: *iteration,
                stories: None,
            },
            ev,
        ],
        _ => vec![ev],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SessionConfig;
    use crate::id::SessionId;
    use crate::loop_status::LoopPhase;

    const T0: Timestamp = Timestamp(10_000_000);

    fn record(state: SessionState) -> SessionRecord {
        let mut r = SessionRecord::new(SessionId("s1".into()), &SessionConfig::default(), T0);
        r.state = state;
        r
    }
    fn alive(at: Timestamp) -> Observation {
        Observation {
            mux: MuxObservation::Alive { activity: Some(at) },
            loop_status: None,
            status_changed: None,
        }
    }
    fn status(phase: LoopPhase, iteration: u32) -> LoopStatus {
        LoopStatus {
            session: None,
            status: phase,
            iteration,
            max: 10,
            stories: None,
            reason: None,
        }
    }
    fn running(i: u32) -> SessionState {
        SessionState::Running {
            iteration: i,
            stories: None,
        }
    }
    fn mins(m: u64) -> Duration {
        Duration::from_secs(m * 60)
    }

    #[track_caller]
    fn check(rec: &SessionRecord, obs: Observation, now: Timestamp, expected: &[Decision]) {
        assert_eq!(assess(rec, &obs, now, &HealthPolicy::default()).decisions, expected);
    }

    #[test]
    fn quiet_running_session_goes_stuck_after_threshold_only() {
        let rec = record(running(1));
        check(&rec, alive(T0), T0.plus(mins(14)), &[]);
        check(
            &rec,
            alive(T0),
            T0.plus(mins(15)),
            &[Decision::MarkStuck {
                last_activity: T0,
                stuck_after: mins(15),
            }],
        );
    }

    #[test]
    fn pane_output_keeps_a_session_unstuck() {
        let rec = record(running(1));
        check(&rec, alive(T0.plus(mins(10))), T0.plus(mins(20)), &[]);
    }

    #[test]
    fn stuck_is_reported_once_per_episode() {
        let rec = record(SessionState::Stuck {
            since: T0.plus(mins(15)),
            last_iteration: 1,
        });
        check(&rec, alive(T0), T0.plus(mins(60)), &[]);
    }

    #[test]
    fn activity_after_stuck_clears_it() {
        let rec = record(SessionState::Stuck {
            since: T0.plus(mins(15)),
            last_iteration: 1,
        });
        check(
            &rec,
            alive(T0.plus(mins(16))),
            T0.plus(mins(17)),
            &[Decision::ClearStuck],
        );
    }

    #[test]
    fn gone_session_is_marked_failed() {
        let rec = record(running(1));
        let obs = Observation {
            mux: MuxObservation::Gone,
            loop_status: None,
            status_changed: None,
        };
        check(
            &rec,
            obs,
            T0,
            &[Decision::MarkFailed {
                reason: "tmux session ended unexpectedly".into(),
            }],
        );
    }

    #[test]
    fn completed_loop_that_exited_is_completed_not_failed() {
        let rec = record(running(2));
        let obs = Observation {
            mux: MuxObservation::Exited { status: Some(0) },
            loop_status: Some(status(LoopPhase::Complete, 3)),
            status_changed: Some(T0),
        };
        check(
            &rec,
            obs,
            T0,
            &[Decision::Advance(Event::LoopCompleted { iterations: 3 })],
        );
    }

    #[test]
    fn loop_exit_without_final_status_fails() {
        let rec = record(running(2));
        let obs = Observation {
            mux: MuxObservation::Exited { status: Some(127) },
            loop_status: Some(status(LoopPhase::Running, 2)),
            status_changed: None,
        };
        let a = assess(&rec, &obs, T0, &HealthPolicy::default());
        assert!(matches!(&a.decisions[..], [Decision::MarkFailed { reason }] if reason.contains("127")));
    }

    #[test]
    fn blocked_loop_that_exited_waits_for_resume() {
        let rec = record(running(2));
        let obs = Observation {
            mux: MuxObservation::Exited { status: Some(2) },
            loop_status: Some(status(LoopPhase::Blocked, 2)),
            status_changed: None,
        };
        let a = assess(&rec, &obs, T0, &HealthPolicy::default());
        assert!(
            matches!(a.state, SessionState::Blocked { iteration: 2, .. }),
            "{:?}",
            a.state
        );
    }

    #[test]
    fn old_session_is_killed_for_duration() {
        let rec = record(running(1));
        let now = T0.plus(rec.max_duration() + Duration::from_secs(1));
        check(&rec, alive(now), now, &[Decision::KillForDuration]);
    }

    #[test]
    fn time_going_back_decides_nothing() {
        let rec = record(running(1));
        check(&rec, alive(T0), Timestamp(T0.0 - 5_000), &[]);
    }

    #[test]
    fn blocked_before_seen_running_passes_through_running() {
        let rec = record(SessionState::Starting);
        let obs = Observation {
            mux: MuxObservation::Alive { activity: None },
            loop_status: Some(status(LoopPhase::Blocked, 1)),
            status_changed: None,
        };
        let a = assess(&rec, &obs, T0, &HealthPolicy::default());
        assert_eq!(a.decisions.len(), 2);
        assert!(matches!(a.state, SessionState::Blocked { iteration: 1, .. }));
    }

    #[test]
    fn paused_and_blocked_never_go_stuck() {
        for st in [
            SessionState::Paused {
                iteration: 1,
                stories: None,
            },
            SessionState::Blocked {
                iteration: 1,
                reason: "r".into(),
            },
        ] {
            check(&record(st), alive(T0), T0.plus(mins(60)), &[]);
        }
    }

    #[test]
    fn per_record_threshold_wins() {
        let mut rec = record(running(1));
        rec.stuck_after_secs = Some(2);
        let a = assess(
            &rec,
            &alive(T0),
            T0.plus(Duration::from_secs(2)),
            &HealthPolicy::default(),
        );
        assert!(matches!(a.state, SessionState::Stuck { .. }));
    }
}
