//! `spawn_parallel`: the project PRD's free stories split across N new sessions, each with
//! its own claim (and, as asked, its own worktree and branch). All or nothing: when one spawn
//! fails, the sessions already made are discarded — tmux session, worktree, the branch they
//! made, port, runtime directory and record — and the error is returned.

use crate::error::{Error, Result};
use crate::ops::claims;
use crate::orchestrator::Orchestrator;
use crate::txn::Scope;
use crate::KillOptions;
use orch_core::{ConfigError, LogDisposal, SessionConfig, SessionId};

/// What [`Orchestrator::spawn_parallel`] started.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ParallelSpawn {
    /// The sessions, in plan order.
    pub ids: Vec<SessionId>,
    /// The stories each one claimed.
    pub stories: Vec<Vec<String>>,
    /// How many sessions were asked for (more than `ids` when there were fewer free stories).
    pub asked: usize,
}

impl Orchestrator {
    /// Starts up to `n` sessions of `config` that share its PRD: its stories not done and not
    /// held by a live session are split in work order (priority, dependencies) into `n`
    /// contiguous groups, one per session; a session's name and branch get `-1`, `-2`, ...
    /// Fewer free stories than `n` start fewer sessions. If any spawn fails, every session
    /// this call made is removed again, and its error is returned.
    ///
    /// Errors: `Config` (`parallel` 0, `stories` given, nothing free to claim, or any of
    /// [`spawn`](Self::spawn)'s), and those of `spawn`.
    pub fn spawn_parallel(&self, config: SessionConfig, n: usize) -> Result<ParallelSpawn> {
        if n == 0 {
            return Err(Error::Config(ConfigError::new(
                "parallel",
                "it is 0; give 1 or more sessions",
            )));
        }
        if config.stories.is_some() {
            return Err(Error::Config(ConfigError::new(
                "stories",
                "a parallel spawn splits the free stories itself; give either stories or a count",
            )));
        }
        let checked = self.check(&config)?;
        let records = self.store.load_all()?.records;
        let held: Vec<String> = claims::held(&records, &checked.prd_path)
            .into_iter()
            .map(|(s, _)| s.to_owned())
            .collect();
        let plan = orch_core::plan_parallel(&checked.parsed, &held, n);
        if plan.is_empty() {
            // The same words as a single spawn that finds nothing to claim.
            let mut cfg = config.clone();
            cfg.prd_path = checked.prd_path.clone();
            claims::claim(&cfg, &checked.parsed, &records)?;
            return Err(Error::Config(ConfigError::new("stories", "no story is free to claim")));
        }
        let mut ids: Vec<SessionId> = Vec::with_capacity(plan.len());
        for (k, group) in plan.iter().enumerate() {
            let suffix = |s: &String| format!("{s}-{}", k + 1);
            let cfg = SessionConfig {
                name: config.name.as_ref().map(suffix),
                branch_name: config.branch_name.as_ref().map(suffix),
                stories: Some(group.clone()),
                ..config.clone()
            };
            // Held: no agent runs until every session exists, so undoing them loses no work.
            match self.spawn_held(cfg, true) {
                Ok(id) => ids.push(id),
                Err(e) => {
                    let mut leftovers = Vec::new();
                    for id in ids.iter().rev() {
                        if let Err(why) = self.discard(id) {
                            leftovers.push(format!("{id}: {why}"));
                        }
                    }
                    return Err(if leftovers.is_empty() {
                        e
                    } else {
                        Error::Rollback {
                            cause: Box::new(e),
                            leftovers,
                        }
                    });
                }
            }
        }
        for id in &ids {
            if let Err(e) = self.runtime.set_paused(id, false) {
                self.notice(
                    crate::NoticeKind::Other,
                    format!("{id} waits before its first iteration: {e}; `resume` starts it"),
                );
            }
        }
        Ok(ParallelSpawn {
            ids,
            stories: plan,
            asked: n,
        })
    }

    /// Removes a held session this process just made as if it never was: ends it, removes
    /// its worktree (its agent never ran, so it holds nothing) and the branch its spawn made,
    /// frees its port, and deletes its runtime directory and record.
    fn discard(&self, id: &SessionId) -> Result<()> {
        let rec = self.record(id)?;
        self.kill_with(id, "discarded: a parallel spawn failed", KillOptions::forced())?;
        if let (Some(wt), Some(branch), true) = (&self.worktrees, &rec.branch_name, rec.use_worktree) {
            wt.remove(&rec.working_dir, branch, true)?;
            wt.delete_branch(&rec.working_dir, branch)?;
        }
        self.runtime.remove(id, LogDisposal::Delete).map_err(Error::Runtime)?;
        self.transact(Scope::Lock, |txn| txn.remove(id))?;
        Ok(())
    }
}
