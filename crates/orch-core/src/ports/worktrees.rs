//! The [`Worktrees`] port: per-session git worktrees with allocated ports (hydra-wt
//! compatible). One adapter manages every worktree of a repository.

use crate::id::SessionId;
use std::path::{Path, PathBuf};

/// A worktree to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorktreeRequest {
    /// The repository (any directory inside it).
    pub repo: PathBuf,
    /// Branch to check out (created from `base` when it does not exist).
    pub branch: String,
    /// Base revision for a new branch (`HEAD` when `None`).
    pub base: Option<String>,
    /// Where to put it (the adapter's default place when `None`).
    pub path: Option<PathBuf>,
    /// The session it is for.
    pub session: SessionId,
    /// Ports that sessions still hold (their records say so), which a new worktree must not
    /// get even when the registry has lost their entries.
    pub reserved_ports: Vec<u16>,
}

/// A worktree managed by the adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorktreeInfo {
    /// Its branch.
    pub branch: String,
    /// Its path.
    pub path: PathBuf,
    /// Its allocated port, if any.
    pub port: Option<u16>,
    /// Whether the path exists on disk.
    pub exists: bool,
    /// The commit the branch started from, when this call created it.
    pub base_commit: Option<String>,
    /// The branch the new branch was made from (HEAD's branch, or the base when it is a
    /// branch), when there is one.
    pub base_branch: Option<String>,
    /// This call created the branch (so undoing the call may delete it).
    pub created_branch: bool,
    /// What the adapter skipped and the user should hear about (an env template that does
    /// not exist, say); the worktree was made.
    pub warnings: Vec<String>,
}

impl WorktreeInfo {
    /// A worktree of `branch` at `path` with `port`.
    pub fn new(branch: impl Into<String>, path: PathBuf, port: Option<u16>) -> Self {
        WorktreeInfo {
            branch: branch.into(),
            path,
            port,
            exists: true,
            base_commit: None,
            base_branch: None,
            created_branch: false,
            warnings: Vec::new(),
        }
    }
}

/// A port a session's record holds, checked against the adapter's registry by
/// [`Worktrees::reconcile_ports`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortHold {
    /// The session's branch (the registry's key).
    pub branch: String,
    /// The port its record holds.
    pub port: u16,
}

/// A difference between what sessions hold and what the port registry says.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PortRepair {
    /// The registry had lost the entry; it is back (or, without `repair`, would be).
    Restored {
        /// The branch.
        branch: String,
        /// Its port.
        port: u16,
    },
    /// The registry had lost the entry and has since given the port to another branch: two
    /// worktrees share it, which only a person can sort out.
    Taken {
        /// The session's branch.
        branch: String,
        /// The port it holds.
        port: u16,
        /// The branch the registry gave it to.
        by: String,
    },
    /// The registry names another port for the branch than the session's record.
    Moved {
        /// The branch.
        branch: String,
        /// The port the session's record (and its environment) holds.
        port: u16,
        /// The port the registry names.
        registry_port: u16,
    },
}

impl std::fmt::Display for PortRepair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PortRepair::Restored { branch, port } => write!(
                f,
                "the port registry had lost {branch}'s port {port} (removed by another tool?); it is held again"
            ),
            PortRepair::Taken { branch, port, by } => write!(
                f,
                "the port registry had lost {branch}'s port {port} and has given it to {by}: both worktrees now use port {port}; end one of them"
            ),
            PortRepair::Moved {
                branch,
                port,
                registry_port,
            } => write!(
                f,
                "the port registry names port {registry_port} for {branch}, whose session was started with port {port}"
            ),
        }
    }
}

/// What `remove` did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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

/// What a branch changed since the commit it started from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct BranchChanges {
    /// Its commits, newest first: full hash and subject.
    pub commits: Vec<(String, String)>,
    /// The diffstat (`git diff --stat`), empty when nothing changed.
    pub stat: String,
    /// The whole diff, when asked for.
    pub patch: Option<String>,
}

/// What [`Worktrees::merge`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MergeOutcome {
    /// The branch was merged: the new commit on the target.
    Merged {
        /// The commit made.
        commit: String,
    },
    /// The target already holds every commit of the branch; nothing was done.
    UpToDate,
    /// The merge conflicted and was undone: the target is as it was.
    Conflict {
        /// The files that conflicted.
        files: Vec<String>,
    },
    /// The checkout of the target holds uncommitted changes; nothing was done.
    Dirty {
        /// The checkout.
        checkout: PathBuf,
        /// What `git status` lists there.
        files: Vec<String>,
    },
    /// The target branch is not checked out anywhere; nothing was done.
    NotCheckedOut,
}

/// Errors of a [`Worktrees`] adapter.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorktreeError {
    /// git is not installed.
    #[error("git is not installed (or not on PATH)")]
    GitMissing,
    /// The directory is not in a git repository.
    #[error("{path} is not inside a git repository")]
    NotARepo {
        /// The directory.
        path: PathBuf,
    },
    /// The repository has no commit to start a branch from.
    #[error("the repository at {repo} has no commit yet; a worktree needs one to start from")]
    NoCommit {
        /// The repository root.
        repo: PathBuf,
    },
    /// The base revision does not name a commit.
    #[error("base {base:?} is not a commit in this repository")]
    BadBase {
        /// The revision as given.
        base: String,
    },
    /// The branch name is not valid for git.
    #[error("invalid branch_name {branch:?}: {why}")]
    InvalidBranch {
        /// The name.
        branch: String,
        /// git's or our reason.
        why: String,
    },
    /// The session id is not valid (it names the worktree directory).
    #[error(transparent)]
    InvalidId(#[from] crate::id::IdError),
    /// The branch is checked out in another worktree.
    #[error("branch {branch} is already checked out at {path}")]
    BranchTaken {
        /// The branch.
        branch: String,
        /// Where it is checked out.
        path: PathBuf,
    },
    /// The target path already exists.
    #[error("worktree path {path} already exists")]
    PathExists {
        /// The path.
        path: PathBuf,
    },
    /// Every port of the range is allocated.
    #[error("no free port in {start}-{end}")]
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
    /// The worktree configuration would run programs (`post_create` hooks) and its user has
    /// not trusted its content; nothing was made.
    #[error("{file} would run {}, and this content of it is not trusted", commands.join(", "))]
    Untrusted {
        /// The file.
        file: PathBuf,
        /// The commands it would run.
        commands: Vec<String>,
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
pub trait Worktrees: Send + Sync {
    /// Where the worktree of `branch` goes when the repository's configuration names a place
    /// (hydra-wt's `[worktrees] directory`); `None` for the caller's default place. The
    /// branch is checked first.
    ///
    /// Errors: `InvalidBranch`, `NotARepo`, `Config`, `GitMissing`.
    fn path_for(&self, repo: &Path, branch: &str) -> Result<Option<PathBuf>, WorktreeError> {
        let _ = (repo, branch);
        Ok(None)
    }

    /// Checks the ports that sessions hold against the registry of `repo`: an entry the
    /// registry lost is written back when `repair` is set and its port is still free. Returns
    /// each difference found (nothing when they agree).
    ///
    /// Errors: `NotARepo`, `Config` (a registry that does not parse), `GitMissing`, `Io`.
    fn reconcile_ports(&self, repo: &Path, holds: &[PortHold], repair: bool) -> Result<Vec<PortRepair>, WorktreeError> {
        let _ = (repo, holds, repair);
        Ok(Vec::new())
    }

    /// Creates the worktree and allocates a port; on any failure nothing is left behind.
    ///
    /// Errors: `InvalidBranch`, `InvalidId`, `BranchTaken`, `PathExists`, `RangeExhausted`,
    /// `NotARepo`, `NoCommit`, `BadBase`, `GitMissing`, `Config`, `Untrusted` (before anything
    /// is made), `Hook`, `Git`, `Io`.
    fn create(&self, req: &WorktreeRequest) -> Result<WorktreeInfo, WorktreeError>;

    /// Removes the worktree of `branch` in `repo` and frees its port, unless it holds work
    /// (uncommitted changes, commits on no other branch or remote) and `force` is false: then
    /// it is kept and `Kept` says why. The branch itself is never deleted.
    ///
    /// Errors: `NotARepo`, `GitMissing`, `Git`, `Io`.
    fn remove(&self, repo: &Path, branch: &str, force: bool) -> Result<RemoveOutcome, WorktreeError>;

    /// The worktrees this adapter manages in `repo` (with the ports of its registry).
    ///
    /// Errors: `NotARepo`, `GitMissing`, `Git`, `Io`.
    fn list(&self, repo: &Path) -> Result<Vec<WorktreeInfo>, WorktreeError>;

    /// Deletes `branch` if it holds no commit that its repository's checked-out branch lacks
    /// (a branch a failed spawn made); `Ok(false)` when it was kept or did not exist.
    ///
    /// Errors: `NotARepo`, `GitMissing`, `Io`.
    fn delete_branch(&self, repo: &Path, branch: &str) -> Result<bool, WorktreeError>;

    /// The commits and diffstat of `branch` since commit `from` (and the diff with `patch`).
    ///
    /// Errors: `BadBase` when `from` is not a commit, `NotARepo`, `GitMissing`, `Git`, `Io`.
    fn changes(&self, repo: &Path, from: &str, branch: &str, patch: bool) -> Result<BranchChanges, WorktreeError>;

    /// Merges `branch` into the branch `into`, in the checkout where `into` is checked out
    /// (a merge commit with `message`, or one squashed commit). A checkout with uncommitted
    /// changes is refused, and a conflict is undone: either way the target is left as it was.
    ///
    /// Errors: `InvalidBranch`, `NotARepo`, `GitMissing`, `Git` (an identity missing, say),
    /// `Io`.
    fn merge(
        &self,
        repo: &Path,
        branch: &str,
        into: &str,
        squash: bool,
        message: &str,
    ) -> Result<MergeOutcome, WorktreeError>;
}
