//! Side by side with the hydra tools as they are: a `wt.toml` as `hydra-wt init` writes it,
//! a port registry edited behind our back (as `hydra-wt remove` does), `sys:registry` pulses
//! on the protocol-faithful test daemon, sessions recorded by the original CLI (no runtime
//! directory, on the default tmux server, their loop files in `<dir>/.hydra/ralph/`), and a
//! `--loop-script` session. Real git, real tmux, the real `hydra` binary.

use hydra_e2e::{git, wait_for, Project};
use orch_mail::test_daemon::TestDaemon;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const HYDRA: &str = env!("CARGO_BIN_EXE_hydra-under-test");

/// `.hydra/wt.toml` as `hydra-wt init` writes it: an env template nobody has written yet,
/// and worktrees in `../`.
const HYDRA_WT_INIT: &str = "[ports]\nrange_start = 3001\nrange_end = 3099\n\n[env]\ntemplate = \".env.template\"\noutput = \".env.local\"\n\n[worktrees]\ndirectory = \"../\"\n";

fn hydra(p: &Project, args: &[&str]) -> Output {
    p.hydra_cmd(HYDRA, args).env_remove("TMUX").output().expect("hydra")
}

#[track_caller]
fn ok(p: &Project, args: &[&str]) -> (String, String) {
    let out = hydra(p, args);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "hydra {args:?}: {stderr}");
    (stdout, stderr)
}

#[track_caller]
fn fails(p: &Project, args: &[&str]) -> String {
    let out = hydra(p, args);
    assert!(!out.status.success(), "hydra {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn sessions(p: &Project) -> Vec<Value> {
    serde_json::from_str(&ok(p, &["ls", "--all", "--json"]).0).expect("json")
}

fn session(p: &Project, id: &str) -> Value {
    sessions(p)
        .into_iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no session {id}"))
}

fn registry(root: &Path) -> serde_json::Map<String, Value> {
    std::fs::read_to_string(root.join(".hydra/wt-ports.json"))
        .ok()
        .map(|t| serde_json::from_str(&t).expect("registry"))
        .unwrap_or_default()
}

fn sleeper(p: &Project) -> String {
    p.agent("sleeper.sh", "cat > /dev/null; echo working; exec sleep 600")
        .to_string_lossy()
        .into_owned()
}

fn spawn(p: &Project, extra: &[&str]) -> (String, String) {
    let agent = sleeper(p);
    let mut args = vec![
        "spawn",
        "--agent",
        agent.as_str(),
        "--prd",
        "prd.json",
        "--max-duration",
        "10m",
    ];
    args.extend_from_slice(extra);
    let (out, err) = ok(p, &args);
    (out.trim().to_owned(), err)
}

/// The pulses of `channel` on the daemon, decoded.
fn pulses(daemon: &TestDaemon, channel: &str) -> Vec<Value> {
    daemon
        .history(channel)
        .iter()
        .map(|t| orch_mail::decode_pulse(t).expect("a pulse that decodes").data)
        .collect()
}

#[test]
fn a_wt_toml_from_hydra_wt_init_spawns_where_hydra_wt_looks_and_announces_on_sys_registry() {
    let p = Project::new();
    let daemon = TestDaemon::start(&p.dir.path().join("mail.sock")).expect("daemon");
    TestDaemon::write_config(&p.root, daemon.socket()).expect("config.toml");
    std::fs::write(p.root.join(".hydra/wt.toml"), HYDRA_WT_INIT).expect("wt.toml");
    let (id, err) = spawn(&p, &["--worktree"]);
    assert!(
        err.contains(".env.template") && err.contains("does not exist"),
        "the missing template is told, not fatal: {err}"
    );
    let branch = format!("hydralph/{id}");
    // hydra-wt's `<directory>/<branch>`, relative to the repository root.
    let path = p.root.parent().expect("parent").join(&branch);
    assert!(path.join("README.md").exists(), "worktree at {}", path.display());
    let listed = git(&p.root, &["worktree", "list", "--porcelain"]);
    assert!(listed.contains(&format!("worktree {}", path.display())), "{listed}");
    assert_eq!(registry(&p.root)[&branch], 3001);
    let s = session(&p, &id);
    assert_eq!(s["working_dir"], path.to_string_lossy().as_ref());
    assert_eq!(s["port"], 3001);

    let created = wait_for(20, "worktree_created on sys:registry", || {
        let v = pulses(&daemon, "sys:registry");
        (!v.is_empty()).then_some(v)
    });
    assert_eq!(
        created[0],
        serde_json::json!({"type": "worktree_created", "worktree": branch, "port": 3001, "path": path.to_string_lossy()}),
        "hydra-wt's fields, and no others"
    );

    let (out, _) = ok(&p, &["kill", &id]);
    assert!(out.contains("worktree removed"), "{out}");
    assert!(!path.exists());
    assert!(!registry(&p.root).contains_key(&branch));
    let all = wait_for(20, "worktree_removed on sys:registry", || {
        let v = pulses(&daemon, "sys:registry");
        (v.len() >= 2).then_some(v)
    });
    assert_eq!(
        all[1],
        serde_json::json!({"type": "worktree_removed", "worktree": branch})
    );
}

#[test]
fn a_registry_entry_removed_behind_our_back_is_reported_restored_and_its_port_never_handed_out() {
    let p = Project::new();
    let (a, _) = spawn(&p, &["--worktree", "--stories", "US-1"]);
    let branch_a = format!("hydralph/{a}");
    assert_eq!(registry(&p.root)[&branch_a], 3001);
    // `hydra-wt remove hydralph/<a>` cannot find our worktree where it looks and "cleans up"
    // the registry entry of a live session.
    std::fs::write(p.root.join(".hydra/wt-ports.json"), "{}\n").expect("entry removed");

    let (_, err) = ok(&p, &["prune", "--dry-run"]);
    assert!(
        err.contains(&branch_a) && err.contains("3001") && err.contains("lost"),
        "{err}"
    );
    assert!(registry(&p.root).is_empty(), "a dry run changes nothing");

    let (b, _) = spawn(&p, &["--worktree", "--stories", "US-2"]);
    assert_eq!(
        registry(&p.root)[&format!("hydralph/{b}")],
        3002,
        "the live session's port is not handed out again"
    );
    let (_, err) = ok(&p, &["ls"]);
    assert!(err.contains(&branch_a) && err.contains("held again"), "{err}");
    let reg = registry(&p.root);
    assert_eq!(reg[&branch_a], 3001, "restored");
    assert_eq!(session(&p, &b)["port"], 3002);
    let (_, err) = ok(&p, &["ls"]);
    assert!(!err.contains("registry"), "told once, when found: {err}");
}

/// A tmux "default" server private to one test: tmux puts its socket under `TMUX_TMPDIR`.
struct DefaultServer {
    tmpdir: PathBuf,
}

impl DefaultServer {
    fn new(p: &Project) -> Self {
        let tmpdir = p.dir.path().join("tmux-default");
        std::fs::create_dir_all(&tmpdir).expect("mkdir");
        DefaultServer { tmpdir }
    }

    fn tmux(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(args)
            .env("TMUX_TMPDIR", &self.tmpdir)
            .env_remove("TMUX")
            .output()
            .expect("tmux")
    }

    /// `hydra args` seeing this server as the default one.
    fn hydra(&self, p: &Project, args: &[&str]) -> Output {
        p.hydra_cmd(HYDRA, args)
            .env("TMUX_TMPDIR", &self.tmpdir)
            .env_remove("TMUX")
            .output()
            .expect("hydra")
    }
}

impl Drop for DefaultServer {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}

/// What the original CLI leaves for a session: its record (the seed's format: no state, no
/// runtime dir, no server), its loop files in `<dir>/.hydra/ralph/`, and a tmux session on
/// the default server whose shell runs a loop that obeys the `.pause` marker.
fn original_session(server: &DefaultServer, root: &Path, id: &str, dir: &Path, worktree: Option<(&str, u16)>) {
    let ralph = dir.join(".hydra/ralph");
    std::fs::create_dir_all(&ralph).expect("ralph dir");
    for (f, text) in [
        ("prd.json", hydra_e2e::PRD),
        ("prompt.md", "Work through prd.json.\n"),
        ("hydralph.sh", "#!/bin/bash\n"),
        ("progress.txt", "# Hydralph Progress Log\n"),
    ] {
        std::fs::write(ralph.join(f), text).expect("loop file");
    }
    let mut rec = serde_json::json!({
        "id": id,
        "tmux_session": format!("hydralph-{id}"),
        "prd_path": ralph.join("prd.json"),
        "max_iterations": 10,
        "max_duration_secs": 3600,
        "agent_cli": "claude",
        "working_dir": dir,
        "use_worktree": worktree.is_some(),
        "created_at": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() - 5,
    });
    if let Some((branch, port)) = worktree {
        rec["branch_name"] = branch.into();
        rec["worktree_path"] = dir.to_string_lossy().into_owned().into();
        rec["allocated_port"] = port.into();
    }
    let sessions = root.join(".hydra/orchestrator/sessions");
    std::fs::create_dir_all(&sessions).expect("sessions dir");
    std::fs::write(
        sessions.join(format!("{id}.json")),
        serde_json::to_string_pretty(&rec).expect("json"),
    )
    .expect("record");
    // The original types its commands into a shell; this loop stands for hydralph.sh.
    let name = format!("hydralph-{id}");
    let dir_s = dir.to_string_lossy();
    let out = server.tmux(&["new-session", "-d", "-s", &name, "-c", &dir_s, "bash --norc"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // It says when it starts to hold at the marker (a positive signal for the test to wait on).
    let loop_cmd = "while :; do if [ -e .hydra/ralph/.pause ]; then echo held >> .hydra/ralph/holds; while [ -e .hydra/ralph/.pause ]; do sleep 0.05; done; fi; echo tick >> .hydra/ralph/ticks; echo original-loop-output; sleep 0.1; done";
    let out = server.tmux(&["send-keys", "-t", &format!("={name}:"), "-l", loop_cmd]);
    assert!(out.status.success());
    server.tmux(&["send-keys", "-t", &format!("={name}:"), "Enter"]);
}

/// How many lines the stand-in original loop wrote to `.hydra/ralph/<file>` in `dir`.
fn lines_of(dir: &Path, file: &str) -> usize {
    std::fs::read_to_string(dir.join(".hydra/ralph").join(file))
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

fn ticks(dir: &Path) -> usize {
    lines_of(dir, "ticks")
}

#[test]
fn sessions_of_the_original_cli_are_read_paused_refused_and_killed_cleanly() {
    let p = Project::new();
    let server = DefaultServer::new(&p);
    let run = |args: &[&str]| server.hydra(&p, args);
    let okr = |args: &[&str]| {
        let out = run(args);
        assert!(
            out.status.success(),
            "hydra {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let failr = |args: &[&str]| {
        let out = run(args);
        assert!(!out.status.success(), "hydra {args:?} should fail");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let state = |id: &str| -> Value {
        let all: Vec<Value> = serde_json::from_str(&okr(&["ls", "--all", "--json"])).expect("json");
        all.into_iter().find(|s| s["id"] == id).expect("listed")
    };

    // A worktree session, as the original made it: `../hydralph/<id>` (hydra-wt's default
    // directory), its port in the registry, its loop's status naming it.
    let wt_id = "a1b2c3d4";
    let branch = format!("hydralph/{wt_id}");
    let wt_dir = p.root.parent().expect("parent").join(&branch);
    git(
        &p.root,
        &["worktree", "add", "-q", "-b", &branch, &wt_dir.to_string_lossy()],
    );
    std::fs::write(
        p.root.join(".hydra/wt-ports.json"),
        format!("{{\n  \"{branch}\": 3001\n}}\n"),
    )
    .expect("registry");
    original_session(&server, &p.root, wt_id, &wt_dir, Some((&branch, 3001)));
    std::fs::write(
        wt_dir.join(".hydra/ralph/status.json"),
        format!("{{\"session\":\"{wt_id}\",\"status\":\"running\",\"iteration\":2,\"max\":10,\"stories\":\"1/3\"}}"),
    )
    .expect("status");
    // Two sessions in the project root share one loop directory; its status names no one.
    let (b, c) = ("b2b2b2b2", "c3c3c3c3");
    original_session(&server, &p.root, b, &p.root, None);
    original_session(&server, &p.root, c, &p.root, None);
    std::fs::write(
        p.root.join(".hydra/ralph/status.json"),
        "{\"status\":\"running\",\"iteration\":5,\"max\":10,\"stories\":\"2/3\"}",
    )
    .expect("status");

    // Read as what they are: alive from tmux; the report only where it is theirs.
    let s = state(wt_id);
    assert_eq!(
        (s["state"].as_str(), s["iteration"].as_u64()),
        (Some("running"), Some(2)),
        "{s}"
    );
    assert_eq!(s["stories"], "1/3");
    assert_eq!(s["foreign"], true);
    for id in [b, c] {
        let s = state(id);
        assert_eq!(
            (s["state"].as_str(), s["iteration"].as_u64()),
            (Some("running"), Some(0)),
            "a shared status cannot be told apart: {s}"
        );
    }
    let text = okr(&["status", wt_id]);
    assert!(
        text.contains(&format!("{}", wt_dir.join(".hydra/ralph").display())),
        "{text}"
    );
    assert!(
        !text.contains("runtime dir  /"),
        "no runtime dir that does not exist: {text}"
    );

    // Pause and resume through the original's own marker, which its loop obeys.
    wait_for(20, "the original loop ticks", || (ticks(&wt_dir) > 0).then_some(()));
    let out = okr(&["pause", wt_id]);
    assert!(out.contains("pausing"), "{out}");
    assert!(wt_dir.join(".hydra/ralph/.pause").exists());
    assert_eq!(state(wt_id)["state"], "paused");
    wait_for(20, "the loop to hold at the marker", || {
        (lines_of(&wt_dir, "holds") > 0).then_some(())
    });
    let held = ticks(&wt_dir);
    assert_eq!(state(wt_id)["state"], "paused");
    assert_eq!(ticks(&wt_dir), held, "the loop holds while the marker is set");
    okr(&["resume", wt_id]);
    assert!(!wt_dir.join(".hydra/ralph/.pause").exists());
    assert_eq!(state(wt_id)["state"], "running");
    wait_for(20, "the loop goes on", || (ticks(&wt_dir) > held).then_some(()));
    let err = failr(&["resume", wt_id]);
    assert_eq!(err.matches("cannot resume").count(), 1, "said once: {err}");
    // A pause marker two live sessions obey is refused, saying why.
    let err = failr(&["pause", b]);
    assert!(
        err.contains("same pause marker") && err.contains(&p.root.display().to_string()),
        "{err}"
    );
    assert!(!p.root.join(".hydra/ralph/.pause").exists());
    let err = failr(&["pause", "--now", wt_id]);
    assert!(err.contains("without --now"), "{err}");

    // Messages: refused with what to do instead; nothing written where no loop reads it.
    for args in [["inject", wt_id, "hello"], ["inject", "--live", wt_id]] {
        let mut a: Vec<&str> = args.to_vec();
        if a.len() == 3 && a[1] == "--live" {
            a.push("hello");
        }
        let err = failr(&a);
        assert!(err.contains("prompt.md") && err.contains("hydra attach"), "{err}");
    }
    assert!(!wt_dir.join(".hydra/ralph/inject.md").exists());
    assert!(!wt_dir.join(".hydra/ralph/inject.d").exists());

    // Its output: the pane.
    let logs = okr(&["logs", wt_id]);
    assert!(logs.contains("original-loop-output"), "{logs}");

    // Kill: the loop files are the original tool's, not work; the clean worktree goes, its
    // port is freed, its branch stays, the iteration stays.
    let out = okr(&["kill", wt_id]);
    assert!(out.contains("worktree removed"), "{out}");
    assert!(!wt_dir.exists());
    assert!(registry(&p.root).is_empty());
    assert!(git(&p.root, &["branch", "--list"]).contains(&branch));
    let s = state(wt_id);
    assert_eq!(
        (s["state"].as_str(), s["iteration"].as_u64()),
        (Some("failed"), Some(2)),
        "{s}"
    );
    let alive = server.tmux(&["has-session", "-t", &format!("=hydralph-{wt_id}")]);
    assert!(!alive.status.success(), "its tmux session ended");
    for id in [b, c] {
        okr(&["kill", id]);
    }
}

#[test]
fn the_seeds_example_record_is_listed_and_its_end_told() {
    let p = Project::new();
    let server = DefaultServer::new(&p);
    let sessions = p.root.join(".hydra/orchestrator/sessions");
    std::fs::create_dir_all(&sessions).expect("sessions");
    std::fs::write(sessions.join("a1b2c3d4.json"), orch_core::testing::SEED_RECORD).expect("seed record");
    let out = server.hydra(&p, &["ls", "--all", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let all: Vec<Value> = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["id"], "a1b2c3d4");
    assert_eq!(all[0]["foreign"], true);
    // No tmux session of that name on the default server: it has ended.
    assert_eq!(all[0]["state"], "failed", "{}", all[0]);
    let out = server.hydra(&p, &["pause", "a1b2c3d4"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("already ended"), "{err}");
}

#[test]
fn a_loop_script_session_logs_what_it_prints_and_says_where_messages_can_go() {
    let p = Project::new();
    let script = p.agent(
        "external-loop.sh",
        "echo \"external loop iteration 1 for $HYDRALPH_SESSION_ID\"\nprintf '{\"session\":\"%s\",\"status\":\"running\",\"iteration\":1,\"max\":3}' \"$HYDRALPH_SESSION_ID\" > \"$HYDRALPH_STATUS\"\nread -r line\necho \"typed: $line\"\nsleep 600",
    );
    let (id, _) = spawn(&p, &["--loop-script", &script.to_string_lossy()]);
    let logs = wait_for(20, "the script's output in the log", || {
        let (out, _) = ok(&p, &["logs", &id]);
        out.contains("external loop iteration 1").then_some(out)
    });
    assert!(logs.contains(&id), "{logs}");
    let err = fails(&p, &["inject", &id, "hello"]);
    assert!(
        err.contains("does not read hydra's inbox") && err.contains("--live"),
        "{err}"
    );
    let (out, _) = ok(&p, &["inject", "--live", &id, "steer left"]);
    assert!(out.contains("typed"), "{out}");
    wait_for(20, "the typed line reached the script", || {
        let (out, _) = ok(&p, &["logs", &id]);
        out.contains("typed: steer left").then_some(())
    });
    wait_for(20, "iteration 1", || (session(&p, &id)["iteration"] == 1).then_some(()));
    ok(&p, &["kill", &id]);
    let s = session(&p, &id);
    assert_eq!(
        (s["state"].as_str(), s["iteration"].as_u64()),
        (Some("failed"), Some(1)),
        "{s}"
    );
}

#[test]
fn kill_keeps_the_iteration_and_a_long_message_is_marked_cut_on_the_bus() {
    let p = Project::new();
    let daemon = TestDaemon::start(&p.dir.path().join("mail.sock")).expect("daemon");
    TestDaemon::write_config(&p.root, daemon.socket()).expect("config.toml");
    let (id, _) = spawn(&p, &[]);
    wait_for(20, "iteration 1", || (session(&p, &id)["iteration"] == 1).then_some(()));
    let message = "m".repeat(12 * 1024);
    let mut cmd = p.hydra_cmd(HYDRA, &["inject", &id, "-"]);
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("hydra inject");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), message.as_bytes()).expect("write");
    assert!(child.wait().expect("wait").success());
    let injected = wait_for(20, "session:injected", || {
        pulses(&daemon, "session:injected").into_iter().next()
    });
    assert_eq!(injected["truncated"], true, "{injected}");
    assert_eq!(injected["bytes"], 12 * 1024);
    assert!(injected["message"].as_str().expect("text").len() < message.len());
    ok(&p, &["kill", &id]);
    assert_eq!(session(&p, &id)["iteration"], 1);
    let killed = wait_for(20, "session:killed", || {
        pulses(&daemon, "session:killed").into_iter().next()
    });
    assert_eq!(killed["iteration"], 1, "{killed}");
}
