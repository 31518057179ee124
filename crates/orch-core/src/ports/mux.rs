//! The [`Multiplexer`] port: a terminal multiplexer (tmux) holding one session per agent.

use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;

/// Which multiplexer server a session lives on. Records keep it, so a command run against
/// another server never mistakes "not on my server" for "gone".
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MuxServer {
    /// The user's default server.
    #[default]
    Default,
    /// A named socket in tmux's socket directory (`tmux -L name`).
    Name(String),
    /// A socket at a path (`tmux -S path`).
    Path(PathBuf),
}

impl fmt::Display for MuxServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MuxServer::Default => f.write_str("the default tmux server"),
            MuxServer::Name(n) => write!(f, "tmux server -L {n}"),
            MuxServer::Path(p) => write!(f, "tmux server -S {}", p.display()),
        }
    }
}

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
    /// The owning project's tag, stored on the session so snapshots say whose it is.
    pub tag: Option<String>,
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
    /// Exit status of a dead pane whose program exited (briefly unknown: tmux sees the
    /// terminal close before it reaps the process).
    pub exit_status: Option<i32>,
    /// The signal that ended a dead pane's program, when a signal did.
    pub exit_signal: Option<i32>,
    /// Last output in the pane.
    pub activity: Option<Timestamp>,
    /// The project tag the session was created with, if any (sessions of other tools have none).
    pub tag: Option<String>,
}

/// Every session on one server, read in one call, in name order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MuxSnapshot {
    /// One entry per session (its first pane), sorted by name for [`get`](Self::get).
    sessions: Vec<PaneInfo>,
}

impl MuxSnapshot {
    /// The snapshot of these sessions (one entry each), put in name order.
    pub fn new(mut sessions: Vec<PaneInfo>) -> Self {
        sessions.sort_unstable_by(|a, b| a.session.cmp(&b.session));
        MuxSnapshot { sessions }
    }

    /// Every session, in name order.
    pub fn sessions(&self) -> &[PaneInfo] {
        &self.sessions
    }

    /// The entry of session `name`, matched exactly: a binary search, as a refresh looks up
    /// every record's pane (a scan made it quadratic, a millisecond at 500 sessions).
    pub fn get(&self, name: &str) -> Option<&PaneInfo> {
        self.sessions
            .binary_search_by(|p| p.session.as_str().cmp(name))
            .ok()
            .map(|i| &self.sessions[i])
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
#[non_exhaustive]
pub enum MuxError {
    /// The multiplexer program is not installed.
    #[error("tmux is not installed (or not on PATH)")]
    NotInstalled,
    /// No server runs, so there are no sessions to act on.
    #[error("no tmux server is running ({server})")]
    NoServer {
        /// The server asked for.
        server: MuxServer,
    },
    /// The named session does not exist.
    #[error("tmux session {name} not found")]
    NotFound {
        /// The session name.
        name: String,
    },
    /// A session with this name already exists.
    #[error("tmux session {name} already exists")]
    NameTaken {
        /// The session name.
        name: String,
    },
    /// The request cannot be carried out as asked (e.g. an empty argv).
    #[error("cannot {op}: {why}")]
    Invalid {
        /// What was attempted.
        op: &'static str,
        /// Why it cannot be done.
        why: String,
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

/// Why a [`MuxWatch::wait`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MuxWake {
    /// Something may have changed on the server: a pane died, a session was closed.
    Changed,
    /// [`MuxWatch::stop`] was called.
    Stopped,
    /// No server runs (or it just went away): there is nothing to wait on until one starts.
    NoServer,
}

/// A blocking wait for changes on one multiplexer server, to be told at once when an agent's
/// pane dies or a session is closed, without asking the server about every session.
pub trait MuxWatch: Send + Sync {
    /// Blocks until the server says something may have changed, [`stop`](Self::stop) is
    /// called, or the server is gone.
    ///
    /// Errors: `NotInstalled`, `Io`.
    fn wait(&self) -> Result<MuxWake, MuxError>;

    /// Makes a blocked `wait` (and every later one) return `Stopped`.
    fn stop(&self);
}

/// A snapshot started by [`Multiplexer::begin_snapshot`] and not taken yet: the multiplexer
/// answers while its caller does other work.
pub trait PendingSnapshot {
    /// Waits for the answer; the same as [`Multiplexer::snapshot`] would have returned.
    ///
    /// Errors: as [`Multiplexer::snapshot`].
    fn finish(self: Box<Self>) -> Result<MuxSnapshot, MuxError>;
}

/// A terminal multiplexer (tmux) server holding one session per agent.
pub trait Multiplexer: Send + Sync {
    /// The server this adapter talks to (recorded with every session it creates).
    fn server(&self) -> MuxServer;

    /// Creates a detached session `spec.name` running `spec.argv` directly, tagged with
    /// `spec.tag`, whose dead pane is kept for its exit status.
    ///
    /// Errors: `NameTaken` when the name exists, `Invalid` for an empty argv, `NotInstalled`,
    /// `Failed` with tmux's stderr.
    fn create(&self, spec: &SpawnSpec) -> Result<(), MuxError>;

    /// Every session on the server in one call. No server is an empty snapshot, not an error.
    ///
    /// Errors: `NotInstalled`, `Failed`, `Io`.
    fn snapshot(&self) -> Result<MuxSnapshot, MuxError>;

    /// Starts a [`snapshot`](Self::snapshot) that runs on its own while the caller does other
    /// work (tmux: a `list-panes` process), when the adapter can; `None` when it cannot, and
    /// the caller takes the snapshot itself. The default is `None`.
    fn begin_snapshot(&self) -> Option<Box<dyn PendingSnapshot + '_>> {
        None
    }

    /// The session `name` alone, or `None` when it does not exist (no server: `None`).
    ///
    /// Errors: `NotInstalled`, `Failed`, `Io`.
    fn probe(&self, name: &str) -> Result<Option<PaneInfo>, MuxError>;

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

    /// A wait for changes on this server (see [`MuxWatch`]).
    ///
    /// Errors: `NotInstalled`, `Failed`.
    fn watch(&self) -> Result<std::sync::Arc<dyn MuxWatch>, MuxError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pane(name: &str, pid: u32) -> PaneInfo {
        PaneInfo {
            session: name.to_owned(),
            pane_pid: Some(pid),
            dead: false,
            exit_status: None,
            exit_signal: None,
            activity: None,
            tag: None,
        }
    }

    #[test]
    fn a_snapshot_finds_every_session_whatever_order_it_was_given_in() {
        let names = ["hydralph-c", "hydralph-a", "other", "hydralph-b", "Z"];
        let snap = MuxSnapshot::new(names.iter().zip(1..).map(|(n, pid)| pane(n, pid)).collect());
        for (n, pid) in names.iter().zip(1..) {
            assert_eq!(snap.get(n).and_then(|p| p.pane_pid), Some(pid), "{n}");
        }
        assert_eq!(snap.get("hydralph-d"), None);
        let order: Vec<_> = snap.sessions().iter().map(|p| p.session.as_str()).collect();
        assert_eq!(order, ["Z", "hydralph-a", "hydralph-b", "hydralph-c", "other"]);
        assert_eq!(MuxSnapshot::default().get("x"), None);
    }
}
