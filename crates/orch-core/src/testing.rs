//! Hand-written, stateful fakes of every port and a manual clock, for the core's tests and for
//! the facade's tests that must run without tmux, a file system, a daemon or git.

use crate::events::{LifecycleEvent, Pulse};
use crate::id::SessionId;
use crate::ports::*;
use crate::record::SessionRecord;
use crate::time::Timestamp;
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A test that panicked while holding a fake's lock has already failed; keep going.
    m.lock().unwrap_or_else(|e| e.into_inner())
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

/// An in-memory multiplexer: sessions are entries in a map.
#[derive(Debug, Default)]
pub struct FakeMultiplexer {
    sessions: Mutex<BTreeMap<String, FakeSession>>,
    snapshots: AtomicUsize,
    next_pid: AtomicUsize,
    fail_create: AtomicBool,
}

impl FakeMultiplexer {
    /// An empty fake.
    pub fn new() -> Self {
        Self::default()
    }
    /// Makes every following `create` fail (to exercise rollback).
    pub fn fail_creates(&self, fail: bool) {
        self.fail_create.store(fail, Ordering::SeqCst);
    }
    /// Removes a session as if it had been killed from outside.
    pub fn vanish(&self, name: &str) {
        lock(&self.sessions).remove(name);
    }
    /// Marks a session's program as exited with `status`.
    pub fn exit(&self, name: &str, status: i32) {
        if let Some(s) = lock(&self.sessions).get_mut(name) {
            s.pane.dead = true;
            s.pane.exit_status = Some(status);
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
}

impl Multiplexer for FakeMultiplexer {
    fn create(&self, spec: &SpawnSpec) -> Result<(), MuxError> {
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
            activity: None,
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
        self.snapshots.fetch_add(1, Ordering::SeqCst);
        Ok(MuxSnapshot {
            sessions: lock(&self.sessions).values().map(|s| s.pane.clone()).collect(),
        })
    }
    fn send_text(&self, name: &str, text: &str, enter: bool) -> Result<(), MuxError> {
        let mut sessions = lock(&self.sessions);
        let s = sessions
            .get_mut(name)
            .ok_or_else(|| MuxError::NotFound { name: name.into() })?;
        s.typed.push(if enter { format!("{text}\n") } else { text.to_owned() });
        Ok(())
    }
    fn capture(&self, name: &str, _lines: u32) -> Result<String, MuxError> {
        let sessions = lock(&self.sessions);
        let s = sessions
            .get(name)
            .ok_or_else(|| MuxError::NotFound { name: name.into() })?;
        Ok(s.typed.concat())
    }
    fn kill(&self, name: &str) -> Result<(), MuxError> {
        lock(&self.sessions).remove(name);
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
}

/// An in-memory store with a real (in-process) exclusive lock.
#[derive(Debug, Default)]
pub struct MemoryStore {
    records: Mutex<BTreeMap<SessionId, SessionRecord>>,
    lock: Arc<(Mutex<bool>, Condvar)>,
    fail_writes: AtomicBool,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
    /// Makes saves fail as a full disk would (the old record stays).
    pub fn fail_writes(&self, fail: bool) {
        self.fail_writes.store(fail, Ordering::SeqCst);
    }
    /// Every record, by id.
    pub fn records(&self) -> Vec<SessionRecord> {
        lock(&self.records).values().cloned().collect()
    }
}

struct MemoryLock(Arc<(Mutex<bool>, Condvar)>);

impl Drop for MemoryLock {
    fn drop(&mut self) {
        *lock(&self.0 .0) = false;
        self.0 .1.notify_one();
    }
}

impl Store for MemoryStore {
    fn save(&self, record: &SessionRecord) -> Result<(), StoreError> {
        record.id.validate()?;
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
    fn load(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        id.validate()?;
        Ok(lock(&self.records).get(id).cloned())
    }
    fn load_all(&self) -> Result<LoadReport, StoreError> {
        let mut records: Vec<_> = lock(&self.records).values().cloned().collect();
        records.sort_by_key(|r| (r.created(), r.id.clone()));
        Ok(LoadReport {
            records,
            problems: Vec::new(),
        })
    }
    fn remove(&self, id: &SessionId) -> Result<(), StoreError> {
        id.validate()?;
        lock(&self.records).remove(id);
        Ok(())
    }
    fn lock(&self) -> Result<LockGuard, StoreError> {
        let (held, cv) = &*self.lock;
        let mut g = lock(held);
        while *g {
            g = cv.wait(g).unwrap_or_else(|e| e.into_inner());
        }
        *g = true;
        Ok(LockGuard::new(MemoryLock(Arc::clone(&self.lock))))
    }
}

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

/// An in-memory worktree manager with port allocation and "dirty" marks.
#[derive(Debug)]
pub struct FakeWorktree {
    trees: Mutex<BTreeMap<String, WorktreeInfo>>,
    dirty: Mutex<Vec<String>>,
    range: (u16, u16),
}

impl Default for FakeWorktree {
    fn default() -> Self {
        FakeWorktree {
            trees: Mutex::default(),
            dirty: Mutex::default(),
            range: (3001, 3099),
        }
    }
}

impl FakeWorktree {
    /// An empty fake with ports 3001-3099.
    pub fn new() -> Self {
        Self::default()
    }
    /// Marks `branch`'s worktree as holding uncommitted work.
    pub fn mark_dirty(&self, branch: &str) {
        lock(&self.dirty).push(branch.to_owned());
    }
}

impl Worktree for FakeWorktree {
    fn create(&self, req: &WorktreeRequest) -> Result<WorktreeInfo, WorktreeError> {
        let mut trees = lock(&self.trees);
        if let Some(t) = trees.get(&req.branch) {
            return Err(WorktreeError::BranchTaken {
                branch: req.branch.clone(),
                path: t.path.clone(),
            });
        }
        let used: Vec<u16> = trees.values().filter_map(|t| t.port).collect();
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
        let info = WorktreeInfo {
            branch: req.branch.clone(),
            path,
            port: Some(port),
            exists: true,
        };
        trees.insert(req.branch.clone(), info.clone());
        Ok(info)
    }
    fn remove(&self, _repo: &Path, branch: &str, force: bool) -> Result<RemoveOutcome, WorktreeError> {
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
        Ok(lock(&self.trees).values().cloned().collect())
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
        store.save(&rec).expect("save");
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let store = Arc::clone(&store);
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        let _g = store.lock().expect("lock");
                        let mut r = store.load(&SessionId("c1".into())).expect("load").expect("exists");
                        r.revision += 1;
                        std::thread::yield_now();
                        store.save(&r).expect("save");
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
    }

    #[test]
    fn fake_worktree_keeps_dirty_and_allocates_distinct_ports() {
        let wt = FakeWorktree::new();
        let req = |b: &str| WorktreeRequest {
            repo: "/r".into(),
            branch: b.into(),
            base: None,
            path: None,
            session: SessionId("a".into()),
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
}
