//! The whole lifecycle driven through the facade with `orch_core::testing` fakes only: no tmux,
//! no file system, no daemon, no git, and a manual clock. Not an integration test of the
//! adapters. Each step builds a fresh `Orchestrator` over the same fakes, so nothing carries
//! over between steps except what the store persisted.

use hydra_orchestrator::{
    Error, InjectMode, KillOptions, Orchestrator, PauseMode, PruneOptions, SessionConfig, SessionId, SessionState,
};
use orch_core::testing::FakeMultiplexer;
use orch_core::{Clock, Multiplexer, Store, Timestamp};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

mod support;

const PROJECT: &str = "/fake/project";

/// The fakes, and what the tests do with them.
struct Rig(support::Fakes);

impl std::ops::Deref for Rig {
    type Target = support::Fakes;
    fn deref(&self) -> &support::Fakes {
        &self.0
    }
}

impl Rig {
    fn new() -> Self {
        Rig(support::Fakes::new(PROJECT))
    }
    fn spawn(&self) -> SessionId {
        self.orch().spawn(self.config()).expect("spawn")
    }
    fn loop_reports(&self, id: &SessionId, json: &str) {
        self.runtime.report(id, json, self.clock.now());
    }
    fn state(&self, id: &SessionId) -> SessionState {
        self.orch()
            .list()
            .into_iter()
            .find(|s| &s.id == id)
            .expect("listed")
            .state
    }
    /// A spawned session whose loop runs, its pane program showing in the host's process
    /// table as started at `start`: (id, tmux name, pane pid).
    fn running_with_process(&self, start: u64) -> (SessionId, String, u32) {
        let id = self.spawn();
        let name = id.tmux_name();
        let pid = self.mux.session(&name).expect("s").pane.pane_pid.expect("pid");
        self.host
            .set_process(pid, orch_core::ProcessInfo::new(start, false, true));
        self.loop_reports(&id, r#"{"status":"running","iteration":1,"run":1}"#);
        (id, name, pid)
    }
    fn count(&self, channel: &str) -> usize {
        self.bus.channels().iter().filter(|c| **c == channel).count()
    }
}

#[test]
fn full_lifecycle_with_fakes() {
    let rig = Rig::new();
    let id = rig.spawn();
    let name = id.tmux_name();
    let session = rig.mux.session(&name).expect("tmux session created");
    assert!(session.spec.argv[1].ends_with("hydralph.sh"));
    assert_eq!(
        session.spec.tag.as_deref(),
        Some(rig.orch().project_tag()),
        "tagged as ours"
    );
    assert!(session
        .spec
        .env
        .iter()
        .any(|(k, v)| k == "HYDRALPH_SESSION_ID" && v == id.as_str()));
    assert_eq!(rig.bus.channels(), ["session:spawned"]);
    assert_eq!(rig.state(&id), SessionState::Starting);
    assert!(
        rig.store.load(&id).expect("load").expect("kept").spawning.is_none(),
        "finalized"
    );

    rig.loop_reports(
        &id,
        r#"{"status":"running","iteration":1,"max":10,"stories":"0/2","run":1}"#,
    );
    assert_eq!(
        rig.state(&id),
        SessionState::Running {
            iteration: 1,
            stories: Some("0/2".into())
        }
    );
    assert_eq!(rig.count("session:running"), 1);

    // 16 minutes of silence: stuck, reported once however often we look.
    rig.clock.advance(Duration::from_secs(16 * 60));
    assert!(rig.orch().health_check().expect("health").is_empty());
    assert!(matches!(rig.state(&id), SessionState::Stuck { .. }));
    rig.orch().health_check().expect("health");
    assert_eq!(rig.count("session:stuck"), 1);
    // Pane output clears it.
    rig.clock.advance(Duration::from_secs(5));
    rig.mux.touch(&name, rig.clock.now());
    rig.orch().health_check().expect("health");
    assert!(matches!(rig.state(&id), SessionState::Running { .. }));

    // Checkpoint pause and resume.
    rig.orch().pause(&id).expect("pause");
    assert!(rig.runtime.dir(&id).expect("dir").paused);
    assert!(matches!(rig.state(&id), SessionState::Paused { iteration: 1, .. }));
    assert!(rig.orch().pause(&id).is_err(), "pausing twice is refused");
    rig.orch().resume(&id).expect("resume");
    assert!(!rig.runtime.dir(&id).expect("dir").paused);

    // Blocked: the loop exits; inject queues; resume restarts the loop at the same iteration.
    rig.loop_reports(
        &id,
        r#"{"status":"blocked","iteration":2,"max":10,"reason":"needs a key","run":1}"#,
    );
    rig.mux.exit(&name, 2);
    assert_eq!(
        rig.state(&id),
        SessionState::Blocked {
            iteration: 2,
            reason: "needs a key".into()
        }
    );
    rig.orch().inject(&id, "use the staging key").expect("inject");
    assert_eq!(rig.runtime.dir(&id).expect("dir").inbox, ["use the staging key"]);
    rig.orch().resume(&id).expect("resume blocked");
    let restarted = rig.mux.session(&name).expect("loop restarted");
    assert!(!restarted.pane.dead);
    let env = |k: &str| {
        restarted
            .spec
            .env
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(env("HYDRALPH_START_ITERATION").as_deref(), Some("2"));
    assert_eq!(env("HYDRALPH_RUN").as_deref(), Some("2"), "a new run of the loop");
    assert!(
        rig.runtime.dir(&id).expect("dir").report.is_none(),
        "the old run's report is gone"
    );
    assert!(matches!(rig.state(&id), SessionState::Running { iteration: 2, .. }));

    // Completion: recorded, the finished pane reaped.
    rig.loop_reports(
        &id,
        r#"{"status":"complete","iteration":3,"max":10,"stories":"2/2","run":2}"#,
    );
    rig.mux.exit(&name, 0);
    assert_eq!(rig.state(&id), SessionState::Completed { iterations: 3 });
    assert!(rig.mux.session(&name).is_none(), "ended pane reaped");
    let rec = rig.store.load(&id).expect("load").expect("kept");
    assert_eq!(rec.cleanup, None, "the clean-up finished");
    assert_eq!(rec.ended_at, Some(rig.clock.now()));
    assert!(
        rig.orch().kill(&id, "late").is_err(),
        "terminal sessions accept nothing"
    );
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
    let old = rig
        .orch()
        .spawn(SessionConfig {
            max_duration: Duration::from_secs(2),
            ..rig.config()
        })
        .expect("spawn");
    let gone = rig.spawn();
    let killed = rig.spawn();
    rig.loop_reports(&killed, r#"{"status":"running","iteration":4,"max":10,"run":1}"#);
    rig.mux.vanish(&gone.tmux_name());
    rig.clock.advance(Duration::from_secs(3));
    assert_eq!(rig.orch().health_check().expect("health"), vec![old.clone()]);
    assert_eq!(
        rig.state(&old),
        SessionState::Failed {
            reason: "duration limit exceeded".into()
        }
    );
    assert_eq!(
        rig.state(&gone),
        SessionState::Failed {
            reason: "tmux session ended unexpectedly".into()
        }
    );
    assert!(rig.mux.session(&old.tmux_name()).is_none());
    rig.orch().kill(&killed, "Task completed").expect("kill");
    let st = rig.orch().status(&killed).expect("status");
    assert_eq!(
        st.state,
        SessionState::Failed {
            reason: "Task completed".into()
        }
    );
    assert_eq!(st.iteration, 4, "a kill keeps the iteration");
    let ev = rig
        .bus
        .events()
        .into_iter()
        .find(|e| e.channel.as_str() == "session:killed" && e.session == killed);
    assert_eq!(ev.expect("killed event").data["iteration"], 4);
    assert!(rig.mux.session(&killed.tmux_name()).is_none());
    assert!(rig.store.load(&killed).expect("load").is_some(), "the record is kept");
    // Pruning removes ended sessions, archiving their logs.
    let report = rig.orch().prune(false).expect("prune");
    assert_eq!(report.removed_sessions.len(), 3);
    assert!(rig.store.records().is_empty());
    assert!(rig.runtime.archived(&killed).is_some(), "logs archived, not deleted");
}

#[test]
fn worktree_sessions_and_a_dirty_kill() {
    let rig = Rig::new();
    let a = rig
        .orch()
        .spawn(SessionConfig {
            use_worktree: true,
            ..rig.config()
        })
        .expect("a");
    let b = rig
        .orch()
        .spawn(SessionConfig {
            use_worktree: true,
            branch_name: Some("feature/b".into()),
            ..rig.config()
        })
        .expect("b");
    let orch = rig.orch();
    let (ra, rb) = (orch.record(&a).expect("a"), orch.record(&b).expect("b"));
    assert_ne!(ra.allocated_port, rb.allocated_port);
    assert_ne!(ra.worktree_path, rb.worktree_path);
    assert_eq!(rb.branch_name.as_deref(), Some("feature/b"));
    assert_eq!(
        rig.mux.session(&a.tmux_name()).expect("a").spec.cwd,
        ra.worktree_path.clone().expect("path")
    );
    rig.wt.mark_dirty("feature/b");
    let report = rig.orch().kill(&b, "stop").expect("kill");
    assert!(report.worktree_kept.is_some(), "dirty worktree kept");
    assert!(
        rig.orch().record(&b).expect("b").worktree_kept.is_some(),
        "and the record says so"
    );
    let report = rig.orch().kill(&a, "stop").expect("kill");
    assert!(report.worktree_removed);
    assert_eq!(rig.orch().record(&a).expect("a").allocated_port, None, "port freed");
    // Prune keeps the session whose worktree holds work, and says why.
    let report = rig.orch().prune(false).expect("prune");
    assert_eq!(report.removed_sessions, vec![a]);
    assert_eq!(report.kept.len(), 1);
    assert_eq!(report.kept[0].id, b);
    // Forced: removed even with work.
    rig.orch()
        .kill_with(&b, "again", KillOptions::forced())
        .expect_err("already ended");
}

#[test]
fn failed_spawn_rolls_back_everything() {
    let rig = Rig::new();
    rig.mux.fail_creates(true);
    let err = rig
        .orch()
        .spawn(SessionConfig {
            use_worktree: true,
            ..rig.config()
        })
        .expect_err("tmux fails");
    assert!(err.to_string().contains("injected failure"), "{err}");
    assert!(rig.store.records().is_empty(), "the booked record is removed");
    assert!(
        orch_core::Worktrees::list(&*rig.wt, Path::new("/"))
            .expect("list")
            .is_empty(),
        "worktree undone"
    );
    assert!(rig.runtime.ids().is_empty(), "runtime dir undone");
    assert!(rig.bus.events().is_empty());
    // A failing runtime directory is undone the same way.
    rig.mux.fail_creates(false);
    rig.runtime.fail_creates(true);
    rig.orch().spawn(rig.config()).expect_err("runtime fails");
    assert!(rig.store.records().is_empty() && rig.mux.names().is_empty());
}

#[test]
fn bad_input_names_the_field_and_creates_nothing() {
    let rig = Rig::new();
    rig.runtime
        .add_file(PathBuf::from(PROJECT).join("empty.json"), r#"{"userStories":[]}"#);
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
                prd_path: PathBuf::from(PROJECT).join("missing.json"),
                ..rig.config()
            },
            "prd_path",
        ),
        (
            SessionConfig {
                prd_path: PathBuf::from(PROJECT).join("empty.json"),
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
                max_iterations: 0,
                ..rig.config()
            },
            "max_iterations",
        ),
        (
            SessionConfig {
                name: Some("bad name".into()),
                ..rig.config()
            },
            "name",
        ),
    ];
    for (cfg, field) in cases {
        let err = rig.orch().spawn(cfg).expect_err(field);
        assert!(matches!(&err, Error::Config(c) if c.field == field), "{field}: {err}");
    }
    assert!(rig.mux.names().is_empty() && rig.store.records().is_empty());
    assert!(matches!(rig.orch().pause(&SessionId("../x".into())), Err(Error::Id(_))));
    assert!(matches!(
        rig.orch().pause(&SessionId("nosuch".into())),
        Err(Error::NotFound(_))
    ));
}

#[test]
fn a_new_orchestrator_sees_the_same_states() {
    let rig = Rig::new();
    let a = rig.spawn();
    let b = rig.spawn();
    rig.orch().pause(&b).expect("pause");
    let before = rig.orch().list();
    let after = rig.orch().list();
    assert_eq!(
        before.iter().map(|s| (&s.id, &s.state)).collect::<Vec<_>>(),
        after.iter().map(|s| (&s.id, &s.state)).collect::<Vec<_>>()
    );
    assert!(after.iter().any(|s| s.id == a));
}

#[test]
fn a_full_disk_fails_clearly_and_keeps_the_record_and_the_loop_running() {
    let rig = Rig::new();
    let id = rig.spawn();
    rig.store.fail_writes(true);
    let err = rig.orch().pause(&id).expect_err("disk full");
    assert!(err.to_string().contains("failed to write"), "{err}");
    rig.store.fail_writes(false);
    assert_eq!(rig.orch().record(&id).expect("record").state, SessionState::Starting);
    assert!(!rig.runtime.dir(&id).expect("dir").paused, "the pause marker is undone");
}

#[test]
fn a_read_only_store_is_read_and_nothing_changes() {
    let rig = Rig::new();
    let id = rig.spawn();
    rig.mux.vanish(&id.tmux_name());
    rig.store.set_read_only(true);
    let orch = rig.orch();
    let statuses = orch.try_list().expect("reading works read-only");
    assert!(matches!(statuses[0].state, SessionState::Failed { .. }), "judged");
    assert!(orch.take_notices().iter().any(|n| n.message.contains("read-only")));
    rig.store.set_read_only(false);
    assert_eq!(rig.store.records()[0].state, SessionState::Starting, "but not saved");
    assert_eq!(rig.bus.channels(), ["session:spawned"], "nor published");
    rig.store.set_read_only(true);
    assert!(matches!(rig.orch().kill(&id, "x"), Err(Error::ReadOnly { .. })));
}

#[test]
fn health_check_works_inside_a_tokio_task() {
    let rig = Rig::new();
    rig.spawn();
    let orch = rig.orch();
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
    let id = rig.spawn();
    rig.loop_reports(
        &id,
        r#"{"status":"running","iteration":3,"max":10,"stories":"1/2","run":1}"#,
    );
    rig.orch().pause(&id).expect("pause");
    assert_eq!(
        rig.orch().record(&id).expect("record").state,
        SessionState::Paused {
            iteration: 3,
            stories: Some("1/2".into())
        }
    );
}

#[test]
fn a_freeze_is_booked_before_the_processes_are_stopped() {
    let rig = Rig::new();
    let id = rig.spawn();
    let pid = rig.mux.session(&id.tmux_name()).expect("s").pane.pane_pid.expect("pid");
    rig.orch().pause_with(&id, PauseMode::Freeze).expect("freeze");
    assert!(rig.orch().record(&id).expect("r").frozen);
    assert_eq!(rig.host.stopped(), [pid]);
    rig.orch().resume(&id).expect("resume");
    assert!(!rig.orch().record(&id).expect("r").frozen);
    assert!(rig.host.signals().contains(&(pid, orch_core::Sig::Cont)));
}

fn pulse(channel: &str, at: Timestamp, data: serde_json::Value) -> orch_core::Pulse {
    orch_core::Pulse {
        id: format!("p-{channel}-{}", at.as_millis()),
        channel: channel.into(),
        kind: "status".into(),
        timestamp: at.to_rfc3339(),
        data,
    }
}

#[test]
fn fresh_ralph_pulses_move_states_and_old_ones_change_nothing() {
    let rig = Rig::new();
    let id = rig.spawn();
    rig.clock.advance(Duration::from_secs(1));
    let running = pulse(
        "ralph:iteration",
        rig.clock.now(),
        serde_json::json!({"session": id.as_str(), "status": "running", "iteration": 2, "max": 10, "stories": "1/2"}),
    );
    rig.clock.advance(Duration::from_secs(1));
    assert!(rig.orch().apply_pulse(&running).expect("apply"));
    assert_eq!(
        rig.orch().record(&id).expect("record").state,
        SessionState::Running {
            iteration: 2,
            stories: Some("1/2".into())
        }
    );
    // The same pulse again (hydra-mail's replay to a restarted monitor) changes nothing.
    assert!(!rig.orch().apply_pulse(&running).expect("apply"));
    rig.clock.advance(Duration::from_secs(1));
    let done = pulse(
        "ralph:complete",
        rig.clock.now(),
        serde_json::json!({"session": id.as_str(), "status": "complete", "iteration": 3, "max": 10}),
    );
    rig.clock.advance(Duration::from_secs(1));
    assert!(rig.orch().apply_pulse(&done).expect("apply"));
    let rec = rig.orch().record(&id).expect("record");
    assert_eq!(rec.state, SessionState::Completed { iterations: 3 });
    assert_eq!(
        rec.ended_at,
        Some(rig.clock.now()),
        "the end time is booked on this path too"
    );
    // Pulses for unknown sessions or without a time change nothing.
    let stranger = pulse(
        "ralph:complete",
        rig.clock.now(),
        serde_json::json!({"session": "nosuch", "status": "complete", "iteration": 1}),
    );
    assert!(!rig.orch().apply_pulse(&stranger).expect("apply"));
    assert!(rig.bus.channels().contains(&"session:completed"));
}

/// Regression: a restarted monitor received hydra-mail's replay of a `ralph:blocked` that came
/// before a resume and put the session back to blocked; a replayed `ralph:iteration` moved the
/// iteration backwards.
#[test]
fn regression_replayed_pulses_never_undo_a_resume_or_lower_the_iteration() {
    let rig = Rig::new();
    let id = rig.spawn();
    rig.clock.advance(Duration::from_secs(1));
    let blocked = pulse(
        "ralph:blocked",
        rig.clock.now(),
        serde_json::json!({"session": id.as_str(), "status": "blocked", "iteration": 2, "max": 10}),
    );
    let early = pulse(
        "ralph:iteration",
        rig.clock.now(),
        serde_json::json!({"session": id.as_str(), "status": "running", "iteration": 1, "max": 10}),
    );
    rig.clock.advance(Duration::from_secs(1));
    assert!(rig.orch().apply_pulse(&blocked).expect("apply"));
    rig.mux.exit(&id.tmux_name(), 2);
    rig.clock.advance(Duration::from_secs(1));
    rig.orch().resume(&id).expect("resume");
    rig.clock.advance(Duration::from_secs(1));
    // The replay.
    assert!(!rig.orch().apply_pulse(&blocked).expect("apply"));
    assert!(!rig.orch().apply_pulse(&early).expect("apply"));
    let st = rig.orch().status(&id).expect("status");
    assert_eq!(
        st.state,
        SessionState::Running {
            iteration: 2,
            stories: None
        }
    );
    let iterations: Vec<_> = rig
        .bus
        .events()
        .iter()
        .filter(|e| e.channel.as_str() == "session:iteration")
        .map(|e| e.data["iteration"].as_u64())
        .collect();
    assert!(iterations.is_empty(), "no backwards session:iteration: {iterations:?}");
}

#[test]
fn an_external_loop_script_replaces_the_embedded_one() {
    let rig = Rig::new();
    let script = PathBuf::from(PROJECT).join("my-hydralph.sh");
    rig.runtime.add_file(&script, "#!/usr/bin/env bash\necho custom loop\n");
    let id = rig
        .orch()
        .spawn(SessionConfig {
            loop_script: Some(script),
            ..rig.config()
        })
        .expect("spawn");
    assert_eq!(
        rig.runtime.dir(&id).expect("dir").external_loop.as_deref(),
        Some(&b"#!/usr/bin/env bash\necho custom loop\n"[..])
    );
    let missing = SessionConfig {
        loop_script: Some(PathBuf::from(PROJECT).join("nope.sh")),
        ..rig.config()
    };
    assert!(matches!(rig.orch().spawn(missing), Err(Error::Config(c)) if c.field == "loop_script"));
}

#[test]
fn live_inject_types_only_to_an_agent_that_reads_its_pane_and_marks_a_long_message_as_cut() {
    let rig = Rig::new();
    // A headless agent reads its prompt once per iteration: typing would be lost, so the
    // message is queued instead, and the caller is told.
    let headless = rig.spawn();
    let d = rig
        .orch()
        .inject_with(&headless, "now please", InjectMode::Live)
        .expect("live");
    assert_eq!(d, hydra_orchestrator::Delivery::QueuedInsteadOfTyped);
    assert!(rig.mux.session(&headless.tmux_name()).expect("s").typed.is_empty());
    assert_eq!(rig.runtime.dir(&headless).expect("dir").inbox, ["now please"]);
    // An interactive profile gets the text typed, up to the cap.
    let mut profile = hydra_orchestrator::AgentProfile::program("agent");
    profile.interactive = true;
    let id = rig
        .orch()
        .spawn(SessionConfig {
            agent_profile: Some(profile),
            ..rig.config()
        })
        .expect("spawn");
    let d = rig
        .orch()
        .inject_with(&id, "now please", InjectMode::Live)
        .expect("live");
    assert_eq!(d, hydra_orchestrator::Delivery::Typed);
    assert_eq!(rig.mux.session(&id.tmux_name()).expect("s").typed, ["now please\n"]);
    let big = "y".repeat(hydra_orchestrator::MAX_LIVE_BYTES + 1);
    let err = rig.orch().inject_with(&id, &big, InjectMode::Live).expect_err("capped");
    assert!(err.to_string().contains("too long to type into a pane"), "{err}");
    let long = "x".repeat(12_000);
    rig.orch().inject(&id, &long).expect("queued");
    let ev = rig.bus.events().pop().expect("injected");
    assert_eq!(ev.data["truncated"], true);
    assert_eq!(ev.data["bytes"], 12_000);
    assert_eq!(ev.data["message"].as_str().map(str::len), Some(1000));
}

#[test]
fn names_and_prefixes_resolve_and_ambiguity_is_refused() {
    let rig = Rig::new();
    let named = rig
        .orch()
        .spawn(SessionConfig {
            name: Some("api-refactor".into()),
            ..rig.config()
        })
        .expect("named");
    let orch = rig.orch();
    assert_eq!(orch.resolve("api-refactor").expect("name"), named);
    assert_eq!(orch.resolve(named.as_str()).expect("id"), named);
    assert_eq!(orch.resolve(&named.as_str()[..6]).expect("prefix"), named);
    assert!(matches!(orch.resolve("zzzz"), Err(Error::NotFound(_))));
    let taken = orch.spawn(SessionConfig {
        name: Some("api-refactor".into()),
        ..rig.config()
    });
    assert!(
        matches!(taken, Err(Error::Config(c)) if c.field == "name"),
        "a live name is unique"
    );
    // With enough sessions, a one-character prefix matches several.
    let mut ids = vec![named];
    while ids.len() < 20 {
        ids.push(rig.spawn());
    }
    let first = ids[0].as_str()[..1].to_owned();
    if ids.iter().filter(|i| i.as_str().starts_with(&first)).count() > 1 {
        assert!(matches!(orch.resolve(&first), Err(Error::Ambiguous { matches, .. }) if matches.len() > 1));
    }
    let all_hex = "0123456789abcdef";
    let ambiguous = all_hex
        .chars()
        .map(String::from)
        .find(|p| ids.iter().filter(|i| i.as_str().starts_with(p.as_str())).count() > 1)
        .expect("20 random ids share a first character");
    assert!(matches!(orch.resolve(&ambiguous), Err(Error::Ambiguous { .. })));
}

#[test]
fn prune_ends_only_this_projects_orphans_and_reports_untagged_ones() {
    let rig = Rig::new();
    let orch = rig.orch();
    let mine = format!("hydralph-{}", "0badc0de");
    rig.mux.add_foreign(&mine, Some(orch.project_tag()));
    rig.mux.add_foreign("hydralph-deadbeef", Some("ffffffffffffffff"));
    rig.mux.add_foreign("hydralph-00000001", None);
    rig.mux.add_foreign("my-own-session", None);
    let report = orch.prune_with(PruneOptions::default()).expect("prune");
    assert_eq!(report.orphans.tmux_sessions, std::slice::from_ref(&mine));
    assert_eq!(report.orphans.untagged_sessions, ["hydralph-00000001"]);
    let names = rig.mux.names();
    assert!(!names.contains(&mine), "our orphan is ended");
    assert!(
        names.contains(&"hydralph-deadbeef".to_owned()),
        "another project's is invisible"
    );
    assert!(
        names.contains(&"hydralph-00000001".to_owned()),
        "an untagged one is only reported"
    );
    assert!(names.contains(&"my-own-session".to_owned()));
    let forced = orch
        .prune_with(PruneOptions {
            force: true,
            ..PruneOptions::default()
        })
        .expect("prune --force");
    assert!(forced.forced);
    assert!(!rig.mux.names().contains(&"hydralph-00000001".to_owned()));
    assert!(rig.mux.names().contains(&"hydralph-deadbeef".to_owned()));
}

#[test]
fn records_on_another_server_are_judged_on_that_server_never_failed_from_here() {
    let rig = Rig::new();
    let id = rig.spawn();
    // A command that uses another server and cannot reach the session's.
    let other = Arc::new(FakeMultiplexer::on(orch_core::MuxServer::Name("other".into())));
    let elsewhere = rig.builder().multiplexer(other.clone()).build().expect("build");
    rig.clock.advance(Duration::from_secs(7200));
    let st = elsewhere.try_list().expect("list");
    assert_eq!(st[0].state, SessionState::Starting, "unknown, not failed or killed");
    // With a way to reach it, it is judged there.
    let mux = rig.mux.clone();
    let reaching = rig
        .builder()
        .multiplexer(other)
        .multiplexer_factory(move |_| Some(mux.clone() as Arc<dyn Multiplexer>))
        .build()
        .expect("build");
    assert_eq!(reaching.health_check().expect("health"), vec![id]);
}

#[test]
fn status_of_one_session_probes_one_session_and_takes_no_snapshot() {
    let rig = Rig::new();
    let id = rig.spawn();
    let orch = rig.orch();
    let snapshots = rig.mux.snapshot_calls();
    orch.status(&id).expect("status");
    orch.pause(&id).expect("pause");
    orch.resume(&id).expect("resume");
    assert_eq!(rig.mux.snapshot_calls(), snapshots, "no full snapshot for one session");
    assert_eq!(rig.mux.probe_calls(), 3);
}

#[test]
fn a_builder_refuses_settings_it_cannot_honour() {
    let rig = Rig::new();
    let err = Orchestrator::builder()
        .project(PROJECT)
        .multiplexer(rig.mux.clone())
        .tmux_socket("x")
        .host(rig.host.clone())
        .build()
        .expect_err("a socket with a custom multiplexer");
    assert!(matches!(err, Error::Builder(_)), "{err}");
    let err = Orchestrator::builder()
        .project(PROJECT)
        .bus(rig.bus.clone())
        .with_mail()
        .host(rig.host.clone())
        .build()
        .expect_err("a custom bus and hydra-mail");
    assert!(matches!(err, Error::Builder(_)), "{err}");
}

/// Once a look through tmux has named a session's pane program (pid and start time),
/// `status`, `pause` and `resume` read that process instead of asking tmux, and still ask tmux
/// whenever the process does not show the pane alive or its output could change the state.
#[test]
fn one_session_is_probed_through_its_process_and_through_tmux_when_that_is_not_enough() {
    use orch_core::{PaneProcess, ProcessInfo};
    let rig = Rig::new();
    let (id, name, pid) = rig.running_with_process(77);
    assert!(matches!(rig.state(&id), SessionState::Running { .. }));
    let known = PaneProcess { pid, start: 77 };
    assert_eq!(rig.orch().record(&id).expect("r").pane_process, Some(known));
    // Looks through tmux read the process table only for a pid they have not seen.
    let reads = rig.host.process_reads();
    rig.orch().refresh().expect("refresh");
    assert_eq!(
        rig.host.process_reads(),
        reads,
        "a known pane program is not read again"
    );

    let orch = rig.orch();
    let probes = rig.mux.probe_calls();
    orch.status(&id).expect("status");
    orch.pause(&id).expect("pause");
    orch.resume(&id).expect("resume");
    assert_eq!(rig.mux.probe_calls(), probes, "no tmux call while the process runs");
    // What the agent prints into its log is activity.
    rig.clock.advance(Duration::from_secs(60));
    rig.runtime.print_at(&id, "working\n", rig.clock.now());
    assert_eq!(orch.status(&id).expect("status").last_activity, rig.clock.now());
    assert_eq!(rig.mux.probe_calls(), probes);

    // Past the stuck threshold, the pane's output decides: tmux is asked (and its output
    // keeps the session running).
    rig.clock.advance(Duration::from_secs(16 * 60));
    rig.mux.touch(&name, rig.clock.now());
    assert!(matches!(
        orch.status(&id).expect("status").state,
        SessionState::Running { .. }
    ));
    assert_eq!(rig.mux.probe_calls(), probes + 1);
    orch.status(&id).expect("status");
    assert_eq!(
        rig.mux.probe_calls(),
        probes + 1,
        "the output it saw restarted the count"
    );

    // A program that lost its terminal (tmux closed the pane, and the program has not
    // ended yet or ignores the hang-up): tmux.
    rig.host.set_process(pid, ProcessInfo::new(77, false, false));
    orch.status(&id).expect("status");
    assert_eq!(rig.mux.probe_calls(), probes + 2);
    rig.host.set_process(pid, ProcessInfo::new(77, false, true));

    // A pid reused by another process: tmux.
    rig.host.set_process(pid, ProcessInfo::new(78, false, true));
    orch.status(&id).expect("status");
    assert_eq!(rig.mux.probe_calls(), probes + 3);
    rig.host.set_process(pid, ProcessInfo::new(77, false, true));

    // An exited loop not yet collected (a zombie): tmux, which tells how it ended.
    rig.host.set_process(pid, ProcessInfo::new(77, true, true));
    rig.mux.exit(&name, 3);
    let st = orch.status(&id).expect("status");
    assert_eq!(rig.mux.probe_calls(), probes + 4);
    assert_eq!(
        st.state,
        SessionState::Failed {
            reason: "agent loop exited with status 3 before reporting an end".into()
        }
    );
    assert_eq!(
        rig.orch().record(&id).expect("r").pane_process,
        None,
        "forgotten at the end"
    );
}

#[test]
fn a_session_whose_process_is_gone_is_judged_by_tmux() {
    let rig = Rig::new();
    let (id, name, pid) = rig.running_with_process(5);
    rig.orch().refresh().expect("refresh");
    // Killed from outside: the process is gone with its session.
    rig.host.end_process(pid);
    rig.mux.vanish(&name);
    let probes = rig.mux.probe_calls();
    let st = rig.orch().status(&id).expect("status");
    assert_eq!(rig.mux.probe_calls(), probes + 1);
    assert!(matches!(st.state, SessionState::Failed { .. }), "{:?}", st.state);
}
