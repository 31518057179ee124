//! The session lifecycle: [`SessionState`], the [`Event`]s that move it, and [`apply`], the one
//! function that decides every transition (DESIGN.md §3).

use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// Where a session is in its life. Each variant carries only the data that state has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum SessionState {
    /// Created; the loop has not yet reported its first iteration.
    Starting,
    /// The loop is working on iteration `iteration`.
    Running {
        /// The loop's current iteration (1-based; 0 before the first).
        iteration: u32,
        /// Stories done, as the loop reports them (`"2/5"`).
        stories: Option<String>,
    },
    /// Paused by a person; `resume` continues at the same iteration.
    Paused {
        /// The iteration the loop was on.
        iteration: u32,
        /// Stories done when paused.
        stories: Option<String>,
    },
    /// No activity for longer than the stuck threshold.
    Stuck {
        /// When the session was found stuck.
        since: Timestamp,
        /// The iteration it was on.
        last_iteration: u32,
    },
    /// The agent declared itself blocked and waits for a person.
    Blocked {
        /// The iteration that blocked.
        iteration: u32,
        /// What the loop said.
        reason: String,
    },
    /// The agent finished every story (terminal).
    Completed {
        /// Iterations used.
        iterations: u32,
    },
    /// The loop ran out of iterations (terminal).
    MaxIterations {
        /// Iterations used.
        iterations: u32,
    },
    /// The session ended otherwise: killed, timed out, or its tmux session vanished (terminal).
    Failed {
        /// Why.
        reason: String,
    },
}

impl SessionState {
    /// The state's name as the CLI and `--json` print it.
    pub fn name(&self) -> &'static str {
        match self {
            SessionState::Starting => "starting",
            SessionState::Running { .. } => "running",
            SessionState::Paused { .. } => "paused",
            SessionState::Stuck { .. } => "stuck",
            SessionState::Blocked { .. } => "blocked",
            SessionState::Completed { .. } => "completed",
            SessionState::MaxIterations { .. } => "max-iterations",
            SessionState::Failed { .. } => "failed",
        }
    }

    /// Completed, MaxIterations and Failed: nothing moves a session out of these.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            SessionState::Completed { .. } | SessionState::MaxIterations { .. } | SessionState::Failed { .. }
        )
    }

    /// The iteration this state knows of.
    pub fn iteration(&self) -> u32 {
        match self {
            SessionState::Starting | SessionState::Failed { .. } => 0,
            SessionState::Running { iteration, .. }
            | SessionState::Paused { iteration, .. }
            | SessionState::Blocked { iteration, .. } => *iteration,
            SessionState::Stuck { last_iteration, .. } => *last_iteration,
            SessionState::Completed { iterations } | SessionState::MaxIterations { iterations } => *iterations,
        }
    }

    /// The story count this state carries, if any.
    pub fn stories(&self) -> Option<&str> {
        match self {
            SessionState::Running { stories, .. } | SessionState::Paused { stories, .. } => stories.as_deref(),
            _ => None,
        }
    }

    /// The reason this state carries (Blocked, Failed), if any.
    pub fn reason(&self) -> Option<&str> {
        match self {
            SessionState::Blocked { reason, .. } | SessionState::Failed { reason } => Some(reason),
            _ => None,
        }
    }
}

/// `1 iteration`, `3 iterations`.
fn plural(n: u32, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

impl fmt::Display for SessionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionState::Starting => f.write_str("starting"),
            SessionState::Running {
                iteration,
                stories: Some(s),
            } => {
                write!(f, "running (iteration {iteration}, {s} stories)")
            }
            SessionState::Running {
                iteration,
                stories: None,
            } => write!(f, "running (iteration {iteration})"),
            SessionState::Paused { iteration, .. } => write!(f, "paused (iteration {iteration})"),
            SessionState::Stuck { last_iteration, .. } => {
                write!(f, "stuck (no activity, iteration {last_iteration})")
            }
            SessionState::Blocked { iteration, reason } => write!(f, "blocked (iteration {iteration}: {reason})"),
            SessionState::Completed { iterations } => write!(f, "completed ({})", plural(*iterations, "iteration")),
            SessionState::MaxIterations { iterations } => {
                write!(f, "max-iterations ({})", plural(*iterations, "iteration"))
            }
            SessionState::Failed { reason } => write!(f, "failed ({reason})"),
        }
    }
}

/// Something that happened to a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The loop reports that it is on `iteration`.
    LoopRunning {
        /// Current iteration.
        iteration: u32,
        /// Stories done (`"2/5"`).
        stories: Option<String>,
    },
    /// The loop reports `blocked`.
    LoopBlocked {
        /// Iteration that blocked.
        iteration: u32,
        /// Why, as far as known.
        reason: String,
    },
    /// The loop reports `complete`.
    LoopCompleted {
        /// Iterations used.
        iterations: u32,
    },
    /// The loop reports `max-iterations`.
    LoopMaxIterations {
        /// Iterations used.
        iterations: u32,
    },
    /// A person paused the session.
    Pause,
    /// A person resumed the session.
    Resume,
    /// The latest activity was at `last_activity`; accepted only when `now` is at least
    /// `stuck_after` later.
    Idle {
        /// Latest activity seen.
        last_activity: Timestamp,
        /// The stuck threshold.
        stuck_after: Duration,
    },
    /// New activity was seen.
    Activity,
    /// The tmux session (or its loop) is gone.
    MuxGone {
        /// What was seen, e.g. "tmux session ended unexpectedly".
        reason: String,
    },
    /// The session was created at `created`; accepted only when `now` is more than `max`
    /// later.
    DurationExceeded {
        /// Creation time.
        created: Timestamp,
        /// The limit.
        max: Duration,
    },
    /// A person (or the orchestrator) killed the session.
    Kill {
        /// Why.
        reason: String,
    },
}

impl Event {
    /// A short name of the event for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Event::LoopRunning { .. } => "loop reports running",
            Event::LoopBlocked { .. } => "loop reports blocked",
            Event::LoopCompleted { .. } => "loop reports complete",
            Event::LoopMaxIterations { .. } => "loop reports max-iterations",
            Event::Pause => "pause",
            Event::Resume => "resume",
            Event::Idle { .. } => "no activity",
            Event::Activity => "activity",
            Event::MuxGone { .. } => "tmux session gone",
            Event::DurationExceeded { .. } => "duration limit exceeded",
            Event::Kill { .. } => "kill",
        }
    }
}

/// An event that the current state does not accept. The state is left unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// The state does not accept this kind of event.
    #[error("cannot {event} a session that is {state}")]
    NotAllowed {
        /// The state's name.
        state: &'static str,
        /// The event's name.
        event: &'static str,
    },
    /// The session is terminal; nothing moves it.
    #[error("session already ended ({state}); nothing can change it")]
    Terminal {
        /// The terminal state's name.
        state: &'static str,
    },
    /// An `Idle` event came before the stuck threshold had passed (or time went back).
    #[error("no activity for less than the stuck threshold")]
    NotIdleLongEnough,
    /// A `DurationExceeded` event came before the limit had passed (or time went back).
    #[error("duration limit not yet exceeded")]
    NotExpired,
}

/// Applies `event` to `state` at time `now`.
///
/// Total over every (state, event) pair: either the new state, as DESIGN.md §3's table says, or
/// a [`TransitionError`] (and the caller keeps the old state). Terminal states accept nothing.
///
/// Beyond the table, as the loop really behaves: `LoopRunning` is accepted in `Running` (the
/// next iteration) and the loop's final reports (`blocked`, `complete`, `max-iterations`) are
/// accepted in `Paused`, since a checkpoint pause lets the running iteration finish.
pub fn apply(state: &SessionState, event: &Event, now: Timestamp) -> Result<SessionState, TransitionError> {
    use SessionState as S;
    if state.is_terminal() {
        return Err(TransitionError::Terminal { state: state.name() });
    }
    let refuse = || TransitionError::NotAllowed {
        state: state.name(),
        event: event.name(),
    };
    let next = match (state, event) {
        (S::Starting | S::Running { .. } | S::Stuck { .. }, Event::LoopRunning { iteration, stories }) => S::Running {
            iteration: *iteration,
            stories: stories.clone(),
        },
        (S::Starting | S::Running { .. } | S::Stuck { .. }, Event::Pause) => S::Paused {
            iteration: state.iteration(),
            stories: state.stories().map(str::to_owned),
        },
        (S::Paused { iteration, stories }, Event::Resume) => S::Running {
            iteration: *iteration,
            stories: stories.clone(),
        },
        (S::Blocked { iteration, .. }, Event::Resume) => S::Running {
            iteration: *iteration,
            stories: None,
        },
        (
            S::Running { iteration, .. },
            Event::Idle {
                last_activity,
                stuck_after,
            },
        ) => match now.since(*last_activity) {
            Some(idle) if idle >= *stuck_after => S::Stuck {
                since: now,
                last_iteration: *iteration,
            },
            _ => return Err(TransitionError::NotIdleLongEnough),
        },
        (S::Stuck { last_iteration, .. }, Event::Activity) => S::Running {
            iteration: *last_iteration,
            stories: None,
        },
        (S::Running { .. } | S::Stuck { .. } | S::Paused { .. }, Event::LoopBlocked { iteration, reason }) => {
            S::Blocked {
                iteration: *iteration,
                reason: reason.clone(),
            }
        }
        (S::Starting | S::Running { .. } | S::Stuck { .. } | S::Paused { .. }, Event::LoopCompleted { iterations }) => {
            S::Completed {
                iterations: *iterations,
            }
        }
        (
            S::Starting | S::Running { .. } | S::Stuck { .. } | S::Paused { .. },
            Event::LoopMaxIterations { iterations },
        ) => S::MaxIterations {
            iterations: *iterations,
        },
        (_, Event::MuxGone { reason }) => S::Failed { reason: reason.clone() },
        (_, Event::DurationExceeded { created, max }) => match now.since(*created) {
            Some(age) if age > *max => S::Failed {
                reason: "duration limit exceeded".into(),
            },
            _ => return Err(TransitionError::NotExpired),
        },
        (_, Event::Kill { reason }) => S::Failed { reason: reason.clone() },
        _ => return Err(refuse()),
    };
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Timestamp = Timestamp(1_000_000);
    const MIN15: Duration = Duration::from_secs(900);

    fn running(i: u32) -> SessionState {
        SessionState::Running {
            iteration: i,
            stories: Some("1/3".into()),
        }
    }
    fn paused(i: u32) -> SessionState {
        SessionState::Paused {
            iteration: i,
            stories: Some("1/3".into()),
        }
    }
    fn stuck(i: u32) -> SessionState {
        SessionState::Stuck {
            since: T0,
            last_iteration: i,
        }
    }
    fn blocked(i: u32) -> SessionState {
        SessionState::Blocked {
            iteration: i,
            reason: "needs a key".into(),
        }
    }
    fn all_states() -> Vec<SessionState> {
        vec![
            SessionState::Starting,
            running(2),
            paused(2),
            stuck(2),
            blocked(2),
            SessionState::Completed { iterations: 3 },
            SessionState::MaxIterations { iterations: 10 },
            SessionState::Failed { reason: "x".into() },
        ]
    }
    fn all_events() -> Vec<Event> {
        vec![
            Event::LoopRunning {
                iteration: 3,
                stories: None,
            },
            Event::LoopBlocked {
                iteration: 3,
                reason: "r".into(),
            },
            Event::LoopCompleted { iterations: 3 },
            Event::LoopMaxIterations { iterations: 3 },
            Event::Pause,
            Event::Resume,
            Event::Idle {
                last_activity: T0,
                stuck_after: MIN15,
            },
            Event::Activity,
            Event::MuxGone {
                reason: "tmux session ended unexpectedly".into(),
            },
            Event::DurationExceeded {
                created: T0,
                max: MIN15,
            },
            Event::Kill { reason: "done".into() },
        ]
    }

    #[track_caller]
    fn check(from: SessionState, event: Event, now: Timestamp, to: SessionState) {
        assert_eq!(apply(&from, &event, now), Ok(to));
    }

    #[track_caller]
    fn check_refused(from: SessionState, event: Event) {
        assert!(
            apply(&from, &event, T0.plus(MIN15 * 4)).is_err(),
            "{from:?} accepted {event:?}"
        );
    }

    #[test]
    fn starting_to_running_on_first_report() {
        check(
            SessionState::Starting,
            Event::LoopRunning {
                iteration: 1,
                stories: Some("0/3".into()),
            },
            T0,
            SessionState::Running {
                iteration: 1,
                stories: Some("0/3".into()),
            },
        );
    }

    #[test]
    fn running_takes_next_iteration() {
        check(
            running(1),
            Event::LoopRunning {
                iteration: 2,
                stories: None,
            },
            T0,
            SessionState::Running {
                iteration: 2,
                stories: None,
            },
        );
    }

    #[test]
    fn pause_from_starting_running_stuck() {
        check(
            SessionState::Starting,
            Event::Pause,
            T0,
            SessionState::Paused {
                iteration: 0,
                stories: None,
            },
        );
        check(running(4), Event::Pause, T0, paused(4));
        check(
            stuck(4),
            Event::Pause,
            T0,
            SessionState::Paused {
                iteration: 4,
                stories: None,
            },
        );
    }

    #[test]
    fn resume_keeps_iteration() {
        check(paused(4), Event::Resume, T0, running(4));
    }

    #[test]
    fn running_goes_stuck_only_after_threshold() {
        let ev = Event::Idle {
            last_activity: T0,
            stuck_after: MIN15,
        };
        assert_eq!(
            apply(&running(2), &ev, T0.plus(MIN15 - Duration::from_millis(1))),
            Err(TransitionError::NotIdleLongEnough)
        );
        check(
            running(2),
            ev,
            T0.plus(MIN15),
            SessionState::Stuck {
                since: T0.plus(MIN15),
                last_iteration: 2,
            },
        );
    }

    #[test]
    fn idle_with_time_going_back_is_refused() {
        let ev = Event::Idle {
            last_activity: T0,
            stuck_after: MIN15,
        };
        assert_eq!(
            apply(&running(2), &ev, Timestamp(T0.0 - 1)),
            Err(TransitionError::NotIdleLongEnough)
        );
    }

    #[test]
    fn stuck_clears_on_activity_or_progress() {
        check(
            stuck(3),
            Event::Activity,
            T0,
            SessionState::Running {
                iteration: 3,
                stories: None,
            },
        );
        check(
            stuck(3),
            Event::LoopRunning {
                iteration: 4,
                stories: None,
            },
            T0,
            SessionState::Running {
                iteration: 4,
                stories: None,
            },
        );
    }

    #[test]
    fn blocked_from_running_and_stuck() {
        let ev = Event::LoopBlocked {
            iteration: 2,
            reason: "needs a key".into(),
        };
        check(running(2), ev.clone(), T0, blocked(2));
        check(stuck(2), ev, T0, blocked(2));
    }

    #[test]
    fn blocked_resumes_to_running() {
        check(
            blocked(2),
            Event::Resume,
            T0,
            SessionState::Running {
                iteration: 2,
                stories: None,
            },
        );
    }

    #[test]
    fn complete_and_max_iterations() {
        for from in [SessionState::Starting, running(3), stuck(3), paused(3)] {
            check(
                from.clone(),
                Event::LoopCompleted { iterations: 3 },
                T0,
                SessionState::Completed { iterations: 3 },
            );
            check(
                from,
                Event::LoopMaxIterations { iterations: 3 },
                T0,
                SessionState::MaxIterations { iterations: 3 },
            );
        }
    }

    #[test]
    fn mux_gone_fails_every_live_state() {
        for from in all_states().into_iter().filter(|s| !s.is_terminal()) {
            check(
                from,
                Event::MuxGone {
                    reason: "tmux session ended unexpectedly".into(),
                },
                T0,
                SessionState::Failed {
                    reason: "tmux session ended unexpectedly".into(),
                },
            );
        }
    }

    #[test]
    fn duration_exceeded_only_after_limit() {
        let ev = Event::DurationExceeded {
            created: T0,
            max: MIN15,
        };
        for from in all_states().into_iter().filter(|s| !s.is_terminal()) {
            assert_eq!(apply(&from, &ev, T0.plus(MIN15)), Err(TransitionError::NotExpired));
            check(
                from,
                ev.clone(),
                T0.plus(MIN15 + Duration::from_millis(1)),
                SessionState::Failed {
                    reason: "duration limit exceeded".into(),
                },
            );
        }
    }

    #[test]
    fn kill_fails_every_live_state() {
        for from in all_states().into_iter().filter(|s| !s.is_terminal()) {
            check(
                from,
                Event::Kill {
                    reason: "Task completed".into(),
                },
                T0,
                SessionState::Failed {
                    reason: "Task completed".into(),
                },
            );
        }
    }

    #[test]
    fn terminal_states_accept_nothing() {
        for from in all_states().into_iter().filter(|s| s.is_terminal()) {
            for ev in all_events() {
                assert_eq!(
                    apply(&from, &ev, T0.plus(MIN15 * 4)),
                    Err(TransitionError::Terminal { state: from.name() })
                );
            }
        }
    }

    #[test]
    fn rejected_pairs() {
        check_refused(SessionState::Starting, Event::Resume);
        check_refused(SessionState::Starting, Event::Activity);
        check_refused(
            SessionState::Starting,
            Event::Idle {
                last_activity: T0,
                stuck_after: MIN15,
            },
        );
        check_refused(
            SessionState::Starting,
            Event::LoopBlocked {
                iteration: 1,
                reason: "r".into(),
            },
        );
        check_refused(running(1), Event::Resume);
        check_refused(running(1), Event::Activity);
        check_refused(paused(1), Event::Pause);
        check_refused(
            paused(1),
            Event::LoopRunning {
                iteration: 2,
                stories: None,
            },
        );
        check_refused(
            paused(1),
            Event::Idle {
                last_activity: T0,
                stuck_after: MIN15,
            },
        );
        check_refused(paused(1), Event::Activity);
        check_refused(stuck(1), Event::Resume);
        check_refused(
            stuck(1),
            Event::Idle {
                last_activity: T0,
                stuck_after: MIN15,
            },
        );
        check_refused(blocked(1), Event::Pause);
        check_refused(
            blocked(1),
            Event::LoopRunning {
                iteration: 2,
                stories: None,
            },
        );
        check_refused(
            blocked(1),
            Event::Idle {
                last_activity: T0,
                stuck_after: MIN15,
            },
        );
        check_refused(blocked(1), Event::Activity);
        check_refused(blocked(1), Event::LoopCompleted { iterations: 1 });
    }

    #[test]
    fn display_is_a_word_and_details() {
        assert_eq!(
            SessionState::Running {
                iteration: 3,
                stories: Some("2/5".into())
            }
            .to_string(),
            "running (iteration 3, 2/5 stories)"
        );
        assert_eq!(
            SessionState::Failed {
                reason: "Task completed".into()
            }
            .to_string(),
            "failed (Task completed)"
        );
        assert_eq!(SessionState::Starting.to_string(), "starting");
        assert_eq!(SessionState::MaxIterations { iterations: 10 }.name(), "max-iterations");
    }

    #[test]
    fn state_serializes_with_kind_tag() {
        let json = serde_json::to_string(&running(3)).expect("serializes");
        assert_eq!(json, r#"{"kind":"running","iteration":3,"stories":"1/3"}"#);
        let back: SessionState = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, running(3));
    }
}
