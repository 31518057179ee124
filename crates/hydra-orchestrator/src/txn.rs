//! The one transaction every command goes through to observe and decide:
//!
//! lock the store → load the records (all, or one) → take the tmux snapshot (one per server in
//! use, started before the records are read so the two overlap; or, for a single session, one
//! read of its pane's process where that is as good, else one tmux probe) and read the loops'
//! reports → decide with the pure core → write what changed → unlock → publish the events →
//! carry out the slow work decided (ending processes, removing worktrees), each finalized by a
//! short second transaction.
//!
//! Nothing observed outside the lock decides a transition. A store that cannot be written
//! (read-only) still lets everything be observed; nothing is then saved, published or done.

use crate::error::{Error, Result};
use crate::ops::cleanup::CleanupOutcome;
use crate::orchestrator::{NoticeKind, Orchestrator, Orphans};
use orch_core::{
    LifecycleEvent, LoadReport, LockGuard, LoopReading, Multiplexer, MuxObservation, MuxServer, MuxSnapshot,
    Observation, PaneInfo, PaneProcess, PendingSnapshot, Prd, ReadAsk, SessionId, SessionRecord, StoreError, Timestamp,
};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Which records a transaction looks at.
pub(crate) enum Scope<'a> {
    /// Every record of the project, with one snapshot per server in use.
    All,
    /// One record, with one probe of its tmux session.
    One(&'a SessionId),
    /// Nothing loaded: just the lock (a new record, a finalization).
    Lock,
}

/// Work carried out after the lock is released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum After {
    /// SIGCONT a process group (a freeze whose pause was never booked, or a resume).
    Thaw(u32),
    /// SIGSTOP a process group's members (`pause --now`; the record already says frozen).
    Freeze(u32),
    /// Carry out the record's clean-up, owned by this process.
    Cleanup(SessionId),
}

/// One transaction in progress: the lock, what was observed, and what was decided.
pub(crate) struct Txn<'o> {
    orch: &'o Orchestrator,
    guard: Option<LockGuard>,
    read_only: Option<PathBuf>,
    pub(crate) now: Timestamp,
    pub(crate) me: u32,
    /// The records loaded, sorted by creation time.
    pub(crate) records: Vec<SessionRecord>,
    views: BTreeMap<MuxServer, Option<MuxSnapshot>>,
    events: Vec<LifecycleEvent>,
    after: Vec<After>,
    /// Records the health rules changed, written together before the unlock.
    pending: Vec<SessionRecord>,
    /// Sessions the health rules killed for their duration.
    pub(crate) killed: Vec<SessionId>,
    /// How many live sessions of the original tool work in each directory (they share its
    /// loop directory there).
    foreign_dirs: BTreeMap<PathBuf, usize>,
    /// The loops' reports read while the snapshot ran (`Scope::All`).
    read_ahead: ReadAhead,
}

/// The loops' readings read ahead, in the records' order, which is the order a refresh judges
/// them in: each is taken with one comparison of ids. Taken out of that order (another
/// caller's), the rest go into a map once.
#[derive(Debug, Default)]
struct ReadAhead {
    in_order: std::collections::VecDeque<(SessionId, LoopReading)>,
    by_id: BTreeMap<SessionId, LoopReading>,
}

impl FromIterator<(SessionId, LoopReading)> for ReadAhead {
    fn from_iter<I: IntoIterator<Item = (SessionId, LoopReading)>>(readings: I) -> Self {
        ReadAhead {
            in_order: readings.into_iter().collect(),
            by_id: BTreeMap::new(),
        }
    }
}

impl ReadAhead {
    /// The reading of `id`, if it was read ahead (once).
    fn take(&mut self, id: &SessionId) -> Option<LoopReading> {
        if self.in_order.front().is_some_and(|(first, _)| first == id) {
            return self.in_order.pop_front().map(|(_, r)| r);
        }
        if !self.in_order.is_empty() {
            self.by_id.extend(self.in_order.drain(..));
        }
        self.by_id.remove(id)
    }
}

/// What a transaction returned, and the clean-ups it carried out after unlocking.
pub(crate) struct Done<T> {
    pub(crate) value: T,
    pub(crate) cleanups: Vec<(SessionId, CleanupOutcome)>,
}

impl Orchestrator {
    /// The server `rec`'s session lives on (records that predate the field: this process's).
    pub(crate) fn server_of<'a>(&'a self, rec: &'a SessionRecord) -> &'a MuxServer {
        rec.tmux_server.as_ref().unwrap_or(self.muxes.primary_server())
    }

    /// Runs `f` inside one transaction over `scope`; see the module documentation.
    pub(crate) fn transact<T>(&self, scope: Scope<'_>, f: impl FnOnce(&mut Txn<'_>) -> Result<T>) -> Result<T> {
        self.transact_done(scope, f).map(|d| d.value)
    }

    /// [`transact`](Self::transact), also returning the outcomes of the clean-ups it ran.
    pub(crate) fn transact_done<T>(
        &self,
        scope: Scope<'_>,
        f: impl FnOnce(&mut Txn<'_>) -> Result<T>,
    ) -> Result<Done<T>> {
        let (guard, read_only) = match self.store.lock() {
            Ok(g) => (Some(g), None),
            Err(StoreError::ReadOnly { path }) => {
                self.notice_once(
                    NoticeKind::ReadOnly,
                    format!("this project is read-only ({}); nothing can be changed", path.display()),
                );
                (None, Some(path))
            }
            Err(e) => return Err(e.into()),
        };
        let mut txn = Txn {
            orch: self,
            guard,
            read_only,
            now: self.clock.now(),
            me: self.host.pid(),
            records: Vec::new(),
            views: BTreeMap::new(),
            events: Vec::new(),
            after: Vec::new(),
            pending: Vec::new(),
            killed: Vec::new(),
            foreign_dirs: BTreeMap::new(),
            read_ahead: ReadAhead::default(),
        };
        match scope {
            Scope::All => txn.load_all()?,
            Scope::One(id) => txn.load_one(id)?,
            Scope::Lock => {}
        }
        let value = f(&mut txn);
        // What the health rules decided is written as one batch, before anything is published
        // or done; if it cannot be written, nothing of it happens.
        let flushed = txn.flush();
        let Txn {
            guard,
            read_only,
            events,
            after,
            ..
        } = txn;
        drop(guard);
        flushed?;
        if read_only.is_some() {
            // Nothing was saved, so nothing happened: no events, no slow work.
            return value.map(|value| Done {
                value,
                cleanups: Vec::new(),
            });
        }
        self.publish(events);
        let cleanups = self.run_after(after);
        value.map(|value| Done { value, cleanups })
    }

    fn run_after(&self, after: Vec<After>) -> Vec<(SessionId, CleanupOutcome)> {
        let mut outcomes = Vec::new();
        for a in after {
            match a {
                After::Thaw(pgid) => {
                    let _ = self.host.signal_group(pgid, orch_core::Sig::Cont);
                }
                After::Freeze(pgid) => {
                    if let Err(e) = self.host.stop_group_members(pgid) {
                        self.notice(
                            NoticeKind::Cleanup,
                            format!("freezing process group {pgid} failed: {e}"),
                        );
                    }
                }
                After::Cleanup(id) => match self.carry_out(&id) {
                    Ok(outcome) => outcomes.push((id, outcome)),
                    Err(e) => self.notice(NoticeKind::Cleanup, format!("clean-up of session {id} failed: {e}")),
                },
            }
        }
        outcomes
    }
}

/// How many live sessions of the original tool work in each directory.
fn foreign_dirs(records: &[SessionRecord]) -> BTreeMap<PathBuf, usize> {
    let mut out = BTreeMap::new();
    for r in records.iter().filter(|r| r.is_foreign() && !r.state.is_terminal()) {
        *out.entry(r.agent_dir().to_path_buf()).or_insert(0) += 1;
    }
    out
}

fn pane_observation(pane: Option<&PaneInfo>) -> (MuxObservation, Option<u32>) {
    match pane {
        None => (MuxObservation::Gone, None),
        Some(p) if p.dead => (
            MuxObservation::Exited {
                status: p.exit_status,
                signal: p.exit_signal,
            },
            None,
        ),
        Some(p) => (MuxObservation::Alive { activity: p.activity }, p.pane_pid),
    }
}

impl Txn<'_> {
    fn load_all(&mut self) -> Result<()> {
        let orch = self.orch;
        let primary = orch.muxes.primary();
        let (first, rest, report, readings) = match primary.begin_snapshot() {
            // The snapshot runs as a child process (tmux's `list-panes`) while this thread
            // reads the records, then the loops' reports of the live ones (used as they are
            // for sessions the snapshot shows alive; a loop seen ended is read again after, see
            // `observe`). No second thread: one cost its start and a malloc arena of its own
            // (150 kB of peak memory at 1,000 sessions), and it could wait for a CPU.
            Some(pending) => {
                let report = orch.store.load_all();
                let muxes: Vec<(MuxServer, Option<Arc<dyn Multiplexer>>)> = other_servers(orch, &report)
                    .into_iter()
                    .map(|server| {
                        let mux = orch.muxes.get(&server);
                        (server, mux)
                    })
                    .collect();
                let started: Vec<Option<Box<dyn PendingSnapshot + '_>>> = muxes
                    .iter()
                    .map(|(_, mux)| mux.as_ref().and_then(|m| m.begin_snapshot()))
                    .collect();
                let readings = read_ahead(orch, &report);
                let first = pending.finish();
                let rest: Vec<(MuxServer, Option<MuxSnapshot>)> = muxes
                    .iter()
                    .zip(started)
                    .map(|((server, mux), started)| {
                        let snapshot = match started {
                            Some(p) => p.finish().ok(),
                            None => mux.as_ref().and_then(|m| m.snapshot().ok()),
                        };
                        (server.clone(), snapshot)
                    })
                    .collect();
                (first, rest, report, readings)
            }
            // A multiplexer that cannot start a snapshot on its own (tmux through its control
            // client, or an embedder's): this thread takes it at once, and a second one reads
            // meanwhile. Other servers' snapshots start as soon as the records name them.
            None => {
                fn join<T>(h: std::thread::ScopedJoinHandle<'_, T>) -> T {
                    h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
                }
                std::thread::scope(|s| {
                    let reads = s.spawn(|| {
                        let report = orch.store.load_all();
                        let rest: Vec<_> = other_servers(orch, &report)
                            .into_iter()
                            .map(|server| {
                                let mux = orch.muxes.get(&server);
                                (server, s.spawn(move || mux.and_then(|m| m.snapshot().ok())))
                            })
                            .collect();
                        let readings = read_ahead(orch, &report);
                        let rest: Vec<(MuxServer, Option<MuxSnapshot>)> =
                            rest.into_iter().map(|(server, h)| (server, join(h))).collect();
                        (report, readings, rest)
                    });
                    let first = primary.snapshot();
                    let (report, readings, rest) = join(reads);
                    (first, rest, report, readings)
                })
            }
        };
        let report = report?;
        self.views.insert(orch.muxes.primary_server().clone(), Some(first?));
        self.views.extend(rest);
        orch.load_problems(report.problems, report.newer);
        self.foreign_dirs = foreign_dirs(&report.records);
        self.read_ahead = readings;
        self.records = report.records;
        Ok(())
    }

    fn load_one(&mut self, id: &SessionId) -> Result<()> {
        id.validate()?;
        let orch = self.orch;
        let rec = orch.store.load(id)?.ok_or_else(|| Error::NotFound(id.to_string()))?;
        let server = orch.server_of(&rec).clone();
        let view = match (self.pane_by_process(&rec), orch.muxes.get(&server)) {
            (Some(pane), _) => Some(MuxSnapshot::new(vec![pane])),
            (None, Some(mux)) => match mux.probe(&rec.tmux_session) {
                Ok(pane) => Some(MuxSnapshot::new(pane.into_iter().collect())),
                Err(e) if server == *orch.muxes.primary_server() => return Err(e.into()),
                Err(_) => None,
            },
            (None, None) => None,
        };
        self.views.insert(server, view);
        if rec.is_foreign() && !rec.state.is_terminal() {
            // Who else of the original tool works in its directory.
            self.foreign_dirs = foreign_dirs(&orch.store.load_all()?.records);
        }
        self.records = vec![rec];
        Ok(())
    }

    /// `rec`'s pane as the operating system shows it, without asking tmux, when that is as
    /// good as tmux's answer (see [`orch_core::process_probe_suffices`]) and the program the
    /// record names (pid and start time) still runs, is no zombie and still has its pane's
    /// terminal; its activity is when the agent's log last grew. At 500 sessions any tmux
    /// command costs 4 to 6 ms (the server polls every pane's terminal for each client),
    /// which this one read of `/proc` avoids.
    fn pane_by_process(&self, rec: &SessionRecord) -> Option<PaneInfo> {
        let orch = self.orch;
        let known = rec
            .pane_process
            .filter(|_| orch_core::process_probe_suffices(rec, self.now, &orch.policy))?;
        let now = orch.host.process_info(known.pid)?;
        // Without its terminal, the program outlives a pane tmux has closed (it has not
        // handled the hang-up yet, or ignores it): only tmux can tell.
        if now.zombie || !now.terminal || now.start != known.start {
            return None;
        }
        Some(PaneInfo {
            session: rec.tmux_session.clone(),
            pane_pid: Some(known.pid),
            dead: false,
            exit_status: None,
            exit_signal: None,
            activity: orch.runtime.log_changed(&rec.id),
            tag: rec.project_tag.clone(),
        })
    }

    /// The live sessions of the original tool (other than `rec`) working where `rec` does.
    pub(crate) fn foreign_sharers(&self, rec: &SessionRecord) -> usize {
        self.foreign_dirs
            .get(rec.agent_dir())
            .copied()
            .unwrap_or(0)
            .saturating_sub(usize::from(!rec.state.is_terminal()))
    }

    /// The one record of a `Scope::One` transaction.
    pub(crate) fn the_record(&mut self) -> SessionRecord {
        self.records.pop().expect("a Scope::One transaction loaded its record")
    }

    /// Fails with `ReadOnly` when this transaction cannot write (a control call then changes
    /// nothing, not even the catch-up).
    pub(crate) fn require_writable(&self) -> Result<()> {
        self.guard().map(|_| ())
    }

    /// Whether this transaction can write.
    pub(crate) fn writable(&self) -> bool {
        self.read_only.is_none()
    }

    /// The snapshot of `server`, if it was taken and could be.
    pub(crate) fn view(&self, server: &MuxServer) -> Option<&MuxSnapshot> {
        self.views.get(server).and_then(Option::as_ref)
    }

    /// The pane of `rec` as observed, if its server could be asked and it exists.
    pub(crate) fn pane(&self, rec: &SessionRecord) -> Option<&PaneInfo> {
        self.view(self.orch.server_of(rec))?.get(&rec.tmux_session)
    }

    /// The process group of `rec`'s pane, when its program runs.
    pub(crate) fn pgid(&self, rec: &SessionRecord) -> Option<u32> {
        self.pane(rec).filter(|p| !p.dead).and_then(|p| p.pane_pid)
    }

    /// Everything observed of `rec`.
    pub(crate) fn observe(&mut self, rec: &SessionRecord) -> Observation {
        let orch = self.orch;
        let (mux, pgid) = match self.views.get(orch.server_of(rec)) {
            Some(Some(snapshot)) => pane_observation(snapshot.get(&rec.tmux_session)),
            _ => (MuxObservation::Unknown, None),
        };
        let reading = if rec.state.is_terminal() {
            LoopReading::default()
        } else if rec.is_foreign() {
            let raw = orch.runtime.read_foreign(rec.agent_dir());
            orch_core::foreign_reading(rec, raw, self.foreign_sharers(rec) + 1)
        } else {
            // Only a live record of this tool was read ahead (so only it takes from the
            // queue, whose order is the records').
            match (self.read_ahead.take(&rec.id), mux) {
                // Read before the snapshot: good for a pane seen alive. A loop seen ended is
                // read again, after, so its last report (written before it exited) counts.
                (Some(r), MuxObservation::Alive { .. }) => r,
                _ => orch.runtime.read(&rec.id),
            }
        };
        let alive = |pid: u32| pid == self.me || orch.host.process_alive(pid);
        // The pane's program, named by its start time, read once per new pid (a refresh of
        // every session does not read /proc for each); not for the original tool's sessions,
        // which are never probed that way.
        let pane_process = match (mux, pgid) {
            (MuxObservation::Alive { .. }, Some(pid)) if !rec.is_foreign() => match rec.pane_process {
                Some(known) if known.pid == pid => Some(known),
                _ => orch
                    .host
                    .process_info(pid)
                    .filter(|p| !p.zombie && p.terminal)
                    .map(|p| PaneProcess { pid, start: p.start }),
            },
            _ => None,
        };
        Observation {
            mux,
            pgid,
            reading,
            spawn_owner_alive: rec.spawning.is_some_and(|l| alive(l.pid)),
            cleanup_owner_alive: rec.cleanup.as_ref().is_some_and(|c| alive(c.owner.pid)),
            pane_process,
        }
    }

    /// Runs the health rules on `rec`: books its transitions' events, saves it when it
    /// changed (when the store can be written), and schedules what follows (a thaw, the
    /// clean-up this process owns). Returns the record as it now is.
    pub(crate) fn assess(&mut self, rec: &SessionRecord) -> Result<SessionRecord> {
        self.assess_owned(rec.clone())
    }

    /// [`assess`](Self::assess) of a record the caller gives up (a refresh, which judges every
    /// record): it is judged in place, not copied.
    pub(crate) fn assess_owned(&mut self, rec: SessionRecord) -> Result<SessionRecord> {
        let obs = self.observe(&rec);
        // What the progress merge below compares with.
        let was_terminal = rec.state.is_terminal();
        let stories_before = rec.stories.clone();
        let a = orch_core::assess_owned(rec, &obs, self.now, self.me, &self.orch.policy);
        let mut next = a.record;
        if a.changed {
            if !self.writable() {
                return Ok(next);
            }
            next.revision += 1;
            self.pending.retain(|r| r.id != next.id);
            self.pending.push(next.clone());
            // New progress reported (or the end): the stories it finished go into the
            // project's PRD, under this transaction's lock.
            if next.stories != stories_before || (next.state.is_terminal() && !was_terminal) {
                self.merge_progress(&next);
            }
        }
        self.events.extend(a.events);
        if let Some(pgid) = a.thaw {
            self.then(After::Thaw(pgid));
        }
        if a.killed {
            self.killed.push(next.id.clone());
        }
        if a.run_cleanup {
            self.then(After::Cleanup(next.id.clone()));
        }
        Ok(next)
    }

    /// Marks `passes: true` in the project's PRD for each story `rec` claimed that its own
    /// copy marks done; only those `passes` values change, every other byte stays. What
    /// cannot be read or written is told as a notice, never an error of the caller.
    pub(crate) fn merge_progress(&mut self, rec: &SessionRecord) {
        let Some(claimed) = &rec.claimed else { return };
        let rt = &self.orch.runtime;
        let Some(copy) = rt.read_prd_copy(&rec.id).ok().and_then(|b| Prd::parse(&b).ok()) else {
            return;
        };
        let done: Vec<String> = claimed
            .iter()
            .filter(|s| copy.story(s).is_some_and(|st| st.passes))
            .cloned()
            .collect();
        if done.is_empty() {
            return;
        }
        let path = &rec.prd_path;
        let outcome = rt
            .read_input(path)
            .map_err(|e| e.to_string())
            .and_then(|b| String::from_utf8(b).map_err(|e| e.to_string()))
            .and_then(|text| {
                let merged = orch_core::prd::with_passes(&text, &done)?;
                if merged != text {
                    rt.replace_input(path, merged.as_bytes()).map_err(|e| e.to_string())?;
                }
                Ok(())
            });
        if let Err(why) = outcome {
            self.orch.notice(
                crate::NoticeKind::Other,
                format!(
                    "{}'s finished stories could not be marked in {}: {why}",
                    rec.id,
                    path.display()
                ),
            );
        }
    }

    /// Writes `rec` (its revision incremented) under this transaction's lock.
    ///
    /// Errors: `ReadOnly` when the store cannot be written, `Store`.
    pub(crate) fn save(&mut self, rec: &mut SessionRecord) -> Result<()> {
        self.write(rec, true)
    }

    /// [`save`](Self::save) without waiting for the disk (see `Store::save_unsynced`).
    pub(crate) fn save_unsynced(&mut self, rec: &mut SessionRecord) -> Result<()> {
        self.write(rec, false)
    }

    fn write(&mut self, rec: &mut SessionRecord, synced: bool) -> Result<()> {
        let guard = self.guard()?;
        rec.revision += 1;
        if synced {
            self.orch.store.save(guard, rec)?;
        } else {
            self.orch.store.save_unsynced(guard, rec)?;
        }
        // This is newer than what the health rules decided for it.
        self.pending.retain(|r| r.id != rec.id);
        Ok(())
    }

    /// Writes the records the health rules changed, in one batch.
    fn flush(&mut self) -> Result<()> {
        let pending = std::mem::take(&mut self.pending);
        if pending.is_empty() {
            return Ok(());
        }
        let guard = self.guard()?;
        self.orch.store.save_all(guard, &pending)?;
        Ok(())
    }

    /// Deletes the record of `id` under this transaction's lock.
    pub(crate) fn remove(&mut self, id: &SessionId) -> Result<()> {
        let guard = self.guard()?;
        self.orch.store.remove(guard, id)?;
        self.pending.retain(|r| r.id != *id);
        Ok(())
    }

    fn guard(&self) -> Result<&LockGuard> {
        match (&self.guard, &self.read_only) {
            (Some(g), _) => Ok(g),
            (None, path) => Err(Error::ReadOnly {
                path: path.clone().unwrap_or_default(),
            }),
        }
    }

    /// Publishes `event` once the lock is released.
    pub(crate) fn emit(&mut self, event: LifecycleEvent) {
        self.events.push(event);
    }

    /// Schedules `after` for when the lock is released (once).
    pub(crate) fn then(&mut self, after: After) {
        if !self.after.contains(&after) {
            self.after.push(after);
        }
    }

    /// This project's tmux sessions that no record of `records` owns, and untagged
    /// `hydralph-*` sessions of other tools, on this process's server.
    pub(crate) fn tmux_orphans(&self, records: &[SessionRecord]) -> Orphans {
        let tag = self.orch.project_tag();
        let mut out = Orphans::default();
        let primary = self.orch.muxes.primary_server();
        for (server, view) in self.views.iter().filter(|(s, _)| *s == primary) {
            let Some(snapshot) = view else { continue };
            // Sorted for a binary search: cheaper than hashing every name at 1,000 sessions.
            let mut owned: Vec<&str> = records
                .iter()
                .filter(|r| self.orch.server_of(r) == server)
                .map(|r| r.tmux_session.as_str())
                .collect();
            owned.sort_unstable();
            for pane in snapshot.sessions() {
                let owned = owned.binary_search(&pane.session.as_str()).is_ok();
                if owned || orch_core::SessionId::from_tmux_name(&pane.session).is_none() {
                    continue;
                }
                match pane.tag.as_deref() {
                    Some(t) if t == tag => out.tmux_sessions.push(pane.session.clone()),
                    None => out.untagged_sessions.push(pane.session.clone()),
                    // Another project's: not ours to see.
                    Some(_) => {}
                }
            }
        }
        out
    }
}

/// The servers, other than the primary, of the records a refresh looks at in tmux: the live
/// ones and those with a clean-up to do.
fn other_servers(orch: &Orchestrator, report: &std::result::Result<LoadReport, StoreError>) -> Vec<MuxServer> {
    let mut others: Vec<MuxServer> = report
        .as_ref()
        .map(|r| {
            r.records
                .iter()
                .filter(|r| !r.state.is_terminal() || r.cleanup.is_some())
                .map(|r| orch.server_of(r))
                .filter(|s| *s != orch.muxes.primary_server())
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    others.sort();
    others.dedup();
    others
}

/// The loops' readings of the live records of this tool, read ahead of judging them.
fn read_ahead(orch: &Orchestrator, report: &std::result::Result<LoadReport, StoreError>) -> ReadAhead {
    let Ok(r) = report else { return ReadAhead::default() };
    // Inboxes only where a message may wait (see `ReadAsk::inbox`).
    let live: Vec<ReadAsk> = r
        .records
        .iter()
        .filter(|r| !r.state.is_terminal() && !r.is_foreign())
        .map(|r| ReadAsk {
            id: &r.id,
            inbox: r.queued > 0,
        })
        .collect();
    live.iter()
        .map(|a| a.id.clone())
        .zip(orch.runtime.read_many(&live))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(queued: usize) -> LoopReading {
        LoopReading::new(None, None, queued)
    }

    fn ahead(ids: &[&str]) -> ReadAhead {
        ids.iter()
            .enumerate()
            .map(|(i, id)| (SessionId((*id).into()), reading(i)))
            .collect()
    }

    #[test]
    fn readings_taken_in_order_or_not_are_each_given_once_to_their_own_session() {
        let id = |s: &str| SessionId(s.into());
        let mut a = ahead(&["c", "a", "b", "d"]);
        assert_eq!(a.take(&id("c")), Some(reading(0)));
        assert_eq!(a.take(&id("a")), Some(reading(1)));
        // Out of order: the rest by id.
        assert_eq!(a.take(&id("d")), Some(reading(3)));
        assert_eq!(a.take(&id("x")), None);
        assert_eq!(a.take(&id("b")), Some(reading(2)));
        assert_eq!(a.take(&id("b")), None, "once");
        assert_eq!(ahead(&[]).take(&id("a")), None);
    }
}
