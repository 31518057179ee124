//! The persisted session record: the seed's JSON, plus what a restart needs, and
//! [`SessionRecord::transition`], the one place a state change is booked.

use crate::config::{PauseMode, SessionConfig};
use crate::events::LifecycleEvent;
use crate::id::SessionId;
use crate::intent::{Cleanup, KeptWorktree, Lease};
use crate::loop_report::LoopPhase;
use crate::ports::MuxServer;
use crate::state::{apply, Event, SessionState, TransitionError};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// The schema version this build writes. Records without one are version 0 (the original
/// hydra-orchestrator) and are migrated on load; records of a newer version are left alone.
pub const CURRENT_SCHEMA_VERSION: u32 = 2;

/// One session as stored in `.hydra/orchestrator/sessions/<id>.json`.
///
/// Field names are the seed's, so records written by the original tool load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SessionRecord {
    /// Format version; absent (0) in records of the original tool.
    #[serde(default)]
    pub schema_version: u32,
    /// The session's id.
    pub id: SessionId,
    /// A name chosen by the user, usable wherever the id is.
    #[serde(default)]
    pub name: Option<String>,
    /// Name of its tmux session (`hydralph-<id>`).
    pub tmux_session: String,
    /// The tmux server it lives on; `None` in records that predate this field (the server of
    /// whichever command looks at them).
    #[serde(default)]
    pub tmux_server: Option<MuxServer>,
    /// The tag of the project that owns the tmux session (see [`crate::project_tag`]).
    #[serde(default)]
    pub project_tag: Option<String>,
    /// The PRD the agent works on.
    pub prd_path: PathBuf,
    /// Iteration limit of the loop.
    pub max_iterations: u32,
    /// Wall-clock limit in seconds.
    pub max_duration_secs: u64,
    /// The agent program.
    pub agent_cli: String,
    /// The agent's extra arguments, as given.
    #[serde(default)]
    pub agent_flags: String,
    /// Where the session was asked to work (the repository, for worktree sessions).
    pub working_dir: PathBuf,
    /// Whether the session has its own worktree.
    #[serde(default)]
    pub use_worktree: bool,
    /// The worktree's branch.
    #[serde(default)]
    pub branch_name: Option<String>,
    /// The worktree's path.
    #[serde(default)]
    pub worktree_path: Option<PathBuf>,
    /// The port allocated with the worktree.
    #[serde(default)]
    pub allocated_port: Option<u16>,
    /// Creation time in whole seconds since the epoch (the seed's field).
    pub created_at: u64,
    /// Creation time in milliseconds; 0 in old records, where `created_at` is used.
    #[serde(default)]
    pub created_at_ms: u64,
    /// Lifecycle state.
    #[serde(default = "starting")]
    pub state: SessionState,
    /// The latest iteration the loop reported (kept when the session ends).
    #[serde(default)]
    pub iteration: u32,
    /// The latest story count the loop reported, `"done/total"` (kept when the session ends).
    #[serde(default)]
    pub stories: Option<String>,
    /// The phase the loop last reported (a checkpoint pause is "pausing" until it says paused).
    #[serde(default)]
    pub loop_phase: Option<LoopPhase>,
    /// Latest activity seen (pane output, status change, our own control actions).
    #[serde(default)]
    pub last_activity: Timestamp,
    /// When the state last changed: news older than this (a replayed pulse) is stale.
    #[serde(default)]
    pub last_transition: Timestamp,
    /// Stuck threshold in seconds; the policy default when absent.
    #[serde(default)]
    pub stuck_after_secs: Option<u64>,
    /// How `pause` stops this session.
    #[serde(default)]
    pub pause_mode: PauseMode,
    /// Whether the pane's process group is stopped with SIGSTOP right now.
    #[serde(default)]
    pub frozen: bool,
    /// The session's own runtime directory (`.hydra/ralph/<id>/`); `None` for sessions of the
    /// original tool, whose loop shares `.hydra/ralph/`.
    #[serde(default)]
    pub runtime_dir: Option<PathBuf>,
    /// An external loop script used instead of the embedded one.
    #[serde(default)]
    pub loop_script: Option<PathBuf>,
    /// Base revision of the worktree branch, as asked.
    #[serde(default)]
    pub base_ref: Option<String>,
    /// The commit the worktree branch started from, when the spawn created the branch.
    #[serde(default)]
    pub base_commit: Option<String>,
    /// The branch HEAD was on when the worktree branch was made from it (what `merge`
    /// merges into by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_branch: Option<String>,
    /// The PRD stories this session claimed (`None`: a record from before claims, which
    /// holds none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed: Option<Vec<String>>,
    /// How the agent is run (`None`: a record from before profiles: the plain program).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<crate::AgentProfile>,
    /// Iterations without progress after which the loop blocks (0: off).
    #[serde(default)]
    pub no_progress_limit: u32,
    /// The cost limit, in millionths of a USD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cost_micros: Option<u64>,
    /// A usage-limit wait in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<Waiting>,
    /// Time spent in usage-limit waits so far, in milliseconds (the duration rule does not
    /// count it).
    #[serde(default)]
    pub waited_ms: u64,
    /// The cost the agent reported, in millionths of a USD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_micros: Option<u64>,
    /// The tokens the agent reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
    /// Messages queued for the agent and not taken into a prompt yet, as last seen; raised by
    /// each message the orchestrator queues. A refresh of every session counts the inbox only
    /// while this is over 0.
    #[serde(default)]
    pub queued: usize,
    /// When the session reached a terminal state.
    #[serde(default)]
    pub ended_at: Option<Timestamp>,
    /// Pause of the loop between iterations, in milliseconds.
    #[serde(default = "default_delay_ms")]
    pub loop_delay_ms: u64,
    /// How many times the loop was started (1 at spawn, +1 per restart); the loop writes it
    /// into its reports, so a report of an earlier run is recognised as stale.
    #[serde(default)]
    pub run: u32,
    /// Set while `spawn` is still creating the session's parts (worktree, runtime directory,
    /// tmux session); a dead owner means the spawn was interrupted.
    #[serde(default)]
    pub spawning: Option<Lease>,
    /// Slow clean-up work decided and not yet finished.
    #[serde(default)]
    pub cleanup: Option<Cleanup>,
    /// The worktree kept at clean-up because it holds work.
    #[serde(default)]
    pub worktree_kept: Option<KeptWorktree>,
    /// The program of the session's pane as last seen running (its loop), so one session can
    /// be probed through the operating system instead of the multiplexer; `None` until a
    /// look sees the pane with its pid, and after the loop is restarted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pane_process: Option<PaneProcess>,
    /// Incremented by every save, so concurrent writers can be checked for lost updates.
    #[serde(default)]
    pub revision: u64,
}

/// One process, named so that a reused pid is told apart: its pid and its start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaneProcess {
    /// The process id (the pane's process group leader).
    pub pid: u32,
    /// When it started, in the operating system's own unit (clock ticks since boot on Linux).
    pub start: u64,
}

fn default_delay_ms() -> u64 {
    2000
}

fn starting() -> SessionState {
    SessionState::Starting
}

/// A usage-limit wait: until when, why, since when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    /// When the loop retries.
    pub until: Timestamp,
    /// The agent's message.
    pub reason: String,
    /// When the wait began.
    pub since: Timestamp,
}

/// USD in millionths, rounded (the limits are kept as whole millionths).
pub fn micros_from_usd(usd: f64) -> u64 {
    (usd * 1_000_000.0).round() as u64
}

/// Millionths of a USD as USD.
pub fn usd_from_micros(micros: u64) -> f64 {
    micros as f64 / 1_000_000.0
}

/// Millionths of a USD as decimal text (`1234567` -> `"1.234567"`), which [`usd_micros`]
/// reads back.
pub fn usd_text(micros: u64) -> String {
    format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

/// USD as decimal text (`"0.123456"`) in millionths; `None` when it is not a plain number.
pub fn usd_micros(text: &str) -> Option<u64> {
    let t = text.trim();
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    if whole.is_empty() && frac.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let w: u64 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let mut f = frac.to_owned();
    f.truncate(6);
    while f.len() < 6 {
        f.push('0');
    }
    w.checked_mul(1_000_000)?.checked_add(f.parse().ok()?)
}

impl SessionRecord {
    /// A new record in state `Starting` for `config`, created at `now`.
    pub fn new(id: SessionId, config: &SessionConfig, now: Timestamp) -> Self {
        SessionRecord {
            schema_version: CURRENT_SCHEMA_VERSION,
            tmux_session: id.tmux_name(),
            id,
            name: config.name.clone(),
            tmux_server: None,
            project_tag: None,
            prd_path: config.prd_path.clone(),
            max_iterations: config.max_iterations,
            max_duration_secs: config.max_duration.as_secs().max(1),
            agent_cli: config.agent_cli.clone(),
            agent_flags: config.agent_flags.clone(),
            working_dir: config.working_dir.clone(),
            use_worktree: config.use_worktree,
            branch_name: config.branch_name.clone(),
            worktree_path: None,
            allocated_port: None,
            created_at: now.as_secs(),
            created_at_ms: now.as_millis(),
            state: SessionState::Starting,
            iteration: 0,
            stories: None,
            loop_phase: None,
            last_activity: now,
            last_transition: now,
            stuck_after_secs: Some(config.stuck_after.as_secs().max(1)),
            pause_mode: config.pause_mode,
            frozen: false,
            runtime_dir: None,
            loop_script: config.loop_script.clone(),
            base_ref: config.base_ref.clone(),
            base_commit: None,
            base_branch: None,
            claimed: config.stories.clone(),
            profile: config.agent_profile.clone(),
            no_progress_limit: config.no_progress_limit,
            max_cost_micros: config.max_cost_usd.map(micros_from_usd),
            waiting: None,
            waited_ms: 0,
            cost_micros: None,
            tokens: None,
            queued: 0,
            ended_at: None,
            loop_delay_ms: crate::time::duration_ms(config.loop_delay),
            run: 1,
            spawning: None,
            cleanup: None,
            worktree_kept: None,
            pane_process: None,
            revision: 0,
        }
    }

    /// Creation time, precise to the millisecond where the record knows it.
    pub fn created(&self) -> Timestamp {
        if self.created_at_ms > 0 {
            Timestamp(self.created_at_ms)
        } else {
            Timestamp::from_secs(self.created_at)
        }
    }

    /// The wall-clock limit.
    pub fn max_duration(&self) -> Duration {
        Duration::from_secs(self.max_duration_secs)
    }

    /// The stuck threshold, or `default` when the record has none.
    pub fn stuck_after(&self, default: Duration) -> Duration {
        self.stuck_after_secs.map(Duration::from_secs).unwrap_or(default)
    }

    /// The directory the agent works in: its worktree, else `working_dir`.
    pub fn agent_dir(&self) -> &std::path::Path {
        self.worktree_path.as_deref().unwrap_or(&self.working_dir)
    }

    /// The next time the clock alone can change this session: its duration limit, and for a
    /// running session the moment its silence reaches the stuck threshold. `None` when
    /// nothing is pending (an ended, paused or blocked session).
    pub fn next_deadline(&self, default_stuck_after: Duration) -> Option<Timestamp> {
        if self.state.is_terminal() {
            return None;
        }
        let expiry = self
            .created()
            .plus(self.waited(self.waiting.as_ref().map_or(Timestamp(0), |w| w.until)))
            .plus(self.max_duration())
            .plus(Duration::from_millis(1));
        let stuck = match (&self.state, &self.waiting) {
            // A session waiting for a usage limit is not stuck; its next look is the retry.
            (_, Some(w)) => Some(w.until),
            (SessionState::Running { .. }, None) => {
                Some(self.last_activity.plus(self.stuck_after(default_stuck_after)))
            }
            _ => None,
        };
        Some(stuck.map_or(expiry, |s| s.min(expiry)))
    }

    /// Time spent in usage-limit waits, the one in progress counted up to `now`.
    pub fn waited(&self, now: Timestamp) -> Duration {
        let current = self
            .waiting
            .as_ref()
            .and_then(|w| now.since(w.since))
            .unwrap_or_default();
        Duration::from_millis(self.waited_ms) + current
    }

    /// Whether the session was started by the original tool (no runtime directory of its own).
    pub fn is_foreign(&self) -> bool {
        self.runtime_dir.is_none()
    }

    /// Applies `event` at `now` and books everything a transition changes, in one place: the
    /// state, the iteration and story count (never moving backwards), the latest activity, the
    /// time of the transition, the end time, and the freeze flag. Returns the event announcing
    /// it; on refusal nothing changes.
    ///
    /// Errors: the [`TransitionError`] of [`apply`].
    pub fn transition(&mut self, event: &Event, now: Timestamp) -> Result<LifecycleEvent, TransitionError> {
        let from = self.state.clone();
        let to = apply(&from, event, now)?;
        if !matches!(to, SessionState::Failed { .. }) {
            self.iteration = self.iteration.max(to.iteration());
        }
        if let Some(stories) = to.stories() {
            self.stories = Some(stories.to_owned());
        }
        if !matches!(event, Event::Idle { .. }) {
            self.last_activity = self.last_activity.max(now);
        }
        self.last_transition = self.last_transition.max(now);
        if to.is_terminal() {
            self.ended_at = Some(now);
            self.frozen = false;
            self.spawning = None;
        }
        if matches!(event, Event::Resume) {
            self.frozen = false;
        }
        self.state = to;
        Ok(LifecycleEvent::transition(self, &from, event, now))
    }

    /// Brings a loaded record to [`CURRENT_SCHEMA_VERSION`].
    ///
    /// Version 0 records (the original tool's) live on the default tmux server and get their
    /// creation time as last activity; version 1 records get their iteration from their state.
    /// Returns `Err(version)` when the record is from a newer build.
    pub fn migrate(mut self) -> Result<Self, u32> {
        match self.schema_version {
            0 => {
                if self.last_activity == Timestamp(0) {
                    self.last_activity = self.created();
                }
                if self.created_at_ms == 0 {
                    self.created_at_ms = self.created().as_millis();
                }
                if self.tmux_server.is_none() {
                    self.tmux_server = Some(MuxServer::Default);
                }
                self.schema_version = 1;
                self.migrate()
            }
            1 => {
                self.iteration = self.iteration.max(self.state.iteration());
                if self.last_transition == Timestamp(0) {
                    self.last_transition = self.last_activity;
                }
                if self.stories.is_none() {
                    self.stories = self.state.stories().map(str::to_owned);
                }
                self.run = self.run.max(1);
                self.schema_version = CURRENT_SCHEMA_VERSION;
                Ok(self)
            }
            CURRENT_SCHEMA_VERSION => Ok(self),
            v => Err(v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testing::SEED_RECORD;

    fn record() -> SessionRecord {
        SessionRecord::new(SessionId("r1".into()), &SessionConfig::default(), Timestamp(1_000))
    }

    #[test]
    fn usd_is_read_and_written_in_millionths() {
        assert_eq!(usd_micros("0.123456"), Some(123_456));
        assert_eq!(usd_micros(" 12 "), Some(12_000_000));
        assert_eq!(usd_micros(".5"), Some(500_000));
        assert_eq!(usd_micros("1.23456789"), Some(1_234_567), "beyond millionths is cut");
        for bad in ["", ".", "-1", "1e3", "1.2.3", "abc", "$5"] {
            assert_eq!(usd_micros(bad), None, "{bad:?}");
        }
        for m in [0, 1, 999_999, 1_000_000, 1_234_567, 987_654_321_000] {
            assert_eq!(usd_micros(&usd_text(m)), Some(m), "{m}");
        }
        assert_eq!(usd_text(1_234_567), "1.234567");
        assert_eq!(micros_from_usd(12.5), 12_500_000);
        assert_eq!(micros_from_usd(0.1234567), 123_457, "rounded");
        assert!((usd_from_micros(12_500_000) - 12.5).abs() < 1e-9);
    }

    #[test]
    fn seed_record_deserializes_and_migrates() {
        let rec: SessionRecord = serde_json::from_str(SEED_RECORD).expect("seed record parses");
        assert_eq!(rec.schema_version, 0);
        assert_eq!(rec.state, SessionState::Starting);
        let rec = rec.migrate().expect("v0 migrates");
        assert_eq!(rec.schema_version, CURRENT_SCHEMA_VERSION);
        assert_eq!(rec.last_activity, Timestamp::from_secs(1_706_112_345));
        assert_eq!(rec.allocated_port, Some(8080));
        assert_eq!(
            rec.tmux_server,
            Some(MuxServer::Default),
            "the original tool used the default server"
        );
        assert!(rec.is_foreign());
    }

    #[test]
    fn seed_record_round_trips() {
        let rec: SessionRecord = serde_json::from_str(SEED_RECORD).expect("parses");
        let json = serde_json::to_string_pretty(&rec).expect("serializes");
        let value: serde_json::Value = serde_json::from_str(&json).expect("json");
        let seed: serde_json::Value = serde_json::from_str(SEED_RECORD).expect("json");
        for (k, v) in seed.as_object().expect("object") {
            assert_eq!(&value[k], v, "field {k} changed in the round trip");
        }
        let back: SessionRecord = serde_json::from_str(&json).expect("parses again");
        assert_eq!(back, rec);
    }

    #[test]
    fn future_schema_is_refused_with_its_version() {
        let mut rec: SessionRecord = serde_json::from_str(SEED_RECORD).expect("parses");
        rec.schema_version = 99;
        assert_eq!(rec.migrate().expect_err("refused"), 99);
    }

    #[test]
    fn transition_books_state_times_and_iteration_together() {
        let mut r = record();
        let ev = r
            .transition(
                &Event::LoopRunning {
                    iteration: 3,
                    stories: Some("1/4".into()),
                },
                Timestamp(2_000),
            )
            .expect("running");
        assert_eq!(ev.data["iteration"], 3);
        assert_eq!((r.iteration, r.stories.as_deref()), (3, Some("1/4")));
        assert_eq!(
            (r.last_activity, r.last_transition),
            (Timestamp(2_000), Timestamp(2_000))
        );
        let ev = r
            .transition(&Event::Kill { reason: "stop".into() }, Timestamp(3_000))
            .expect("kill");
        assert_eq!(r.iteration, 3, "a kill keeps the iteration");
        assert_eq!(ev.data["iteration"], 3, "and so does its event");
        assert_eq!(r.ended_at, Some(Timestamp(3_000)));
        assert!(r.transition(&Event::Pause, Timestamp(4_000)).is_err());
        assert_eq!(r.last_transition, Timestamp(3_000), "a refusal changes nothing");
    }

    #[test]
    fn the_next_deadline_is_the_nearer_of_stuck_and_expiry() {
        let mut r = record();
        r.max_duration_secs = 3600;
        r.stuck_after_secs = Some(60);
        assert_eq!(
            r.next_deadline(Duration::from_secs(900)),
            Some(Timestamp(1_000 + 3_600_000 + 1))
        );
        r.state = SessionState::Running {
            iteration: 1,
            stories: None,
        };
        r.last_activity = Timestamp(5_000);
        assert_eq!(r.next_deadline(Duration::from_secs(900)), Some(Timestamp(65_000)));
        r.state = SessionState::Completed { iterations: 1 };
        assert_eq!(r.next_deadline(Duration::from_secs(900)), None);
    }

    #[test]
    fn a_completion_after_any_path_sets_the_end_time() {
        let mut r = record();
        r.transition(&Event::LoopCompleted { iterations: 2 }, Timestamp(5_000))
            .expect("complete");
        assert_eq!(r.ended_at, Some(Timestamp(5_000)));
        assert_eq!(r.iteration, 2);
    }
}
