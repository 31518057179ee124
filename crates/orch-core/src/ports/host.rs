//! The [`Host`] port: the operating system around the sessions. Programs on `PATH`,
//! directories, and POSIX process control of a pane's process group (freeze, thaw, end).

use std::path::{Path, PathBuf};

/// The signals the orchestrator sends to a pane's process group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Sig {
    /// SIGCONT: thaw.
    Cont,
    /// SIGTERM: ask to end.
    Term,
    /// SIGKILL: end.
    Kill,
}

/// Errors of a [`Host`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// An operating-system call failed.
    #[error("failed to {op} {target}")]
    Io {
        /// What was attempted.
        op: &'static str,
        /// On what (a path or a process group).
        target: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// A process as the operating system shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProcessInfo {
    /// When it started, in the system's own unit (clock ticks since boot on Linux); with the
    /// pid it names one process, so a reused pid is told apart.
    pub start: u64,
    /// It has ended and waits for its parent to collect its status (a zombie).
    pub zombie: bool,
    /// It has a controlling terminal. A tmux pane's program has its pane's, and the kernel
    /// takes it away the moment tmux closes the pane (the hang-up), even from a program
    /// that outlives the hang-up.
    pub terminal: bool,
}

impl ProcessInfo {
    /// A process that started at `start`, is or is not a `zombie`, and has or has not a
    /// controlling `terminal`.
    pub fn new(start: u64, zombie: bool, terminal: bool) -> Self {
        ProcessInfo {
            start,
            zombie,
            terminal,
        }
    }
}

/// The operating system: programs, directories, processes.
pub trait Host: Send + Sync {
    /// Finds `program` as a shell would (a path with `/` as is, else on the `PATH` the host was
    /// given); the absolute path of an executable file, or `None`.
    fn find_program(&self, program: &str) -> Option<PathBuf>;

    /// The canonical absolute path of an existing directory.
    ///
    /// Errors: `Io` when it does not exist, is not a directory, or cannot be read.
    fn canonical_dir(&self, path: &Path) -> Result<PathBuf, HostError>;

    /// Sends `signal` to the process group `pgid`; `Ok(false)` when the group is gone.
    ///
    /// Errors: `Io` when the signal cannot be sent (no permission).
    fn signal_group(&self, pgid: u32, signal: Sig) -> Result<bool, HostError>;

    /// Stops (SIGSTOP) every process of group `pgid` except its leader, the pane's own
    /// process; returns how many were stopped.
    ///
    /// tmux continues a pane process that stops (it sends SIGCONT to the pane's group when its
    /// child stops), so a freeze must leave the leader, the loop, which only waits, running.
    ///
    /// Errors: `Io` when the process table cannot be read.
    fn stop_group_members(&self, pgid: u32) -> Result<usize, HostError>;

    /// Whether group `pgid` still has a process that is not a zombie.
    fn group_alive(&self, pgid: u32) -> bool;

    /// Whether process `pid` exists (the owner of a lease, say).
    fn process_alive(&self, pid: u32) -> bool;

    /// This process's id, which leases record.
    fn pid(&self) -> u32;

    /// Process `pid` as the system shows it, or `None` when it does not exist or the system
    /// cannot tell (then the caller asks the multiplexer instead; the default).
    fn process_info(&self, _pid: u32) -> Option<ProcessInfo> {
        None
    }
}
