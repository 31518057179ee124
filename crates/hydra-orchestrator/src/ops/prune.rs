//! `prune`: one transaction decides what goes (ended sessions, this project's orphans), the
//! slow part (ending panes, removing worktrees when safe, archiving logs) happens after the
//! unlock, and each pruned record is removed by its clean-up's finalization.

use crate::error::Result;
use crate::orchestrator::{Orchestrator, Orphans};
use crate::txn::{After, Scope};
use orch_core::{Cleanup, Lease, PruneIntent, SessionId, WorktreeRelease};
use std::path::PathBuf;

/// What `prune` may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PruneOptions {
    /// Only say what would be done.
    pub dry_run: bool,
    /// Also end untagged `hydralph-*` tmux sessions (the original tool's, or from before tags),
    /// which are otherwise only reported.
    pub force: bool,
    /// Delete the ended sessions' logs instead of archiving them under `.hydra/archive/<id>/`.
    pub drop_logs: bool,
}

impl PruneOptions {
    /// Options that only report.
    pub fn dry_run() -> Self {
        PruneOptions {
            dry_run: true,
            ..PruneOptions::default()
        }
    }
}

/// A session whose record prune kept because its worktree holds work.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeptSession {
    /// The session.
    pub id: SessionId,
    /// Its worktree.
    pub path: PathBuf,
    /// Why it was kept.
    pub reasons: Vec<String>,
}

/// What `prune` removed (or, with `dry_run`, would remove).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct PruneReport {
    /// Ended sessions whose records were removed (their logs archived unless `drop_logs`).
    pub removed_sessions: Vec<SessionId>,
    /// Ended sessions kept because their worktree holds work.
    pub kept: Vec<KeptSession>,
    /// This project's orphans found (and cleaned unless `dry_run`; untagged sessions only
    /// with `force`).
    pub orphans: Orphans,
    /// Orphaned worktrees kept because they hold work: path and why.
    pub kept_worktrees: Vec<(PathBuf, Vec<String>)>,
    /// Nothing was changed.
    pub dry_run: bool,
    /// Untagged sessions were ended too.
    pub forced: bool,
    /// The removed sessions' logs were deleted, not archived.
    pub logs_dropped: bool,
}

impl Orchestrator {
    /// Removes ended sessions and this project's orphans, reporting what it did.
    ///
    /// Errors: as [`prune_with`](Self::prune_with).
    pub fn prune(&self, dry_run: bool) -> Result<PruneReport> {
        self.prune_with(PruneOptions {
            dry_run,
            ..PruneOptions::default()
        })
    }

    /// Removes ended sessions (records, tmux leftovers, worktrees that hold no work, runtime
    /// directories with their logs archived) and this project's orphans. Worktrees with work
    /// are kept, with their session, and reported. Sessions of other projects are never seen;
    /// untagged `hydralph-*` sessions are only ended with `force`.
    ///
    /// Errors: `Mux`, `Store`, `ReadOnly` (unless `dry_run`).
    pub fn prune_with(&self, options: PruneOptions) -> Result<PruneReport> {
        let mut report = PruneReport {
            dry_run: options.dry_run,
            forced: options.force,
            logs_dropped: options.drop_logs,
            ..PruneReport::default()
        };
        let done = self.transact_done(Scope::All, |txn| {
            let records = std::mem::take(&mut txn.records);
            let mut ended = Vec::new();
            // What stays (live sessions; everything, in a dry run) keeps its ports.
            let mut staying = Vec::new();
            for rec in &records {
                let mut next = txn.assess(rec)?;
                if !next.state.is_terminal() || next.spawning.is_some() {
                    staying.push(next);
                    continue;
                }
                ended.push(next.id.clone());
                if options.dry_run {
                    staying.push(next);
                    continue;
                }
                let mine = Cleanup {
                    end_session: txn.pane(&next).is_some(),
                    pgid: txn.pgid(&next),
                    worktree: Some(WorktreeRelease::WhenSafe),
                    prune: Some(PruneIntent {
                        drop_logs: options.drop_logs,
                    }),
                    ..Cleanup::new(Lease::new(txn.me, txn.now))
                };
                let cleanup = match next.cleanup.take() {
                    // Another live process is cleaning it up: leave it to that one.
                    Some(c) if c.owner.pid != txn.me => {
                        next.cleanup = Some(c);
                        continue;
                    }
                    Some(c) => mine.merge(&c),
                    None => mine,
                };
                next.cleanup = Some(cleanup);
                txn.save(&mut next)?;
                txn.then(After::Cleanup(next.id.clone()));
            }
            let holds = staying.iter().filter_map(super::refresh::port_hold).collect();
            self.reconcile_ports(holds, !options.dry_run && txn.writable());
            let orphans = self.full_orphans(txn, &records);
            self.shared().orphans = txn.tmux_orphans(&records);
            Ok((ended, orphans))
        })?;
        let (ended, orphans) = done.value;
        for id in ended {
            if options.dry_run {
                report.removed_sessions.push(id);
                continue;
            }
            match done.cleanups.iter().find(|(i, _)| *i == id) {
                Some((_, outcome)) if outcome.pruned => report.removed_sessions.push(id),
                Some((_, outcome)) => {
                    if let Some(kept) = &outcome.worktree_kept {
                        report.kept.push(KeptSession {
                            id,
                            path: kept.path.clone(),
                            reasons: kept.reasons.clone(),
                        });
                    }
                }
                None => {}
            }
        }
        if !options.dry_run {
            self.clean_orphans(&orphans, options.force, &mut report);
        }
        report.orphans = orphans;
        Ok(report)
    }

    /// Ends the orphans found by a prune's transaction. They belong to no record, and a new
    /// session books its record before it creates anything, so none can become owned meanwhile.
    fn clean_orphans(&self, orphans: &Orphans, force: bool, report: &mut PruneReport) {
        let primary = self.muxes.primary();
        for name in &orphans.tmux_sessions {
            let _ = primary.kill(name);
        }
        if force {
            for name in &orphans.untagged_sessions {
                let _ = primary.kill(name);
            }
        }
        for id in &orphans.runtime_dirs {
            let _ = self.runtime.remove(id, orch_core::LogDisposal::Archive);
        }
        if let Some(wt) = &self.worktrees {
            for (branch, path) in &orphans.worktrees {
                if let Ok(orch_core::RemoveOutcome::Kept { reasons, .. }) = wt.remove(&self.project, branch, false) {
                    report.kept_worktrees.push((path.clone(), reasons));
                }
            }
        }
    }
}
