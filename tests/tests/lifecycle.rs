//! End-to-end lifecycle of hydra-orchestrator with real tmux (a private server per test), real
//! git, real agent processes, and the hydra-mail test daemon where events are counted.

use hydra_e2e::{git, group_alive, report, wait_for, wait_state, Project};
use hydra_orchestrator::adapters::MailBus;
use hydra_orchestrator::{Multiplexer, PauseMode, SessionConfig, SessionState};
use orch_mail::test_daemon::TestDaemon;
use std::sync::Arc;
use std::time::Duration;

fn demo_agent() -> String {
    env!("CARGO_BIN_EXE_hydra-test-agent").to_owned()
}

#[test]
fn three_demo_sessions_complete_with_the_right_iteration_counts() {
    let p = Project::new();
    let orch = p.orch();
    let ids: Vec<_> = (0..3)
        .map(|_| {
            orch.spawn(SessionConfig {
                agent_cli: demo_agent(),
                ..p.config(std::path::Path::new("/"))
            })
            .expect("spawn")
        })
        .collect();
    for id in &ids {
        let st = wait_state(&orch, id, 60, "completion", |s| s.is_terminal());
        assert_eq!(st, SessionState::Completed { iterations: 3 }, "{id}");
        // Each session worked on its own copy of the PRD.
        let prd = std::fs::read_to_string(orch.runtime_layout(id).prd()).expect("prd copy");
        assert_eq!(prd.matches("\"passes\": true").count(), 3);
    }
    // The user's PRD is untouched, and no tmux session outlives its loop.
    assert!(!std::fs::read_to_string(p.root.join("prd.json"))
        .expect("prd")
        .contains("true"));
    wait_for(10, "ended panes reaped", || {
        p.tmux()
            .snapshot()
            .expect("snapshot")
            .sessions()
            .is_empty()
            .then_some(())
    });
}

#[test]
fn blocked_agent_gets_a_message_and_completes_after_resume() {
    let p = Project::new();
    let agent = p.agent(
        "blocker.sh",
        r#"input=$(cat); printf '%s\n=====END=====\n' "$input" >> prompts.log
if [[ $input == *"use the staging key"* ]]; then echo done; echo "<promise>COMPLETE</promise>"; else echo "I need a key"; echo "<promise>BLOCKED</promise>"; fi"#,
    );
    let orch = p.orch();
    let id = orch.spawn(p.config(&agent)).expect("spawn");
    let st = wait_state(&orch, &id, 20, "blocked", |s| matches!(s, SessionState::Blocked { .. }));
    assert!(matches!(st, SessionState::Blocked { iteration: 1, .. }));
    orch.inject(&id, "use the staging key").expect("inject");
    orch.resume(&id).expect("resume");
    let st = wait_state(&orch, &id, 20, "completion", |s| s.is_terminal());
    assert_eq!(
        st,
        SessionState::Completed { iterations: 1 },
        "restarted where it blocked"
    );
    let prompts = std::fs::read_to_string(p.root.join("prompts.log")).expect("prompts");
    let last = prompts
        .split("\n=====END=====\n")
        .filter(|s| !s.trim().is_empty())
        .last()
        .expect("a prompt");
    assert!(last.starts_with("## Messages from your operator"), "{last}");
    assert!(last.contains("use the staging key"));
    assert!(
        std::fs::read_dir(orch.runtime_layout(&id).inbox())
            .expect("inbox")
            .next()
            .is_none(),
        "queue cleared"
    );
}

#[test]
fn queued_messages_are_counted_from_the_first_until_the_loop_takes_them() {
    // A refresh of every session counts an inbox only while its record says it may hold
    // messages: queueing one must say so, and the count must follow the inbox both ways.
    let p = Project::new();
    let agent = p.agent("sleeper.sh", "cat > /dev/null; touch agent-started; sleep 60");
    let orch = p.orch();
    let id = orch.spawn(p.config(&agent)).expect("spawn");
    // The agent runs once its prompt is built, so from here on the loop takes no message
    // before its next iteration (a minute away); `Running` alone is written before the prompt.
    let started = p.root.join("agent-started");
    wait_for(20, "the agent", || started.exists().then_some(()));
    let queued = || {
        orch.try_list()
            .expect("list")
            .into_iter()
            .find(|s| s.id == id)
            .expect("listed")
            .queued
    };
    assert_eq!(queued(), 0);
    orch.inject(&id, "first").expect("inject");
    assert_eq!(queued(), 1, "the first message is counted");
    orch.inject(&id, "second").expect("inject");
    assert_eq!(queued(), 2);
    // The loop takes them into its next prompt; here they are removed as it would.
    let inbox = orch.runtime_layout(&id).inbox();
    for entry in std::fs::read_dir(&inbox).expect("inbox") {
        std::fs::remove_file(entry.expect("entry").path()).expect("remove");
    }
    assert_eq!(queued(), 0, "taken: none left");
    orch.inject(&id, "third").expect("inject");
    assert_eq!(queued(), 1, "counted again after the inbox was seen empty");
    orch.kill(&id, "test over").expect("kill");
}

#[test]
fn checkpoint_pause_holds_the_loop_and_resume_continues() {
    let p = Project::new();
    let agent = p.agent("ticker.sh", "cat > /dev/null; echo tick");
    let orch = p.orch();
    let id = orch
        .spawn(SessionConfig {
            max_iterations: 10_000,
            ..p.config(&agent)
        })
        .expect("spawn");
    // A second session keeps time: the negative check below waits on its progress, a
    // positive signal, instead of sleeping.
    let metronome = orch
        .spawn(SessionConfig {
            max_iterations: 10_000,
            ..p.config(&agent)
        })
        .expect("metronome");
    wait_state(&orch, &id, 20, "iteration 2", |s| s.iteration() >= 2);
    orch.pause(&id).expect("pause");
    let rt = orch.runtime_layout(&id);
    let held = wait_for(20, "loop reports paused", || {
        report(&rt)
            .filter(|s| s.phase == orch_core::LoopPhase::Paused)
            .map(|s| s.iteration)
    });
    let beat = report(&orch.runtime_layout(&metronome)).map_or(0, |r| r.iteration);
    wait_for(20, "the metronome moves on by three iterations", || {
        (report(&orch.runtime_layout(&metronome))?.iteration >= beat + 3).then_some(())
    });
    assert_eq!(
        report(&rt).expect("status").iteration,
        held,
        "no iteration while paused"
    );
    assert!(matches!(
        orch.status(&id).expect("status").state,
        SessionState::Paused { .. }
    ));
    orch.resume(&id).expect("resume");
    wait_state(
        &orch,
        &id,
        20,
        "progress after resume",
        |s| matches!(s, SessionState::Running { iteration, .. } if *iteration > held),
    );
}

/// Also a regression test: freezing the whole process group was undone at once by tmux, which
/// sends SIGCONT to a pane whose own process stops.
#[test]
fn freeze_stops_a_busy_agent_at_once_and_resume_restarts_it() {
    let p = Project::new();
    let agent = p.agent(
        "busy.sh",
        "cat > /dev/null; while true; do echo x >> \"ticks-$HYDRALPH_SESSION_ID\"; sleep 0.02; done",
    );
    let orch = p.orch();
    // Two busy agents, each ticking into its own file; the second is never frozen, so its
    // ticks are the positive signal that time went by.
    let id = orch.spawn(p.config(&agent)).expect("spawn");
    let metronome = orch.spawn(p.config(&agent)).expect("metronome");
    let ticks = format!("ticks-{id}");
    let beats = format!("ticks-{metronome}");
    let size = |name: &str| std::fs::metadata(p.root.join(name)).map(|m| m.len()).unwrap_or(0);
    wait_for(20, "agent busy", || (size(&ticks) > 10).then_some(()));
    orch.pause_with(&id, PauseMode::Freeze).expect("freeze");
    let beat = size(&beats);
    wait_for(20, "five metronome ticks", || (size(&beats) >= beat + 10).then_some(()));
    let frozen = size(&ticks);
    let beat = size(&beats);
    wait_for(20, "twenty more metronome ticks", || {
        (size(&beats) >= beat + 40).then_some(())
    });
    assert_eq!(size(&ticks), frozen, "output went on while frozen");
    assert!(orch.record(&id).expect("record").frozen);
    orch.resume(&id).expect("resume");
    wait_for(20, "output after resume", || (size(&ticks) > frozen).then_some(()));
    assert!(!orch.record(&id).expect("record").frozen);
    // Kill of a frozen session leaves no stopped group behind.
    orch.pause_with(&id, PauseMode::Freeze).expect("freeze again");
    let pid = p
        .tmux()
        .snapshot()
        .expect("snapshot")
        .get(&id.tmux_name())
        .and_then(|s| s.pane_pid)
        .expect("pid");
    orch.kill(&id, "done").expect("kill");
    wait_for(10, "group gone", || (!group_alive(pid)).then_some(()));
}

#[test]
fn kill_ends_everything_keeps_the_record_and_prune_removes_it() {
    let p = Project::new();
    let agent = p.agent("busy.sh", "cat > /dev/null; while true; do sleep 0.05; done");
    let orch = p.orch();
    let id = orch.spawn(p.config(&agent)).expect("spawn");
    let pid = wait_for(10, "pane", || p.tmux().snapshot().ok()?.get(&id.tmux_name())?.pane_pid);
    orch.kill(&id, "Task completed").expect("kill");
    assert_eq!(
        orch.status(&id).expect("status").state,
        SessionState::Failed {
            reason: "Task completed".into()
        }
    );
    assert!(p.tmux().snapshot().expect("snapshot").get(&id.tmux_name()).is_none());
    wait_for(10, "processes gone", || (!group_alive(pid)).then_some(()));
    assert!(orch.record(&id).is_ok(), "record kept");
    let report = orch.prune(false).expect("prune");
    assert_eq!(report.removed_sessions, vec![id.clone()]);
    assert!(orch.record(&id).is_err());
    assert!(!orch.runtime_layout(&id).dir().exists());
}

#[test]
fn duration_limit_is_enforced_by_health_check() {
    let p = Project::new();
    let agent = p.agent("sleeper.sh", "cat > /dev/null; sleep 600");
    let orch = p.orch();
    let id = orch
        .spawn(SessionConfig {
            max_duration: Duration::from_secs(2),
            ..p.config(&agent)
        })
        .expect("spawn");
    let killed = wait_for(15, "duration kill", || {
        let k = orch.health_check().expect("health");
        (!k.is_empty()).then_some(k)
    });
    assert_eq!(killed, vec![id.clone()]);
    assert_eq!(
        orch.status(&id).expect("status").state,
        SessionState::Failed {
            reason: "duration limit exceeded".into()
        }
    );
    assert!(p.tmux().snapshot().expect("snapshot").get(&id.tmux_name()).is_none());
}

#[test]
fn a_silent_agent_goes_stuck_once_and_recovers_when_it_prints() {
    let p = Project::new();
    let daemon = TestDaemon::start(&p.dir.path().join("mail.sock")).expect("daemon");
    let agent = p.agent(
        "silent.sh",
        "cat > /dev/null; while [ ! -e go ]; do sleep 0.1; done; while true; do echo alive; sleep 0.2; done",
    );
    let orch = hydra_orchestrator::Builder::from_env()
        .project(&p.root)
        .tmux_socket(p.socket.clone())
        .bus(Arc::new(MailBus::new(daemon.socket())))
        .build()
        .expect("orchestrator");
    let id = orch
        .spawn(SessionConfig {
            stuck_after: Duration::from_secs(2),
            ..p.config(&agent)
        })
        .expect("spawn");
    wait_for(20, "stuck", || {
        orch.health_check().expect("health");
        matches!(orch.record(&id).ok()?.state, SessionState::Stuck { .. }).then_some(())
    });
    for _ in 0..5 {
        orch.health_check().expect("health");
    }
    orch.flush_events(Duration::from_secs(5)).expect("flush");
    assert_eq!(daemon.history("session:stuck").len(), 1, "stuck reported exactly once");
    std::fs::write(p.root.join("go"), "").expect("go");
    wait_for(20, "running again", || {
        orch.health_check().expect("health");
        matches!(orch.record(&id).ok()?.state, SessionState::Running { .. }).then_some(())
    });
    orch.flush_events(Duration::from_secs(5)).expect("flush");
    assert_eq!(daemon.history("session:unstuck").len(), 1);
    assert_eq!(daemon.history("session:spawned").len(), 1);
}

#[test]
fn a_tmux_session_killed_from_outside_turns_failed() {
    let p = Project::new();
    let agent = p.agent("sleeper.sh", "cat > /dev/null; sleep 600");
    let orch = p.orch();
    let id = orch.spawn(p.config(&agent)).expect("spawn");
    p.tmux().kill(&id.tmux_name()).expect("kill from outside");
    assert_eq!(
        orch.status(&id).expect("status").state,
        SessionState::Failed {
            reason: "tmux session ended unexpectedly".into()
        }
    );
}

#[test]
fn a_loop_killed_by_a_signal_turns_failed_naming_the_signal() {
    let p = Project::new();
    let agent = p.agent("sleeper.sh", "cat > /dev/null; sleep 600");
    let orch = p.orch();
    let id = orch.spawn(p.config(&agent)).expect("spawn");
    let pid = p
        .tmux()
        .probe(&id.tmux_name())
        .expect("probe")
        .and_then(|pane| pane.pane_pid)
        .expect("the loop's pid");
    assert!(std::process::Command::new("kill")
        .args(["-s", "KILL", &pid.to_string()])
        .status()
        .expect("kill")
        .success());
    let st = wait_state(&orch, &id, 20, "failed", |s| s.is_terminal());
    assert_eq!(
        st,
        SessionState::Failed {
            reason: "agent loop was killed by signal 9 before reporting an end".into()
        }
    );
    // Its agent, left behind in the loop's process group, is ended with the session.
    wait_for(10, "the agent ended", || (!group_alive(pid)).then_some(()));
}

/// After one look through tmux has named each pane's program, `status`, `pause` and `resume`
/// of one session read its process instead of asking tmux (every tmux command costs
/// milliseconds on a large server); a session killed from outside and a loop killed by a
/// signal are still judged as before, through tmux, once their program is gone.
#[test]
fn one_session_is_probed_through_its_process_and_its_end_still_told() {
    use hydra_orchestrator::adapters::{Tmux, TmuxConfig};
    let p = Project::new();
    let agent = p.agent("sleeper.sh", "cat > /dev/null; sleep 600");
    let tmux = Arc::new(Tmux::new(TmuxConfig::with_socket_name(&p.socket)));
    let orch = hydra_orchestrator::Builder::from_env()
        .project(&p.root)
        .multiplexer(tmux.clone())
        .build()
        .expect("orchestrator");
    let a = orch.spawn(p.config(&agent)).expect("spawn a");
    let b = orch.spawn(p.config(&agent)).expect("spawn b");
    for id in [&a, &b] {
        wait_state(&orch, id, 20, "running", |s| matches!(s, SessionState::Running { .. }));
    }
    orch.refresh().expect("one look");
    for id in [&a, &b] {
        assert!(
            orch.record(id).expect("record").pane_process.is_some(),
            "named by the look"
        );
    }
    let calls = tmux.calls();
    assert!(matches!(
        orch.status(&a).expect("status").state,
        SessionState::Running { .. }
    ));
    orch.pause(&a).expect("pause");
    assert!(matches!(
        orch.status(&a).expect("status").state,
        SessionState::Paused { .. }
    ));
    orch.resume(&a).expect("resume");
    orch.pause_with(&b, PauseMode::Freeze).expect("freeze");
    assert!(orch.status(&b).expect("status").frozen);
    orch.resume(&b).expect("thaw");
    assert_eq!(tmux.calls(), calls, "no tmux command while the programs run");

    p.tmux().kill(&a.tmux_name()).expect("kill from outside");
    assert_eq!(
        orch.status(&a).expect("status").state,
        SessionState::Failed {
            reason: "tmux session ended unexpectedly".into()
        }
    );
    let pid = orch.record(&b).expect("record").pane_process.expect("known").pid;
    assert!(std::process::Command::new("kill")
        .args(["-s", "KILL", &pid.to_string()])
        .status()
        .expect("kill")
        .success());
    assert_eq!(
        wait_state(&orch, &b, 20, "failed", |s| s.is_terminal()),
        SessionState::Failed {
            reason: "agent loop was killed by signal 9 before reporting an end".into()
        }
    );
    assert!(tmux.calls() > calls, "the ends were judged through tmux");
}

#[test]
fn a_new_orchestrator_sees_every_session_in_the_same_state() {
    let p = Project::new();
    let agent = p.agent("sleeper.sh", "cat > /dev/null; echo working; sleep 600");
    let first = p.orch();
    let a = first.spawn(p.config(&agent)).expect("a");
    let b = first.spawn(p.config(&agent)).expect("b");
    let c = first.spawn(p.config(&agent)).expect("c");
    wait_state(&first, &a, 20, "running", |s| matches!(s, SessionState::Running { .. }));
    first.pause(&b).expect("pause");
    first.kill(&c, "no longer needed").expect("kill");
    let before: Vec<_> = first.list().into_iter().map(|s| (s.id, s.state)).collect();
    drop(first);
    let second = p.orch();
    let after: Vec<_> = second.list().into_iter().map(|s| (s.id, s.state)).collect();
    assert_eq!(before, after);
    assert_eq!(after.len(), 3);
}

#[test]
fn two_sessions_in_one_working_dir_never_share_files() {
    let p = Project::new();
    let agent = p.agent("ticker.sh", "cat > /dev/null; echo tick");
    let orch = p.orch();
    let a = orch
        .spawn(SessionConfig {
            max_iterations: 10_000,
            ..p.config(&agent)
        })
        .expect("a");
    let b = orch
        .spawn(SessionConfig {
            max_iterations: 10_000,
            ..p.config(&agent)
        })
        .expect("b");
    let (ra, rb) = (orch.runtime_layout(&a), orch.runtime_layout(&b));
    assert_ne!(ra.dir(), rb.dir());
    wait_state(&orch, &a, 20, "a running", |s| s.iteration() >= 1);
    orch.pause(&a).expect("pause a");
    assert!(ra.pause_marker().exists() && !rb.pause_marker().exists());
    let held = wait_for(20, "a paused", || {
        report(&ra)
            .filter(|s| s.phase == orch_core::LoopPhase::Paused)
            .map(|s| s.iteration)
    });
    let b_now = report(&rb).map(|s| s.iteration).unwrap_or(0);
    wait_for(20, "b keeps going", || {
        (report(&rb)?.iteration > b_now + 2).then_some(())
    });
    assert_eq!(report(&ra).expect("a status").iteration, held);
    assert_eq!(report(&ra).expect("a status").session.as_deref(), Some(a.as_str()));
    assert_eq!(report(&rb).expect("b status").session.as_deref(), Some(b.as_str()));
}

#[test]
fn worktree_sessions_get_their_own_worktree_and_port_and_kill_keeps_work() {
    let p = Project::new();
    let agent = p.agent(
        "pwd.sh",
        "cat > /dev/null; pwd > where.txt; echo \"$PORT\" > port.txt; sleep 600",
    );
    let orch = p.orch();
    let a = orch
        .spawn(SessionConfig {
            use_worktree: true,
            ..p.config(&agent)
        })
        .expect("a");
    let b = orch
        .spawn(SessionConfig {
            use_worktree: true,
            branch_name: Some("feature/b".into()),
            ..p.config(&agent)
        })
        .expect("b");
    let (ra, rb) = (orch.record(&a).expect("a"), orch.record(&b).expect("b"));
    let (wa, wb) = (
        ra.worktree_path.clone().expect("a path"),
        rb.worktree_path.clone().expect("b path"),
    );
    assert_ne!(wa, wb);
    assert_ne!(ra.allocated_port, rb.allocated_port);
    let port_a = wait_for(20, "agent a ran", || {
        std::fs::read_to_string(wa.join("port.txt"))
            .ok()
            .filter(|s| !s.trim().is_empty())
    });
    assert_eq!(port_a.trim(), ra.allocated_port.expect("port").to_string());
    assert_eq!(git(&wb, &["rev-parse", "--abbrev-ref", "HEAD"]).trim(), "feature/b");
    // b has work the user has not saved anywhere else: kill keeps its worktree.
    std::fs::write(wb.join("precious.rs"), "fn main() {}\n").expect("work");
    let report = orch.kill(&b, "stop").expect("kill b");
    assert!(report.worktree_kept.is_some(), "{report:?}");
    assert!(wb.join("precious.rs").exists());
    // a holds only the agent's scratch files, which are its work too: kept unless forced.
    let report = orch
        .kill_with(&a, "stop", hydra_orchestrator::KillOptions::forced())
        .expect("kill a");
    assert!(report.worktree_removed);
    assert!(!wa.exists());
    assert!(
        git(&p.root, &["branch", "--list"]).contains(&format!("hydralph/{a}")),
        "branch kept"
    );
}

#[test]
fn hostile_flags_and_messages_are_delivered_literally_and_never_run() {
    let p = Project::new();
    let agent = p.agent(
        "argv.sh",
        "printf '%s\\n' \"$@\" > args.txt; cat > stdin.txt; echo '<promise>BLOCKED</promise>'",
    );
    let orch = p.orch();
    let flags = "it's \"double\" $(touch pwned1) `touch pwned2` ; touch pwned3 && echo C-c";
    let id = orch
        .spawn(SessionConfig {
            agent_flags: flags.into(),
            ..p.config(&agent)
        })
        .expect("spawn");
    wait_state(&orch, &id, 20, "blocked", |s| matches!(s, SessionState::Blocked { .. }));
    let args = std::fs::read_to_string(p.root.join("args.txt")).expect("args");
    assert_eq!(
        args.lines().collect::<Vec<_>>(),
        flags.split_whitespace().collect::<Vec<_>>()
    );
    let message = "it's $(touch pwned4) `touch pwned5`; rm -rf / \nEnter C-c \u{1b}[31mred\u{1b}[0m";
    orch.inject(&id, message).expect("inject");
    orch.resume(&id).expect("resume");
    wait_for(20, "second prompt", || {
        std::fs::read_to_string(p.root.join("stdin.txt"))
            .ok()
            .filter(|s| s.contains("pwned4"))
    });
    assert!(std::fs::read_to_string(p.root.join("stdin.txt"))
        .expect("stdin")
        .contains(message));
    for n in 1..=5 {
        assert!(
            !p.root.join(format!("pwned{n}")).exists(),
            "pwned{n} was created: input was executed"
        );
    }
}
