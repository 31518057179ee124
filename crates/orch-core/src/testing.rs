//! Hand-written, stateful fakes of every port and a manual clock, for the core's tests and for
//! the facade's tests that must run without tmux, a file system, a daemon or git.
//!
//! Every fake can be given a [`StepHook`]: a function called with the fake's and the method's
//! name at the start of each call. Interleaving tests use it to pause one operation at a chosen
//! step while another runs.

use crate::events::{LifecycleEvent, Pulse};
use crate::id::SessionId;
use crate::loop_report::LoopReport;
use crate::ports::*;
use crate::record::SessionRecord;
use crate::time::Timestamp;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A test that panicked while holding a fake's lock has already failed; keep going.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Called with (`"mux"`, `"create"`) and the like at the start of every call of a fake.
pub type StepHook = Arc<dyn Fn(&'static str, &'static str) + Send + Sync>;

#[derive(Default)]
struct Hook(Mutex<Option<StepHook>>);

impl Hook {
    fn set(&self, hook: StepHook) {
        *lock(&self.0) = Some(hook);
    }
    fn call(&self, port: &'static str, method: &'static str) {
        let hook = lock(&self.0).clone();
        if let Some(h) = hook {
            h(port, method);
        }
    }
}

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hook")
    }
}

/// The session record of the seed README, byte for byte (a record of the original tool).
pub const SEED_RECORD: &str = r#"{
  "id": "a1b2c3d4",
  "tmux_session": "hydralph-a1b2c3d4",
  "prd_path": "/project/.hydra/ralph/prd.json",
  "max_iterations": 50,
  "max_duration_secs": 3600,
  "agent_cli": "claude",
  "working_dir": "/project",
  "use_worktree": true,
  "branch_name": "hydralph/a1b2c3d4",
  "worktree_path": "/project/.hydra/worktrees/hydralph-a1b2c3d4",
  "allocated_port": 8080,
  "created_at": 1706112345
}"#;

// ---------------------------------------------------------------------------------------------
// Clock

/// A clock that moves only when told to.
#[derive(Debug, Default)]
pub struct ManualClock {
    now: Mutex<Timestamp>,
}

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: Timestamp) -> Self {
        ManualClock { now: Mutex::new(start) }
    }
    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        let mut now = lock(&self.now);
        *now = now.plus(d);
    }
    /// Sets the clock to `t` (which may be earlier).
    pub fn set(&self, t: Timestamp) {
        *lock(&self.now) = t;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *lock(&self.now)
    }
}

// ---------------------------------------------------------------------------------------------
// Multiplexer

/// One session of the [`FakeMultiplexer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeSession {
    /// How it was created.
    pub spec: SpawnSpec,
    /// Its pane state.
    pub pane: PaneInfo,
    /// Texts sent to it, in order.
    pub typed: Vec<String>,
}

/// A wait on a [`FakeMultiplexer`]: woken by every session that vanishes, exits or is killed
/// after it was made (changes are kept until a `wait` takes them, as tmux keeps a signal).
#[derive(Debug, Default)]
pub struct FakeWatch {
    state: Mutex<(bool, bool)>, // (a change is pending, stopped)
    cv: Condvar,
}

impl FakeWatch {
    fn change(&self) {
        lock(&self.state).0 = true;
        self.cv.notify_all();
    }
}

impl MuxWatch for FakeWatch {
    fn wait(&self) -> Result<MuxWake, MuxError> {
        let mut st = lock(&self.state);
        loop {
            if st.1 {
                return Ok(MuxWake::Stopped);
            }
            if std::mem::take(&mut st.0) {
                return Ok(MuxWake::Changed);
            }
            st = self.cv.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }
    fn stop(&self) {
        lock(&self.state).1 = true;
        self.cv.notify_all();
    }
}

/// An in-memory multiplexer server: sessions are entries in a map.
#[derive(Debug)]
pub struct FakeMultiplexer {
    server: MuxServer,
    watches: Mutex<Vec<Arc<FakeWatch>>>,
    sessions: Mutex<BTreeMap<String, FakeSession>>,
    snapshots: AtomicUsize,
    probes: AtomicUsize,
    next_pid: AtomicUsize,
    fail_create: AtomicBool,
    hook: Hook,
}

impl Default for FakeMultiplexer {
    fn default() -> Self {
        FakeMultiplexer::on(MuxServer::Name("fake".into()))
    }
}

impl FakeMultiplexer {
    /// An empty fake server named `fake`.
    pub fn new() -> Self {
        Self::default()
    }
    /// An empty fake standing for `server`.
    pub fn on(server: MuxServer) -> Self {
        FakeMultiplexer {
            server,
            watches: Mutex::default(),
            sessions: Mutex::default(),
            snapshots: AtomicUsize::new(0),
            probes: AtomicUsize::new(0),
            next_pid: AtomicUsize::new(0),
            fail_create: AtomicBool::new(false),
            hook: Hook::default(),
        }
    }
    /// Calls `hook("mux", method)` at the start of every call.
    pub fn set_hook(&self, hook: StepHook) {
        self.hook.set(hook);
    }
    /// Makes every following `create` fail (to exercise rollback).
    pub fn fail_creates(&self, fail: bool) {
        self.fail_create.store(fail, Ordering::SeqCst);
    }
    /// Adds a session as another tool (or another project, given its `tag`) would.
    pub fn add_foreign(&self, name: &str, tag: Option<&str>) {
        let pid = 5000 + self.next_pid.fetch_add(1, Ordering::SeqCst);
        let spec = SpawnSpec {
            name: name.into(),
            argv: vec!["sleep".into()],
            env: vec![],
            cwd: PathBuf::from("/"),
            tag: tag.map(str::to_owned),
        };
        lock(&self.sessions).insert(
            name.to_owned(),
            FakeSession {
                pane: PaneInfo {
                    session: name.into(),
                    pane_pid: u32::try_from(pid).ok(),
                    dead: false,
                    exit_status: None,
                    exit_signal: None,
                    activity: None,
                    tag: spec.tag.clone(),
                },
                spec,
                typed: Vec::new(),
            },
        );
    }
    /// Removes a session as if it had been killed from outside.
    pub fn vanish(&self, name: &str) {
        lock(&self.sessions).remove(name);
        self.changed();
    }
    /// Marks a session's program as exited with `status`.
    pub fn exit(&self, name: &str, status: i32) {
        if let Some(s) = lock(&self.sessions).get_mut(name) {
            s.pane.dead = true;
            s.pane.exit_status = Some(status);
        }
        self.changed();
    }
    fn changed(&self) {
        for w in lock(&self.watches).iter() {
            w.change();
        }
    }
    /// Records pane output at `at`.
    pub fn touch(&self, name: &str, at: Timestamp) {
        if let Some(s) = lock(&self.sessions).get_mut(name) {
            s.pane.activity = Some(at);
        }
    }
    /// The session `name`, if it exists.
    pub fn session(&self, name: &str) -> Option<FakeSession> {
        lock(&self.sessions).get(name).cloned()
    }
    /// Names of every session.
    pub fn names(&self) -> Vec<String> {
        lock(&self.sessions).keys().cloned().collect()
    }
    /// How many snapshots were taken.
    pub fn snapshot_calls(&self) -> usize {
        self.snapshots.load(Ordering::SeqCst)
    }
    /// How many single-session probes were made.
    pub fn probe_calls(&self) -> usize {
        self.probes.load(Ordering::SeqCst)
    }
}

impl Multiplexer for FakeMultiplexer {
    fn server(&self) -> MuxServer {
        self.server.clone()
    }
    fn create(&self, spec: &SpawnSpec) -> Result<(), MuxError> {
        self.hook.call("mux", "create");
        if spec.argv.is_empty() {
            return Err(MuxError::Invalid {
                op: "create a session",
                why: "no program to run".into(),
            });
        }
        if self.fail_create.load(Ordering::SeqCst) {
            return Err(MuxError::Failed {
                op: "new-session".into(),
                stderr: "injected failure".into(),
            });
        }
        let mut sessions = lock(&self.sessions);
        if sessions.contains_key(&spec.name) {
            return Err(MuxError::NameTaken {
                name: spec.name.clone(),
            });
        }
        let pid = 1000 + self.next_pid.fetch_add(1, Ordering::SeqCst);
        let pane = PaneInfo {
            session: spec.name.clone(),
            pane_pid: u32::try_from(pid).ok(),
            dead: false,
            exit_status: None,
            exit_signal: None,
            activity: None,
            tag: spec.tag.clone(),
        };
        sessions.insert(
            spec.name.clone(),
            FakeSession {
                spec: spec.clone(),
                pane,
                typed: Vec::new(),
            },
        );
        Ok(())
    }
    fn snapshot(&self) -> Result<MuxSnapshot, MuxError> {
        self.hook.call("mux", "snapshot");
        self.snapshots.fetch_add(1, Ordering::SeqCst);
        Ok(MuxSnapshot::new(
            lock(&self.sessions).values().map(|s| s.pane.clone()).collect(),
        ))
    }
    fn probe(&self, name: &str) -> Result<Option<PaneInfo>, MuxError> {
        self.hook.call("mux", "probe");
        self.probes.fetch_add(1, Ordering::SeqCst);
        Ok(lock(&self.sessions).get(name).map(|s| s.pane.clone()))
    }
    fn send_text(&self, name: &str, text: &str, enter: bool) -> Result<(), MuxError> {
        self.hook.call("mux", "send_text");
        let mut sessions = lock(&self.sessions);
        let s = sessions
            .get_mut(name)
            .ok_or_else(|| MuxError::NotFound { name: name.into() })?;
        s.typed.push(if enter { format!("{text}\n") } else { text.to_owned() });
        Ok(())
    }
    fn capture(&self, name: &str, _lines: u32) -> Result<String, MuxError> {
        self.hook.call("mux", "capture");
        let sessions = lock(&self.sessions);
        let s = sessions
            .get(name)
            .ok_or_else(|| MuxError::NotFound { name: name.into() })?;
        Ok(s.typed.concat())
    }
    fn kill(&self, name: &str) -> Result<(), MuxError> {
        self.hook.call("mux", "kill");
        if lock(&self.sessions).remove(name).is_some() {
            self.changed();
        }
        Ok(())
    }
    fn attach_command(&self, name: &str) -> Result<AttachCommand, MuxError> {
        if !lock(&self.sessions).contains_key(name) {
            return Err(MuxError::NotFound { name: name.into() });
        }
        Ok(AttachCommand {
            argv: vec!["true".into(), name.into()],
        })
    }
    fn watch(&self) -> Result<Arc<dyn MuxWatch>, MuxError> {
        let w = Arc::new(FakeWatch::default());
        lock(&self.watches).push(Arc::clone(&w));
        Ok(w)
    }
}

// ---------------------------------------------------------------------------------------------
// Store

/// An in-memory store with a real (in-process) exclusive lock.
#[derive(Debug, Default)]
pub struct MemoryStore {
    records: Mutex<BTreeMap<SessionId, SessionRecord>>,
    lock: Arc<(Mutex<bool>, Condvar)>,
    fail_writes: AtomicBool,
    read_only: AtomicBool,
    acquisitions: Arc<AtomicUsize>,
    hook: Hook,
    record_dir: Mutex<Option<PathBuf>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
    /// Makes [`Store::record_dir`] answer `dir`, as a store of files there would (a watcher's
    /// test then tells record changes by paths in it).
    pub fn set_record_dir(&self, dir: impl Into<PathBuf>) {
        *lock(&self.record_dir) = Some(dir.into());
    }
    /// Calls `hook("store", method)` at the start of every call.
    pub fn set_hook(&self, hook: StepHook) {
        self.hook.set(hook);
    }
    /// Makes saves fail as a full disk would (the old record stays).
    pub fn fail_writes(&self, fail: bool) {
        self.fail_writes.store(fail, Ordering::SeqCst);
    }
    /// Makes the store read-only: the lock and writes fail with `ReadOnly`, reads work.
    pub fn set_read_only(&self, read_only: bool) {
        self.read_only.store(read_only, Ordering::SeqCst);
    }
    /// Every record, by id.
    pub fn records(&self) -> Vec<SessionRecord> {
        lock(&self.records).values().cloned().collect()
    }
    /// Puts `record` in place as another process would (no lock taken).
    pub fn put(&self, record: SessionRecord) {
        lock(&self.records).insert(record.id.clone(), record);
    }
    /// Whether the lock is held right now.
    pub fn is_locked(&self) -> bool {
        *lock(&self.lock.0)
    }
}

struct MemoryLock(Arc<(Mutex<bool>, Condvar)>);

impl Drop for MemoryLock {
    fn drop(&mut self) {
        *lock(&self.0 .0) = false;
        self.0 .1.notify_all();
    }
}

impl Store for MemoryStore {
    fn lock(&self) -> Result<LockGuard, StoreError> {
        self.hook.call("store", "lock");
        if self.read_only.load(Ordering::SeqCst) {
            return Err(StoreError::ReadOnly {
                path: PathBuf::from("memory"),
            });
        }
        let (held, cv) = &*self.lock;
        let mut g = lock(held);
        while *g {
            g = cv.wait(g).unwrap_or_else(|e| e.into_inner());
        }
        *g = true;
        self.acquisitions.fetch_add(1, Ordering::SeqCst);
        Ok(LockGuard::new(MemoryLock(Arc::clone(&self.lock))))
    }
    fn load(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        self.hook.call("store", "load");
        id.validate()?;
        Ok(lock(&self.records).get(id).cloned())
    }
    fn load_all(&self) -> Result<LoadReport, StoreError> {
        self.hook.call("store", "load_all");
        let mut records: Vec<_> = lock(&self.records).values().cloned().collect();
        records.sort_by_key(|r| (r.created(), r.id.clone()));
        Ok(LoadReport::of(records))
    }
    fn save(&self, _lock: &LockGuard, record: &SessionRecord) -> Result<(), StoreError> {
        self.hook.call("store", "save");
        record.id.validate()?;
        if self.read_only.load(Ordering::SeqCst) {
            return Err(StoreError::ReadOnly {
                path: PathBuf::from("memory"),
            });
        }
        if self.fail_writes.load(Ordering::SeqCst) {
            return Err(StoreError::Io {
                op: "write",
                path: PathBuf::from(format!("memory/{}.json", record.id)),
                source: std::io::Error::other("no space left on device (injected)"),
            });
        }
        lock(&self.records).insert(record.id.clone(), record.clone());
        Ok(())
    }
    fn remove(&self, _lock: &LockGuard, id: &SessionId) -> Result<(), StoreError> {
        self.hook.call("store", "remove");
        id.validate()?;
        lock(&self.records).remove(id);
        Ok(())
    }
    fn record_dir(&self) -> Option<PathBuf> {
        lock(&self.record_dir).clone()
    }
    fn lock_stats(&self) -> LockStats {
        // Hold times need a clock this crate does not read; the file store measures them.
        LockStats {
            acquisitions: self.acquisitions.load(Ordering::SeqCst) as u64,
            ..LockStats::default()
        }
    }
}

// ---------------------------------------------------------------------------------------------
// EventBus

/// A bus that records what is published and replays pulses given to it.
#[derive(Debug, Default)]
pub struct RecordingBus {
    events: Mutex<Vec<LifecycleEvent>>,
    pulses: Arc<Mutex<VecDeque<Pulse>>>,
}

impl RecordingBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }
    /// Everything published, in order.
    pub fn events(&self) -> Vec<LifecycleEvent> {
        lock(&self.events).clone()
    }
    /// Channel names of everything published, in order.
    pub fn channels(&self) -> Vec<&'static str> {
        lock(&self.events).iter().map(|e| e.channel.as_str()).collect()
    }
    /// Queues a pulse for subscribers.
    pub fn push_pulse(&self, pulse: Pulse) {
        lock(&self.pulses).push_back(pulse);
    }
}

struct QueueSubscription(Arc<Mutex<VecDeque<Pulse>>>);

impl Subscription for QueueSubscription {
    fn next(&mut self) -> Pin<Box<dyn Future<Output = Option<Pulse>> + Send + '_>> {
        let next = lock(&self.0).pop_front();
        Box::pin(std::future::ready(next))
    }
}

impl EventBus for RecordingBus {
    fn publish(&self, event: &LifecycleEvent) -> Result<(), BusError> {
        lock(&self.events).push(event.clone());
        Ok(())
    }
    fn flush(&self, _timeout: Duration) -> Result<(), BusError> {
        Ok(())
    }
    fn subscribe(&self, _channels: &[&str]) -> Result<Box<dyn Subscription>, BusError> {
        Ok(Box::new(QueueSubscription(Arc::clone(&self.pulses))))
    }
}

// ---------------------------------------------------------------------------------------------
// Worktrees

/// An in-memory worktree manager with port allocation and "dirty" marks.
#[derive(Debug)]
pub struct FakeWorktrees {
    trees: Mutex<BTreeMap<String, WorktreeInfo>>,
    dirty: Mutex<Vec<String>>,
    deleted: Mutex<Vec<String>>,
    merged: Mutex<Vec<(String, String)>>,
    range: (u16, u16),
    hook: Hook,
}

impl Default for FakeWorktrees {
    fn default() -> Self {
        FakeWorktrees {
            trees: Mutex::default(),
            dirty: Mutex::default(),
            deleted: Mutex::default(),
            merged: Mutex::default(),
            range: (3001, 3099),
            hook: Hook::default(),
        }
    }
}

impl FakeWorktrees {
    /// An empty fake with ports 3001-3099.
    pub fn new() -> Self {
        Self::default()
    }
    /// Calls `hook("worktrees", method)` at the start of every call.
    pub fn set_hook(&self, hook: StepHook) {
        self.hook.set(hook);
    }
    /// Marks `branch`'s worktree as holding uncommitted work.
    pub fn mark_dirty(&self, branch: &str) {
        lock(&self.dirty).push(branch.to_owned());
    }
    /// The branches deleted so far.
    pub fn deleted(&self) -> Vec<String> {
        lock(&self.deleted).clone()
    }
    /// The merges made so far: (branch, into).
    pub fn merged(&self) -> Vec<(String, String)> {
        lock(&self.merged).clone()
    }
}

impl Worktrees for FakeWorktrees {
    fn create(&self, req: &WorktreeRequest) -> Result<WorktreeInfo, WorktreeError> {
        self.hook.call("worktrees", "create");
        let mut trees = lock(&self.trees);
        if let Some(t) = trees.get(&req.branch) {
            return Err(WorktreeError::BranchTaken {
                branch: req.branch.clone(),
                path: t.path.clone(),
            });
        }
        let used: Vec<u16> = trees
            .values()
            .filter_map(|t| t.port)
            .chain(req.reserved_ports.iter().copied())
            .collect();
        let port = (self.range.0..=self.range.1)
            .find(|p| !used.contains(p))
            .ok_or(WorktreeError::RangeExhausted {
                start: self.range.0,
                end: self.range.1,
            })?;
        let path = req
            .path
            .clone()
            .unwrap_or_else(|| req.repo.join(".hydra/worktrees").join(req.session.tmux_name()));
        let mut info = WorktreeInfo::new(req.branch.clone(), path, Some(port));
        info.base_branch = Some("main".into());
        info.base_commit = Some("b".repeat(40));
        info.created_branch = true;
        trees.insert(req.branch.clone(), info.clone());
        Ok(info)
    }
    fn remove(&self, _repo: &Path, branch: &str, force: bool) -> Result<RemoveOutcome, WorktreeError> {
        self.hook.call("worktrees", "remove");
        let mut trees = lock(&self.trees);
        let Some(t) = trees.get(branch) else {
            return Ok(RemoveOutcome::NotFound);
        };
        if !force && lock(&self.dirty).iter().any(|b| b == branch) {
            return Ok(RemoveOutcome::Kept {
                path: t.path.clone(),
                reasons: vec!["uncommitted changes".into()],
            });
        }
        trees.remove(branch);
        Ok(RemoveOutcome::Removed)
    }
    fn list(&self, _repo: &Path) -> Result<Vec<WorktreeInfo>, WorktreeError> {
        self.hook.call("worktrees", "list");
        Ok(lock(&self.trees).values().cloned().collect())
    }
    fn delete_branch(&self, _repo: &Path, branch: &str) -> Result<bool, WorktreeError> {
        self.hook.call("worktrees", "delete_branch");
        lock(&self.deleted).push(branch.to_owned());
        Ok(true)
    }
    fn changes(&self, _repo: &Path, _from: &str, _branch: &str, _patch: bool) -> Result<BranchChanges, WorktreeError> {
        self.hook.call("worktrees", "changes");
        Ok(BranchChanges::default())
    }
    fn merge(
        &self,
        _repo: &Path,
        branch: &str,
        into: &str,
        _squash: bool,
        _message: &str,
    ) -> Result<MergeOutcome, WorktreeError> {
        self.hook.call("worktrees", "merge");
        lock(&self.merged).push((branch.to_owned(), into.to_owned()));
        Ok(MergeOutcome::Merged { commit: "0".repeat(40) })
    }
}

// ---------------------------------------------------------------------------------------------
// LoopRuntime

/// One session directory of the [`MemoryRuntime`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FakeLoopDir {
    /// The PRD copy.
    pub prd: Vec<u8>,
    /// The loop's report and when it was written.
    pub report: Option<(LoopReport, Timestamp)>,
    /// Whether the pause marker is set.
    pub paused: bool,
    /// Queued messages, oldest first.
    pub inbox: Vec<String>,
    /// The agent log.
    pub log: String,
    /// The external loop script it was created with, if any.
    pub external_loop: Option<Vec<u8>>,
    /// How many times a retry of a usage-limit wait was asked for.
    pub retries: usize,
    /// When the agent log last grew, as [`LoopRuntime::log_changed`] tells it.
    pub log_changed: Option<Timestamp>,
}

impl FakeLoopDir {
    /// What the directory shows: its report, when it was written, its queued messages.
    fn reading(&self) -> LoopReading {
        LoopReading::new(
            self.report.as_ref().map(|(r, _)| r.clone()),
            self.report.as_ref().map(|(_, t)| *t),
            self.inbox.len(),
        )
    }
}

/// An in-memory runtime: session directories are map entries, PRD files are registered bytes.
#[derive(Debug, Default)]
pub struct MemoryRuntime {
    dirs: Mutex<BTreeMap<SessionId, FakeLoopDir>>,
    archive: Mutex<BTreeMap<SessionId, FakeLoopDir>>,
    files: Mutex<BTreeMap<PathBuf, Vec<u8>>>,
    /// The original tool's loop directories, by the directory its sessions work in.
    foreign: Mutex<BTreeMap<PathBuf, FakeLoopDir>>,
    fail_create: AtomicBool,
    hook: Hook,
}

impl MemoryRuntime {
    /// Makes the original tool's loop directory for sessions working in `agent_dir`.
    pub fn add_foreign_dir(&self, agent_dir: impl Into<PathBuf>) {
        lock(&self.foreign).entry(agent_dir.into()).or_default();
    }
    /// The original tool's loop working in `agent_dir` writes `report` (JSON text) at `at`.
    pub fn foreign_report(&self, agent_dir: &Path, json: &str, at: Timestamp) {
        let report = LoopReport::parse(json.as_bytes()).expect("a valid status.json in the test");
        lock(&self.foreign).entry(agent_dir.to_path_buf()).or_default().report = Some((report, at));
    }
    /// Whether the original tool's pause marker for `agent_dir` is set.
    pub fn foreign_paused(&self, agent_dir: &Path) -> bool {
        lock(&self.foreign).get(agent_dir).is_some_and(|d| d.paused)
    }
    /// An empty runtime.
    pub fn new() -> Self {
        Self::default()
    }
    /// Calls `hook("runtime", method)` at the start of every call.
    pub fn set_hook(&self, hook: StepHook) {
        self.hook.set(hook);
    }
    /// Registers a PRD file.
    pub fn add_file(&self, path: impl Into<PathBuf>, bytes: impl Into<Vec<u8>>) {
        lock(&self.files).insert(path.into(), bytes.into());
    }
    /// Makes every following `create` fail.
    pub fn fail_creates(&self, fail: bool) {
        self.fail_create.store(fail, Ordering::SeqCst);
    }
    /// The loop of `id` writes `report` (JSON text) at `at`.
    pub fn report(&self, id: &SessionId, json: &str, at: Timestamp) {
        let report = LoopReport::parse(json.as_bytes()).expect("a valid status.json in the test");
        if let Some(d) = lock(&self.dirs).get_mut(id) {
            d.report = Some((report, at));
        }
    }
    /// The loop of `id` takes its queued messages into a prompt.
    pub fn take_inbox(&self, id: &SessionId) -> Vec<String> {
        lock(&self.dirs)
            .get_mut(id)
            .map(|d| std::mem::take(&mut d.inbox))
            .unwrap_or_default()
    }
    /// The agent of `id` prints `text`.
    pub fn print(&self, id: &SessionId, text: &str) {
        if let Some(d) = lock(&self.dirs).get_mut(id) {
            d.log.push_str(text);
        }
    }
    /// The agent of `id` prints `text` at `at` (the log's change time moves with it).
    pub fn print_at(&self, id: &SessionId, text: &str, at: Timestamp) {
        if let Some(d) = lock(&self.dirs).get_mut(id) {
            d.log.push_str(text);
            d.log_changed = Some(at);
        }
    }
    /// The agent of `id` writes `prd` as its PRD copy (a story marked done, say).
    pub fn write_prd_copy(&self, id: &SessionId, prd: &[u8]) {
        if let Some(d) = lock(&self.dirs).get_mut(id) {
            d.prd = prd.to_vec();
        }
    }
    /// A registered file's bytes (a PRD the orchestrator updated, say).
    pub fn file(&self, path: &Path) -> Option<Vec<u8>> {
        lock(&self.files).get(path).cloned()
    }
    /// The directory of `id`, if it exists.
    pub fn dir(&self, id: &SessionId) -> Option<FakeLoopDir> {
        lock(&self.dirs).get(id).cloned()
    }
    /// The archived logs of a removed session, if they were archived.
    pub fn archived(&self, id: &SessionId) -> Option<FakeLoopDir> {
        lock(&self.archive).get(id).cloned()
    }
    /// Ids of every directory.
    pub fn ids(&self) -> Vec<SessionId> {
        lock(&self.dirs).keys().cloned().collect()
    }
}

impl LoopRuntime for MemoryRuntime {
    fn read_input(&self, path: &Path) -> Result<Vec<u8>, RuntimeError> {
        self.hook.call("runtime", "read_input");
        lock(&self.files).get(path).cloned().ok_or_else(|| RuntimeError::Prd {
            path: path.to_path_buf(),
            why: "cannot read it: no such file".into(),
        })
    }
    fn retry_now(&self, id: &SessionId) -> Result<(), RuntimeError> {
        self.hook.call("runtime", "retry_now");
        match lock(&self.dirs).get_mut(id) {
            Some(d) => {
                d.retries += 1;
                Ok(())
            }
            None => Err(RuntimeError::Missing {
                id: id.clone(),
                path: PathBuf::from(format!("memory/{id}")),
            }),
        }
    }
    fn replace_input(&self, path: &Path, bytes: &[u8]) -> Result<(), RuntimeError> {
        self.hook.call("runtime", "replace_input");
        lock(&self.files).insert(path.to_path_buf(), bytes.to_vec());
        Ok(())
    }
    fn read_prd_copy(&self, id: &SessionId) -> Result<Vec<u8>, RuntimeError> {
        self.hook.call("runtime", "read_prd_copy");
        lock(&self.dirs)
            .get(id)
            .map(|d| d.prd.clone())
            .ok_or_else(|| RuntimeError::Missing {
                id: id.clone(),
                path: PathBuf::from(format!("memory/{id}")),
            })
    }
    fn create(&self, req: &RuntimeRequest<'_>) -> Result<(), RuntimeError> {
        self.hook.call("runtime", "create");
        if self.fail_create.load(Ordering::SeqCst) {
            return Err(RuntimeError::Io {
                op: "create",
                path: PathBuf::from(format!("memory/{}", req.id)),
                source: std::io::Error::other("injected failure"),
            });
        }
        let mut dirs = lock(&self.dirs);
        if dirs.contains_key(req.id) {
            return Err(RuntimeError::Exists {
                path: PathBuf::from(format!("memory/{}", req.id)),
            });
        }
        dirs.insert(
            req.id.clone(),
            FakeLoopDir {
                prd: req.prd.to_vec(),
                external_loop: req.external_loop.map(<[u8]>::to_vec),
                ..FakeLoopDir::default()
            },
        );
        Ok(())
    }
    fn read(&self, id: &SessionId) -> LoopReading {
        self.hook.call("runtime", "read");
        let dirs = lock(&self.dirs);
        let Some(d) = dirs.get(id) else {
            return LoopReading::default();
        };
        d.reading()
    }
    fn read_foreign(&self, agent_dir: &Path) -> LoopReading {
        self.hook.call("runtime", "read_foreign");
        let dirs = lock(&self.foreign);
        let Some(d) = dirs.get(agent_dir) else {
            return LoopReading::default();
        };
        d.reading().with_paused(Some(d.paused))
    }
    fn set_foreign_paused(&self, agent_dir: &Path, paused: bool) -> Result<(), RuntimeError> {
        self.hook.call("runtime", "set_foreign_paused");
        let mut dirs = lock(&self.foreign);
        let d = dirs.get_mut(agent_dir).ok_or_else(|| RuntimeError::Io {
            op: "write",
            path: agent_dir.join(".hydra/ralph/.pause"),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        })?;
        d.paused = paused;
        Ok(())
    }
    fn set_paused(&self, id: &SessionId, paused: bool) -> Result<(), RuntimeError> {
        self.hook.call("runtime", "set_paused");
        let mut dirs = lock(&self.dirs);
        let d = dirs.get_mut(id).ok_or_else(|| missing(id))?;
        d.paused = paused;
        Ok(())
    }
    fn queue_message(&self, id: &SessionId, message: &str, _now: Timestamp) -> Result<(), RuntimeError> {
        self.hook.call("runtime", "queue_message");
        let mut dirs = lock(&self.dirs);
        let d = dirs.get_mut(id).ok_or_else(|| missing(id))?;
        d.inbox.push(message.to_owned());
        Ok(())
    }
    fn clear_report(&self, id: &SessionId) -> Result<(), RuntimeError> {
        self.hook.call("runtime", "clear_report");
        if let Some(d) = lock(&self.dirs).get_mut(id) {
            d.report = None;
        }
        Ok(())
    }
    fn remove(&self, id: &SessionId, logs: LogDisposal) -> Result<(), RuntimeError> {
        self.hook.call("runtime", "remove");
        if let Some(dir) = lock(&self.dirs).remove(id) {
            if logs == LogDisposal::Archive {
                lock(&self.archive).insert(id.clone(), dir);
            }
        }
        Ok(())
    }
    fn list(&self) -> Result<Vec<SessionId>, RuntimeError> {
        self.hook.call("runtime", "list");
        Ok(self.ids())
    }
    fn log_tail(&self, id: &SessionId, lines: usize) -> Result<Option<String>, RuntimeError> {
        let dirs = lock(&self.dirs);
        let Some(d) = dirs.get(id).filter(|d| !d.log.is_empty()) else {
            return Ok(None);
        };
        let all: Vec<&str> = d.log.lines().collect();
        Ok(Some(all[all.len().saturating_sub(lines)..].join("\n")))
    }
    fn log_changed(&self, id: &SessionId) -> Option<Timestamp> {
        self.hook.call("runtime", "log_changed");
        lock(&self.dirs).get(id).and_then(|d| d.log_changed)
    }
}

fn missing(id: &SessionId) -> RuntimeError {
    RuntimeError::Missing {
        id: id.clone(),
        path: PathBuf::from(format!("memory/{id}")),
    }
}

// ---------------------------------------------------------------------------------------------
// FileEvents

/// File events told by hand: [`changed`](Self::changed) calls every registered callback.
#[derive(Default)]
pub struct ManualFileEvents {
    callbacks: Arc<Mutex<Vec<(u64, OnChange)>>>,
    next: AtomicUsize,
    dirs: Mutex<Vec<PathBuf>>,
}

impl std::fmt::Debug for ManualFileEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManualFileEvents").finish_non_exhaustive()
    }
}

impl ManualFileEvents {
    /// No watchers yet.
    pub fn new() -> Self {
        Self::default()
    }
    /// Tells every watcher that `path` changed.
    pub fn changed(&self, path: &Path) {
        let callbacks: Vec<OnChange> = lock(&self.callbacks).iter().map(|(_, c)| Arc::clone(c)).collect();
        for c in callbacks {
            c(path);
        }
    }
    /// How many watches are active.
    pub fn watching(&self) -> usize {
        lock(&self.callbacks).len()
    }
    /// Every directory ever watched.
    pub fn dirs(&self) -> Vec<PathBuf> {
        lock(&self.dirs).clone()
    }
}

struct ManualGuard(Arc<Mutex<Vec<(u64, OnChange)>>>, u64);

impl Drop for ManualGuard {
    fn drop(&mut self) {
        lock(&self.0).retain(|(n, _)| *n != self.1);
    }
}

impl FileEvents for ManualFileEvents {
    fn watch(&self, dirs: &[PathBuf], on_change: OnChange) -> Result<Box<dyn Send>, FileEventsError> {
        let n = self.next.fetch_add(1, Ordering::SeqCst) as u64;
        lock(&self.callbacks).push((n, on_change));
        lock(&self.dirs).extend(dirs.iter().cloned());
        Ok(Box::new(ManualGuard(Arc::clone(&self.callbacks), n)))
    }
}

// ---------------------------------------------------------------------------------------------
// Host

/// A host with registered programs and directories, processes that are alive until told
/// otherwise, and a log of the signals sent.
#[derive(Debug)]
pub struct FakeHost {
    programs: Mutex<BTreeSet<String>>,
    dirs: Mutex<BTreeSet<PathBuf>>,
    dead: Mutex<BTreeSet<u32>>,
    signals: Mutex<Vec<(u32, Sig)>>,
    stopped: Mutex<Vec<u32>>,
    processes: Mutex<BTreeMap<u32, ProcessInfo>>,
    process_reads: AtomicUsize,
    pid: AtomicU32,
}

impl Default for FakeHost {
    fn default() -> Self {
        FakeHost {
            programs: Mutex::new(["bash".to_owned()].into()),
            dirs: Mutex::default(),
            dead: Mutex::default(),
            signals: Mutex::default(),
            stopped: Mutex::default(),
            processes: Mutex::default(),
            process_reads: AtomicUsize::new(0),
            pid: AtomicU32::new(4242),
        }
    }
}

impl FakeHost {
    /// A host with `bash` on its `PATH` and nothing else.
    pub fn new() -> Self {
        Self::default()
    }
    /// Process `pid` shows as `info` in [`Host::process_info`] (until it is ended or
    /// changed); no process is shown by default, as on a system that cannot tell.
    pub fn set_process(&self, pid: u32, info: ProcessInfo) {
        lock(&self.processes).insert(pid, info);
    }
    /// Process `pid` is gone from the process table (its parent collected it).
    pub fn end_process(&self, pid: u32) {
        lock(&self.processes).remove(&pid);
    }
    /// How many times [`Host::process_info`] was asked.
    pub fn process_reads(&self) -> usize {
        self.process_reads.load(Ordering::SeqCst)
    }
    /// Puts `program` on the `PATH` (a name, or a path with `/`).
    pub fn add_program(&self, program: &str) {
        lock(&self.programs).insert(program.to_owned());
    }
    /// Makes `dir` an existing directory (its canonical form is itself).
    pub fn add_dir(&self, dir: impl Into<PathBuf>) {
        lock(&self.dirs).insert(dir.into());
    }
    /// Process `pid` (and group `pid`) has exited.
    pub fn kill_process(&self, pid: u32) {
        lock(&self.dead).insert(pid);
    }
    /// This host's own pid from now on (another process's view).
    pub fn set_pid(&self, pid: u32) {
        self.pid.store(pid, Ordering::SeqCst);
    }
    /// Every signal sent, in order.
    pub fn signals(&self) -> Vec<(u32, Sig)> {
        lock(&self.signals).clone()
    }
    /// Every group whose members were stopped, in order.
    pub fn stopped(&self) -> Vec<u32> {
        lock(&self.stopped).clone()
    }
}

impl Host for FakeHost {
    fn find_program(&self, program: &str) -> Option<PathBuf> {
        let programs = lock(&self.programs);
        if !programs.contains(program) {
            return None;
        }
        Some(if program.contains('/') {
            PathBuf::from(program)
        } else {
            PathBuf::from("/fake/bin").join(program)
        })
    }
    fn canonical_dir(&self, path: &Path) -> Result<PathBuf, HostError> {
        if lock(&self.dirs).contains(path) {
            Ok(path.to_path_buf())
        } else {
            Err(HostError::Io {
                op: "open directory",
                target: path.display().to_string(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            })
        }
    }
    fn signal_group(&self, pgid: u32, signal: Sig) -> Result<bool, HostError> {
        lock(&self.signals).push((pgid, signal));
        if signal == Sig::Kill || signal == Sig::Term {
            lock(&self.dead).insert(pgid);
        }
        Ok(!lock(&self.dead).contains(&pgid))
    }
    fn stop_group_members(&self, pgid: u32) -> Result<usize, HostError> {
        lock(&self.stopped).push(pgid);
        Ok(1)
    }
    fn group_alive(&self, pgid: u32) -> bool {
        !lock(&self.dead).contains(&pgid)
    }
    fn process_alive(&self, pid: u32) -> bool {
        !lock(&self.dead).contains(&pid)
    }
    fn pid(&self) -> u32 {
        self.pid.load(Ordering::SeqCst)
    }
    fn process_info(&self, pid: u32) -> Option<ProcessInfo> {
        self.process_reads.fetch_add(1, Ordering::SeqCst);
        if lock(&self.dead).contains(&pid) {
            return None;
        }
        lock(&self.processes).get(&pid).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SessionConfig;

    #[test]
    fn memory_store_lock_is_exclusive() {
        let store = Arc::new(MemoryStore::new());
        let rec = SessionRecord::new(SessionId("c1".into()), &SessionConfig::default(), Timestamp(1));
        store.put(rec);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let store = Arc::clone(&store);
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        let g = store.lock().expect("lock");
                        let mut r = store.load(&SessionId("c1".into())).expect("load").expect("exists");
                        r.revision += 1;
                        std::thread::yield_now();
                        store.save(&g, &r).expect("save");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        assert_eq!(
            store
                .load(&SessionId("c1".into()))
                .expect("load")
                .expect("exists")
                .revision,
            400
        );
        assert_eq!(store.lock_stats().acquisitions, 400);
    }

    #[test]
    fn fake_worktrees_keep_dirty_and_allocate_distinct_ports() {
        let wt = FakeWorktrees::new();
        let req = |b: &str| WorktreeRequest {
            repo: "/r".into(),
            branch: b.into(),
            base: None,
            path: None,
            session: SessionId("a".into()),
            reserved_ports: Vec::new(),
        };
        let a = wt.create(&req("a")).expect("a");
        let b = wt.create(&req("b")).expect("b");
        assert_ne!(a.port, b.port);
        wt.mark_dirty("a");
        assert!(matches!(
            wt.remove(Path::new("/r"), "a", false),
            Ok(RemoveOutcome::Kept { .. })
        ));
        assert_eq!(
            wt.remove(Path::new("/r"), "a", true).expect("forced"),
            RemoveOutcome::Removed
        );
    }

    #[test]
    fn hooks_see_every_call() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mux = FakeMultiplexer::new();
        let s = Arc::clone(&seen);
        mux.set_hook(Arc::new(move |port, method| lock(&s).push(format!("{port}.{method}"))));
        mux.snapshot().expect("snapshot");
        mux.kill("x").expect("kill");
        assert_eq!(*lock(&seen), ["mux.snapshot", "mux.kill"]);
    }
}
