//! Control: `pause`, `resume`, `inject`, `kill`, `attach`. Each is one transaction over one
//! record: it catches up with what the loop and tmux show, books the control transition, and
//! leaves the slow part (freezing, ending processes, removing a worktree) to after the unlock.

use crate::error::{Error, Result};
use crate::orchestrator::Orchestrator;
use crate::txn::{After, Scope, Txn};
use orch_core::{
    Channel, Cleanup, ConfigError, Event, Lease, LifecycleEvent, PauseMode, SessionId, SessionRecord, SessionState,
    TransitionError, WorktreeRelease,
};
use std::path::PathBuf;

/// The longest operator message accepted, in bytes.
pub const MAX_MESSAGE_BYTES: usize = orch_loop::MAX_MESSAGE_BYTES;
/// How much of a message the `session:injected` event carries (hydra-mail limits a message to
/// 10 KiB); the event says when it was cut and how long the message was.
const EVENT_TEXT_CHARS: usize = 1000;

/// How `inject` delivers a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum InjectMode {
    /// Queued in the session's inbox; the loop puts it at the top of the next prompt.
    #[default]
    Queue,
    /// Typed into the agent's pane at once (literally, then Enter).
    Live,
}

/// How a message reached the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Delivery {
    /// Queued for the next prompt.
    Queued,
    /// Typed into the agent's pane.
    Typed,
    /// Typing was asked for, but the agent reads its prompt once per iteration and would
    /// never see typed text: the message was queued for the next prompt instead.
    QueuedInsteadOfTyped,
}

/// The most a live inject types into a pane (more fills the pane and wipes its scrollback).
pub const MAX_LIVE_BYTES: usize = 4096;

/// How `kill` treats the session's worktree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KillOptions {
    /// Remove the worktree even if it holds uncommitted or unmerged work (the branch is kept).
    pub force: bool,
}

impl KillOptions {
    /// Options that remove the worktree even when it holds work.
    pub fn forced() -> Self {
        KillOptions { force: true }
    }
}

/// What `kill` did besides ending the session.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct KillReport {
    /// The worktree was kept because it holds work: its path and why.
    pub worktree_kept: Option<(PathBuf, Vec<String>)>,
    /// The worktree was removed and its port freed.
    pub worktree_removed: bool,
}

fn refused(id: &SessionId, source: TransitionError) -> Error {
    Error::Transition { id: id.clone(), source }
}

/// Checks an operator message: non-empty, no NUL, at most 2 MiB.
fn check_message(field: &'static str, message: &str) -> Result<()> {
    let bad = |why: String| Error::Config(ConfigError::new(field, why));
    if message.is_empty() {
        return Err(bad("it is empty; give the text to send".into()));
    }
    if message.contains('\0') {
        return Err(bad("it contains a NUL byte, which cannot be carried".into()));
    }
    if message.len() > MAX_MESSAGE_BYTES {
        return Err(bad(format!(
            "it is {} bytes; at most {MAX_MESSAGE_BYTES} are allowed",
            message.len()
        )));
    }
    Ok(())
}

impl Orchestrator {
    /// The one record of a transaction, caught up with what the loop and tmux show.
    fn caught_up(&self, txn: &mut Txn<'_>) -> Result<SessionRecord> {
        txn.require_writable()?;
        let rec = txn.the_record();
        txn.assess(&rec)
    }

    /// Pauses a session in its configured mode (checkpoint by default).
    ///
    /// Errors: `Id`, `NotFound`, `Transition` when the state cannot pause, `ReadOnly`,
    /// `Runtime`, `Mux`, `Store`.
    pub fn pause(&self, id: &SessionId) -> Result<()> {
        self.pause_in(id, None)
    }

    /// Pauses a session: `Checkpoint` lets the current iteration finish and holds the loop
    /// before the next; `Freeze` stops the agent's processes at once (SIGSTOP) and records it
    /// first, so a crash right after is thawed by the next refresh.
    ///
    /// Errors: as [`pause`](Self::pause).
    pub fn pause_with(&self, id: &SessionId, mode: PauseMode) -> Result<()> {
        self.pause_in(id, Some(mode))
    }

    fn pause_in(&self, id: &SessionId, mode: Option<PauseMode>) -> Result<()> {
        self.transact(Scope::One(id), |txn| {
            let mut rec = self.caught_up(txn)?;
            if rec.is_foreign() {
                return self.pause_foreign(txn, rec, mode);
            }
            let ev = rec.transition(&Event::Pause, txn.now).map_err(|e| refused(id, e))?;
            let freeze = match mode.unwrap_or(rec.pause_mode) {
                PauseMode::Freeze => txn.pgid(&rec),
                _ => None,
            };
            rec.frozen = freeze.is_some();
            self.runtime.set_paused(id, true)?;
            if let Err(e) = txn.save(&mut rec) {
                let _ = self.runtime.set_paused(id, false);
                return Err(e);
            }
            if let Some(pgid) = freeze {
                txn.then(After::Freeze(pgid));
            }
            txn.emit(ev.with("frozen", rec.frozen));
            Ok(())
        })
    }

    /// Resumes a paused session at the same iteration, or restarts the loop of a blocked one
    /// where it stopped (after an `inject`, say).
    ///
    /// Errors: `Id`, `NotFound`, `Transition` when neither paused nor blocked, `ReadOnly`,
    /// `Config` (the agent is no longer on `PATH`), `LoopNeeds`, `Mux`, `Runtime`, `Store`.
    pub fn resume(&self, id: &SessionId) -> Result<()> {
        self.transact(Scope::One(id), |txn| {
            let mut rec = self.caught_up(txn)?;
            if rec.is_foreign() {
                return self.resume_foreign(txn, rec);
            }
            // Waiting for a usage limit to reset: try again now.
            if rec.waiting.is_some() && !rec.state.is_terminal() && !matches!(rec.state, SessionState::Paused { .. }) {
                self.runtime.retry_now(id)?;
                return Ok(());
            }
            let was = rec.state.clone();
            let frozen = rec.frozen;
            let ev = rec.transition(&Event::Resume, txn.now).map_err(|e| refused(id, e))?;
            self.runtime.set_paused(id, false)?;
            if frozen {
                if let Some(pgid) = txn.pgid(&rec) {
                    txn.then(After::Thaw(pgid));
                }
            }
            if let SessionState::Blocked { iteration, .. } = was {
                if txn.pgid(&rec).is_none() {
                    self.restart_loop(&mut rec, iteration)?;
                }
            }
            if let Err(e) = txn.save(&mut rec) {
                let _ = self.runtime.set_paused(id, matches!(was, SessionState::Paused { .. }));
                return Err(e);
            }
            txn.emit(ev);
            Ok(())
        })
    }

    /// Starts a new run of `rec`'s loop at `iteration` in place of its ended one.
    fn restart_loop(&self, rec: &mut SessionRecord, iteration: u32) -> Result<()> {
        let program = rec
            .profile
            .as_ref()
            .map_or(rec.agent_cli.as_str(), |p| p.program_name())
            .to_owned();
        let agent = self.host.find_program(&program).ok_or_else(|| {
            Error::Config(ConfigError::new(
                "agent_cli",
                format!("{program:?} is no longer an executable on PATH"),
            ))
        })?;
        let bash = self
            .host
            .find_program("bash")
            .ok_or(Error::LoopNeeds { program: "bash" })?;
        let mux = self.muxes.get(self.server_of(rec)).ok_or_else(|| Error::Foreign {
            id: rec.id.clone(),
            why: format!("its tmux server ({}) cannot be reached from here", self.server_of(rec)),
        })?;
        mux.kill(&rec.tmux_session)?;
        self.runtime.clear_report(&rec.id)?;
        rec.run += 1;
        // The new loop is another process; the next look through tmux names it.
        rec.pane_process = None;
        mux.create(&self.loop_spec(rec, &bash, &agent, iteration))?;
        Ok(())
    }

    /// Queues `message` for the agent: the loop puts queued messages at the top of its next
    /// prompt, then clears them. The text is carried literally.
    ///
    /// Errors: `Id`, `NotFound`, `Config` (field `message`) for an empty, NUL-holding or
    /// oversized message, `Transition` when the session has ended, `ReadOnly`, `Runtime`.
    pub fn inject(&self, id: &SessionId, message: &str) -> Result<()> {
        self.inject_with(id, message, InjectMode::Queue).map(|_| ())
    }

    /// Like [`inject`](Self::inject), delivering as `mode` says.
    ///
    /// Errors: as `inject`, and `Mux` for a live message whose pane is gone.
    pub fn inject_with(&self, id: &SessionId, message: &str, mode: InjectMode) -> Result<Delivery> {
        check_message("message", message)?;
        self.transact(Scope::One(id), |txn| {
            let mut rec = self.caught_up(txn)?;
            if rec.state.is_terminal() {
                return Err(refused(
                    id,
                    TransitionError::Terminal {
                        state: rec.state.name(),
                    },
                ));
            }
            if rec.is_foreign() {
                return Err(Error::Foreign {
                    id: id.clone(),
                    why: format!(
                        "its loop reads neither hydra's inbox nor its pane: each iteration it pipes {} into the agent, so edit that file to steer its next iteration, or `hydra attach {id}` to talk to it",
                        orch_core::RuntimeLayout::shared(rec.agent_dir()).prompt().display()
                    ),
                });
            }
            let external = rec.loop_script.as_ref();
            if let (Some(script), InjectMode::Queue) = (external, mode) {
                return Err(Error::Refused {
                    id: id.clone(),
                    why: format!(
                        "it runs its own loop script ({}), which does not read hydra's inbox, so a queued message would never arrive; `hydra inject --live {id}` types it into its pane (it reaches the agent only if the script lets the agent read its terminal), or `hydra attach {id}`",
                        script.display()
                    ),
                });
            }
            // Typing reaches an agent that reads its terminal (an interactive profile, or a loop
            // script of the user's, which was asked for by name); the others read their prompt
            // once per iteration, so the message is queued for them instead.
            let reads_pane = external.is_some() || rec.profile.as_ref().is_some_and(|p| p.interactive);
            let delivery = match mode {
                InjectMode::Live if reads_pane => {
                    if message.len() > MAX_LIVE_BYTES {
                        return Err(Error::Config(ConfigError::new(
                            "message",
                            format!(
                                "{} bytes is too long to type into a pane (at most {MAX_LIVE_BYTES}: more fills the pane and wipes its scrollback); queue it instead",
                                message.len()
                            ),
                        )));
                    }
                    let mux = self.muxes.get(self.server_of(&rec)).ok_or_else(|| Error::Foreign {
                        id: id.clone(),
                        why: "its tmux server cannot be reached from here".into(),
                    })?;
                    mux.send_text(&rec.tmux_session, message, true)?;
                    Delivery::Typed
                }
                InjectMode::Live => {
                    self.runtime.queue_message(id, message, txn.now)?;
                    Delivery::QueuedInsteadOfTyped
                }
                _ => {
                    self.runtime.queue_message(id, message, txn.now)?;
                    Delivery::Queued
                }
            };
            if delivery != Delivery::Typed {
                // One more waits in the inbox; a refresh counts the inbox while this is over 0.
                rec.queued = rec.queued.saturating_add(1);
            }
            rec.last_activity = rec.last_activity.max(txn.now);
            txn.save(&mut rec)?;
            let shown: String = message.chars().take(EVENT_TEXT_CHARS).collect();
            let truncated = shown.len() < message.len();
            txn.emit(
                LifecycleEvent::new(Channel::Injected, id, txn.now)
                    .with("live", delivery == Delivery::Typed)
                    .with("bytes", message.len())
                    .with("message", shown)
                    .with("truncated", truncated)
                    .with("state", rec.state.name()),
            );
            Ok(delivery)
        })
    }

    /// Attaches this terminal to the session's tmux session until it detaches.
    ///
    /// Errors: `Id`, `NotFound`, `Mux` when the tmux session is gone, `Attach`.
    pub fn attach(&self, id: &SessionId) -> Result<()> {
        let rec = self.record(id)?;
        let mux = self.muxes.get(self.server_of(&rec)).ok_or_else(|| Error::Foreign {
            id: id.clone(),
            why: "its tmux server cannot be reached from here".into(),
        })?;
        let cmd = mux.attach_command(&rec.tmux_session)?;
        let (program, args) = cmd.argv.split_first().ok_or_else(|| Error::Attach {
            program: String::new(),
            source: std::io::Error::other("the multiplexer gave an empty attach command"),
        })?;
        std::process::Command::new(program)
            .args(args)
            .status()
            .map_err(|source| Error::Attach {
                program: program.clone(),
                source,
            })?;
        Ok(())
    }

    /// Kills a session: its tmux session and processes end, its worktree is removed only when
    /// it holds no work (its port freed then), and the record stays, as `Failed(reason)`.
    ///
    /// Errors: `Id`, `NotFound`, `Config` (field `reason`), `Transition` when the session has
    /// already ended, `ReadOnly`, `Store`.
    pub fn kill(&self, id: &SessionId, reason: &str) -> Result<KillReport> {
        self.kill_with(id, reason, KillOptions::default())
    }

    /// Like [`kill`](Self::kill); with `force` the worktree is removed even if it holds work
    /// (the branch is still kept).
    ///
    /// Errors: as `kill`.
    pub fn kill_with(&self, id: &SessionId, reason: &str, options: KillOptions) -> Result<KillReport> {
        let reason = if reason.trim().is_empty() { "killed" } else { reason };
        check_message("reason", reason)?;
        let done = self.transact_done(Scope::One(id), |txn| {
            let mut rec = self.caught_up(txn)?;
            let ev = rec
                .transition(
                    &Event::Kill {
                        reason: reason.to_owned(),
                    },
                    txn.now,
                )
                .map_err(|e| refused(id, e))?;
            let release = if options.force {
                WorktreeRelease::Force
            } else {
                WorktreeRelease::WhenSafe
            };
            let mine = Cleanup {
                end_session: true,
                pgid: txn.pgid(&rec),
                worktree: Some(release),
                ..Cleanup::new(Lease::new(txn.me, txn.now))
            };
            rec.cleanup = Some(match rec.cleanup.take() {
                Some(earlier) => mine.merge(&earlier),
                None => mine,
            });
            if !rec.is_foreign() {
                let _ = self.runtime.set_paused(id, false);
            }
            txn.save(&mut rec)?;
            txn.emit(ev);
            txn.then(After::Cleanup(id.clone()));
            Ok(())
        })?;
        let mut report = KillReport::default();
        if let Some((_, outcome)) = done.cleanups.into_iter().find(|(i, _)| i == id) {
            report.worktree_removed = outcome.worktree_removed;
            report.worktree_kept = outcome.worktree_kept.map(|k| (k.path, k.reasons));
        }
        Ok(report)
    }

    /// Pauses a session of the original tool through its own marker, which its loop reads
    /// before each iteration: refused when the marker would pause other live sessions too, or
    /// for a freeze (its loop runs as a job of the pane's shell, out of the pane's process
    /// group).
    fn pause_foreign(&self, txn: &mut Txn<'_>, mut rec: SessionRecord, mode: Option<PauseMode>) -> Result<()> {
        let id = rec.id.clone();
        if mode == Some(PauseMode::Freeze) {
            return Err(Error::Foreign {
                id,
                why: "its loop runs as a job of the shell in its pane, which hydra cannot freeze as a whole; pause it without --now (it stops before its next iteration), or attach to it".into(),
            });
        }
        let ev = rec.transition(&Event::Pause, txn.now).map_err(|e| refused(&id, e))?;
        self.set_foreign_marker(txn, &mut rec, true)?;
        txn.emit(ev.with("frozen", false));
        Ok(())
    }

    /// Resumes a paused session of the original tool by clearing its marker (refused when
    /// that would resume other live sessions too). A blocked one cannot be restarted: its loop
    /// is the original tool's.
    fn resume_foreign(&self, txn: &mut Txn<'_>, mut rec: SessionRecord) -> Result<()> {
        let id = rec.id.clone();
        if let SessionState::Blocked { .. } = rec.state {
            return Err(Error::Foreign {
                id: id.clone(),
                why: format!(
                    "its loop (the original tool's) ended when the agent blocked, and hydra cannot restart a loop it did not start; `hydra attach {id}` and run {} again, or start a new session with `hydra spawn`",
                    orch_core::RuntimeLayout::shared(rec.agent_dir()).script().display()
                ),
            });
        }
        let ev = rec.transition(&Event::Resume, txn.now).map_err(|e| refused(&id, e))?;
        self.set_foreign_marker(txn, &mut rec, false)?;
        txn.emit(ev);
        Ok(())
    }

    /// Sets (or clears) the original tool's pause marker for `rec`, whose transition is
    /// booked, and saves it; the marker goes back if the record cannot be saved. Refused
    /// where other live sessions of that tool work: their loops obey the same file.
    fn set_foreign_marker(&self, txn: &mut Txn<'_>, rec: &mut SessionRecord, paused: bool) -> Result<()> {
        let (doing, done) = if paused {
            ("pausing", "written")
        } else {
            ("resuming", "removed")
        };
        let others = txn.foreign_sharers(rec);
        if others > 0 {
            return Err(Error::Foreign {
                id: rec.id.clone(),
                why: format!(
                    "{others} other live session(s) of the original tool work in {} and obey the same pause marker ({}), so {doing} it would do the same to them; attach to it instead",
                    rec.agent_dir().display(),
                    orch_core::RuntimeLayout::shared(rec.agent_dir()).pause_marker().display()
                ),
            });
        }
        let dir = rec.agent_dir().to_path_buf();
        self.runtime
            .set_foreign_paused(&dir, paused)
            .map_err(|e| Error::Foreign {
                id: rec.id.clone(),
                why: format!("its loop's pause marker cannot be {done} ({e}); attach to it instead"),
            })?;
        if let Err(e) = txn.save(rec) {
            let _ = self.runtime.set_foreign_paused(&dir, !paused);
            return Err(e);
        }
        Ok(())
    }
}
