//! Interleavings: one operation is paused at its k-th port call (for every k) while another
//! runs to completion, on the `orch_core::testing` fakes. After both, no live session was
//! marked Failed or destroyed by the other operation, no record was lost, and nothing was left
//! without an owner.
//!
//! The paused operation may hold the store's lock at its pause point; the other operation is
//! then given a moment to queue on the lock before the first is released. Either way the
//! invariants must hold, so the verdict does not depend on that timing.

use hydra_orchestrator::{Error, Orchestrator, PruneOptions, SessionConfig, SessionId, SessionState};
use orch_core::testing::StepHook;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

const PROJECT: &str = "/interleave/project";

/// Pauses the thread it is armed for at its `step`-th port call until released.
#[derive(Default)]
struct Gate {
    armed: Mutex<Option<(ThreadId, usize)>>,
    calls: AtomicUsize,
    state: Mutex<(bool, bool)>, // (reached, released)
    cv: Condvar,
}

impl Gate {
    fn hook(self: &Arc<Self>) -> StepHook {
        let gate = Arc::clone(self);
        Arc::new(move |_port, _method| gate.pass())
    }
    fn arm(&self, step: usize) {
        *self.armed.lock().expect("gate") = Some((std::thread::current().id(), step));
    }
    fn pass(&self) {
        let Some((thread, step)) = *self.armed.lock().expect("gate") else {
            return;
        };
        if std::thread::current().id() != thread {
            return;
        }
        if self.calls.fetch_add(1, Ordering::SeqCst) != step {
            return;
        }
        let mut st = self.state.lock().expect("gate");
        st.0 = true;
        self.cv.notify_all();
        while !st.1 {
            st = self.cv.wait(st).expect("gate");
        }
    }
    /// Waits until the armed thread reaches its step or `done` says it finished; returns
    /// whether it reached the step.
    fn reached(&self, done: &dyn Fn() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.state.lock().expect("gate").0 {
                return true;
            }
            if done() {
                return false;
            }
            assert!(
                Instant::now() < deadline,
                "the paused operation neither reached its step nor ended"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    fn release(&self) {
        self.state.lock().expect("gate").1 = true;
        self.cv.notify_all();
    }
}

mod support;

/// The fakes, all with the gate as their step hook.
struct Rig {
    fakes: support::Fakes,
    gate: Arc<Gate>,
}

impl std::ops::Deref for Rig {
    type Target = support::Fakes;
    fn deref(&self) -> &support::Fakes {
        &self.fakes
    }
}

impl Rig {
    fn new() -> Self {
        let rig = Rig {
            fakes: support::Fakes::new(PROJECT),
            gate: Arc::new(Gate::default()),
        };
        let hook = rig.gate.hook();
        rig.mux.set_hook(Arc::clone(&hook));
        rig.store.set_hook(Arc::clone(&hook));
        rig.runtime.set_hook(Arc::clone(&hook));
        rig.wt.set_hook(hook);
        rig
    }
    fn config(&self) -> SessionConfig {
        SessionConfig {
            use_worktree: true,
            ..self.fakes.config()
        }
    }
    /// Every tmux session, runtime directory and worktree belongs to a record; a live pane
    /// belongs to a live record and a live record has a live pane.
    #[track_caller]
    fn check_owned(&self, why: &str) {
        let records = self.store.records();
        for name in self.mux.names() {
            let rec = records.iter().find(|r| r.tmux_session == name);
            let rec = rec.unwrap_or_else(|| panic!("{why}: tmux session {name} has no record"));
            assert!(
                !rec.state.is_terminal(),
                "{why}: {} is {} but its pane lives",
                rec.id,
                rec.state
            );
        }
        for rec in records.iter().filter(|r| !r.state.is_terminal()) {
            assert!(
                self.mux.session(&rec.tmux_session).is_some(),
                "{why}: live session {} has no pane",
                rec.id
            );
        }
        for id in self.runtime.ids() {
            assert!(
                records.iter().any(|r| r.id == id),
                "{why}: runtime dir {id} has no record"
            );
        }
        for w in orch_core::Worktrees::list(&*self.wt, Path::new(PROJECT)).expect("list") {
            assert!(
                records
                    .iter()
                    .any(|r| r.branch_name.as_deref() == Some(w.branch.as_str())),
                "{why}: worktree {} has no record",
                w.branch
            );
        }
    }
}

/// Runs `a` paused at each of its steps in turn while `b` runs, then `check`s; stops when `a`
/// runs to its end without reaching the step. Returns how many interleavings were tried.
fn interleave<A, B>(
    setup: impl Fn(&Rig),
    a: impl Fn(&Orchestrator, &Rig) -> A + Sync,
    b: impl Fn(&Orchestrator, &Rig) -> B + Sync,
    check: impl Fn(&Rig, usize, A, B),
) -> usize
where
    A: Send,
    B: Send,
{
    for step in 0.. {
        let rig = Rig::new();
        setup(&rig);
        let (reached, ra, rb) = std::thread::scope(|s| {
            let a_done = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let flag = Arc::clone(&a_done);
            let rig_ref = &rig;
            let a_ref = &a;
            let ta = s.spawn(move || {
                rig_ref.gate.arm(step);
                let orch = rig_ref.orch();
                let out = a_ref(&orch, rig_ref);
                flag.store(true, Ordering::SeqCst);
                out
            });
            let reached = rig.gate.reached(&|| a_done.load(Ordering::SeqCst));
            let tb = s.spawn(|| b(&rig.orch(), &rig));
            if reached {
                // Give `b` a moment to finish, or to queue on the lock `a` may hold.
                let deadline = Instant::now() + Duration::from_millis(100);
                while !tb.is_finished() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            rig.gate.release();
            let ra = ta.join().expect("a");
            let rb = tb.join().expect("b");
            (reached, ra, rb)
        });
        check(&rig, step, ra, rb);
        rig.check_owned(&format!("step {step}"));
        if !reached {
            return step;
        }
    }
    unreachable!("the loop returns")
}

#[test]
fn spawn_while_refresh_never_fails_the_new_session() {
    let steps = interleave(
        |_| {},
        |o, r| o.spawn(r.config()),
        |o, _| o.refresh().map(|s| s.len()),
        |rig, step, spawned, refreshed| {
            let id = spawned.unwrap_or_else(|e| panic!("step {step}: spawn failed: {e}"));
            refreshed.unwrap_or_else(|e| panic!("step {step}: refresh failed: {e}"));
            let rec = rig
                .store
                .records()
                .into_iter()
                .find(|r| r.id == id)
                .expect("record kept");
            assert_eq!(rec.state, SessionState::Starting, "step {step}: {}", rec.state);
            assert!(
                rig.mux.session(&id.tmux_name()).is_some(),
                "step {step}: pane destroyed"
            );
        },
    );
    assert!(steps >= 8, "spawn has more steps than {steps}");
}

#[test]
fn spawn_while_prune_never_destroys_the_new_session() {
    interleave(
        |_| {},
        |o, r| o.spawn(r.config()),
        |o, _| o.prune_with(PruneOptions::default()),
        |rig, step, spawned, pruned| {
            let id = spawned.unwrap_or_else(|e| panic!("step {step}: spawn failed: {e}"));
            let report = pruned.unwrap_or_else(|e| panic!("step {step}: prune failed: {e}"));
            assert!(report.removed_sessions.is_empty(), "step {step}: {report:?}");
            assert!(
                report.orphans.is_empty(),
                "step {step}: a starting session taken for an orphan: {report:?}"
            );
            let rec = rig
                .store
                .records()
                .into_iter()
                .find(|r| r.id == id)
                .expect("record kept");
            assert!(!rec.state.is_terminal(), "step {step}: {}", rec.state);
            assert!(rig.runtime.dir(&id).is_some(), "step {step}: runtime dir removed");
        },
    );
}

#[test]
fn spawn_while_kill_ends_cleanly_either_way() {
    interleave(
        |_| {},
        |o, r| o.spawn(r.config()),
        |o, r| {
            // Kill whatever session is booked by now.
            let id = r.store.records().first().map(|rec| rec.id.clone())?;
            Some((id.clone(), o.kill(&id, "stop it")))
        },
        |rig, step, spawned, killed| {
            let records = rig.store.records();
            assert!(records.len() <= 1);
            match (spawned, killed) {
                // The kill came before the session was booked: it found nothing.
                (Ok(id), None) => {
                    assert_eq!(records[0].id, id);
                    assert!(!records[0].state.is_terminal(), "step {step}");
                }
                (spawned, Some((id, kill))) => {
                    let rec = records.iter().find(|r| r.id == id).expect("the killed record is kept");
                    if kill.is_ok() {
                        assert_eq!(
                            rec.state,
                            SessionState::Failed {
                                reason: "stop it".into()
                            },
                            "step {step}"
                        );
                        assert!(rig.mux.session(&id.tmux_name()).is_none(), "step {step}: pane left");
                        match spawned {
                            Ok(sid) => assert_eq!(sid, id),
                            Err(Error::SpawnAborted { id: aborted }) => assert_eq!(aborted, id),
                            Err(e) => panic!("step {step}: spawn failed otherwise: {e}"),
                        }
                    } else {
                        assert!(spawned.is_ok(), "step {step}");
                    }
                }
                (Err(e), None) => panic!("step {step}: spawn failed: {e}"),
            }
        },
    );
}

#[test]
fn kill_while_refresh_keeps_the_kills_reason() {
    interleave(
        |rig| {
            rig.orch().spawn(rig.config()).expect("spawn");
        },
        |o, r| {
            let id: SessionId = r.store.records()[0].id.clone();
            o.kill(&id, "by hand")
        },
        |o, _| o.refresh(),
        |rig, step, killed, refreshed| {
            killed.unwrap_or_else(|e| panic!("step {step}: kill failed: {e}"));
            refreshed.unwrap_or_else(|e| panic!("step {step}: refresh failed: {e}"));
            let rec = &rig.store.records()[0];
            assert_eq!(
                rec.state,
                SessionState::Failed {
                    reason: "by hand".into()
                },
                "step {step}: the refresh took the kill for a vanished session"
            );
            assert_eq!(rec.cleanup, None, "step {step}: the clean-up was not finalized");
            assert!(rig.mux.names().is_empty(), "step {step}");
        },
    );
}
