//! [`TmuxWatch`]: waiting for a pane to die or a session to close without asking tmux about
//! every session. Each session we create carries a `pane-died` hook, and each server a global
//! `session-closed` hook, that signal the `wait-for` channel [`WATCH_CHANNEL`]; a watcher blocks
//! in one `tmux wait-for` on it. tmux keeps a signal that no one waited for, so a change between
//! two waits is never lost, and a signal wakes every watcher of the server. Where the system
//! allows, the wait also ends when the process of a live pane ends, for a tmux that can miss
//! running the hook (see the `exits` module).

use crate::command::{classify, run, tmux_command};
use crate::exits::{self, First};
use crate::tmux::TmuxConfig;
use orch_core::{MuxError, MuxSnapshot, MuxWake, MuxWatch};
use std::collections::BTreeSet;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// The `wait-for` channel the hooks signal.
pub const WATCH_CHANNEL: &str = "hydra-watch";
/// The tmux command the hooks run (a fixed tmux command, no shell, no user text).
pub(crate) const WAKE_COMMAND: &str = "wait-for -S hydra-watch";

/// A wait on one tmux server.
#[derive(Debug)]
pub struct TmuxWatch {
    config: TmuxConfig,
    stopped: AtomicBool,
    hooked: AtomicBool,
    /// Pane processes whose end already woke a wait.
    told: Mutex<BTreeSet<u32>>,
    /// The pid of the `wait-for` client of the wait in progress.
    waiter: Mutex<Option<u32>>,
    /// The panes' processes the adapter's latest snapshot saw.
    seen: SeenPanes,
}

/// The panes' processes as the adapter's latest snapshot saw them, shared with its
/// watches: a watch waits on those instead of listing the panes again (one tmux call per
/// wake fewer; at 500 sessions every tmux call costs milliseconds).
#[derive(Debug, Clone, Default)]
pub(crate) struct SeenPanes(std::sync::Arc<Mutex<Option<BTreeSet<u32>>>>);

impl SeenPanes {
    /// Keeps the processes of `snapshot`'s panes (the dead too: see `pane_processes`).
    pub(crate) fn remember(&self, snapshot: &MuxSnapshot) {
        let pids = snapshot.sessions().iter().filter_map(|p| p.pane_pid).collect();
        *lock(&self.0) = Some(pids);
    }

    fn get(&self) -> Option<BTreeSet<u32>> {
        lock(&self.0).clone()
    }
}

impl TmuxWatch {
    pub(crate) fn new(config: TmuxConfig, seen: SeenPanes) -> Self {
        TmuxWatch {
            seen,
            config,
            stopped: AtomicBool::new(false),
            hooked: AtomicBool::new(false),
            told: Mutex::default(),
            waiter: Mutex::default(),
        }
    }

    /// Makes sure the server's global `session-closed` hook wakes watchers, if a server runs
    /// (the next `wait` does it otherwise).
    ///
    /// Errors: `NotInstalled`, `Failed`.
    pub(crate) fn hook(&self) -> Result<(), MuxError> {
        if self.hook_server()? {
            self.hooked.store(true, Ordering::SeqCst);
        }
        Ok(())
    }

    /// Makes sure the server's global `session-closed` hook wakes watchers (added beside any
    /// hooks the user has, once). `Ok(false)` when no server runs.
    fn hook_server(&self) -> Result<bool, MuxError> {
        let shown = match run(&self.config, "show-hooks", &["show-hooks", "-g", "session-closed"]) {
            Ok(out) => String::from_utf8_lossy(&out.stdout).into_owned(),
            Err(MuxError::NoServer { .. }) => return Ok(false),
            Err(e) => return Err(e),
        };
        if !shown.contains(WAKE_COMMAND) {
            match run(
                &self.config,
                "set-hook",
                &["set-hook", "-ga", "session-closed", WAKE_COMMAND],
            ) {
                Ok(_) => {}
                Err(MuxError::NoServer { .. }) => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }
}

impl TmuxWatch {
    /// The processes of the server's panes as the adapter's latest snapshot saw them (listed
    /// here only when no snapshot was taken), less those whose end already woke a wait. A
    /// pane tmux shows dead may still hold a process it never reaped (the lost SIGCHLD), so
    /// the dead are included; one tmux has reaped cannot be waited on and is skipped then.
    fn pane_processes(&self) -> Result<Vec<u32>, MuxError> {
        let listed: BTreeSet<u32> = match self.seen.get() {
            Some(seen) => seen,
            None => {
                let out = run(&self.config, "list-panes", &["list-panes", "-a", "-F", "#{pane_pid}"])?;
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .filter_map(|l| l.trim().parse().ok())
                    .collect()
            }
        };
        let mut told = lock(&self.told);
        told.retain(|p| listed.contains(p));
        Ok(listed.into_iter().filter(|p| !told.contains(p)).collect())
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl MuxWatch for TmuxWatch {
    fn wait(&self) -> Result<MuxWake, MuxError> {
        if self.stopped.load(Ordering::SeqCst) {
            return Ok(MuxWake::Stopped);
        }
        if !self.hooked.load(Ordering::SeqCst) {
            if !self.hook_server()? {
                return Ok(MuxWake::NoServer);
            }
            self.hooked.store(true, Ordering::SeqCst);
        }
        let panes = match self.pane_processes() {
            Ok(p) => p,
            Err(MuxError::NoServer { .. }) => {
                self.hooked.store(false, Ordering::SeqCst);
                return Ok(MuxWake::NoServer);
            }
            Err(e) => return Err(e),
        };
        // Started under the lock `stop` takes, so a stop either comes first (and there is no
        // wait) or finds the client and ends it: never a wait that no stop reaches.
        let mut waiter = {
            let mut current = lock(&self.waiter);
            if self.stopped.load(Ordering::SeqCst) {
                return Ok(MuxWake::Stopped);
            }
            let child = tmux_command(&self.config, &["wait-for", WATCH_CHANNEL])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|source| match source.kind() {
                    std::io::ErrorKind::NotFound => MuxError::NotInstalled,
                    _ => MuxError::Io {
                        op: "wait-for".into(),
                        source,
                    },
                })?;
            *current = Some(child.id());
            child
        };
        let first = exits::first(waiter.id(), &panes);
        // Forgotten before it is reaped, so a stop never signals a pid used again.
        *lock(&self.waiter) = None;
        if let First::Pane(pid) = first {
            // A pane's process ended; its hook may never run (see `exits`).
            lock(&self.told).insert(pid);
            let _ = waiter.kill();
            let _ = waiter.wait();
            if self.stopped.load(Ordering::SeqCst) {
                return Ok(MuxWake::Stopped);
            }
            return Ok(MuxWake::Changed);
        }
        let woke = match waiter.wait_with_output() {
            Ok(out) if out.status.success() => Ok(()),
            Ok(out) => Err(classify(
                &self.config,
                "wait-for",
                &String::from_utf8_lossy(&out.stderr),
            )),
            Err(source) => Err(MuxError::Io {
                op: "wait-for".into(),
                source,
            }),
        };
        if self.stopped.load(Ordering::SeqCst) {
            return Ok(MuxWake::Stopped);
        }
        match woke {
            Ok(()) => Ok(MuxWake::Changed),
            Err(MuxError::NoServer { .. }) => {
                // A new server needs its hook again.
                self.hooked.store(false, Ordering::SeqCst);
                Ok(MuxWake::NoServer)
            }
            Err(e) => Err(e),
        }
    }

    fn stop(&self) {
        {
            let current = lock(&self.waiter);
            self.stopped.store(true, Ordering::SeqCst);
            // The client of a wait in progress ends at once (it may have been signalled
            // already, or the server be gone).
            if let Some(pid) = current.and_then(|p| rustix::process::Pid::from_raw(i32::try_from(p).ok()?)) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
        }
        // Wakes a wait on a system where the client is not known (and, harmlessly, any other
        // watcher of this server).
        let _ = run(&self.config, "wait-for", &["wait-for", "-S", WATCH_CHANNEL]);
    }
}
