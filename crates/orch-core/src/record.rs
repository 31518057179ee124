//! The persisted session record: the seed's JSON, plus what a restart needs.

use crate::config::{PauseMode, SessionConfig};
use crate::id::SessionId;
use crate::state::SessionState;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// The schema version this build writes. Records without one are version 0 (the original
/// hydra-orchestrator) and are migrated on load.
pub const CURRENT_SCHEMA_VERSION: u32 = 1;

/// One session as stored in `.hydra/orchestrator/sessions/<id>.json`.
///
/// Field names are the seed's, so records written by the original tool load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// Format version; absent (0) in records of the original tool.
    #[serde(default)]
    pub schema_version: u32,
    /// The session's id.
    pub id: SessionId,
    /// Name of its tmux session (`hydralph-<id>`).
    pub tmux_session: String,
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
    /// Latest activity seen (pane output, status change, our own control actions).
    #[serde(default)]
    pub last_activity: Timestamp,
    /// Stuck threshold in seconds; the policy default when absent.
    #[serde(default)]
    pub stuck_after_secs: Option<u64>,
    /// How `pause` stops this session.
    #[serde(default)]
    pub pause_mode: PauseMode,
    /// Whether the pane's process group is stopped with SIGSTOP right now.
    #[serde(default)]
    pub frozen: bool,
    /// The session's own runtime directory (`.hydra/ralph/<id>/`).
    #[serde(default)]
    pub runtime_dir: Option<PathBuf>,
    /// An external loop script used instead of the embedded one.
    #[serde(default)]
    pub loop_script: Option<PathBuf>,
    /// Base revision of the worktree branch.
    #[serde(default)]
    pub base_ref: Option<String>,
    /// When the session reached a terminal state.
    #[serde(default)]
    pub ended_at: Option<Timestamp>,
    /// Pause of the loop between iterations, in milliseconds.
    #[serde(default = "default_delay_ms")]
    pub loop_delay_ms: u64,
    /// Incremented by every save, so concurrent writers can be checked for lost updates.
    #[serde(default)]
    pub revision: u64,
}

fn default_delay_ms() -> u64 {
    2000
}

fn starting() -> SessionState {
    SessionState::Starting
}

impl SessionRecord {
    /// A new record in state `Starting` for `config`, created at `now`.
    pub fn new(id: SessionId, config: &SessionConfig, now: Timestamp) -> Self {
        SessionRecord {
            schema_version: CURRENT_SCHEMA_VERSION,
            tmux_session: id.tmux_name(),
            id,
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
            last_activity: now,
            stuck_after_secs: Some(config.stuck_after.as_secs().max(1)),
            pause_mode: config.pause_mode,
            frozen: false,
            runtime_dir: None,
            loop_script: config.loop_script.clone(),
            base_ref: config.base_ref.clone(),
            ended_at: None,
            loop_delay_ms: u64::try_from(config.loop_delay.as_millis()).unwrap_or(u64::MAX),
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

    /// Brings a loaded record to [`CURRENT_SCHEMA_VERSION`].
    ///
    /// Version 0 records (the original tool's) get their creation time as last activity.
    /// Returns an error naming the version when the record is from a newer build.
    pub fn migrate(mut self) -> Result<Self, String> {
        match self.schema_version {
            0 => {
                if self.last_activity == Timestamp(0) {
                    self.last_activity = self.created();
                }
                if self.created_at_ms == 0 {
                    self.created_at_ms = self.created().as_millis();
                }
                self.schema_version = CURRENT_SCHEMA_VERSION;
                Ok(self)
            }
            CURRENT_SCHEMA_VERSION => Ok(self),
            v => Err(format!(
                "schema_version {v} is newer than this build understands (up to {CURRENT_SCHEMA_VERSION})"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testing::SEED_RECORD;

    #[test]
    fn seed_record_deserializes_and_migrates() {
        let rec: SessionRecord = serde_json::from_str(SEED_RECORD).expect("seed record parses");
        assert_eq!(rec.schema_version, 0);
        assert_eq!(rec.state, SessionState::Starting);
        let rec = rec.migrate().expect("v0 migrates");
        assert_eq!(rec.schema_version, CURRENT_SCHEMA_VERSION);
        assert_eq!(rec.last_activity, Timestamp::from_secs(1_706_112_345));
        assert_eq!(rec.allocated_port, Some(8080));
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
    fn future_schema_is_refused() {
        let mut rec: SessionRecord = serde_json::from_str(SEED_RECORD).expect("parses");
        rec.schema_version = 99;
        assert!(rec.migrate().expect_err("refused").contains("99"));
    }
}
