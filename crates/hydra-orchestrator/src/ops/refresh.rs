//! Observing: `refresh`/`list`/`try_list` (every session, one transaction, one tmux call per
//! server in use), `status` (one record, one probe of its pane's process or of tmux),
//! `health_check`, and the full orphan scan.

use crate::error::{Error, Result};
use crate::orchestrator::{NoticeKind, Orchestrator, Orphans};
use crate::txn::Scope;
use orch_core::{MuxServer, SessionId, SessionStatus, Timestamp};
use std::collections::{BTreeMap, BTreeSet};

/// Who a refresh looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Looker {
    /// A caller of `refresh` and its kin: the ports sessions hold are checked against the
    /// worktree registry too (and lost entries restored).
    Caller,
    /// The watcher, whose frequent looks leave the ports to the callers' refreshes: it is told
    /// what decides when to look again (the deadline, the revisions, the servers).
    Watcher,
}

/// What one refresh saw; the deadline, revisions and servers only for the watcher.
#[derive(Debug, Default)]
pub(crate) struct Look {
    pub(crate) statuses: Vec<SessionStatus>,
    pub(crate) killed: Vec<SessionId>,
    /// The next moment the clock alone can change a session.
    pub(crate) deadline: Option<Timestamp>,
    /// Each record's revision as this refresh left it.
    pub(crate) revisions: BTreeMap<SessionId, u64>,
    /// The servers of the live sessions.
    pub(crate) servers: BTreeSet<MuxServer>,
    /// The transaction's "now".
    pub(crate) now: Timestamp,
}

impl Orchestrator {
    /// Refreshes every session in one transaction (one tmux snapshot per server in use, the
    /// loops' reports), books the transitions, publishes their events, and returns every
    /// session's status. On a read-only project the statuses are computed and nothing is saved.
    ///
    /// Errors: `Mux` when tmux cannot be asked, `Store` when the records cannot be read.
    pub fn refresh(&self) -> Result<Vec<SessionStatus>> {
        self.refresh_collecting().map(|(statuses, _)| statuses)
    }

    fn refresh_collecting(&self) -> Result<(Vec<SessionStatus>, Vec<SessionId>)> {
        self.look(Looker::Caller).map(|l| (l.statuses, l.killed))
    }

    /// One refresh for `looker` (see [`Looker`]).
    pub(crate) fn look(&self, looker: Looker) -> Result<Look> {
        self.transact(Scope::All, |txn| {
            let mut records = std::mem::take(&mut txn.records);
            self.shared().orphans = txn.tmux_orphans(&records);
            let mut look = Look {
                statuses: Vec::with_capacity(records.len()),
                ..Look::default()
            };
            let mut holds = Vec::new();
            // Each record is freed as its status is made, and the records' vector shrinks as
            // it empties: at a thousand sessions, holding every record beside every status was
            // the peak of the process's memory. (Reversed, so popping keeps the order.)
            records.reverse();
            while let Some(rec) = records.pop() {
                if records.len() % 128 == 0 {
                    records.shrink_to_fit();
                }
                let next = txn.assess_owned(rec)?;
                match looker {
                    Looker::Caller => holds.extend(port_hold(&next)),
                    Looker::Watcher => {
                        look.revisions.insert(next.id.clone(), next.revision);
                        if let Some(d) = next.next_deadline(self.policy.stuck_after) {
                            look.deadline = Some(look.deadline.map_or(d, |l: Timestamp| l.min(d)));
                        }
                        if !next.state.is_terminal() && !look.servers.contains(self.server_of(&next)) {
                            look.servers.insert(self.server_of(&next).clone());
                        }
                    }
                }
                // Last: the record's strings move into its status.
                look.statuses.push(SessionStatus::from_owned(next, txn.now));
            }
            if looker == Looker::Caller {
                let repair = txn.writable();
                self.reconcile_ports(holds, repair);
            }
            look.killed = std::mem::take(&mut txn.killed);
            look.now = txn.now;
            Ok(look)
        })
    }

    /// One refresh that returns both what [`refresh`](Self::refresh) and what
    /// [`health_check`](Self::health_check) return: every session's status and the ids the
    /// health rules killed (a monitor's tick, in one transaction).
    ///
    /// Errors: as `refresh`.
    pub fn survey(&self) -> Result<(Vec<SessionStatus>, Vec<SessionId>)> {
        self.refresh_collecting()
    }

    /// [`refresh`](Self::refresh) under the name embedders look for next to [`list`](Self::list).
    ///
    /// Errors: as `refresh`.
    pub fn try_list(&self) -> Result<Vec<SessionStatus>> {
        self.refresh()
    }

    /// Every session's status, refreshed. When tmux or the store cannot be read, the stored
    /// states are returned as they are, and the error is kept as a notice (see
    /// [`take_notices`](Self::take_notices)); [`try_list`](Self::try_list) returns it instead.
    pub fn list(&self) -> Vec<SessionStatus> {
        match self.refresh() {
            Ok(s) => s,
            Err(e) => {
                self.notice(NoticeKind::Other, format!("could not refresh sessions: {e}"));
                let now = self.clock.now();
                self.store
                    .load_all()
                    .map(|r| {
                        r.records
                            .iter()
                            .map(|rec| SessionStatus::from_record(rec, now))
                            .collect()
                    })
                    .unwrap_or_default()
            }
        }
    }

    /// The refreshed status of one session: its record and one probe of its pane, through its
    /// program's process where that suffices (no tmux call), else through tmux.
    ///
    /// Errors: `Id`, `NotFound`, `Mux`, `Store`.
    pub fn status(&self, id: &SessionId) -> Result<SessionStatus> {
        self.transact(Scope::One(id), |txn| {
            let rec = txn.the_record();
            let next = txn.assess_owned(rec)?;
            Ok(SessionStatus::from_owned(next, txn.now))
        })
    }

    /// Runs the health rules on every session: vanished tmux sessions become Failed, silent
    /// ones Stuck (reported once), and sessions older than their `max_duration` are killed.
    /// Returns the ids it killed.
    ///
    /// Errors: as [`refresh`](Self::refresh).
    pub fn health_check(&self) -> Result<Vec<SessionId>> {
        self.refresh_collecting().map(|(_, killed)| killed)
    }

    /// Everything of this project that belongs to no readable record: its tmux sessions
    /// (and untagged `hydralph-*` sessions of other tools), runtime directories and
    /// worktrees. Observed inside one transaction, so a spawn in progress (its record is
    /// booked before anything is created) is never taken for an orphan.
    ///
    /// Errors: `Mux`, `Store`, `Runtime`.
    pub fn orphans(&self) -> Result<Orphans> {
        self.transact(Scope::All, |txn| {
            let records = txn.records.clone();
            Ok(self.full_orphans(txn, &records))
        })
    }

    /// The orphans of `records` as observed in `txn`.
    pub(crate) fn full_orphans(&self, txn: &crate::txn::Txn<'_>, records: &[orch_core::SessionRecord]) -> Orphans {
        let mut out = txn.tmux_orphans(records);
        let ids: BTreeSet<&SessionId> = records.iter().map(|r| &r.id).collect();
        match self.runtime.list() {
            Ok(dirs) => out.runtime_dirs = dirs.into_iter().filter(|d| !ids.contains(d)).collect(),
            Err(e) => self.notice(NoticeKind::Other, format!("could not list runtime directories: {e}")),
        }
        if let Some(wt) = &self.worktrees {
            match wt.list(&self.project) {
                Ok(list) => {
                    let managed = self.project.join(".hydra").join("worktrees");
                    for w in list {
                        let id = w
                            .path
                            .file_name()
                            .and_then(|n| n.to_str())
                            .and_then(SessionId::from_tmux_name);
                        let owner = records.iter().any(|r| {
                            (r.branch_name.as_deref() == Some(w.branch.as_str()) || id.as_ref() == Some(&r.id))
                                && (!r.state.is_terminal() || r.worktree_kept.is_some() || r.cleanup.is_some())
                        });
                        let ours = w.path.starts_with(&managed) || w.branch.starts_with(orch_core::BRANCH_PREFIX);
                        if ours && !owner {
                            out.worktrees.push((w.branch, w.path));
                        }
                    }
                }
                // A project that is not a git repository has no worktrees to orphan.
                Err(orch_core::WorktreeError::NotARepo { .. }) => {}
                Err(e) => self.notice(NoticeKind::Other, format!("could not list worktrees: {e}")),
            }
        }
        out
    }

    /// Checks the ports that `holds` (see [`port_hold`]: live sessions, and ended ones whose
    /// worktree was kept) against each repository's worktree registry, restoring entries it
    /// lost when `repair` is set, and tells each difference as a notice. Called under the
    /// store lock, so no clean-up can free a port between the records' reading and the
    /// registry's repair.
    pub(crate) fn reconcile_ports(&self, holds: Vec<(std::path::PathBuf, orch_core::PortHold)>, repair: bool) {
        let Some(wt) = &self.worktrees else { return };
        let mut by_repo: BTreeMap<std::path::PathBuf, Vec<orch_core::PortHold>> = BTreeMap::new();
        for (repo, hold) in holds {
            by_repo.entry(repo).or_default().push(hold);
        }
        for (repo, holds) in by_repo {
            let repo = repo.as_path();
            match wt.reconcile_ports(repo, &holds, repair) {
                Ok(repairs) => {
                    for r in repairs {
                        let text = match &r {
                            orch_core::PortRepair::Restored { branch, port } if !repair => format!(
                                "the port registry has lost {branch}'s port {port} (removed by another tool?); `hydra ls` restores it"
                            ),
                            other => other.to_string(),
                        };
                        self.notice(NoticeKind::Worktree, text);
                    }
                }
                Err(orch_core::WorktreeError::NotARepo { .. }) => {}
                Err(e) => self.notice(
                    NoticeKind::Worktree,
                    format!("could not check the port registry of {}: {e}", repo.display()),
                ),
            }
        }
    }

    /// The session that `text` names: an exact id, a session name, or a unique prefix of an id.
    ///
    /// Errors: `NotFound`, `Ambiguous` (with the matching ids), `Store`.
    pub fn resolve(&self, text: &str) -> Result<SessionId> {
        // A whole id wins over names and prefixes: one record read, not all of them.
        let whole = SessionId(text.to_owned());
        if whole.validate().is_ok() && matches!(self.store.load(&whole), Ok(Some(_))) {
            return Ok(whole);
        }
        let records = self.store.load_all()?.records;
        let named: Vec<_> = records.iter().filter(|r| r.name.as_deref() == Some(text)).collect();
        // A name is unique among live sessions; an ended session may share it with a live one.
        if let Some(r) = named.iter().find(|r| !r.state.is_terminal()).or_else(|| named.last()) {
            return Ok(r.id.clone());
        }
        let matches: Vec<String> = records
            .iter()
            .filter(|r| !text.is_empty() && r.id.as_str().starts_with(text))
            .map(|r| r.id.to_string())
            .collect();
        match matches.as_slice() {
            [one] => Ok(SessionId(one.clone())),
            [] => Err(Error::NotFound(text.to_owned())),
            _ => Err(Error::Ambiguous {
                prefix: text.to_owned(),
                matches,
            }),
        }
    }
}

/// The port `r`'s worktree holds in its repository's registry, if it holds one: a live (or
/// kept) worktree session that no spawn or clean-up is working on.
pub(crate) fn port_hold(r: &orch_core::SessionRecord) -> Option<(std::path::PathBuf, orch_core::PortHold)> {
    let holds = r.use_worktree
        && r.cleanup.is_none()
        && r.spawning.is_none()
        && (!r.state.is_terminal() || r.worktree_kept.is_some());
    match (holds, &r.branch_name, r.allocated_port) {
        (true, Some(branch), Some(port)) => Some((
            r.working_dir.clone(),
            orch_core::PortHold {
                branch: branch.clone(),
                port,
            },
        )),
        _ => None,
    }
}
