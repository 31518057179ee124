//! Carrying out a clean-up intent outside the lock (end the pane's processes and its tmux
//! session, remove the worktree when safe or forced, remove the runtime directory), then
//! finalizing it in a short second transaction. Every step is idempotent, so a crash in
//! between is finished by whichever transaction next owns the intent.

use crate::error::{Error, Result};
use crate::orchestrator::{NoticeKind, Orchestrator};
use orch_core::{Cleanup, KeptWorktree, LogDisposal, RemoveOutcome, SessionId, SessionRecord, Sig, WorktreeRelease};
use std::time::{Duration, Instant};

/// What a clean-up did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct CleanupOutcome {
    /// The worktree was removed and its port freed.
    pub(crate) worktree_removed: bool,
    /// The worktree was kept because it holds work.
    pub(crate) worktree_kept: Option<KeptWorktree>,
    /// The record (and its runtime directory) were removed by prune.
    pub(crate) pruned: bool,
}

impl Orchestrator {
    /// Carries out the clean-up of `id` if this process owns it, and finalizes it.
    pub(crate) fn carry_out(&self, id: &SessionId) -> Result<CleanupOutcome> {
        // Another command may add work to the intent while this one runs; go again then.
        for _ in 0..3 {
            let Some(rec) = self.store.load(id)? else {
                return Ok(CleanupOutcome::default());
            };
            let Some(cleanup) = rec.cleanup.clone() else {
                return Ok(CleanupOutcome::default());
            };
            if cleanup.owner.pid != self.host.pid() {
                return Ok(CleanupOutcome::default());
            }
            let outcome = self.clean(&rec, &cleanup);
            if self.finalize(id, &cleanup, &outcome)? {
                if let (true, Some(branch)) = (outcome.worktree_removed, &rec.branch_name) {
                    let ev = orch_core::LifecycleEvent::worktree_removed(id, branch, self.clock.now());
                    self.publish(vec![ev]);
                }
                return Ok(outcome);
            }
        }
        Ok(CleanupOutcome::default())
    }

    fn clean(&self, rec: &SessionRecord, cleanup: &Cleanup) -> CleanupOutcome {
        let mut outcome = CleanupOutcome::default();
        if cleanup.end_session {
            if let Err(e) = self.end_processes(rec, cleanup.pgid) {
                self.notice(
                    NoticeKind::Cleanup,
                    format!("ending session {}'s tmux session failed: {e}", rec.id),
                );
            }
        }
        if let Some(mode) = cleanup.worktree {
            match self.release_worktree(rec, mode == WorktreeRelease::Force) {
                Ok(Some(RemoveOutcome::Kept { path, reasons })) => {
                    outcome.worktree_kept = Some(KeptWorktree { path, reasons })
                }
                Ok(Some(_)) => outcome.worktree_removed = true,
                Ok(None) => {}
                Err(e) => {
                    outcome.worktree_kept = Some(KeptWorktree {
                        path: rec.worktree_path.clone().unwrap_or_default(),
                        reasons: vec![format!("removing it failed: {e}")],
                    })
                }
            }
        }
        if let Some(prune) = cleanup.prune {
            if outcome.worktree_kept.is_none() {
                let logs = if prune.drop_logs {
                    LogDisposal::Delete
                } else {
                    LogDisposal::Archive
                };
                match self.runtime.remove(&rec.id, logs) {
                    Ok(()) => outcome.pruned = true,
                    Err(e) => self.notice(
                        NoticeKind::Cleanup,
                        format!("removing session {}'s runtime directory failed: {e}", rec.id),
                    ),
                }
            }
        }
        outcome
    }

    /// Books the outcome: the record loses its intent (or, pruned, is removed). Returns false
    /// when the intent changed meanwhile and is still this process's to carry out.
    fn finalize(&self, id: &SessionId, done: &Cleanup, outcome: &CleanupOutcome) -> Result<bool> {
        let guard = self.store.lock()?;
        let Some(mut rec) = self.store.load(id)? else {
            return Ok(true);
        };
        match &rec.cleanup {
            Some(c) if c == done => {}
            Some(c) => return Ok(c.owner.pid != self.host.pid()),
            None => return Ok(true),
        }
        rec.cleanup = None;
        if outcome.worktree_removed {
            rec.allocated_port = None;
            rec.worktree_kept = None;
        }
        if let Some(kept) = &outcome.worktree_kept {
            rec.worktree_kept = Some(kept.clone());
        }
        if outcome.pruned {
            self.store.remove(&guard, id)?;
            return Ok(true);
        }
        rec.revision += 1;
        self.store.save(&guard, &rec)?;
        Ok(true)
    }

    /// Ends the session's processes: thaw if frozen, SIGTERM the group, end the tmux session,
    /// then SIGKILL whatever is left after the grace period.
    fn end_processes(&self, rec: &SessionRecord, pgid: Option<u32>) -> Result<()> {
        if let Some(pid) = pgid {
            let _ = self.host.signal_group(pid, Sig::Cont);
            let _ = self.host.signal_group(pid, Sig::Term);
        }
        if let Some(mux) = self.muxes.get(self.server_of(rec)) {
            mux.kill(&rec.tmux_session)?;
        }
        if let Some(pid) = pgid {
            let deadline = Instant::now() + self.kill_grace;
            while self.host.group_alive(pid) {
                if Instant::now() >= deadline {
                    let _ = self.host.signal_group(pid, Sig::Kill);
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        Ok(())
    }

    /// Removes the session's worktree when it holds no work (or `force`), never one that is
    /// not where the record says (a branch the user checked out elsewhere). `None`: the session
    /// has no worktree to release.
    pub(crate) fn release_worktree(&self, rec: &SessionRecord, force: bool) -> Result<Option<RemoveOutcome>> {
        let (Some(wt), Some(branch), Some(path)) = (
            self.worktrees.as_ref(),
            rec.branch_name.as_deref(),
            rec.worktree_path.as_deref(),
        ) else {
            return Ok(None);
        };
        if !rec.use_worktree {
            return Ok(None);
        }
        let listed = wt.list(&rec.working_dir).map_err(Error::from)?;
        match listed.iter().find(|w| w.branch == branch) {
            Some(w) if w.exists && w.path != path => return Ok(Some(RemoveOutcome::NotFound)),
            _ => {}
        }
        Ok(Some(wt.remove(&rec.working_dir, branch, force)?))
    }
}
