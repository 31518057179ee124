//! What `list()` returns: a session's state and the facts a person looks at.

use crate::id::SessionId;
use crate::loop_report::LoopPhase;
use crate::record::SessionRecord;
use crate::state::SessionState;
use crate::time::Timestamp;
use std::path::PathBuf;
use std::time::Duration;

/// A session as shown to users. Serializable, so a process that looked (a monitor) can hand
/// its look to another that shows it (`hydra ls`); the form is private to one hydra build.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct SessionStatus {
    /// The session's id.
    pub id: SessionId,
    /// Its name, if it was given one.
    pub name: Option<String>,
    /// Lifecycle state (its `Display` is a short word plus details).
    pub state: SessionState,
    /// Time since creation (until the end, for an ended session).
    pub duration: Duration,
    /// The latest iteration the loop reported (kept after the end).
    pub iteration: u32,
    /// The iteration limit the session was started with.
    pub max_iterations: u32,
    /// Stories done, `"done/total"`, as last reported (kept after the end).
    pub stories: Option<String>,
    /// A checkpoint pause was asked for and the loop is still finishing its iteration.
    pub pausing: bool,
    /// The agent's processes are stopped (`pause --now`).
    pub frozen: bool,
    /// The tmux session name.
    pub tmux_session: String,
    /// Where the agent works.
    pub working_dir: PathBuf,
    /// Worktree branch, if any.
    pub branch: Option<String>,
    /// Allocated port, if any.
    pub port: Option<u16>,
    /// The worktree kept at clean-up because it holds work: its path and why.
    pub worktree_kept: Option<(PathBuf, Vec<String>)>,
    /// Latest activity seen.
    pub last_activity: Timestamp,
    /// When the state last changed.
    pub changed_at: Timestamp,
    /// Creation time.
    pub created: Timestamp,
    /// When the session ended, if it has.
    pub ended: Option<Timestamp>,
    /// The agent program.
    pub agent_cli: String,
    /// The PRD the session works on (the project's file, not the session's copy).
    pub prd_path: PathBuf,
    /// The PRD stories the session claimed (`None`: a session from before claims).
    pub claimed: Option<Vec<String>>,
    /// A usage-limit wait in progress: until when, and the agent's message.
    pub waiting: Option<(Timestamp, String)>,
    /// The cost the agent reported, in millionths of a USD.
    pub cost_micros: Option<u64>,
    /// The cost limit, in millionths of a USD.
    pub max_cost_micros: Option<u64>,
    /// The tokens the agent reported.
    pub tokens: Option<u64>,
    /// Messages queued for the agent and not taken into a prompt yet.
    pub queued: usize,
    /// The session was started by the original tool (it has no runtime directory of its own).
    pub foreign: bool,
}

impl SessionStatus {
    /// The status of `record` at `now`.
    pub fn from_record(record: &SessionRecord, now: Timestamp) -> Self {
        Self::from_owned(record.clone(), now)
    }

    /// [`from_record`](Self::from_record) of a record the caller has no more use for: its
    /// strings and paths move into the status instead of being copied (a refresh makes a
    /// status of every record it judged and then drops the record).
    pub fn from_owned(record: SessionRecord, now: Timestamp) -> Self {
        let end = record.ended_at.unwrap_or(now);
        let created = record.created();
        let foreign = record.is_foreign();
        let terminal = record.state.is_terminal();
        let paused_by_marker = matches!(record.state, SessionState::Paused { .. }) && !record.frozen;
        // Before the loop's first count: none of its claimed stories is done yet.
        let stories = match record.stories {
            Some(s) => Some(s),
            None => record.claimed.as_ref().map(|c| format!("0/{}", c.len())),
        };
        SessionStatus {
            id: record.id,
            name: record.name,
            state: record.state,
            duration: end.since(created).unwrap_or_default(),
            iteration: record.iteration,
            max_iterations: record.max_iterations,
            stories,
            pausing: paused_by_marker && record.loop_phase != Some(LoopPhase::Paused) && !foreign,
            frozen: record.frozen,
            tmux_session: record.tmux_session,
            // The agent's directory (see `SessionRecord::agent_dir`).
            working_dir: record.worktree_path.unwrap_or(record.working_dir),
            branch: record.branch_name,
            port: record.allocated_port,
            worktree_kept: record.worktree_kept.map(|k| (k.path, k.reasons)),
            last_activity: record.last_activity,
            changed_at: record.last_transition,
            created,
            ended: record.ended_at,
            agent_cli: record.agent_cli,
            prd_path: record.prd_path,
            claimed: record.claimed,
            waiting: record.waiting.filter(|_| !terminal).map(|w| (w.until, w.reason)),
            cost_micros: record.cost_micros,
            max_cost_micros: record.max_cost_micros,
            tokens: record.tokens,
            queued: record.queued,
            foreign,
        }
    }

    /// The state's word as a person reads it: the state's name, except `pausing` for a
    /// checkpoint pause the loop has not reached yet.
    pub fn state_word(&self) -> &'static str {
        if self.pausing {
            "pausing"
        } else if self.waiting.is_some() && matches!(self.state, SessionState::Running { .. } | SessionState::Starting)
        {
            "waiting"
        } else {
            self.state.name()
        }
    }

    /// Queued messages the agent will not read unless the session is resumed: the session
    /// has ended, or blocked and stopped its loop.
    pub fn undelivered(&self) -> usize {
        let stopped = self.state.is_terminal() || matches!(self.state, SessionState::Blocked { .. });
        if stopped {
            self.queued
        } else {
            0
        }
    }

    /// The JSON object `hydra ls --json` prints for this session.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self.json()).unwrap_or(serde_json::Value::Null)
    }

    /// The same object as [`to_json`](Self::to_json), borrowed and serializable as it is:
    /// what a caller that writes many sessions serializes straight to its output. Paths
    /// that are not UTF-8 are written lossily.
    pub fn json(&self) -> StatusJson<'_> {
        StatusJson {
            id: self.id.as_str(),
            name: self.name.as_deref(),
            state: self.state.name(),
            shown_state: self.state_word(),
            detail: self.state.to_string(),
            iteration: self.iteration,
            max_iterations: self.max_iterations,
            stories: self.stories.as_deref(),
            reason: self.state.reason(),
            pausing: self.pausing,
            frozen: self.frozen,
            tmux_session: &self.tmux_session,
            working_dir: Lossy(&self.working_dir),
            branch: self.branch.as_deref(),
            port: self.port,
            worktree_kept: self.worktree_kept.as_ref().map(|(path, reasons)| KeptJson {
                path: Lossy(path),
                reasons,
            }),
            agent: &self.agent_cli,
            prd: Lossy(&self.prd_path),
            claimed: self.claimed.as_deref(),
            waiting_until: self.waiting.as_ref().map(|(t, _)| t.as_secs()),
            waiting_reason: self.waiting.as_ref().map(|(_, r)| r.as_str()),
            cost_usd: self.cost_micros.map(crate::record::usd_from_micros),
            max_cost_usd: self.max_cost_micros.map(crate::record::usd_from_micros),
            tokens: self.tokens,
            queued_messages: self.queued,
            undelivered_messages: self.undelivered(),
            age_secs: self.duration.as_secs(),
            created_at: self.created.as_secs(),
            ended_at: self.ended.map(Timestamp::as_secs),
            last_activity: self.last_activity.as_secs(),
            foreign: self.foreign,
        }
    }
}

/// A path serialized as text, lossily where it is not UTF-8.
#[derive(Debug, Clone, Copy)]
struct Lossy<'a>(&'a std::path::Path);

impl serde::Serialize for Lossy<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_string_lossy())
    }
}

/// A kept worktree as `hydra ls --json` shows it.
#[derive(Debug, Clone, serde::Serialize)]
struct KeptJson<'a> {
    path: Lossy<'a>,
    reasons: &'a [String],
}

/// One session of `hydra ls --json`, borrowed from a [`SessionStatus`]: see
/// [`SessionStatus::json`]. Its fields are the object's keys, in order.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StatusJson<'a> {
    id: &'a str,
    name: Option<&'a str>,
    state: &'static str,
    shown_state: &'static str,
    detail: String,
    iteration: u32,
    max_iterations: u32,
    stories: Option<&'a str>,
    reason: Option<&'a str>,
    pausing: bool,
    frozen: bool,
    tmux_session: &'a str,
    working_dir: Lossy<'a>,
    branch: Option<&'a str>,
    port: Option<u16>,
    worktree_kept: Option<KeptJson<'a>>,
    agent: &'a str,
    prd: Lossy<'a>,
    claimed: Option<&'a [String]>,
    waiting_until: Option<u64>,
    waiting_reason: Option<&'a str>,
    cost_usd: Option<f64>,
    max_cost_usd: Option<f64>,
    tokens: Option<u64>,
    queued_messages: usize,
    undelivered_messages: usize,
    age_secs: u64,
    created_at: u64,
    ended_at: Option<u64>,
    last_activity: u64,
    foreign: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SessionConfig;

    fn record() -> SessionRecord {
        let mut r = SessionRecord::new(
            SessionId("s1".into()),
            &SessionConfig::default(),
            Timestamp::from_secs(100),
        );
        r.runtime_dir = Some(PathBuf::from("/p/.hydra/ralph/s1"));
        r
    }

    #[test]
    fn status_reports_age_and_json_fields() {
        let mut rec = record();
        rec.state = SessionState::Running {
            iteration: 3,
            stories: Some("2/5".into()),
        };
        rec.iteration = 3;
        rec.stories = Some("2/5".into());
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
            "ended_at",
        ] {
            assert!(j.get(key).is_some(), "missing {key}");
        }
    }

    #[test]
    fn json_keeps_its_key_order_and_writes_odd_paths_lossily() {
        use std::os::unix::ffi::OsStrExt;
        let mut rec = record();
        rec.working_dir = PathBuf::from(std::ffi::OsStr::from_bytes(b"/p/caf\xe9"));
        let st = SessionStatus::from_record(&rec, Timestamp::from_secs(100));
        let text = serde_json::to_string(&st.json()).expect("serialize");
        assert!(
            text.starts_with(r#"{"id":"s1","name":null,"state":"starting","shown_state":"#),
            "{text}"
        );
        assert!(text.ends_with(r#""foreign":false}"#), "{text}");
        assert!(text.contains("\"working_dir\":\"/p/caf\u{fffd}\""), "{text}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).expect("parse"),
            st.to_json()
        );
    }

    #[test]
    fn ended_sessions_stop_ageing_and_keep_iteration_and_stories() {
        let mut rec = record();
        rec.state = SessionState::Failed { reason: "x".into() };
        rec.iteration = 4;
        rec.stories = Some("1/3".into());
        rec.ended_at = Some(Timestamp::from_secs(130));
        let st = SessionStatus::from_record(&rec, Timestamp::from_secs(1000));
        assert_eq!(st.duration, Duration::from_secs(30));
        assert_eq!((st.iteration, st.stories.as_deref()), (4, Some("1/3")));
    }

    #[test]
    fn a_checkpoint_pause_is_pausing_until_the_loop_waits() {
        let mut rec = record();
        rec.state = SessionState::Paused {
            iteration: 1,
            stories: None,
        };
        rec.loop_phase = Some(LoopPhase::Running);
        assert_eq!(SessionStatus::from_record(&rec, Timestamp(0)).state_word(), "pausing");
        rec.loop_phase = Some(LoopPhase::Paused);
        assert_eq!(SessionStatus::from_record(&rec, Timestamp(0)).state_word(), "paused");
        rec.loop_phase = Some(LoopPhase::Running);
        rec.frozen = true;
        assert_eq!(SessionStatus::from_record(&rec, Timestamp(0)).state_word(), "paused");
    }
}
