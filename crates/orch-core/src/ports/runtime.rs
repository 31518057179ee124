//! The [`LoopRuntime`] port: each session's own loop directory and the hydralph protocol
//! spoken through it (the loop script, its prompt and PRD copy, `status.json`, the `.pause`
//! marker, the `inject.d/` inbox and the agent log), plus reading the user's input files (the
//! PRD it copies, an external loop script).

use crate::id::SessionId;
use crate::loop_report::LoopReport;
use crate::time::Timestamp;
use std::path::{Path, PathBuf};

/// A runtime directory to create for a new session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeRequest<'a> {
    /// The session.
    pub id: &'a SessionId,
    /// The checked PRD text to copy (the session's own copy).
    pub prd: &'a [u8],
    /// Where the agent works (named in the prompt).
    pub agent_dir: &'a Path,
    /// The text of an external loop script to use instead of the embedded one.
    pub external_loop: Option<&'a [u8]>,
}

/// One session of a [`LoopRuntime::read_many`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadAsk<'a> {
    /// The session.
    pub id: &'a SessionId,
    /// Whether its inbox may hold messages: a message was queued through the orchestrator
    /// since its inbox was last seen empty. When `false` the inbox need not be counted (at
    /// a thousand sessions that is a thousand lookups of a directory that does not exist).
    pub inbox: bool,
}

impl<'a> ReadAsk<'a> {
    /// An ask for `id` whose inbox is counted.
    pub fn new(id: &'a SessionId) -> Self {
        ReadAsk { id, inbox: true }
    }
}

/// What the loop's directory shows at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct LoopReading {
    /// The loop's last `status.json`, if it has written a readable one.
    pub report: Option<LoopReport>,
    /// When `status.json` last changed, if known.
    pub changed: Option<Timestamp>,
    /// Messages queued in the inbox and not yet taken into a prompt.
    pub queued: usize,
    /// Whether the loop's pause marker is set, where the reading says (the original tool's
    /// shared directory, whose loop reports no pause of its own); `None` otherwise.
    pub paused: Option<bool>,
}

impl LoopReading {
    /// A reading of `report`, changed at `changed`, with `queued` waiting messages.
    pub fn new(report: Option<LoopReport>, changed: Option<Timestamp>, queued: usize) -> Self {
        LoopReading {
            report,
            changed,
            queued,
            paused: None,
        }
    }

    /// This reading, saying whether the pause marker is set.
    pub fn with_paused(mut self, paused: Option<bool>) -> Self {
        self.paused = paused;
        self
    }
}

/// What removing a session's directory does with its logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogDisposal {
    /// Keep the agent log, progress notes, last report and PRD copy in the project's archive
    /// (`.hydra/archive/<id>/` in the file adapter).
    Archive,
    /// Delete them with the rest.
    Delete,
}

/// Errors of a [`LoopRuntime`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// An input file (a PRD, a loop script) cannot be used; `why` says what is wrong.
    #[error("{path}: {why}")]
    Prd {
        /// The PRD file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The session's runtime directory already exists.
    #[error("runtime directory {path} already exists")]
    Exists {
        /// The directory.
        path: PathBuf,
    },
    /// The session has no runtime directory (a session of another tool, say).
    #[error("session {id} has no runtime directory at {path}")]
    Missing {
        /// The session.
        id: SessionId,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// A file operation failed.
    #[error("failed to {op} {path}")]
    Io {
        /// What was attempted.
        op: &'static str,
        /// On what.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Each session's own loop directory (`.hydra/ralph/<id>/` in the file adapter).
pub trait LoopRuntime: Send + Sync {
    /// The bytes of a user-given input file at `path` (a PRD, a loop script): a regular file
    /// of bounded size. The core checks what they say.
    ///
    /// Errors: `Prd` when it cannot be read, is not a file or is too large.
    fn read_input(&self, path: &Path) -> Result<Vec<u8>, RuntimeError>;

    /// Replaces the input file at `path` (the project's PRD, its progress merged back) with
    /// `bytes` in one atomic step, keeping its permissions.
    ///
    /// Errors: `Prd` when it is not a regular file, `Io`.
    fn replace_input(&self, path: &Path, bytes: &[u8]) -> Result<(), RuntimeError>;

    /// The session's own PRD copy (the one its agent marks stories done in).
    ///
    /// Errors: `Missing` when the session has no directory, `Prd` when the copy cannot be read.
    fn read_prd_copy(&self, id: &SessionId) -> Result<Vec<u8>, RuntimeError>;

    /// Creates the session's directory with the loop script, prompt and PRD copy (the inbox
    /// comes with the first queued message).
    ///
    /// Errors: `Exists` when the directory exists, `Io` (nothing is left half-made).
    fn create(&self, req: &RuntimeRequest<'_>) -> Result<(), RuntimeError>;

    /// What the loop has reported, when, and how many messages wait. Never fails: what cannot
    /// be read is absent.
    fn read(&self, id: &SessionId) -> LoopReading;

    /// [`read`](Self::read) of each session asked, in order: what a refresh of every
    /// session asks, which an adapter can answer with less work than one call per session.
    /// Where an ask says its inbox holds no message, the adapter may skip counting it (and
    /// report none).
    fn read_many(&self, asks: &[ReadAsk<'_>]) -> Vec<LoopReading> {
        asks.iter().map(|a| self.read(a.id)).collect()
    }

    /// What the original hydra tool's loop directory of a session working in `agent_dir`
    /// shows (`<agent_dir>/.hydra/ralph/` in the file adapter: its shared `status.json` and
    /// `.pause` marker), unattributed: see [`foreign_reading`](crate::foreign_reading). Never
    /// fails: what cannot be read is absent.
    fn read_foreign(&self, agent_dir: &Path) -> LoopReading;

    /// Sets or clears the original tool's pause marker for the loops working in `agent_dir`,
    /// which its loop waits on between iterations.
    ///
    /// Errors: `Io` (its loop directory does not exist, say).
    fn set_foreign_paused(&self, agent_dir: &Path, paused: bool) -> Result<(), RuntimeError>;

    /// Sets or clears the checkpoint-pause marker the loop waits on between iterations.
    ///
    /// Errors: `Missing` when the session has no directory, `Io`.
    fn set_paused(&self, id: &SessionId, paused: bool) -> Result<(), RuntimeError>;

    /// Makes a loop that waits for a usage limit to reset try again now.
    ///
    /// Errors: `Missing`, `Io`.
    fn retry_now(&self, id: &SessionId) -> Result<(), RuntimeError>;

    /// Queues `message` for the agent's next prompt (whole messages only: the loop never sees
    /// half of one, never loses or repeats one).
    ///
    /// Errors: `Missing`, `Io`.
    fn queue_message(&self, id: &SessionId, message: &str, now: Timestamp) -> Result<(), RuntimeError>;

    /// Forgets the loop's last report (before a new loop starts in the directory).
    ///
    /// Errors: `Io`.
    fn clear_report(&self, id: &SessionId) -> Result<(), RuntimeError>;

    /// Removes the session's directory, archiving its logs first when `logs` says so; a missing
    /// directory is `Ok`.
    ///
    /// Errors: `Io` (an archive that cannot be written leaves the directory in place).
    fn remove(&self, id: &SessionId, logs: LogDisposal) -> Result<(), RuntimeError>;

    /// The sessions that have a directory.
    ///
    /// Errors: `Io` when the directory of directories cannot be read.
    fn list(&self) -> Result<Vec<SessionId>, RuntimeError>;

    /// The last `lines` lines of the agent's log, or `None` when it has printed nothing yet.
    ///
    /// Errors: `Io`.
    fn log_tail(&self, id: &SessionId, lines: usize) -> Result<Option<String>, RuntimeError>;

    /// When the agent's log last grew (the loop copies the agent's output into it as it is
    /// printed), or `None` when it has none or the adapter cannot tell (the default). Output
    /// past the log's size limit does not move it, so it is never later than the pane's own
    /// last output.
    fn log_changed(&self, _id: &SessionId) -> Option<Timestamp> {
        None
    }
}
