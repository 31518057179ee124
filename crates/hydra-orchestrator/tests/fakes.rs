//! The whole lifecycle driven through the facade with `orch_core::testing` fakes only: no tmux,
//! no daemon, no git, and a manual clock (the runtime directories are real files in a temp
//! project, since they are the loop's interface). Not an integration test of the adapters.

use hydra_orchestrator::{Error, Orchestrator, PauseMode, SessionConfig, SessionId, SessionState};
use orch_core::testing::{FakeMultiplexer, FakeWorktree, ManualClock, MemoryStore, RecordingBus};
use orch_core::{Clock, Store, Timestamp};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

struct Rig {
    dir: tempfile::TempDir,
    mux: Arc<FakeMultiplexer>,
    store: Arc<MemoryStore>,
    bus: Arc<RecordingBus>,
    wt: Arc<FakeWorktree>,
    clock: Arc<ManualClock>,
}

impl Rig {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(
            dir.path().join("prd.json"),
            r#"{"userStories":[{"id":"1","title":"a","passes":false},{"id":"2","title":"b","passes":false}]}"#,
        )
        .expect("prd");
        Rig {
            dir,
            mux: Arc::new(FakeMultiplexer::new()),
            store: Arc::new(MemoryStore::new()),
            bus: Arc::new(RecordingBus::new()),
            wt: Arc::new(FakeWorktree::new()),
            clock: Arc::new(ManualClock::new(Timestamp::from_secs(1_800_000_000))),
        }
    }
    fn orch(&self) -> Orchestrator {
        Orchestrator::builder()
            .project(self.dir.path())
            .multiplexer(self.mux.clone())
            .store(self.store.clone())
            .bus(self.bus.clone())
            .worktree(Some(self.wt.clone()))
            .clock(self.clock.clone())
            .without_signals()
            .build()
            .expect("build")
    }
    fn config(&self) -> SessionConfig {
        SessionConfig {
            agent_cli: "sh".into(),
            prd_path: self.dir.path().join("prd.json"),
            working_dir: self.dir.path().to_path_buf(),
            max_duration: Duration::from_secs(3600),
            ..SessionConfig::default()
        }
    }
    fn loop_reports(&self, orch: &Orchestrator, id: &SessionId, json: &str) {
        std::fs::write(orch.runtime_dir(id).status(), json).expect("status");
    }
    fn state(&self, orch: &Orchestrator, id: &SessionId) -> SessionState {
        orch.list().into_iter().find(|s| &s.id == id).expect("listed").state
    }
    fn count(&self, channel: &str) -> usize {
        self.bus.channels().iter().filter(|c| **c == channel).count()
    }
}

#[test]
fn full_lifecycle_with_fakes() {
    let rig = Rig::new();
    let orch = rig.orch();
    let id = orch.spawn(rig.config()).expect("spawn");
    let name = id.tmux_name();
    let session = rig.mux.session(&name).expect("tmux session created");
    assert!(session.spec.argv[1].ends_with("hydralph.sh"));
    assert!(session
        .spec
        .env
        .iter()
        .any(|(k, v)| k == "HYDRALPH_SESSION_ID" && v == id.as_str()));
    assert_eq!(rig.bus.channels(), ["session:spawned"]);
    assert_eq!(rig.state(&orch, &id), SessionState::Starting);

    rig.loop_reports(
        &orch,
        &id,
        r#"{"status":"running","iteration":1,"max":10,"stories":"0/2"}"#,
    );
    assert_eq!(
        rig.state(&orch, &id),
        SessionState::Running {
            iteration: 1,
            stories: Some("0/2".into())
        }
    );
    assert_eq!(rig.count("session:running"), 1);

    // 16 minutes of silence: stuck, reported once however often we look.
    rig.clock.advance(Duration::from_secs(16 * 60));
    assert!(orch.health_check().expect("health").is_empty());
    assert!(matches!(rig.state(&orch, &id), SessionState::Stuck { .. }));
    orch.health_check().expect("health");
    assert_eq!(rig.count("session:stuck"), 1);
    // Pane output clears it.
    rig.clock.advance(Duration::from_secs(5));
    rig.mux.touch(&name, rig.clock.now());
    orch.health_check().expect("health");
    assert!(matches!(rig.state(&orch, &id), SessionState::Running { .. }));

    // Checkpoint pause and resume.
    orch.pause(&id).expect("pause");
    assert!(orch.runtime_dir(&id).pause_marker().exists());
    assert!(matches!(
        rig.state(&orch, &id),
        SessionState::Paused { iteration: 1, .. }
    ));
    assert!(orch.pause(&id).is_err(), "pausing twice is refused");
    orch.resume(&id).expect("resume");
    assert!(!orch.runtime_dir(&id).pause_marker().exists());

    // Blocked: the loop exits; inject queues; resume restarts the loop at the same iteration.
    rig.loop_reports(&orch, &id, r#"{"status":"blocked","iteration":2,"max":10}"#);
    rig.mux.exit(&name, 2);
    assert!(matches!(
        rig.state(&orch, &id),
        SessionState::Blocked { iteration: 2, .. }
    ));
    orch.inject(&id, "use the staging key").expect("inject");
    let queued: Vec<_> = std::fs::read_dir(orch.runtime_dir(&id).inbox())
        .expect("inbox")
        .collect();
    assert_eq!(queued.len(), 1);
    orch.resume(&id).expect("resume blocked");
    let restarted = rig.mux.session(&name).expect("loop restarted");
    assert!(!restarted.pane.dead);
    assert!(restarted
        .spec
        .env
        .iter()
        .any(|(k, v)| k == "HYDRALPH_START_ITERATION" && v == "2"));
    assert!(matches!(
        rig.state(&orch, &id),
        SessionState::Running { iteration: 2, .. }
    ));

    // Completion: recorded, the finished pane reaped.
    rig.loop_reports(
        &orch,
        &id,
        r#"{"status":"complete","iteration":3,"max":10,"stories":"2/2"}"#,
    );
    rig.mux.exit(&name, 0);
    assert_eq!(rig.state(&orch, &id), SessionState::Completed { iterations: 3 });
    assert!(rig.mux.session(&name).is_none(), "ended pane reaped");
    assert!(orch.kill(&id, "late").is_err(), "terminal sessions accept nothing");
    for ch in [
        "session:paused",
        "session:resumed",
        "session:blocked",
        "session:injected",
        "session:completed",
    ] {
        assert!(rig.count(ch) >= 1, "{ch} not published: {:?}", rig.bus.channels());
    }
}

#[test]
fn duration_limit_vanished_session_and_kill() {
    let rig = Rig::new();
    let orch = rig.orch();
    let old = orch
        .spawn(SessionConfig {
            max_duration: Duration::from_secs(2),
            ..rig.config()
        })
        .expect("spawn");
    let gone = orch.spawn(rig.config()).expect("spawn");
    let killed = orch.spawn(rig.config()).expect("spawn");
    rig.mux.vanish(&gone.tmux_name());
    rig.clock.advance(Duration::from_secs(3));
    assert_eq!(orch.health_check().expect("health"), vec![old.clone()]);
    assert_eq!(
        rig.state(&orch, &old),
        SessionState::Failed {
            reason: "duration limit exceeded".into()
        }
    );
    assert_eq!(
        rig.state(&orch, &gone),
        SessionState::Failed {
            reason: "tmux session ended unexpectedly".into()
        }
    );
    assert!(rig.mux.session(&old.tmux_name()).is_none());
    orch.kill(&killed, "Task completed").expect("kill");
    assert_eq!(
        rig.state(&orch, &killed),
        SessionState::Failed {
            reason: "Task completed".into()
        }
    );
    assert!(rig.mux.session(&killed.tmux_name()).is_none());
    assert!(rig.store.load(&killed).expect("load").is_some(), "the record is kept");
    // Pruning removes ended sessions.
    let report = orch.prune(false).expect("prune");
    assert_eq!(report.removed_sessions.len(), 3);
    assert!(rig.store.records().is_empty());
}

#[test]
fn worktree_sessions_and_a_dirty_kill() {
    let rig = Rig::new();
    let orch = rig.orch();
    let a = orch
        .spawn(SessionConfig {
            use_worktree: true,
            ..rig.config()
        })
        .expect("a");
    let b = orch
        .spawn(SessionConfig {
            use_worktree: true,
            branch_name: Some("feature/b".into()),
            ..rig.config()
        })
        .expect("b");
    let (ra, rb) = (orch.record(&a).expect("a"), orch.record(&b).expect("b"));
    assert_ne!(ra.allocated_port, rb.allocated_port);
    assert_ne!(ra.worktree_path, rb.worktree_path);
    assert_eq!(rb.branch_name.as_deref(), Some("feature/b"));
    assert_eq!(
        rig.mux.session(&a.tmux_name()).expect("a").spec.cwd,
        ra.worktree_path.clone().expect("path")
    );
    rig.wt.mark_dirty("feature/b");
    let report = orch.kill(&b, "stop").expect("kill");
    assert!(report.worktree_kept.is_some(), "dirty worktree kept");
    let report = orch.kill(&a, "stop").expect("kill");
    assert!(report.worktree_removed);
}

#[test]
fn failed_spawn_rolls_back_everything() {
    let rig = Rig::new();
    let orch = rig.orch();
    rig.mux.fail_creates(true);
    let err = orch
        .spawn(SessionConfig {
            use_worktree: true,
            ..rig.config()
        })
        .expect_err("tmux fails");
    assert!(err.to_string().contains("injected failure"), "{err}");
    assert!(rig.store.records().is_empty());
    assert!(
        orch_core::Worktree::list(&*rig.wt, Path::new("/"))
            .expect("list")
            .is_empty(),
        "worktree undone"
    );
    let ralph = rig.dir.path().join(".hydra/ralph");
    assert_eq!(
        std::fs::read_dir(&ralph).map(|d| d.count()).unwrap_or(0),
        0,
        "runtime dir undone"
    );
    assert!(rig.bus.events().is_empty());
}

#[test]
fn bad_input_names_the_field_and_creates_nothing() {
    let rig = Rig::new();
    let orch = rig.orch();
    let cases = [
        (
            SessionConfig {
                agent_cli: "no-such-agent-xyz".into(),
                ..rig.config()
            },
            "agent_cli",
        ),
        (
            SessionConfig {
                prd_path: rig.dir.path().join("missing.json"),
                ..rig.config()
            },
            "prd_path",
        ),
        (
            SessionConfig {
                working_dir: "/nonexistent/dir".into(),
                ..rig.config()
            },
            "working_dir",
        ),
        (
            SessionConfig {
                working_dir: "/".into(),
                ..rig.config()
            },
            "working_dir",
        ),
        (
            SessionConfig {
                max_iterations: 0,
                ..rig.config()
            },
            "max_iterations",
        ),
    ];
    for (cfg, field) in cases {
        let err = orch.spawn(cfg).expect_err(field);
        assert!(matches!(&err, Error::Config(c) if c.field == field), "{field}: {err}");
    }
    assert!(rig.mux.names().is_empty() && rig.store.records().is_empty());
    assert!(matches!(orch.pause(&SessionId("../x".into())), Err(Error::Id(_))));
    assert!(matches!(
        orch.pause(&SessionId("nosuch".into())),
        Err(Error::NotFound(_))
    ));
}

#[test]
fn a_new_orchestrator_sees_the_same_states() {
    let rig = Rig::new();
    let first = rig.orch();
    let a = first.spawn(rig.config()).expect("a");
    let b = first
        .spawn(SessionConfig {
            pause_mode: PauseMode::Checkpoint,
            ..rig.config()
        })
        .expect("b");
    first.pause(&b).expect("pause");
    let before = first.list();
    drop(first);
    let second = rig.orch();
    let after = second.list();
    assert_eq!(
        before.iter().map(|s| (&s.id, &s.state)).collect::<Vec<_>>(),
        after.iter().map(|s| (&s.id, &s.state)).collect::<Vec<_>>()
    );
    assert!(after.iter().any(|s| s.id == a));
}

#[test]
fn a_full_disk_fails_clearly_and_keeps_the_record() {
    let rig = Rig::new();
    let orch = rig.orch();
    let id = orch.spawn(rig.config()).expect("spawn");
    rig.store.fail_writes(true);
    let err = orch.pause(&id).expect_err("disk full");
    assert!(err.to_string().contains("failed to write"), "{err}");
    rig.store.fail_writes(false);
    assert_eq!(orch.record(&id).expect("record").state, SessionState::Starting);
}

#[test]
fn health_check_works_inside_a_tokio_task() {
    let rig = Rig::new();
    let orch = rig.orch();
    orch.spawn(rig.config()).expect("spawn");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let killed = rt
        .block_on(async move { tokio::spawn(async move { orch.health_check() }).await.expect("task") })
        .expect("health");
    assert!(killed.is_empty());
}

/// Regression: a pause right after the loop moved on recorded the iteration of the last
/// refresh (0 for a session never listed), because control calls did not read the loop's status.
#[test]
fn regression_pause_records_the_loops_current_iteration() {
    let rig = Rig::new();
    let orch = rig.orch();
    let id = orch.spawn(rig.config()).expect("spawn");
    rig.loop_reports(
        &orch,
        &id,
        r#"{"status":"running","iteration":3,"max":10,"stories":"1/2"}"#,
    );
    orch.pause(&id).expect("pause");
    assert_eq!(
        orch.record(&id).expect("record").state,
        SessionState::Paused {
            iteration: 3,
            stories: Some("1/2".into())
        }
    );
}

#[test]
fn ralph_pulses_from_the_bus_move_states() {
    let rig = Rig::new();
    let orch = rig.orch();
    let id = orch.spawn(rig.config()).expect("spawn");
    let pulse = |channel: &str, data: serde_json::Value| orch_core::Pulse {
        id: format!("p-{channel}"),
        channel: channel.into(),
        kind: "status".into(),
        timestamp: String::new(),
        data,
    };
    let running = pulse(
        "ralph:iteration",
        serde_json::json!({"session": id.as_str(), "status": "running", "iteration": 2, "max": 10, "stories": "1/2"}),
    );
    assert!(orch.apply_pulse(&running).expect("apply"));
    assert_eq!(
        orch.record(&id).expect("record").state,
        SessionState::Running {
            iteration: 2,
            stories: Some("1/2".into())
        }
    );
    let done = pulse(
        "ralph:complete",
        serde_json::json!({"session": id.as_str(), "status": "complete", "iteration": 3, "max": 10}),
    );
    assert!(orch.apply_pulse(&done).expect("apply"));
    assert_eq!(
        orch.record(&id).expect("record").state,
        SessionState::Completed { iterations: 3 }
    );
    // Pulses for unknown sessions, other channels or terminal sessions change nothing.
    let stranger = pulse(
        "ralph:complete",
        serde_json::json!({"session": "nosuch", "status": "complete", "iteration": 1}),
    );
    assert!(!orch.apply_pulse(&stranger).expect("apply"));
    assert!(!orch.apply_pulse(&running).expect("apply"));
    assert!(rig.bus.channels().contains(&"session:completed"));
}

#[test]
fn an_external_loop_script_replaces_the_embedded_one() {
    let rig = Rig::new();
    let orch = rig.orch();
    let script = rig.dir.path().join("my-hydralph.sh");
    std::fs::write(&script, "#!/usr/bin/env bash\necho custom loop\n").expect("script");
    let id = orch
        .spawn(SessionConfig {
            loop_script: Some(script.clone()),
            ..rig.config()
        })
        .expect("spawn");
    let rt = orch.runtime_dir(&id);
    assert_eq!(
        std::fs::read_to_string(rt.script()).expect("copied"),
        "#!/usr/bin/env bash\necho custom loop\n"
    );
    let missing = SessionConfig {
        loop_script: Some(rig.dir.path().join("nope.sh")),
        ..rig.config()
    };
    assert!(matches!(orch.spawn(missing), Err(Error::Config(c)) if c.field == "loop_script"));
}
