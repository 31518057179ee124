//! Tests of the `hydra` binary as a user runs it: real tmux on a private socket per test, a
//! temp git project, the built-in demo agent.

mod support;

use std::path::PathBuf;
use std::process::Command;
use support::{wait_for, Env};

const PRD: &str =
    r#"{"title":"t","userStories":[{"id":"1","title":"a","passes":false},{"id":"2","title":"b","passes":false}]}"#;

#[test]
fn the_demo_shows_every_step_and_cleans_up() {
    let started = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_hydra"))
        .arg("demo")
        .output()
        .expect("demo");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    // Each step, in the order it happens.
    let steps = [
        "stories US-1, US-2 on branch hydralph/",
        "stories US-3, US-4 on branch hydralph/",
        "stories US-5, US-6 on branch hydralph/",
        "three sessions share prd.json's six stories",
        "(runaway): a session that thinks and never writes anything",
        "is paused at its checkpoint",
        "; it goes on with US-6",
        "is blocked: US-4 needs the staging key",
        "a message: \"The staging key is K-42\"",
        "its next prompt carries the message",
        "runaway: burning tokens without writing anything",
        "project PRD: 6/6 stories pass",
        "main holds all 6 stories' files",
        "summary: 3/3 sessions completed, 1 killed, PRD 6/6, 3/3 branches merged",
        "demo ok: every step happened; cleaned up",
    ];
    let mut from = 0;
    for step in steps {
        let at = text[from..]
            .find(step)
            .unwrap_or_else(|| panic!("missing or out of order: {step}\n{text}"));
        from += at;
    }
    assert_eq!(text.matches("merged hydralph/").count(), 3, "{text}");
    // Nothing is left: its directory and its tmux server are gone.
    let dir = text
        .lines()
        .next()
        .and_then(|l| l.rsplit_once(", in "))
        .map(|(_, d)| std::path::PathBuf::from(d))
        .expect("the demo names its directory");
    assert!(!dir.exists(), "{} left behind", dir.display());
    let socket = text
        .lines()
        .next()
        .and_then(|l| l.split("-L ").nth(1))
        .and_then(|r| r.split(',').next())
        .expect("socket");
    let ls = Command::new("tmux").args(["-L", socket, "ls"]).output().expect("tmux");
    assert!(!ls.status.success(), "the demo's tmux server is still up");
    println!("demo took {:?}", started.elapsed());
}

#[test]
fn spawn_ls_status_pause_resume_kill_prune() {
    let env = Env::new();
    std::fs::write(env.root().join("prd.json"), PRD).expect("prd");
    let id = env.spawn_demo(&["--max-iterations", "50"]);
    assert_eq!(id.len(), 8, "spawn prints the id alone: {id:?}");
    let ls = env.ls();
    assert_eq!(ls.len(), 1);
    for key in [
        "id",
        "state",
        "iteration",
        "stories",
        "reason",
        "tmux_session",
        "working_dir",
        "branch",
        "port",
        "age_secs",
        "last_activity",
    ] {
        assert!(ls[0].get(key).is_some(), "ls --json lacks {key}: {}", ls[0]);
    }
    let done = wait_for("completion", || {
        let st: serde_json::Value = serde_json::from_str(&env.ok(&["status", &id, "--json"])).ok()?;
        (st["state"] == "completed").then_some(st)
    });
    assert_eq!(done["iteration"], 2);
    let human = env.ok(&["ls", "--all"]);
    assert!(human.starts_with("ID") && human.contains("completed"), "{human}");
    let live = env.ok(&["ls"]);
    assert!(live.contains("1 ended session not shown"), "{live}");
    // A second session: pause, resume, kill.
    let id2 = env.spawn_demo(&["--max-iterations", "50"]);
    env.ok(&["pause", &id2]);
    assert!(env.ok(&["status", &id2]).contains("paus"));
    env.ok(&["resume", &id2]);
    let kill = env.hydra(&["kill", &id2, "--reason", "enough for today"]);
    let st: serde_json::Value = serde_json::from_str(&env.ok(&["status", &id2, "--json"])).expect("json");
    if kill.status.success() {
        assert_eq!(st["state"], "failed");
        assert_eq!(st["reason"], "enough for today");
    } else {
        // It finished first; killing an ended session is refused with a clear message.
        assert!(String::from_utf8_lossy(&kill.stderr).contains("already ended"));
    }
    let pruned = env.ok(&["prune", "--dry-run"]);
    assert!(pruned.contains(&id), "{pruned}");
    assert_eq!(env.ls().len(), 2, "dry run removes nothing");
    env.ok(&["gc"]);
    assert!(env.ls().is_empty());
}

#[test]
fn inject_reads_stdin_and_logs_show_output() {
    let env = Env::new();
    std::fs::write(env.root().join("prd.json"), PRD).expect("prd");
    let id = env.spawn_demo(&[]);
    // The loop waits 2 s (the CLI's default delay) after the first story, so the session is
    // still running when the message arrives, and the second iteration's prompt carries it.
    let out = env.hydra_stdin(&["inject", &id, "-"], "from stdin: it's $(not run)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("queued"));
    wait_for("completion", || {
        env.ok(&["status", &id, "--json"])
            .contains("\"completed\"")
            .then_some(())
    });
    let logs = env.ok(&["logs", &id, "--lines", "200"]);
    assert!(logs.contains("demo-agent: 2/2 stories pass"), "{logs}");
    assert!(
        logs.contains("demo-agent: read the operator's messages"),
        "the message never reached a prompt: {logs}"
    );
}

#[test]
fn usage_errors_exit_2_and_failures_exit_1_with_advice() {
    let env = Env::new();
    for args in [
        &["pause", "../x"][..],
        &["status", "A B"],
        &["spawn", "--max-duration", "-1h"],
        &["spawn", "--max-duration", "1h30"],
        &["frobnicate"],
    ] {
        let out = env.hydra(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = env.hydra(&["pause", "abcdef12"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("hydra ls --all"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = env.hydra(&["spawn", "--agent", "no-such-agent-xyz", "--prd", "missing.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("agent_cli"));
    let out = env.hydra(&["spawn", "--agent", "sh", "--max-duration", "99999999h"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("out of range"));
    // Nothing was created by the refused commands.
    assert!(!env.root().join(".hydra/orchestrator/sessions").exists() || env.ls().is_empty());
}

#[test]
fn ls_names_orphaned_tmux_sessions_on_stderr() {
    let env = Env::new();
    let tag = hydra_orchestrator::project_tag(&env.root().canonicalize().expect("canonical"));
    let tmux = |name: &str, tag: Option<&str>| {
        let mut c = Command::new("tmux");
        c.args(["-L", &env.socket, "new-session", "-d", "-s", name, "sleep", "60"]);
        if let Some(tag) = tag {
            c.args([";", "set-option", "-t", &format!("={name}:"), "@hydra_project", tag]);
        }
        assert!(c.status().expect("tmux").success());
    };
    tmux("hydralph-0aaaaaa0", Some(&tag));
    tmux("hydralph-0bbbbbb0", None);
    tmux("hydralph-0cccccc0", Some("ffffffffffffffff"));
    let out = env.hydra(&["ls"]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.contains("hydralph-0aaaaaa0"), "{err}");
    assert!(err.contains("hydralph-0bbbbbb0"), "{err}");
    assert!(
        !err.contains("hydralph-0cccccc0"),
        "another project's session is not ours to report: {err}"
    );
    let report = env.ok(&["prune"]);
    assert!(report.contains("orphaned tmux session hydralph-0aaaaaa0"), "{report}");
    let out = env.hydra(&["ls"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains("hydralph-0aaaaaa0"), "{err}");
    assert!(
        err.contains("hydralph-0bbbbbb0"),
        "the untagged one is kept without --force: {err}"
    );
}

#[test]
fn init_prepares_the_project() {
    let env = Env::new();
    env.ok(&["init"]);
    let prd = env.root().join(".hydra/ralph/prd.json");
    assert!(hydra_prd_ok(&prd));
    let exclude = std::fs::read_to_string(env.root().join(".git/info/exclude")).expect("exclude");
    assert!(exclude.contains(".hydra/"));
}

fn hydra_prd_ok(path: &PathBuf) -> bool {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).expect("prd")).expect("json");
    v["userStories"].as_array().is_some_and(|s| !s.is_empty())
}

#[test]
fn commands_deliver_their_events_to_a_live_daemon_before_exiting() {
    let env = Env::new();
    std::fs::write(env.root().join("prd.json"), PRD).expect("prd");
    let sock = env.root().join(".hydra/hydra.sock");
    orch_mail::test_daemon::TestDaemon::write_config(env.root(), &sock).expect("config");
    let daemon = orch_mail::test_daemon::TestDaemon::start(&sock).expect("daemon");
    let id = env.spawn_demo(&["--max-iterations", "50"]);
    // Delivered by the time the command exited: no waiting here.
    let spawned = daemon.history("session:spawned");
    assert_eq!(spawned.len(), 1);
    assert!(spawned[0].contains(&id));
    let _ = env.hydra(&["pause", &id]);
    let out = env.hydra(&["monitor", "--once", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let line: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().next().expect("a line")).expect("json");
    assert_eq!(line["id"], id);
}

#[test]
fn a_reader_that_goes_away_ends_output_quietly() {
    let env = Env::new();
    std::fs::write(env.root().join("prd.json"), PRD).expect("prd");
    let id = env.spawn_demo(&["--max-iterations", "50"]);
    // `ls` writes its whole answer at once and goes on; other commands end as `print!` finds
    // the pipe closed, with a shell's code for it.
    for (args, code) in [
        (&["ls", "--json"][..], 0),
        (&["ls", "--all"][..], 0),
        (&["ls", "-q"][..], 0),
        (&["status", &id][..], 141),
    ] {
        // A pipe whose reader is gone before hydra writes: `hydra ls | head -c0`.
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let out = Command::new(env!("CARGO_BIN_EXE_hydra"))
            .args(args)
            .args(["--project", env.root().to_str().expect("utf8")])
            .args(["--tmux-socket", &env.socket])
            .env("XDG_STATE_HOME", env.state())
            .stdout(writer)
            .output()
            .expect("hydra");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "hydra {args:?}: {err}");
        assert_eq!(out.status.code(), Some(code), "hydra {args:?}: {err}");
    }
    env.ok(&["kill", &id]);
}
