//! The ports: narrow traits for the outside world, each with its error type. Adapter crates
//! implement them; the facade only ever talks to these.

use crate::events::{LifecycleEvent, Pulse};
use crate::id::SessionId;
use crate::record::SessionRecord;
use crate::time::Timestamp;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// Clock

/// The source of "now". The facade uses the system clock; tests use a manual one.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> Timestamp;
}

// ---------------------------------------------------------------------------------------------
// Multiplexer

/// A session to create: a program run directly (no shell) with env and cwd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpawnSpec {
    /// Session name, e.g. `hydralph-a1b2c3d4`.
    pub name: String,
    /// The program and its arguments, passed as argv.
    pub argv: Vec<String>,
    /// Environment variables set for the program.
    pub env: Vec<(String, String)>,
    /// Working directory of the program.
    pub cwd: PathBuf,
}

/// One session as the multiplexer shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaneInfo {
    /// Session name.
    pub session: String,
    /// Pid of the pane's program (its process group leader).
    pub pane_pid: Option<u32>,
    /// The program exited and the pane is kept for its status.
    pub dead: bool,
    /// Exit status of a dead pane (briefly unknown: tmux sees the terminal close before it
    /// reaps the process).
    pub exit_status: Option<i32>,
    /// Last output in the pane.
    pub activity: Option<Timestamp>,
}

/// Every session on the server, read in one call.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MuxSnapshot {
    /// One entry per session (its first pane).
    pub sessions: Vec<PaneInfo>,
}

impl MuxSnapshot {
    /// The entry of session `name`, matched exactly.
    pub fn get(&self, name: &str) -> Option<&PaneInfo> {
        self.sessions.iter().find(|p| p.session == name)
    }
}

/// How to attach a terminal to a session: the argv to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachCommand {
    /// Program and arguments (`tmux attach-session -t =name`, or `switch-client` inside tmux).
    pub argv: Vec<String>,
}

/// Errors of a [`Multiplexer`].
#[derive(Debug, thiserror::Error)]
pub enum MuxError {
    /// The multiplexer program is not installed.
    #[error("tmux is not installed (or not on PATH); install it, e.g. `apt-get install tmux` or `brew install tmux`")]
    NotInstalled,
    /// No server runs, so there are no sessions to act on.
    #[error("no tmux server is running{}; start a session first", socket.as_deref().map(|s| format!(" on socket {s}")).unwrap_or_default())]
    NoServer {
        /// The socket asked for, if any.
        socket: Option<String>,
    },
    /// The named session does not exist.
    #[error("tmux session {name} not found; `hydra ls` lists the live ones")]
    NotFound {
        /// The session name.
        name: String,
    },
    /// A session with this name already exists.
    #[error("tmux session {name} already exists; pick another id or kill it first")]
    NameTaken {
        /// The session name.
        name: String,
    },
    /// The multiplexer ran and failed.
    #[error("tmux {op} failed: {stderr}")]
    Failed {
        /// The tmux command.
        op: String,
        /// tmux's own message.
        stderr: String,
    },
    /// The multiplexer could not be run or its output not read.
    #[error("failed to run tmux {op}")]
    Io {
        /// The tmux command.
        op: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// A terminal multiplexer (tmux) holding one session per agent.
pub trait Multiplexer: Send + Sync {
    /// Creates a detached session `spec.name` running `spec.argv` directly.
    ///
    /// Errors: `NameTaken` when the name exists, `NotInstalled`, `Failed` with tmux's stderr.
    fn create(&self, spec: &SpawnSpec) -> Result<(), MuxError>;

    /// Every session on the server in one call. No server is an empty snapshot, not an error.
    ///
    /// Errors: `NotInstalled`, `Failed`, `Io`.
    fn snapshot(&self) -> Result<MuxSnapshot, MuxError>;

    /// Types `text` literally into the session's pane, then Enter when `enter`.
    ///
    /// Errors: `NotFound` (or `NoServer`) when the session is gone, `Failed`.
    fn send_text(&self, name: &str, text: &str, enter: bool) -> Result<(), MuxError>;

    /// The last `lines` lines of the pane (history included).
    ///
    /// Errors: `NotFound` (or `NoServer`) when the session is gone, `Failed`.
    fn capture(&self, name: &str, lines: u32) -> Result<String, MuxError>;

    /// Ends the session and its processes. A session that is already gone is `Ok`.
    ///
    /// Errors: `NotInstalled`, `Failed`.
    fn kill(&self, name: &str) -> Result<(), MuxError>;

    /// How to attach a terminal to the session.
    ///
    /// Errors: `NotFound` (or `NoServer`) when the session is gone.
    fn attach_command(&self, name: &str) -> Result<AttachCommand, MuxError>;
}

// ---------------------------------------------------------------------------------------------
// Store

/// A record file that could not be loaded, and where it was moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadProblem {
    /// The file as found.
    pub path: PathBuf,
    /// Where it was moved aside, if it was.
    pub quarantined: Option<PathBuf>,
    /// Why it did not load.
    pub reason: String,
}

/// The result of loading every record: the good ones and the problems, side by side.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LoadReport {
    /// Every record that loaded, sorted by creation time.
    pub records: Vec<SessionRecord>,
    /// Files that did not load.
    pub problems: Vec<LoadProblem>,
}

/// Proof of holding the store's exclusive lock; dropping it releases the lock.
pub struct LockGuard {
    _release: Box<dyn Send>,
}

impl LockGuard {
    /// Wraps whatever releases the lock when dropped.
    pub fn new(inner: impl Send + 'static) -> Self {
        LockGuard {
            _release: Box::new(inner),
        }
    }
}

impl std::fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LockGuard")
    }
}

/// Errors of a [`Store`].
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
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
    /// A record did not parse (it has been quarantined when the path is shown).
    #[error("session record {path} is unreadable: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// An id that is not a valid [`SessionId`] reached the store.
    #[error(transparent)]
    BadId(#[from] crate::id::IdError),
}

/// Where session records live. The source of truth of the orchestrator.
pub trait Store: Send + Sync {
    /// Writes `record` atomically: a reader sees the old or the new record, never a mix.
    ///
    /// Errors: `BadId` for an invalid id, `Io` when the file cannot be written (the previous
    /// record stays intact).
    fn save(&self, record: &SessionRecord) -> Result<(), StoreError>;

    /// The record of `id`, or `None`.
    ///
    /// Errors: `BadId`, `Corrupt` when the file does not parse, `Io`.
    fn load(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError>;

    /// Every readable record, with a list of the files that were not.
    ///
    /// Errors: `Io` only when the directory itself cannot be read; one bad file never hides
    /// the others.
    fn load_all(&self) -> Result<LoadReport, StoreError>;

    /// Deletes the record of `id`; a missing record is `Ok`.
    ///
    /// Errors: `BadId`, `Io`.
    fn remove(&self, id: &SessionId) -> Result<(), StoreError>;

    /// Takes the store's exclusive lock (across processes), blocking until it is free.
    ///
    /// Errors: `Io` when the lock file cannot be opened.
    fn lock(&self) -> Result<LockGuard, StoreError>;
}

// ---------------------------------------------------------------------------------------------
// EventBus

/// Errors of an [`EventBus`].
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// There is no daemon for this project; events are not delivered.
    #[error("no hydra-mail daemon for this project ({why}); running standalone")]
    Standalone {
        /// Why the daemon is considered absent.
        why: String,
    },
    /// The daemon answered with an error.
    #[error("hydra-mail refused the message: {msg}")]
    Daemon {
        /// The daemon's message.
        msg: String,
    },
    /// The event could not be encoded.
    #[error("failed to encode event for hydra-mail: {0}")]
    Encode(String),
    /// A socket operation failed.
    #[error("failed to {op} hydra-mail socket")]
    Io {
        /// What was attempted.
        op: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Pending events could not all be delivered in time.
    #[error("{pending} event(s) not delivered to hydra-mail within {waited:?}")]
    FlushTimeout {
        /// Events still queued.
        pending: usize,
        /// How long we waited.
        waited: Duration,
    },
}

/// A stream of decoded pulses from subscribed channels.
pub trait Subscription: Send {
    /// The next pulse, or `None` when the subscription has ended for good.
    fn next(&mut self) -> Pin<Box<dyn Future<Output = Option<Pulse>> + Send + '_>>;
}

/// A pub/sub bus (hydra-mail) for lifecycle events.
pub trait EventBus: Send + Sync {
    /// Queues `event` for delivery and returns at once; never waits on the daemon.
    ///
    /// Errors: none for a slow or absent daemon (those are counted and reported by the
    /// adapter); `Encode` when the event cannot be encoded.
    fn publish(&self, event: &LifecycleEvent) -> Result<(), BusError>;

    /// Waits at most `timeout` for queued events to be delivered.
    ///
    /// Errors: `FlushTimeout` with the number still pending.
    fn flush(&self, timeout: Duration) -> Result<(), BusError>;

    /// Subscribes to `channels`. Socket buses need to be called from within an async runtime.
    ///
    /// Errors: `Standalone` when there is no daemon.
    fn subscribe(&self, channels: &[&str]) -> Result<Box<dyn Subscription>, BusError>;
}

// ---------------------------------------------------------------------------------------------
// Worktree

/// A worktree to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorktreeRequest {
    /// The repository (any directory inside it).
    pub repo: PathBuf,
    /// Branch to check out (created from `base` when it does not exist).
    pub branch: String,
    /// Base revision for a new branch (`HEAD` when `None`).
    pub base: Option<String>,
    /// Where to put it (`<repo>/.hydra/worktrees/hydralph-<id>` when `None`).
    pub path: Option<PathBuf>,
    /// The session it is for.
    pub session: SessionId,
}

/// A worktree managed by the adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorktreeInfo {
    /// Its branch.
    pub branch: String,
    /// Its path.
    pub path: PathBuf,
    /// Its allocated port, if any.
    pub port: Option<u16>,
    /// Whether the path exists on disk.
    pub exists: bool,
}

/// What `remove` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoveOutcome {
    /// The worktree is gone and its port freed.
    Removed,
    /// The worktree holds work and was kept (with its port).
    Kept {
        /// Its path.
        path: PathBuf,
        /// Why: dirty files, unmerged commits.
        reasons: Vec<String>,
    },
    /// There was no such worktree (any port was freed).
    NotFound,
}

/// Errors of a [`Worktree`].
#[derive(Debug, thiserror::Error)]
pub enum WorktreeError {
    /// git is not installed.
    #[error("git is not installed (or not on PATH); install git")]
    GitMissing,
    /// The directory is not in a git repository.
    #[error("{path} is not inside a git repository; run `git init` there or pick another working_dir")]
    NotARepo {
        /// The directory.
        path: PathBuf,
    },
    /// The branch name is not valid for git.
    #[error("invalid branch_name {branch:?}: {why}")]
    InvalidBranch {
        /// The name.
        branch: String,
        /// git's or our reason.
        why: String,
    },
    /// The branch is checked out in another worktree.
    #[error("branch {branch} is already checked out at {path}; pick another branch_name")]
    BranchTaken {
        /// The branch.
        branch: String,
        /// Where it is checked out.
        path: PathBuf,
    },
    /// The target path already exists.
    #[error("worktree path {path} already exists; remove it or pick another")]
    PathExists {
        /// The path.
        path: PathBuf,
    },
    /// Every port of the range is allocated.
    #[error("no free port in {start}-{end}; free one with `hydra prune` or widen [ports] in .hydra/wt.toml")]
    RangeExhausted {
        /// First port of the range.
        start: u16,
        /// Last port of the range.
        end: u16,
    },
    /// The worktree configuration is unusable.
    #[error("invalid {path}: {why}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// A post-create hook failed; the worktree was rolled back.
    #[error("post_create hook {hook:?} failed: {output}")]
    Hook {
        /// The hook.
        hook: String,
        /// Its output.
        output: String,
    },
    /// git ran and failed.
    #[error("git {op} failed: {stderr}")]
    Git {
        /// The git command.
        op: String,
        /// git's message.
        stderr: String,
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

/// Per-session git worktrees with allocated ports (hydra-wt compatible).
pub trait Worktree: Send + Sync {
    /// Creates the worktree and allocates a port; on any failure nothing is left behind.
    ///
    /// Errors: `InvalidBranch`, `BranchTaken`, `PathExists`, `RangeExhausted`, `NotARepo`,
    /// `GitMissing`, `Hook`, `Git`, `Io`.
    fn create(&self, req: &WorktreeRequest) -> Result<WorktreeInfo, WorktreeError>;

    /// Removes the worktree of `branch` in `repo` and frees its port, unless it holds work
    /// (uncommitted changes, commits on no other branch or remote) and `force` is false: then
    /// it is kept and `Kept` says why. The branch itself is never deleted.
    ///
    /// Errors: `NotARepo`, `GitMissing`, `Git`, `Io`.
    fn remove(&self, repo: &Path, branch: &str, force: bool) -> Result<RemoveOutcome, WorktreeError>;

    /// The worktrees this adapter manages in `repo`.
    ///
    /// Errors: `NotARepo`, `GitMissing`, `Git`, `Io`.
    fn list(&self, repo: &Path) -> Result<Vec<WorktreeInfo>, WorktreeError>;
}
