//! The watcher: one event-driven engine that tells what changes as it changes. It sleeps until
//! a loop writes its `status.json` or another process changes a record (file notifications),
//! tmux says a pane died or a session closed (one blocked `tmux wait-for` per server), or the
//! clock reaches the next deadline (a session going stuck, a duration limit), never later than
//! the tick. Each wake is one transaction of the facade (so the watcher and any number of
//! commands agree), and the watcher reports each session whose state changed since it last
//! looked, remembered in a cursor file when asked, so a restarted watcher repeats nothing and
//! misses nothing. Nothing is polled per session.

use crate::error::Result;
use crate::orchestrator::Orchestrator;
use orch_core::{MuxServer, MuxWake, MuxWatch, RuntimeLayout, SessionId, SessionStatus, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How a [`Watcher`] behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchOptions {
    /// The longest the watcher sleeps when nothing happens.
    pub tick: Duration,
    /// How long a burst of file events is gathered into one look.
    pub settle: Duration,
    /// Where the watcher remembers what it has told (`None`: only in memory, so a new watcher
    /// tells every session once).
    pub cursor: Option<PathBuf>,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            tick: Duration::from_secs(30),
            settle: Duration::from_millis(10),
            cursor: None,
        }
    }
}

/// A session whose state changed since the watcher last looked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Change {
    /// The session as it is now.
    pub status: SessionStatus,
    /// The state it was in when last seen (`None`: first seen by this watcher and its cursor).
    pub from: Option<String>,
}

impl Change {
    /// A session seen for the first time, as it is.
    pub fn first_seen(status: SessionStatus) -> Change {
        Change { status, from: None }
    }
}

/// What a watcher tells.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum WatchEvent {
    /// A session changed state.
    Change(Box<Change>),
    /// A look ended: every session as it is now (after the changes of this look).
    Looked {
        /// Every session of the project.
        statuses: Vec<SessionStatus>,
    },
    /// A look failed (tmux or the store could not be read); the watcher goes on.
    Error(String),
}

/// A running watcher; dropping it stops it.
#[derive(Debug)]
pub struct Watcher {
    events: tokio::sync::mpsc::UnboundedReceiver<WatchEvent>,
    wake: mpsc::Sender<Trigger>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watcher {
    /// The next event, blocking this thread until there is one (`None` once the watcher has
    /// stopped). Must not be called from an async task; use [`next`](Self::next) there.
    pub fn recv(&mut self) -> Option<WatchEvent> {
        self.events.blocking_recv()
    }

    /// The next event, waiting asynchronously (from a tokio task).
    pub async fn next(&mut self) -> Option<WatchEvent> {
        self.events.recv().await
    }

    /// The next event if there is one already.
    pub fn try_recv(&mut self) -> Option<WatchEvent> {
        self.events.try_recv().ok()
    }

    /// Makes the watcher look now (after a command of this process, say).
    pub fn poke(&self) {
        let _ = self.wake.send(Trigger::Any);
    }

    /// A handle that stops the watcher from another thread (a signal handler's, say): the
    /// watcher finishes the look it is in, hands over its changes, and then
    /// [`recv`](Self::recv) returns `None` after the last of them.
    pub fn stopper(&self) -> WatchStopper {
        WatchStopper(self.wake.clone())
    }

    /// Stops the watcher and waits for its thread.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        let _ = self.wake.send(Trigger::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Stops a [`Watcher`], or makes it look, from any thread; see [`Watcher::stopper`].
#[derive(Debug, Clone)]
pub struct WatchStopper(mpsc::Sender<Trigger>);

impl WatchStopper {
    /// Asks the watcher to stop after its current look.
    pub fn stop(&self) {
        let _ = self.0.send(Trigger::Stop);
    }

    /// Makes the watcher look now (after an action of another thread, say).
    pub fn poke(&self) {
        let _ = self.0.send(Trigger::Any);
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.halt();
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Trigger {
    /// A loop's report changed.
    Status,
    /// A record file changed.
    Record(SessionId),
    /// tmux said something changed (or its server went away).
    Mux,
    /// Anything may have changed (a lost file event, a poke).
    Any,
    Stop,
}

/// What the watcher has told, per session: (state as shown, when it last changed).
type Seen = BTreeMap<SessionId, (String, Timestamp)>;

/// The cursor file: what was told, per session.
#[derive(Serialize, Deserialize, Default)]
struct Cursor<S> {
    seen: S,
}

fn load_cursor(path: Option<&Path>) -> Seen {
    path.and_then(|p| std::fs::read(p).ok())
        .and_then(|b| serde_json::from_slice::<Cursor<Seen>>(&b).ok())
        .map(|c| c.seen)
        .unwrap_or_default()
}

fn save_cursor(path: Option<&Path>, seen: &Seen) {
    if let Some(p) = path {
        if let Ok(bytes) = serde_json::to_vec(&Cursor { seen }) {
            // Losing it only makes a restarted watcher tell a change twice.
            let _ = orch_fs::write_atomic(p, &bytes, 0o600);
        }
    }
}

/// One blocked `wait` on a tmux server, in a thread of its own.
struct Waiter {
    watch: Arc<dyn MuxWatch>,
    retry: Arc<(Mutex<Retry>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What a waiter that found no server waits for.
#[derive(Default)]
struct Retry {
    /// A look saw live sessions on the server: try again.
    poked: bool,
    /// The waiter is being stopped (kept, unlike `poked`, so a stop is never lost).
    stopping: bool,
}

impl Waiter {
    fn start(watch: Arc<dyn MuxWatch>, wake: mpsc::Sender<Trigger>) -> Self {
        let retry: Arc<(Mutex<Retry>, Condvar)> = Arc::default();
        let (w, r) = (Arc::clone(&watch), Arc::clone(&retry));
        let thread = std::thread::Builder::new()
            .name("hydra-watch-tmux".into())
            .spawn(move || loop {
                match w.wait() {
                    Ok(MuxWake::Changed) => {
                        if wake.send(Trigger::Mux).is_err() {
                            return;
                        }
                    }
                    Ok(MuxWake::Stopped) => return,
                    Ok(MuxWake::NoServer) | Err(_) => {
                        // The server went away (its sessions with it), or there is none yet:
                        // look once, then wait until a look sees live sessions on it again,
                        // trying at most once a second.
                        let since = Instant::now();
                        let (lock, cv) = &*r;
                        let mut retry = lock.lock().unwrap_or_else(|e| e.into_inner());
                        retry.poked = false;
                        if wake.send(Trigger::Mux).is_err() {
                            return;
                        }
                        while !retry.poked && !retry.stopping {
                            retry = cv.wait(retry).unwrap_or_else(|e| e.into_inner());
                        }
                        if retry.stopping {
                            return;
                        }
                        drop(retry);
                        std::thread::sleep(Duration::from_secs(1).saturating_sub(since.elapsed()));
                    }
                }
            })
            .ok();
        Waiter { watch, retry, thread }
    }

    /// Lets a waiter that found no server try again.
    fn poke(&self) {
        let (lock, cv) = &*self.retry;
        lock.lock().unwrap_or_else(|e| e.into_inner()).poked = true;
        cv.notify_all();
    }

    fn stop(mut self) {
        self.watch.stop();
        let (lock, cv) = &*self.retry;
        lock.lock().unwrap_or_else(|e| e.into_inner()).stopping = true;
        cv.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Orchestrator {
    /// Starts a watcher of this project's sessions (see [`Watcher`] and the module
    /// documentation): it tells each change of state as it happens, and after each look every
    /// session's status.
    ///
    /// Errors: `Host` never; the watch of files or tmux failing to start is reported as a
    /// [`WatchEvent::Error`], and the watcher then relies on its tick.
    pub fn watch(self: &Arc<Self>, options: WatchOptions) -> Result<Watcher> {
        let (events_tx, events_rx) = tokio::sync::mpsc::unbounded_channel();
        let (wake_tx, wake_rx) = mpsc::channel();
        let orch = Arc::clone(self);
        let wake = wake_tx.clone();
        let thread = std::thread::Builder::new()
            .name("hydra-watch".into())
            .spawn(move || orch.run_watch(&options, &events_tx, &wake, &wake_rx))
            .map_err(|source| crate::Error::Project {
                path: self.project.clone(),
                source,
            })?;
        Ok(Watcher {
            events: events_rx,
            wake: wake_tx,
            thread: Some(thread),
        })
    }

    fn run_watch(
        &self,
        options: &WatchOptions,
        events: &tokio::sync::mpsc::UnboundedSender<WatchEvent>,
        wake: &mpsc::Sender<Trigger>,
        triggers: &mpsc::Receiver<Trigger>,
    ) {
        // The loops' reports, and the store's records when they are files.
        let record_dir = self.store.record_dir();
        let dirs: Vec<PathBuf> = std::iter::once(RuntimeLayout::root(&self.project))
            .chain(record_dir.clone())
            .collect();
        let files_wake = Mutex::new(wake.clone());
        let on_change = Arc::new(move |path: &Path| {
            let trigger = if path.as_os_str().is_empty() {
                Some(Trigger::Any)
            } else if path.file_name().is_some_and(|n| n == RuntimeLayout::REPORT_FILE) {
                Some(Trigger::Status)
            } else if record_dir.is_some() && path.parent() == record_dir.as_deref() {
                path.file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_suffix(".json"))
                    .and_then(|stem| SessionId::parse(stem).ok())
                    .map(Trigger::Record)
            } else {
                None
            };
            if let Some(t) = trigger {
                let _ = files_wake.lock().unwrap_or_else(|e| e.into_inner()).send(t);
            }
        });
        let _files = match self.files.watch(&dirs, on_change) {
            Ok(guard) => Some(guard),
            Err(e) => {
                let _ = events.send(WatchEvent::Error(format!("file notifications are off: {e}")));
                None
            }
        };
        let mut waiters: BTreeMap<MuxServer, Waiter> = BTreeMap::new();
        let mut seen = load_cursor(options.cursor.as_deref());
        let mut revisions: BTreeMap<SessionId, u64> = BTreeMap::new();
        let mut deadline: Option<Timestamp> = None;
        let mut need_look = true;
        'watching: loop {
            if need_look {
                match self.look(crate::ops::refresh::Looker::Watcher) {
                    Ok(look) => {
                        // Wait on every server with live sessions; a change after this look
                        // is kept by tmux until the wait takes it.
                        for server in &look.servers {
                            if let Some(w) = waiters.get(server) {
                                w.poke();
                                continue;
                            }
                            match self.muxes.get(server).map(|m| m.watch()) {
                                Some(Ok(watch)) => {
                                    waiters.insert(server.clone(), Waiter::start(watch, wake.clone()));
                                }
                                Some(Err(e)) => {
                                    let _ = events.send(WatchEvent::Error(format!("cannot watch {server}: {e}")));
                                }
                                None => {}
                            }
                        }
                        let mut changes = Vec::new();
                        for status in &look.statuses {
                            let now = (status.state_word().to_owned(), status.changed_at);
                            let before = seen.get(&status.id);
                            if before == Some(&now) {
                                continue;
                            }
                            changes.push(Change {
                                status: status.clone(),
                                from: before.map(|(s, _)| s.clone()),
                            });
                            seen.insert(status.id.clone(), now);
                        }
                        let present: std::collections::HashSet<&SessionId> =
                            look.statuses.iter().map(|s| &s.id).collect();
                        seen.retain(|id, _| present.contains(id));
                        // Remembered before they are told: a watcher ended between the two
                        // (a stop lets it finish a look, so only a kill) misses rather than
                        // repeats, and a stopped one has handed every change to its receiver.
                        save_cursor(options.cursor.as_deref(), &seen);
                        for change in changes {
                            if events.send(WatchEvent::Change(Box::new(change))).is_err() {
                                break 'watching;
                            }
                        }
                        revisions = look.revisions;
                        deadline = look.deadline;
                        if events
                            .send(WatchEvent::Looked {
                                statuses: look.statuses,
                            })
                            .is_err()
                        {
                            break;
                        }
                    }
                    Err(e) => {
                        if events.send(WatchEvent::Error(format!("look failed: {e}"))).is_err() {
                            break;
                        }
                    }
                }
            }
            // Sleep until something happens, the next deadline, or the tick.
            let mut sleep = options.tick;
            if let Some(d) = deadline {
                let until = d.since(self.clock.now()).unwrap_or(Duration::ZERO);
                sleep = sleep.min(until.max(Duration::from_millis(5)));
            }
            need_look = false;
            match triggers.recv_timeout(sleep) {
                Ok(Trigger::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Ok(t) => need_look |= self.matters(&t, &revisions),
                Err(mpsc::RecvTimeoutError::Timeout) => need_look = true,
            }
            // Gather a burst into one look.
            let settle = Instant::now() + options.settle;
            loop {
                match triggers.recv_timeout(settle.saturating_duration_since(Instant::now())) {
                    Ok(Trigger::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => break 'watching,
                    Ok(t) => need_look |= self.matters(&t, &revisions),
                    Err(mpsc::RecvTimeoutError::Timeout) => break,
                }
            }
        }
        for (_, w) in waiters {
            w.stop();
        }
    }

    /// Whether `trigger` can mean a change this watcher has not seen: a record written by
    /// another process (not the revision this watcher's own look left), or anything else.
    fn matters(&self, trigger: &Trigger, revisions: &BTreeMap<SessionId, u64>) -> bool {
        match trigger {
            Trigger::Record(id) => match self.store.load(id) {
                Ok(Some(rec)) => revisions.get(id) != Some(&rec.revision),
                Ok(None) => revisions.contains_key(id),
                Err(_) => true,
            },
            _ => true,
        }
    }
}
