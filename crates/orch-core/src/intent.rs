//! Intents: slow work (ending processes, removing a worktree) that a transaction decides and
//! writes into the record under the store's lock, that is then done outside the lock, and that
//! a second short transaction finalizes. A crash in between leaves the intent on disk, and the
//! next transaction finishes it. Leases say which process is doing the work, so two processes
//! never both do it, and a dead owner's work is taken over.

use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// How long a lease of a live owner holds before another process may take the work over
/// (an owner that hangs this long is treated as gone).
pub const LEASE_EXPIRY: Duration = Duration::from_secs(300);

/// A claim on unfinished work by one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The owning process.
    pub pid: u32,
    /// Since when it owns the work.
    pub since: Timestamp,
}

impl Lease {
    /// A lease of process `pid` from `now`.
    pub fn new(pid: u32, now: Timestamp) -> Self {
        Lease { pid, since: now }
    }

    /// Whether another process may take the work over: its owner is gone, or has held it
    /// longer than `expiry` (a clock that went back never expires a lease).
    pub fn is_stale(&self, owner_alive: bool, now: Timestamp, expiry: Duration) -> bool {
        !owner_alive || now.since(self.since).is_some_and(|held| held > expiry)
    }
}

/// What to do with a session's worktree when it is cleaned up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorktreeRelease {
    /// Remove it only if it holds no work (uncommitted changes, unmerged commits).
    WhenSafe,
    /// Remove it even if it holds work (the branch is still kept).
    Force,
}

/// Slow work decided for an ended (or ending) session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cleanup {
    /// Who carries it out.
    pub owner: Lease,
    /// End the pane's process group and its multiplexer session.
    #[serde(default)]
    pub end_session: bool,
    /// The pane's process group, when it was known alive.
    #[serde(default)]
    pub pgid: Option<u32>,
    /// Whether and how to remove the worktree.
    #[serde(default)]
    pub worktree: Option<WorktreeRelease>,
    /// Prune: remove the runtime directory (archiving its logs unless `drop_logs`) and then
    /// the record itself.
    #[serde(default)]
    pub prune: Option<PruneIntent>,
}

impl Cleanup {
    /// An empty cleanup owned by `owner`.
    pub fn new(owner: Lease) -> Self {
        Cleanup {
            owner,
            end_session: false,
            pgid: None,
            worktree: None,
            prune: None,
        }
    }

    /// This cleanup with `other`'s work added (the union of both).
    pub fn merge(mut self, other: &Cleanup) -> Self {
        self.end_session |= other.end_session;
        self.pgid = self.pgid.or(other.pgid);
        self.worktree = match (self.worktree, other.worktree) {
            (Some(WorktreeRelease::Force), _) | (_, Some(WorktreeRelease::Force)) => Some(WorktreeRelease::Force),
            (a, b) => a.or(b),
        };
        self.prune = self.prune.or(other.prune);
        self
    }
}

/// What prune does with an ended session's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneIntent {
    /// Delete the logs too instead of archiving them.
    pub drop_logs: bool,
}

/// A worktree kept at clean-up because it holds work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptWorktree {
    /// Its path.
    pub path: PathBuf,
    /// Why it was kept.
    pub reasons: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_stale_when_its_owner_is_gone_or_it_is_old() {
        let l = Lease::new(7, Timestamp(1_000));
        assert!(!l.is_stale(true, Timestamp(2_000), Duration::from_secs(10)));
        assert!(l.is_stale(false, Timestamp(2_000), Duration::from_secs(10)));
        assert!(l.is_stale(true, Timestamp(12_001), Duration::from_secs(10)));
        assert!(
            !l.is_stale(true, Timestamp(500), Duration::from_secs(10)),
            "time went back"
        );
    }

    #[test]
    fn merged_cleanups_do_both_and_force_wins() {
        let a = Cleanup {
            end_session: true,
            worktree: Some(WorktreeRelease::WhenSafe),
            ..Cleanup::new(Lease::new(1, Timestamp(0)))
        };
        let b = Cleanup {
            worktree: Some(WorktreeRelease::Force),
            pgid: Some(9),
            ..Cleanup::new(Lease::new(2, Timestamp(0)))
        };
        let m = a.merge(&b);
        assert!(m.end_session);
        assert_eq!(m.pgid, Some(9));
        assert_eq!(m.worktree, Some(WorktreeRelease::Force));
        assert_eq!(m.owner.pid, 1);
    }
}
