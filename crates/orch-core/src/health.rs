//! The health policy: from a session's record, what was observed of it and `now`, the
//! transitions to book and the slow work to do. Pure, so "15 minutes of silence" is a value in
//! a test, not a wait.

use crate::events::LifecycleEvent;
use crate::intent::{Cleanup, Lease, WorktreeRelease, LEASE_EXPIRY};
use crate::loop_report::{LoopPhase, LoopReport};
use crate::ports::LoopReading;
use crate::record::SessionRecord;
use crate::state::{Event, SessionState};
use crate::time::Timestamp;
use std::time::Duration;

/// The reason of a session whose tmux session vanished.
pub const GONE_REASON: &str = "tmux session ended unexpectedly";
/// The reason of a session whose `spawn` died before it finished.
pub const SPAWN_INTERRUPTED: &str = "spawn interrupted";

/// Tunables of the health policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct HealthPolicy {
    /// Stuck threshold for records that carry none (default 15 minutes).
    pub stuck_after: Duration,
    /// How long a live `spawn` may take before its session is treated as interrupted.
    pub spawn_grace: Duration,
    /// How long a live process's clean-up lease holds before others take the work over.
    pub lease_expiry: Duration,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        HealthPolicy {
            stuck_after: Duration::from_secs(15 * 60),
            spawn_grace: Duration::from_secs(10 * 60),
            lease_expiry: LEASE_EXPIRY,
        }
    }
}

impl HealthPolicy {
    /// This policy with another default stuck threshold.
    pub fn with_stuck_after(mut self, stuck_after: Duration) -> Self {
        self.stuck_after = stuck_after;
        self
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
        /// The program's exit status, if it exited and the status is known.
        status: Option<i32>,
        /// The signal that ended the program, if one did.
        signal: Option<i32>,
    },
    /// No such session.
    Gone,
    /// The session's server could not be asked (another server than this command's): nothing
    /// about the pane is known, so nothing is decided from it.
    Unknown,
}

/// Everything seen of one session at one moment, inside one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// The multiplexer's view.
    pub mux: MuxObservation,
    /// The pane's process group, when its program runs.
    pub pgid: Option<u32>,
    /// What the loop's directory shows.
    pub reading: LoopReading,
    /// Whether the process of the record's `spawning` lease is alive.
    pub spawn_owner_alive: bool,
    /// Whether the process of the record's clean-up lease is alive.
    pub cleanup_owner_alive: bool,
    /// The pane's program as the operating system showed it (pid and start time), when the
    /// observer read it; booked into the record of a live pane.
    pub pane_process: Option<crate::PaneProcess>,
}

impl Observation {
    /// An observation of `mux` with nothing else known (no report, no owners alive).
    pub fn of(mux: MuxObservation) -> Self {
        Observation {
            mux,
            pgid: None,
            reading: LoopReading::default(),
            spawn_owner_alive: false,
            cleanup_owner_alive: false,
            pane_process: None,
        }
    }

    /// This observation with the loop reporting `report`.
    pub fn with_report(mut self, report: LoopReport) -> Self {
        self.reading.report = Some(report);
        self
    }
}

/// The outcome of assessing one session: its updated record and what follows from it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Assessment {
    /// The record after every transition (and the latest activity, reports, intents).
    pub record: SessionRecord,
    /// The events of the transitions, in order.
    pub events: Vec<LifecycleEvent>,
    /// Whether the record differs from the one assessed (it must be saved).
    pub changed: bool,
    /// The session was killed for exceeding its duration.
    pub killed: bool,
    /// A process group to continue at once: a freeze whose pause was never recorded.
    pub thaw: Option<u32>,
    /// The caller owns the record's clean-up and should carry it out after saving.
    pub run_cleanup: bool,
}

/// Decides what `record`, observed as `obs` at `now`, becomes. `me` is the calling process,
/// which owns any clean-up decided here.
///
/// Rules, in order: a spawn still in progress is left alone (a dead or overdue one is
/// "spawn interrupted"); the loop's reports move the state first, unless they are stale (an
/// earlier run of the loop) or would move the iteration backwards, so a loop that completed
/// and exited is Completed, not Failed; a vanished tmux session or an exited loop that reported
/// nothing final is Failed; age beyond `max_duration` kills; silence beyond the stuck
/// threshold marks a Running session Stuck once per episode, and later activity clears it.
/// Time that went backwards yields no time-based transition. A session that ends gets a
/// clean-up (end its pane; for a duration kill, also release its worktree when safe).
pub fn assess(record: &SessionRecord, obs: &Observation, now: Timestamp, me: u32, policy: &HealthPolicy) -> Assessment {
    assess_owned(record.clone(), obs, now, me, policy)
}

/// [`assess`] of a record the caller gives up, so no copy of it is made: whether it changed
/// is decided by comparing, before and after, only the fields the rules can change (the
/// status, progress, activity, usage, end and intents; never the session's identity or
/// configuration). A refresh judges every record this way. In builds with debug assertions the
/// decision is checked against a comparison of the whole record.
pub fn assess_owned(
    record: SessionRecord,
    obs: &Observation,
    now: Timestamp,
    me: u32,
    policy: &HealthPolicy,
) -> Assessment {
    #[cfg(debug_assertions)]
    let whole = record.clone();
    let before = Judged::of(&record);
    let mut a = judge(record, obs, now, me, policy);
    a.changed |= Judged::of(&a.record) != before;
    #[cfg(debug_assertions)]
    debug_assert_eq!(
        a.changed,
        a.record != whole,
        "a field the health rules change is missing from `Judged`"
    );
    a
}

/// The fields of a record the health rules (and the transitions they make) may change; every
/// other field is the session's identity or configuration, which judging never touches. The
/// destructuring in [`Judged::of`] names every field of the record, so a new one does not
/// compile until it is sorted into one kind or the other.
#[derive(PartialEq)]
struct Judged {
    state: SessionState,
    iteration: u32,
    stories: Option<String>,
    loop_phase: Option<LoopPhase>,
    last_activity: Timestamp,
    last_transition: Timestamp,
    frozen: bool,
    waiting: Option<crate::Waiting>,
    waited_ms: u64,
    cost_micros: Option<u64>,
    tokens: Option<u64>,
    queued: usize,
    ended_at: Option<Timestamp>,
    spawning: Option<Lease>,
    cleanup: Option<Cleanup>,
    pane_process: Option<crate::PaneProcess>,
}

impl Judged {
    fn of(r: &SessionRecord) -> Judged {
        let SessionRecord {
            // Identity and configuration: set by spawn and the commands, never by judging.
            schema_version: _,
            id: _,
            name: _,
            tmux_session: _,
            tmux_server: _,
            project_tag: _,
            prd_path: _,
            max_iterations: _,
            max_duration_secs: _,
            agent_cli: _,
            agent_flags: _,
            working_dir: _,
            use_worktree: _,
            branch_name: _,
            worktree_path: _,
            allocated_port: _,
            created_at: _,
            created_at_ms: _,
            stuck_after_secs: _,
            pause_mode: _,
            runtime_dir: _,
            loop_script: _,
            base_ref: _,
            base_commit: _,
            base_branch: _,
            claimed: _,
            profile: _,
            no_progress_limit: _,
            max_cost_micros: _,
            loop_delay_ms: _,
            run: _,
            worktree_kept: _,
            revision: _,
            // What judging may change.
            state,
            iteration,
            stories,
            loop_phase,
            last_activity,
            last_transition,
            frozen,
            waiting,
            waited_ms,
            cost_micros,
            tokens,
            queued,
            ended_at,
            spawning,
            cleanup,
            pane_process,
        } = r;
        Judged {
            state: state.clone(),
            iteration: *iteration,
            stories: stories.clone(),
            loop_phase: *loop_phase,
            last_activity: *last_activity,
            last_transition: *last_transition,
            frozen: *frozen,
            waiting: waiting.clone(),
            waited_ms: *waited_ms,
            cost_micros: *cost_micros,
            tokens: *tokens,
            queued: *queued,
            ended_at: *ended_at,
            spawning: *spawning,
            cleanup: cleanup.clone(),
            pane_process: *pane_process,
        }
    }
}

/// The rules of [`assess`], applied to `record` in place.
fn judge(record: SessionRecord, obs: &Observation, now: Timestamp, me: u32, policy: &HealthPolicy) -> Assessment {
    let mut a = Assessment {
        record,
        events: Vec::new(),
        changed: false,
        killed: false,
        thaw: None,
        run_cleanup: false,
    };
    let rec = &mut a.record;
    let pane_exists = matches!(obs.mux, MuxObservation::Alive { .. } | MuxObservation::Exited { .. });
    let report = obs
        .reading
        .report
        .as_ref()
        .filter(|r| r.run.is_none_or(|run| run >= rec.run));

    // The latest activity: pane output and report changes, never in the future.
    for t in [obs.reading.changed, mux_activity(obs.mux)].into_iter().flatten() {
        if t > rec.last_activity && t <= now {
            rec.last_activity = t;
        }
    }

    if rec.state.is_terminal() {
        if rec.cleanup.is_none() && pane_exists {
            // The pane is kept dead for its exit status; once the end is booked, it has no
            // reason to live on.
            rec.cleanup = Some(end_session(obs, me, now, None));
        }
        claim_cleanup(&mut a, obs, now, me, policy);
        return a;
    }

    // The pane's program, for probing this one session without the multiplexer next time;
    // forgotten when the pane is seen without it (its loop ended, or the session is gone).
    match obs.mux {
        MuxObservation::Alive { .. } => {
            if obs.pane_process.is_some() {
                rec.pane_process = obs.pane_process;
            }
        }
        MuxObservation::Exited { .. } | MuxObservation::Gone => rec.pane_process = None,
        MuxObservation::Unknown => {}
    }

    if rec.frozen && !matches!(rec.state, SessionState::Paused { .. }) {
        a.thaw = obs.pgid;
        rec.frozen = false;
    }

    let take = |rec: &mut SessionRecord, event: Event, events: &mut Vec<LifecycleEvent>| {
        if let Ok(ev) = rec.transition(&event, now) {
            events.push(ev);
            true
        } else {
            false
        }
    };

    if let Some(lease) = rec.spawning {
        if lease.is_stale(obs.spawn_owner_alive, now, policy.spawn_grace) {
            let event = Event::MuxGone {
                reason: SPAWN_INTERRUPTED.into(),
            };
            take(rec, event, &mut a.events);
            rec.cleanup = Some(end_session(obs, me, now, Some(WorktreeRelease::WhenSafe)));
            claim_cleanup(&mut a, obs, now, me, policy);
            a.changed = true;
            return a;
        }
    }
    let spawning = rec.spawning.is_some();

    rec.queued = obs.reading.queued;
    if let Some(report) = report {
        if let Some(stories) = &report.stories {
            rec.stories = Some(stories.clone());
        }
        if let Some(c) = report.cost.as_deref().and_then(crate::usd_micros) {
            if c > 0 {
                rec.cost_micros = Some(c);
            }
        }
        if let Some(t) = report.tokens.filter(|t| *t > 0) {
            rec.tokens = Some(t);
        }
        // A usage-limit wait starts with a `waiting` report and ends with any other one.
        let at = obs.reading.changed.filter(|t| *t <= now).unwrap_or(now);
        match report.phase {
            LoopPhase::Waiting => {
                let until = Timestamp::from_secs(report.until.unwrap_or(0));
                if rec.waiting.as_ref().is_none_or(|w| w.until != until) {
                    let since = rec.waiting.as_ref().map_or(at, |w| w.since);
                    rec.waiting = Some(crate::Waiting {
                        until,
                        reason: report.reason.clone().unwrap_or_default(),
                        since,
                    });
                }
            }
            _ => {
                if let Some(w) = rec.waiting.take() {
                    rec.waited_ms += crate::time::duration_ms(at.since(w.since).unwrap_or_default());
                }
            }
        }
        rec.loop_phase = Some(report.phase);
        for event in progress_events(&rec.state, rec.iteration, report) {
            take(rec, event, &mut a.events);
        }
    }
    if rec.is_foreign() && !spawning {
        foreign_events(rec, obs, report.is_some(), &take, &mut a.events);
    }
    if !spawning {
        match obs.mux {
            MuxObservation::Gone => {
                take(
                    rec,
                    Event::MuxGone {
                        reason: GONE_REASON.into(),
                    },
                    &mut a.events,
                );
            }
            // A blocked loop exits by contract (status 2) and waits for `resume` to restart it.
            MuxObservation::Exited { .. } if matches!(rec.state, SessionState::Blocked { .. }) => {}
            MuxObservation::Exited { status, signal } => {
                let reason = match (status, signal) {
                    (Some(code), _) => format!("agent loop exited with status {code} before reporting an end"),
                    (None, Some(sig)) => format!("agent loop was killed by signal {sig} before reporting an end"),
                    (None, None) => "agent loop exited before reporting an end".to_owned(),
                };
                take(rec, Event::MuxGone { reason }, &mut a.events);
            }
            MuxObservation::Alive { .. } | MuxObservation::Unknown => {}
        }
    }
    let known = obs.mux != MuxObservation::Unknown;
    if known && !rec.state.is_terminal() {
        // Time spent waiting for a usage limit to reset is not the session's own time.
        let event = Event::DurationExceeded {
            created: rec.created().plus(rec.waited(now)),
            max: rec.max_duration(),
        };
        if take(rec, event, &mut a.events) {
            a.killed = true;
            rec.cleanup = Some(end_session(obs, me, now, Some(WorktreeRelease::WhenSafe)));
        }
    }
    // A session waiting for a usage limit is silent by design: never stuck.
    if known && !spawning && rec.waiting.is_none() {
        let stuck_after = rec.stuck_after(policy.stuck_after);
        match rec.state {
            SessionState::Running { .. } => {
                let event = Event::Idle {
                    last_activity: rec.last_activity,
                    stuck_after,
                };
                take(rec, event, &mut a.events);
            }
            SessionState::Stuck { since, .. } if rec.last_activity > since => {
                take(rec, Event::Activity, &mut a.events);
            }
            _ => {}
        }
    }
    if rec.state.is_terminal() && rec.cleanup.is_none() && pane_exists {
        rec.cleanup = Some(end_session(obs, me, now, None));
    }
    claim_cleanup(&mut a, obs, now, me, policy);
    a
}

/// Whether judging `rec` at `now` can do without the multiplexer's view when the operating
/// system shows its pane's program ([`SessionRecord::pane_process`]) still running with its
/// controlling terminal: then the pane is alive (tmux keeps a pane for as long as its program
/// runs, and the kernel takes the terminal from the program the moment tmux closes the pane
/// or its server dies, even if the program outlives that), and the pane's output could only move
/// `last_activity`, never the state. So: a live session of this tool, no spawn or clean-up
/// in progress, running and not yet silent for its stuck threshold (past it, pane output
/// decides between running and stuck), paused or blocked. A stuck session, which output
/// would unstick, and a starting one are always looked at in tmux.
pub fn process_probe_suffices(rec: &SessionRecord, now: Timestamp, policy: &HealthPolicy) -> bool {
    if rec.pane_process.is_none() || rec.is_foreign() || rec.spawning.is_some() || rec.cleanup.is_some() {
        return false;
    }
    match rec.state {
        // Not even while it waits for a usage limit: the report read with the probe may end
        // the wait, and the stuck rule then applies at once.
        SessionState::Running { .. } => now
            .since(rec.last_activity)
            .is_some_and(|idle| idle < rec.stuck_after(policy.stuck_after)),
        SessionState::Paused { .. } | SessionState::Blocked { .. } => true,
        _ => false,
    }
}

/// What a session of the original tool shows besides its report: its loop runs while its
/// tmux session lives (the original reads a live session without a report of its own as
/// running, iteration 0), and it is paused while the original's shared marker is set (by its
/// CLI, or by ours) and not otherwise (a freeze, which sets no marker, aside).
fn foreign_events(
    rec: &mut SessionRecord,
    obs: &Observation,
    reported: bool,
    take: &impl Fn(&mut SessionRecord, Event, &mut Vec<LifecycleEvent>) -> bool,
    events: &mut Vec<LifecycleEvent>,
) {
    let alive = matches!(obs.mux, MuxObservation::Alive { .. });
    if alive && !reported && rec.state == SessionState::Starting {
        take(
            rec,
            Event::LoopRunning {
                iteration: 0,
                stories: None,
            },
            events,
        );
    }
    match (obs.reading.paused, &rec.state) {
        (Some(true), SessionState::Starting | SessionState::Running { .. } | SessionState::Stuck { .. }) if alive => {
            take(rec, Event::Pause, events);
        }
        (Some(false), SessionState::Paused { .. }) if !rec.frozen => {
            take(rec, Event::Resume, events);
        }
        _ => {}
    }
}

/// A clean-up by `me` that ends the observed session (and releases its worktree as `worktree`
/// says).
fn end_session(obs: &Observation, me: u32, now: Timestamp, worktree: Option<WorktreeRelease>) -> Cleanup {
    Cleanup {
        end_session: true,
        pgid: obs.pgid,
        worktree,
        ..Cleanup::new(Lease::new(me, now))
    }
}

/// Decides whether the caller carries out the record's clean-up: its own, or a stale one it
/// takes over.
fn claim_cleanup(a: &mut Assessment, obs: &Observation, now: Timestamp, me: u32, policy: &HealthPolicy) {
    let Some(cleanup) = a.record.cleanup.as_mut() else {
        return;
    };
    if cleanup.owner.pid == me {
        a.run_cleanup = true;
    } else if cleanup
        .owner
        .is_stale(obs.cleanup_owner_alive, now, policy.lease_expiry)
    {
        cleanup.owner = Lease::new(me, now);
        a.run_cleanup = true;
    }
}

fn mux_activity(mux: MuxObservation) -> Option<Timestamp> {
    match mux {
        MuxObservation::Alive { activity } => activity,
        _ => None,
    }
}

/// The events that bring `state` (whose record knows iteration `iteration`) up to what the
/// loop reports, or none when the report adds nothing: the same iteration again, an iteration
/// below the one known (a late or replayed report), or an old report that would free a
/// stuck session.
pub fn progress_events(state: &SessionState, iteration: u32, report: &LoopReport) -> Vec<Event> {
    let Some(ev) = report.event() else {
        return Vec::new();
    };
    let reported = match &ev {
        Event::LoopRunning { iteration, .. } | Event::LoopBlocked { iteration, .. } => *iteration,
        Event::LoopCompleted { iterations } | Event::LoopMaxIterations { iterations } => *iterations,
        _ => iteration,
    };
    if reported < iteration {
        return Vec::new();
    }
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
    use crate::loop_report::LoopPhase;

    const T0: Timestamp = Timestamp(10_000_000);
    const ME: u32 = 4242;

    fn record(state: SessionState) -> SessionRecord {
        let mut r = SessionRecord::new(SessionId("s1".into()), &SessionConfig::default(), T0);
        r.iteration = state.iteration();
        r.state = state;
        // One of ours: its loop has its own directory.
        r.runtime_dir = Some("/project/.hydra/ralph/s1".into());
        r
    }
    fn alive(at: Timestamp) -> Observation {
        Observation {
            pgid: Some(77),
            ..Observation::of(MuxObservation::Alive { activity: Some(at) })
        }
    }
    fn report(phase: LoopPhase, iteration: u32) -> LoopReport {
        LoopReport::new(phase, iteration)
    }
    fn running(i: u32) -> SessionState {
        SessionState::Running {
            iteration: i,
            stories: None,
        }
    }
    /// The two live states that never go stuck.
    fn paused_and_blocked() -> [SessionState; 2] {
        [
            SessionState::Paused {
                iteration: 1,
                stories: None,
            },
            SessionState::Blocked {
                iteration: 1,
                reason: "r".into(),
            },
        ]
    }
    fn mins(m: u64) -> Duration {
        Duration::from_secs(m * 60)
    }
    fn judge(rec: &SessionRecord, obs: &Observation, now: Timestamp) -> Assessment {
        assess(rec, obs, now, ME, &HealthPolicy::default())
    }

    #[track_caller]
    fn check(rec: &SessionRecord, obs: Observation, now: Timestamp, channels: &[&str]) -> Assessment {
        let a = judge(rec, &obs, now);
        let got: Vec<_> = a.events.iter().map(|e| e.channel.as_str()).collect();
        assert_eq!(got, channels);
        a
    }

    #[test]
    fn quiet_running_session_goes_stuck_after_threshold_only() {
        let rec = record(running(1));
        check(&rec, alive(T0), T0.plus(mins(14)), &[]);
        let a = check(&rec, alive(T0), T0.plus(mins(15)), &["session:stuck"]);
        assert!(matches!(a.record.state, SessionState::Stuck { .. }));
        assert_eq!(a.record.last_activity, T0, "going stuck is not activity");
    }

    #[test]
    fn pane_output_keeps_a_session_unstuck() {
        let rec = record(running(1));
        check(&rec, alive(T0.plus(mins(10))), T0.plus(mins(20)), &[]);
    }

    #[test]
    fn stuck_is_reported_once_per_episode_and_cleared_by_activity() {
        let rec = record(SessionState::Stuck {
            since: T0.plus(mins(15)),
            last_iteration: 1,
        });
        check(&rec, alive(T0), T0.plus(mins(60)), &[]);
        check(&rec, alive(T0.plus(mins(16))), T0.plus(mins(17)), &["session:unstuck"]);
    }

    #[test]
    fn gone_session_is_failed_and_keeps_its_iteration() {
        let rec = record(running(3));
        let a = check(&rec, Observation::of(MuxObservation::Gone), T0, &["session:failed"]);
        assert_eq!(
            a.record.state,
            SessionState::Failed {
                reason: GONE_REASON.into()
            }
        );
        assert_eq!(a.record.iteration, 3);
        assert_eq!(a.record.cleanup, None, "nothing left to end");
    }

    #[test]
    fn completed_loop_that_exited_is_completed_and_its_pane_ended() {
        let rec = record(running(2));
        let obs = Observation::of(MuxObservation::Exited {
            status: Some(0),
            signal: None,
        })
        .with_report(report(LoopPhase::Complete, 3));
        let a = check(&rec, obs, T0, &["session:completed"]);
        assert_eq!(a.record.state, SessionState::Completed { iterations: 3 });
        assert_eq!(a.record.ended_at, Some(T0));
        let cleanup = a.record.cleanup.as_ref().expect("the dead pane is ended");
        assert!(cleanup.end_session && cleanup.worktree.is_none(), "the work is kept");
        assert!(a.run_cleanup);
    }

    #[test]
    fn loop_exit_without_final_report_fails() {
        let rec = record(running(2));
        let obs = Observation::of(MuxObservation::Exited {
            status: Some(127),
            signal: None,
        })
        .with_report(report(LoopPhase::Running, 2));
        let a = judge(&rec, &obs, T0);
        assert!(matches!(&a.record.state, SessionState::Failed { reason } if reason.contains("127")));
    }

    #[test]
    fn loop_killed_by_a_signal_says_which() {
        let rec = record(running(2));
        let obs = Observation::of(MuxObservation::Exited {
            status: None,
            signal: Some(9),
        })
        .with_report(report(LoopPhase::Running, 2));
        let a = judge(&rec, &obs, T0);
        assert!(
            matches!(&a.record.state, SessionState::Failed { reason } if reason.contains("killed by signal 9")),
            "{:?}",
            a.record.state
        );
    }

    #[test]
    fn blocked_loop_that_exited_waits_for_resume() {
        let rec = record(running(2));
        let obs = Observation::of(MuxObservation::Exited {
            status: Some(2),
            signal: None,
        })
        .with_report(report(LoopPhase::Blocked, 2));
        let a = check(&rec, obs, T0, &["session:blocked"]);
        assert!(matches!(a.record.state, SessionState::Blocked { iteration: 2, .. }));
    }

    #[test]
    fn old_session_is_killed_for_duration_and_its_worktree_released_when_safe() {
        let rec = record(running(1));
        let now = T0.plus(rec.max_duration() + Duration::from_secs(1));
        let a = check(&rec, alive(now), now, &["session:killed"]);
        assert!(a.killed);
        let c = a.record.cleanup.expect("cleanup");
        assert_eq!(
            (c.end_session, c.pgid, c.worktree),
            (true, Some(77), Some(WorktreeRelease::WhenSafe))
        );
        assert_eq!(c.owner.pid, ME);
    }

    #[test]
    fn time_going_back_decides_nothing() {
        let rec = record(running(1));
        let a = check(&rec, alive(T0), Timestamp(T0.0 - 5_000), &[]);
        assert!(!a.changed);
    }

    #[test]
    fn blocked_before_seen_running_passes_through_running() {
        let rec = record(SessionState::Starting);
        let obs = Observation::of(MuxObservation::Alive { activity: None }).with_report(report(LoopPhase::Blocked, 1));
        check(&rec, obs, T0, &["session:running", "session:blocked"]);
    }

    #[test]
    fn paused_and_blocked_never_go_stuck() {
        for st in paused_and_blocked() {
            check(&record(st), alive(T0), T0.plus(mins(60)), &[]);
        }
    }

    #[test]
    fn a_live_pane_books_its_process_and_an_ended_one_forgets_it() {
        let rec = record(running(1));
        let p = crate::PaneProcess { pid: 77, start: 123 };
        let seen = Observation {
            pane_process: Some(p),
            ..alive(T0)
        };
        let a = judge(&rec, &seen, T0);
        assert_eq!(a.record.pane_process, Some(p));
        assert!(a.changed, "a new process is saved");
        // Alive without a fresh reading keeps what the record knows.
        let a = judge(&a.record, &alive(T0), T0);
        assert_eq!(a.record.pane_process, Some(p));
        assert!(!a.changed);
        let exited = Observation::of(MuxObservation::Exited {
            status: Some(0),
            signal: None,
        });
        assert_eq!(judge(&a.record, &exited, T0).record.pane_process, None);
        assert_eq!(
            judge(&a.record, &Observation::of(MuxObservation::Gone), T0)
                .record
                .pane_process,
            None
        );
        // A server that cannot be asked tells nothing about the pane.
        let unknown = judge(&a.record, &Observation::of(MuxObservation::Unknown), T0);
        assert_eq!(unknown.record.pane_process, Some(p));
    }

    #[test]
    fn a_process_probe_suffices_only_where_pane_output_cannot_change_the_state() {
        let policy = HealthPolicy::default();
        let with_process = |state: SessionState| {
            let mut r = record(state);
            r.pane_process = Some(crate::PaneProcess { pid: 77, start: 1 });
            r
        };
        // Running: only while silence is below the stuck threshold (15 minutes here).
        let rec = with_process(running(1));
        assert!(process_probe_suffices(&rec, T0.plus(mins(14)), &policy));
        assert!(!process_probe_suffices(&rec, T0.plus(mins(15)), &policy));
        // Time gone back: not decided without tmux.
        assert!(!process_probe_suffices(&rec, Timestamp(T0.as_millis() - 1), &policy));
        // Not even while waiting for a usage limit: a report read with the probe may end the
        // wait (found by the property test of this rule).
        let mut waiting = rec.clone();
        waiting.waiting = Some(crate::Waiting {
            until: T0.plus(mins(60)),
            reason: "limit".into(),
            since: T0,
        });
        assert!(!process_probe_suffices(&waiting, T0.plus(mins(50)), &policy));
        for st in paused_and_blocked() {
            assert!(process_probe_suffices(&with_process(st), T0.plus(mins(60)), &policy));
        }
        for st in [
            SessionState::Starting,
            SessionState::Stuck {
                since: T0,
                last_iteration: 1,
            },
            SessionState::Completed { iterations: 1 },
            SessionState::Failed { reason: "f".into() },
        ] {
            assert!(!process_probe_suffices(&with_process(st), T0, &policy));
        }
        // Without a known process, a spawn or clean-up in progress, or for the original
        // tool's sessions: always tmux.
        assert!(!process_probe_suffices(&record(running(1)), T0, &policy));
        let mut spawning = rec.clone();
        spawning.spawning = Some(Lease::new(99, T0));
        assert!(!process_probe_suffices(&spawning, T0, &policy));
        let mut foreign = rec.clone();
        foreign.runtime_dir = None;
        assert!(!process_probe_suffices(&foreign, T0, &policy));
    }

    #[test]
    fn per_record_threshold_wins() {
        let mut rec = record(running(1));
        rec.stuck_after_secs = Some(2);
        let a = judge(&rec, &alive(T0), T0.plus(Duration::from_secs(2)));
        assert!(matches!(a.record.state, SessionState::Stuck { .. }));
    }

    #[test]
    fn a_spawn_in_progress_is_starting_not_failed() {
        let mut rec = record(SessionState::Starting);
        rec.spawning = Some(Lease::new(99, T0));
        let obs = Observation {
            spawn_owner_alive: true,
            ..Observation::of(MuxObservation::Gone)
        };
        let a = check(&rec, obs.clone(), T0.plus(mins(1)), &[]);
        assert_eq!(a.record.state, SessionState::Starting);
        // Its owner died: interrupted, and what it may have made is cleaned up.
        let dead = Observation {
            spawn_owner_alive: false,
            ..obs
        };
        let a = check(&rec, dead, T0.plus(mins(1)), &["session:failed"]);
        assert_eq!(
            a.record.state,
            SessionState::Failed {
                reason: SPAWN_INTERRUPTED.into()
            }
        );
        assert_eq!(a.record.spawning, None);
        assert!(a.record.cleanup.expect("cleanup").end_session);
    }

    #[test]
    fn an_overdue_spawn_is_interrupted_even_if_its_owner_lives() {
        let mut rec = record(SessionState::Starting);
        rec.spawning = Some(Lease::new(99, T0));
        let obs = Observation {
            spawn_owner_alive: true,
            ..Observation::of(MuxObservation::Gone)
        };
        check(&rec, obs, T0.plus(mins(11)), &["session:failed"]);
    }

    #[test]
    fn reports_of_an_earlier_run_or_lower_iteration_are_stale() {
        let mut rec = record(running(4));
        rec.run = 2;
        let mut old_run = report(LoopPhase::Blocked, 4);
        old_run.run = Some(1);
        check(&rec, alive(T0).with_report(old_run), T0, &[]);
        check(&rec, alive(T0).with_report(report(LoopPhase::Running, 3)), T0, &[]);
        let mut current = report(LoopPhase::Running, 5);
        current.run = Some(2);
        check(&rec, alive(T0).with_report(current), T0, &["session:iteration"]);
    }

    #[test]
    fn unknown_server_decides_nothing_from_the_pane_or_the_clock() {
        let rec = record(running(1));
        let obs = Observation::of(MuxObservation::Unknown);
        check(&rec, obs.clone(), T0.plus(Duration::from_secs(100_000)), &[]);
        // The loop's own final report still counts.
        check(
            &rec,
            obs.with_report(report(LoopPhase::Complete, 2)),
            T0,
            &["session:completed"],
        );
    }

    #[test]
    fn a_stale_cleanup_of_a_dead_owner_is_taken_over_a_live_one_is_not() {
        let mut rec = record(SessionState::Failed { reason: "x".into() });
        rec.cleanup = Some(Cleanup {
            end_session: true,
            ..Cleanup::new(Lease::new(99, T0))
        });
        let live = Observation {
            cleanup_owner_alive: true,
            ..Observation::of(MuxObservation::Gone)
        };
        let a = judge(&rec, &live, T0.plus(mins(1)));
        assert!(!a.run_cleanup && !a.changed);
        let a = judge(&rec, &Observation::of(MuxObservation::Gone), T0.plus(mins(1)));
        assert!(a.run_cleanup && a.changed);
        assert_eq!(a.record.cleanup.expect("kept").owner.pid, ME);
    }

    #[test]
    fn a_freeze_whose_pause_was_never_booked_is_thawed() {
        let mut rec = record(running(1));
        rec.frozen = true;
        let a = judge(&rec, &alive(T0), T0);
        assert_eq!(a.thaw, Some(77));
        assert!(!a.record.frozen && a.changed);
    }

    fn foreign(state: SessionState) -> SessionRecord {
        let mut r = record(state);
        r.runtime_dir = None;
        r
    }

    fn marker(obs: Observation, set: bool) -> Observation {
        Observation {
            reading: LoopReading::default().with_paused(Some(set)),
            ..obs
        }
    }

    #[test]
    fn a_live_session_of_the_original_tool_runs_at_iteration_zero_until_it_reports() {
        let a = check(&foreign(SessionState::Starting), alive(T0), T0, &["session:running"]);
        assert_eq!(a.record.state, running(0));
        // Ours waits for its loop's report instead.
        check(&record(SessionState::Starting), alive(T0), T0, &[]);
        // A report it can be told to own wins.
        let obs = alive(T0).with_report(report(LoopPhase::Running, 4));
        let a = check(&foreign(SessionState::Starting), obs, T0, &["session:running"]);
        assert_eq!(a.record.iteration, 4);
    }

    #[test]
    fn the_original_tools_marker_pauses_and_resumes_its_session() {
        let a = check(&foreign(running(2)), marker(alive(T0), true), T0, &["session:paused"]);
        assert_eq!(a.record.state.name(), "paused");
        let paused = a.record;
        check(&paused, marker(alive(T0), true), T0, &[]);
        let a = check(&paused, marker(alive(T0), false), T0, &["session:resumed"]);
        assert_eq!(a.record.state, running(2));
        // A frozen one is not resumed by a marker it never had.
        let mut frozen = paused.clone();
        frozen.frozen = true;
        check(&frozen, marker(alive(T0), false), T0, &[]);
        // Our own sessions' markers are their loops' business, reported by the loops.
        check(&record(running(2)), marker(alive(T0), true), T0, &[]);
    }
}
