//! Model versus system: random sequences of operations on the facade wired to the
//! `orch_core::testing` fakes, compared after every step with a small independent model of
//! what each session's state, each call's outcome and each tmux session should be.

use hydra_orchestrator::{Orchestrator, SessionConfig, SessionId, SessionState};
use orch_core::testing::{FakeHost, FakeMultiplexer, ManualClock, MemoryRuntime, MemoryStore, RecordingBus};
use orch_core::{Clock, Timestamp};
use proptest::prelude::*;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Report {
    Running(u32),
    Blocked(u32),
    Complete(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Spawn,
    Report(usize, Report),
    Pause(usize),
    Resume(usize),
    Kill(usize),
    Inject(usize),
    Vanish(usize),
    List,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum M {
    Starting,
    Running(u32),
    Paused(u32),
    Blocked(u32),
    Completed(u32),
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pane {
    Alive,
    Dead,
    Gone,
}

#[derive(Debug, Clone)]
struct ModelSession {
    state: M,
    status: Option<Report>,
    pane: Pane,
}

impl M {
    fn terminal(self) -> bool {
        matches!(self, M::Completed(_) | M::Failed)
    }
    fn iteration(self) -> u32 {
        match self {
            M::Starting | M::Failed => 0,
            M::Running(i) | M::Paused(i) | M::Blocked(i) | M::Completed(i) => i,
        }
    }
}

/// What the loop's last report does to a state (the model's own reading of DESIGN.md §3): a
/// report of an iteration below the one known is stale and changes nothing.
fn catch_up(s: &mut ModelSession) {
    let known = s.state.iteration();
    s.state = match (s.state, s.status) {
        (M::Starting | M::Running(_), Some(Report::Running(i))) if i >= known => M::Running(i),
        (M::Starting | M::Running(_) | M::Paused(_), Some(Report::Blocked(i))) if i >= known => M::Blocked(i),
        (M::Starting | M::Running(_) | M::Paused(_), Some(Report::Complete(i))) if i >= known => M::Completed(i),
        (state, _) => state,
    };
}

/// What one look at a session (a refresh, or the catch-up every control call makes) does:
/// the loop's report first, then a vanished or dead pane ends a live session, and an ended
/// session's pane is ended.
fn observe_one(m: &mut ModelSession) {
    catch_up(m);
    if !m.state.terminal() {
        let fails = match m.pane {
            Pane::Gone => true,
            Pane::Dead => !matches!(m.state, M::Blocked(_)),
            Pane::Alive => false,
        };
        if fails {
            m.state = M::Failed;
        }
    }
    if m.state.terminal() {
        m.pane = Pane::Gone;
    }
}

fn observe(state: &SessionState) -> M {
    match state {
        SessionState::Starting => M::Starting,
        SessionState::Running { iteration, .. } => M::Running(*iteration),
        SessionState::Paused { iteration, .. } => M::Paused(*iteration),
        SessionState::Blocked { iteration, .. } => M::Blocked(*iteration),
        SessionState::Completed { iterations } => M::Completed(*iterations),
        other => panic!("state outside the model: {other:?}"),
    }
}

fn arb_op() -> impl Strategy<Value = Op> {
    let report = prop_oneof![
        (1u32..5).prop_map(Report::Running),
        (1u32..5).prop_map(Report::Blocked),
        (1u32..5).prop_map(Report::Complete),
    ];
    prop_oneof![
        2 => Just(Op::Spawn),
        4 => (0usize..3, report).prop_map(|(k, r)| Op::Report(k, r)),
        2 => (0usize..3).prop_map(Op::Pause),
        2 => (0usize..3).prop_map(Op::Resume),
        1 => (0usize..3).prop_map(Op::Kill),
        1 => (0usize..3).prop_map(Op::Inject),
        1 => (0usize..3).prop_map(Op::Vanish),
        2 => Just(Op::List),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn the_facade_behaves_like_the_model(ops in proptest::collection::vec(arb_op(), 1..30)) {
        let project = PathBuf::from("/model/project");
        let runtime = Arc::new(MemoryRuntime::new());
        runtime.add_file(project.join("prd.json"), r#"{"userStories":[{"id":"1","title":"a","passes":false}]}"#);
        let host = Arc::new(FakeHost::new());
        host.add_dir(&project);
        host.add_program("agent");
        let mux = Arc::new(FakeMultiplexer::new());
        let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_800_000_000)));
        let orch = Orchestrator::builder()
            .project(&project)
            .multiplexer(mux.clone())
            .store(Arc::new(MemoryStore::new()))
            .bus(Arc::new(RecordingBus::new()))
            .worktrees(None)
            .runtime(runtime.clone())
            .host(host)
            .clock(clock.clone())
            .kill_grace(Duration::ZERO)
            .build()
            .expect("build");
        let config = SessionConfig {
            agent_cli: "agent".into(),
            prd_path: project.join("prd.json"),
            working_dir: project.clone(),
            max_duration: Duration::from_secs(3600),
            ..SessionConfig::default()
        };
        let mut ids: Vec<SessionId> = Vec::new();
        let mut model: Vec<ModelSession> = Vec::new();
        for op in ops {
            match op {
                Op::Spawn => {
                    // Each session on a PRD of its own: sessions of one PRD split its stories.
                    let prd = project.join(format!("prd-{}.json", ids.len()));
                    runtime.add_file(&prd, r#"{"userStories":[{"id":"1","title":"a","passes":false}]}"#);
                    let cfg = SessionConfig {
                        prd_path: prd,
                        ..config.clone()
                    };
                    ids.push(orch.spawn(cfg).expect("spawn"));
                    model.push(ModelSession { state: M::Starting, status: None, pane: Pane::Alive });
                }
                Op::Report(k, r) => {
                    let Some(id) = ids.get(k) else { continue };
                    let json = match r {
                        Report::Running(i) => format!(r#"{{"status":"running","iteration":{i},"max":10}}"#),
                        Report::Blocked(i) => format!(r#"{{"status":"blocked","iteration":{i},"max":10}}"#),
                        Report::Complete(i) => format!(r#"{{"status":"complete","iteration":{i},"max":10}}"#),
                    };
                    runtime.report(id, &json, clock.now());
                    let m = &mut model[k];
                    m.status = Some(r);
                    if !matches!(r, Report::Running(_)) && m.pane == Pane::Alive {
                        mux.exit(&id.tmux_name(), if matches!(r, Report::Blocked(_)) { 2 } else { 0 });
                        m.pane = Pane::Dead;
                    }
                }
                Op::Pause(k) | Op::Resume(k) | Op::Kill(k) | Op::Inject(k) => {
                    let Some(id) = ids.get(k) else { continue };
                    let m = &mut model[k];
                    // The call first looks at the session (the loop's latest report, its
                    // pane) and books that, whether the call itself is refused or not.
                    observe_one(m);
                    let trial = m.clone();
                    let (expected_ok, next) = match (op, trial.state) {
                        (Op::Pause(_), M::Starting | M::Running(_)) => (true, M::Paused(trial.state.iteration())),
                        (Op::Resume(_), M::Paused(i)) => (true, M::Running(i)),
                        (Op::Resume(_), M::Blocked(i)) => (true, M::Running(i)),
                        (Op::Kill(_), s) if !s.terminal() => (true, M::Failed),
                        (Op::Inject(_), s) if !s.terminal() => (true, s),
                        (_, s) => (false, s),
                    };
                    let result = match op {
                        Op::Pause(_) => orch.pause(id).map(|_| ()),
                        Op::Resume(_) => orch.resume(id),
                        Op::Kill(_) => orch.kill(id, "model").map(|_| ()),
                        _ => orch.inject(id, "hello"),
                    };
                    prop_assert_eq!(result.is_ok(), expected_ok, "{:?} on {:?}: {:?}", op, trial.state, result.err());
                    if expected_ok {
                        if let (Op::Resume(_), M::Blocked(_)) = (op, trial.state) {
                            if m.pane != Pane::Alive {
                                m.pane = Pane::Alive;
                                m.status = None;
                            }
                        }
                        if matches!(op, Op::Kill(_)) {
                            m.pane = Pane::Gone;
                        }
                        m.state = next;
                    }
                }
                Op::Vanish(k) => {
                    let Some(id) = ids.get(k) else { continue };
                    mux.vanish(&id.tmux_name());
                    model[k].pane = Pane::Gone;
                }
                Op::List => {
                    let listed = orch.list();
                    prop_assert_eq!(listed.len(), ids.len());
                    for m in model.iter_mut() {
                        observe_one(m);
                    }
                }
            }
            // After every step: stored states and tmux agree with the model (read without a
            // refresh, so only the operations themselves moved them).
            for (id, m) in ids.iter().zip(&model) {
                let rec = orch.record(id).expect("record");
                let got = match rec.state {
                    SessionState::Failed { .. } => M::Failed,
                    ref s => observe(s),
                };
                // The loop's latest report is applied at the next call (and a failed call saves
                // nothing), so compare both sides with that report applied.
                let mut system = ModelSession { state: got, status: m.status, pane: m.pane };
                catch_up(&mut system);
                let mut expected = m.clone();
                catch_up(&mut expected);
                prop_assert_eq!(system.state, expected.state, "{} after {:?}", id, op);
                let session = mux.session(&id.tmux_name());
                match m.pane {
                    Pane::Gone => prop_assert!(session.is_none(), "{} should have no tmux session", id),
                    Pane::Alive => prop_assert!(session.as_ref().is_some_and(|s| !s.pane.dead), "{} should be alive", id),
                    Pane::Dead => prop_assert!(session.as_ref().is_some_and(|s| s.pane.dead), "{} should be dead", id),
                }
            }
        }
    }
}
