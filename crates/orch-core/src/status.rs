//! What `list()` returns: a session's state and the facts a person looks at.

use crate::id::SessionId;
use crate::record::SessionRecord;
use crate::state::SessionState;
use crate::time::Timestamp;
use std::path::PathBuf;
use std::time::Duration;

/// A session as shown to users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionStatus {
    /// The session's id.
    pub id: SessionId,
    /// Lifecycle state (its `Display` is a short word plus details).
    pub state: SessionState,
    /// Time since creation.
    pub duration: Duration,
    /// The tmux session name.
    pub tmux_session: String,
    /// Where the agent works.
    pub working_dir: PathBuf,
    /// Worktree branch, if any.
    pub branch: Option<String>,
    /// Allocated port, if any.
    pub port: Option<u16>,
    /// Latest activity seen.
    pub last_activity: Timestamp,
    /// Creation time.
    pub created: Timestamp,
    /// The agent program.
    pub agent_cli: String,
}

impl SessionStatus {
    /// The status of `record` at `now`.
    pub fn from_record(record: &SessionRecord, now: Timestamp) -> Self {
        let end = record.ended_at.unwrap_or(now);
        SessionStatus {
            id: record.id.clone(),
            state: record.state.clone(),
            duration: end.since(record.created()).unwrap_or_default(),
            tmux_session: record.tmux_session.clone(),
            working_dir: record.agent_dir().to_path_buf(),
            branch: record.branch_name.clone(),
            port: record.allocated_port,
            last_activity: record.last_activity,
            created: record.created(),
            agent_cli: record.agent_cli.clone(),
        }
    }

    /// The JSON object `hydra ls --json` prints for this session.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id.as_str(),
            "state": self.state.name(),
            "detail": self.state.to_string(),
            "iteration": self.state.iteration(),
            "stories": self.state.stories(),
            "reason": self.state.reason(),
            "tmux_session": self.tmux_session,
            "working_dir": self.working_dir,
            "branch": self.branch,
            "port": self.port,
            "agent": self.agent_cli,
            "age_secs": self.duration.as_secs(),
            "created_at": self.created.as_secs(),
            "last_activity": self.last_activity.as_secs(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SessionConfig;

    #[test]
    fn status_reports_age_and_json_fields() {
        let mut rec = SessionRecord::new(
            SessionId("s1".into()),
            &SessionConfig::default(),
            Timestamp::from_secs(100),
        );
        rec.state = SessionState::Running {
            iteration: 3,
            stories: Some("2/5".into()),
        };
        let st = SessionStatus::from_record(&rec, Timestamp::from_secs(160));
        assert_eq!(st.duration, Duration::from_secs(60));
        let j = st.to_json();
        assert_eq!(j["state"], "running");
        assert_eq!(j["iteration"], 3);
        assert_eq!(j["stories"], "2/5");
        assert_eq!(j["age_secs"], 60);
        for key in [
            "id",
            "reason",
            "tmux_session",
            "working_dir",
            "branch",
            "port",
            "last_activity",
        ] {
            assert!(j.get(key).is_some(), "missing {key}");
        }
    }

    #[test]
    fn ended_sessions_stop_ageing() {
        let mut rec = SessionRecord::new(
            SessionId("s1".into()),
            &SessionConfig::default(),
            Timestamp::from_secs(100),
        );
        rec.state = SessionState::Failed { reason: "x".into() };
        rec.ended_at = Some(Timestamp::from_secs(130));
        assert_eq!(
            SessionStatus::from_record(&rec, Timestamp::from_secs(1000)).duration,
            Duration::from_secs(30)
        );
    }
}
