//! Bringing a session's work home: what its branch changed (`diff`), merging it into the
//! branch it started from (`merge`), and removing a worktree that was kept (`remove_worktree`).
//! git runs through the worktree port; the facade decides what is allowed.

use crate::error::{Error, Result};
use crate::orchestrator::Orchestrator;
use crate::txn::Scope;
use orch_core::{BranchChanges, MergeOutcome, RemoveOutcome, SessionId, SessionRecord, Worktrees};

/// What a session's branch changed since the commit it started from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionDiff {
    /// The session's branch.
    pub branch: String,
    /// The commit it started from.
    pub base_commit: String,
    /// The branch it started from, when known.
    pub base_branch: Option<String>,
    /// Its commits, diffstat and (when asked) patch.
    pub changes: BranchChanges,
}

/// How [`Orchestrator::merge`] merges.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MergeOptions {
    /// The branch to merge into (default: the branch the session started from).
    pub into: Option<String>,
    /// One squashed commit instead of a merge commit.
    pub squash: bool,
    /// Merge even while the session is live.
    pub force: bool,
}

/// What [`Orchestrator::merge`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MergeReport {
    /// The session's branch.
    pub branch: String,
    /// The branch merged into.
    pub into: String,
    /// What happened (a refusal or a conflict leaves the target as it was).
    pub outcome: MergeOutcome,
}

impl Orchestrator {
    fn worktrees_or_refuse(&self, id: &SessionId) -> Result<&dyn Worktrees> {
        self.worktrees.as_deref().ok_or_else(|| Error::Refused {
            id: id.clone(),
            why: "worktree support is not built in (the \"worktree\" feature)".into(),
        })
    }

    fn branch_of(rec: &SessionRecord) -> Result<String> {
        rec.branch_name.clone().filter(|_| rec.use_worktree).ok_or_else(|| Error::Refused {
            id: rec.id.clone(),
            why: "it has no branch of its own (it was spawned without a worktree); its changes are in the checkout it shares".into(),
        })
    }

    /// The commits and diffstat of the session's branch since the commit it started from
    /// (and the whole diff with `patch`).
    ///
    /// Errors: `Id`, `NotFound`, `Refused` (no branch of its own, start unknown), `Worktree`.
    pub fn diff(&self, id: &SessionId, patch: bool) -> Result<SessionDiff> {
        let rec = self.record(id)?;
        let branch = Self::branch_of(&rec)?;
        let base_commit = rec.base_commit.clone().ok_or_else(|| Error::Refused {
            id: id.clone(),
            why: format!("the commit {branch} started from is unknown (the branch existed before the session)"),
        })?;
        let wt = self.worktrees_or_refuse(id)?;
        let changes = wt.changes(&rec.working_dir, &base_commit, &branch, patch)?;
        Ok(SessionDiff {
            branch,
            base_commit,
            base_branch: rec.base_branch.clone(),
            changes,
        })
    }

    /// Merges the session's branch into the branch it started from (or `options.into`), in
    /// the checkout where that branch is checked out: refused while the session is live
    /// (unless `force`) and when that checkout has uncommitted changes; a conflict is undone
    /// and its files listed. Either way nothing is left half-merged.
    ///
    /// Errors: `Id`, `NotFound`, `Refused` (live, no branch, no target known), `Worktree`.
    pub fn merge(&self, id: &SessionId, options: &MergeOptions) -> Result<MergeReport> {
        let rec = self.status(id)?;
        let record = self.record(id)?;
        let branch = Self::branch_of(&record)?;
        if !rec.state.is_terminal() && !options.force {
            return Err(Error::Refused {
                id: id.clone(),
                why: format!(
                    "it is {}; merge once it has ended (or kill it), or force it",
                    rec.state_word()
                ),
            });
        }
        let into = options
            .into
            .clone()
            .or_else(|| record.base_branch.clone())
            .ok_or_else(|| Error::Refused {
                id: id.clone(),
                why: "the branch it started from is unknown; name the branch to merge into".into(),
            })?;
        let wt = self.worktrees_or_refuse(id)?;
        let who = match &record.name {
            Some(n) => format!("{id} {n}"),
            None => id.to_string(),
        };
        let message = format!("hydra: merge {branch} (session {who})");
        let outcome = wt.merge(&record.working_dir, &branch, &into, options.squash, &message)?;
        Ok(MergeReport { branch, into, outcome })
    }

    /// Removes the worktree an ended session kept (because it held work) when it is safe —
    /// its work merged or gone — or always with `force`; the branch is never deleted and the
    /// port is freed.
    ///
    /// Errors: `Id`, `NotFound`, `Refused` (the session is live, it has no worktree),
    /// `Worktree`, `Store`, `ReadOnly`.
    pub fn remove_worktree(&self, id: &SessionId, force: bool) -> Result<RemoveOutcome> {
        let st = self.status(id)?;
        if !st.state.is_terminal() {
            return Err(Error::Refused {
                id: id.clone(),
                why: format!(
                    "it is {}; kill it first (its worktree goes with it when it holds no work)",
                    st.state_word()
                ),
            });
        }
        let record = self.record(id)?;
        let branch = Self::branch_of(&record)?;
        let wt = self.worktrees_or_refuse(id)?;
        let outcome = wt.remove(&record.working_dir, &branch, force)?;
        if matches!(outcome, RemoveOutcome::Removed | RemoveOutcome::NotFound) {
            self.transact(Scope::Lock, |txn| {
                if let Some(mut rec) = self.store.load(id)? {
                    rec.worktree_kept = None;
                    rec.allocated_port = None;
                    txn.save(&mut rec)?;
                }
                if outcome == RemoveOutcome::Removed {
                    txn.emit(orch_core::LifecycleEvent::worktree_removed(id, &branch, txn.now));
                }
                Ok(())
            })?;
        }
        Ok(outcome)
    }
}
