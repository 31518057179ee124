//! [`TmuxWatch`]: waiting for a pane to die or a session to close without asking tmux about
//! every session. Each session we create carries a `pane-died` hook, and each server a global
//! `session-closed` hook, that signal the `wait-for` channel [`WATCH_CHANNEL`]; a watcher blocks
//! in one `tmux wait-for` on it. tmux keeps a signal that no one waited for, so a change between
//! two waits is never lost, and a signal wakes every watcher of the server.

use crate::command::run;
use crate::tmux::TmuxConfig;
use orch_core::{MuxError, MuxWake, MuxWatch};
use std::sync::atomic::{AtomicBool, Ordering};

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
}

impl TmuxWatch {
    pub(crate) fn new(config: TmuxConfig) -> Self {
        TmuxWatch {
            config,
            stopped: AtomicBool::new(false),
            hooked: AtomicBool::new(false),
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
        let woke = run(&self.config, "wait-for", &["wait-for", WATCH_CHANNEL]);
        if self.stopped.load(Ordering::SeqCst) {
            return Ok(MuxWake::Stopped);
        }
        match woke {
            Ok(_) => Ok(MuxWake::Changed),
            Err(MuxError::NoServer { .. }) => {
                // A new server needs its hook again.
                self.hooked.store(false, Ordering::SeqCst);
                Ok(MuxWake::NoServer)
            }
            Err(e) => Err(e),
        }
    }

    fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        // Wakes the blocked wait (and, harmlessly, any other watcher of this server).
        let _ = run(&self.config, "wait-for", &["wait-for", "-S", WATCH_CHANNEL]);
    }
}
