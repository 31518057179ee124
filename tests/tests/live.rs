//! The live side, as a user meets it, on real tmux (private sockets), real processes and the
//! hydra-mail test daemon: `hydra monitor` tells transitions as they happen and notifies,
//! restarts without missing or repeating anything, runs once per project, in the foreground or
//! the background; `hydra logs --follow` streams and ends with the session; a bad hydra.toml is
//! refused naming the key.

use hydra_e2e::{wait_for, Project};
use hydra_orchestrator::Multiplexer;
use orch_mail::test_daemon::TestDaemon;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Instant;

const HYDRA: &str = env!("CARGO_BIN_EXE_hydra-under-test");

fn hydra(p: &Project, args: &[&str]) -> Output {
    p.hydra(HYDRA, args)
}

#[track_caller]
fn ok(p: &Project, args: &[&str]) -> String {
    p.hydra_ok(HYDRA, args)
}

#[track_caller]
fn spawn(p: &Project, agent: &std::path::Path) -> String {
    p.spawn_agent(HYDRA, agent, &[])
}

/// A project with `n` sessions of an agent that sleeps once it has read its prompt: their ids.
fn sleepers(n: usize) -> (Project, Vec<String>) {
    let p = Project::new();
    let agent = p.agent("sleeper.sh", "cat > /dev/null; echo working; exec sleep 600");
    let ids = (0..n).map(|_| spawn(&p, &agent)).collect();
    (p, ids)
}

/// A process whose stdout lines are gathered as they come.
struct Running {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Running {
    fn start(p: &Project, args: &[&str]) -> Running {
        Running::start_bin(p, HYDRA, args)
    }
    /// [`start`](Self::start) with the hydra executable at `bin`.
    fn start_bin(p: &Project, bin: &str, args: &[&str]) -> Running {
        let mut child = p
            .hydra_cmd(bin, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("hydra");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().expect("stdout");
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().expect("lines").push(line);
            }
        });
        Running { child, lines }
    }
    fn lines(&self) -> Vec<String> {
        self.lines.lock().expect("lines").clone()
    }
    #[track_caller]
    fn wait_line(&self, what: &str, f: impl Fn(&str) -> bool) -> String {
        wait_for(20, what, || self.lines().into_iter().find(|l| f(l)))
    }
    /// Ends it as `hydra monitor --stop` and Ctrl-C do (a signal it handles), and waits.
    fn stop(mut self) -> (Vec<String>, String) {
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success());
        let status = wait_for(20, "the monitor to end", || self.child.try_wait().ok().flatten());
        assert!(status.success(), "a stopped monitor exits 0: {status}");
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        (self.lines(), err)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_blocking_agent_is_told_on_the_bus_and_to_the_notification_command_at_once() {
    let p = Project::new();
    let daemon = TestDaemon::start(&p.dir.path().join("mail.sock")).expect("daemon");
    TestDaemon::write_config(&p.root, daemon.socket()).expect("config.toml");
    let captured = p.dir.path().join("notified.jsonl");
    let notifier = p.agent(
        "notify.sh",
        &format!("{{ cat; echo \" $HYDRA_EVENT\"; }} >> '{}'", captured.display()),
    );
    std::fs::write(
        p.root.join(".hydra/hydra.toml"),
        format!(
            "[notify]\ncommand = [{:?}]\ntmux = false\ndesktop = false\n",
            notifier.display()
        ),
    )
    .expect("hydra.toml");
    // The notification command runs nothing until trusted.
    let out = hydra(&p, &["monitor"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("hydra trust"));
    ok(&p, &["trust", "--yes"]);
    let agent = p.agent(
        "blocker.sh",
        "cat > /dev/null; while [ ! -e \"$HYDRALPH_SESSION_ID.go\" ]; do sleep 0.05; done; echo '<reason>needs the staging key</reason>'; echo '<promise>BLOCKED</promise>'",
    );
    let id = spawn(&p, &agent);
    let monitor = Running::start(&p, &["monitor"]);
    monitor.wait_line("the session first seen", |l| l.contains(&id));
    let started = Instant::now();
    std::fs::write(p.root.join(format!("{id}.go")), "").expect("go");
    let line = monitor.wait_line("blocked told", |l| l.contains(&id) && l.contains("blocked"));
    assert!(line.contains("needs the staging key"), "{line}");
    let json = wait_for(20, "the notification command ran", || {
        let text = std::fs::read_to_string(&captured).ok()?;
        text.ends_with(" session:blocked\n").then_some(text)
    });
    println!("blocked told and notified within {:?}", started.elapsed());
    // stdin: one JSON line (so `tee -a events.jsonl` makes JSON lines); then $HYDRA_EVENT.
    let lines: Vec<&str> = json.lines().collect();
    assert_eq!(lines.len(), 2, "{json}");
    assert_eq!(lines[1], " session:blocked");
    let event: serde_json::Value = serde_json::from_str(lines[0]).expect("json on stdin");
    assert_eq!(event["session"], id.as_str());
    assert_eq!(event["state"], "blocked");
    assert_eq!(event["reason"], "needs the staging key");
    wait_for(20, "session:blocked on hydra-mail", || {
        (!daemon.history("session:blocked").is_empty()).then_some(())
    });
    let (_, err) = monitor.stop();
    assert!(!err.contains("not delivered"), "hydra-mail is up: {err}");
}

#[test]
fn a_pane_killed_by_hand_is_told_failed() {
    let (p, ids) = sleepers(2);
    let (a, b) = (ids[0].clone(), ids[1].clone());
    let monitor = Running::start(&p, &["monitor"]);
    monitor.wait_line("a seen running", |l| l.contains(&a) && l.contains("running"));
    p.tmux().kill(&format!("hydralph-{a}")).expect("kill by hand");
    let line = monitor.wait_line("a failed", |l| l.contains(&a) && l.contains("failed"));
    assert!(line.contains("tmux session ended unexpectedly"), "{line}");
    assert!(!monitor.lines().iter().any(|l| l.contains(&b) && l.contains("failed")));
}

#[test]
fn a_restarted_monitor_misses_nothing_and_repeats_nothing() {
    let (p, ids) = sleepers(2);
    let (a, b) = (ids[0].clone(), ids[1].clone());
    let first = Running::start(&p, &["monitor"]);
    first.wait_line("a running", |l| l.contains(&a) && l.contains("running"));
    first.wait_line("b running", |l| l.contains(&b) && l.contains("running"));
    let (_, _) = first.stop();
    // While no monitor runs: a is paused.
    ok(&p, &["pause", &a, "--now"]);
    let second = Running::start(&p, &["monitor"]);
    second.wait_line("a's pause, missed by no one", |l| {
        l.contains(&a) && l.contains("paused")
    });
    // b changes now; its line proves the second monitor has looked past its first look.
    ok(&p, &["pause", &b, "--now"]);
    second.wait_line("b paused", |l| l.contains(&b) && l.contains("paused"));
    let lines = second.lines();
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("running") && !l.contains("running -> ")),
        "the restart repeated what was told before: {lines:?}"
    );
    assert_eq!(lines.iter().filter(|l| l.contains(&a)).count(), 1, "{lines:?}");
}

#[test]
fn one_monitor_per_project_in_the_background_and_stopped() {
    let p = Project::new();
    let agent = p.agent("sleeper.sh", "cat > /dev/null; exec sleep 600");
    let id = spawn(&p, &agent);
    let started = ok(&p, &["monitor", "--detach"]);
    assert!(started.contains("monitor started in the background"), "{started}");
    let pid = monitor_pid(&p).expect("pid file");
    let second = hydra(&p, &["monitor"]);
    assert_eq!(second.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&second.stderr).contains(&format!("already running for this project (pid {pid})")),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    wait_for(20, "the background monitor's log", || {
        let log = std::fs::read_to_string(p.root.join(".hydra/orchestrator/monitor.log")).ok()?;
        log.contains(&id).then_some(())
    });
    let stopped = ok(&p, &["monitor", "--stop"]);
    assert!(stopped.contains("monitor stopped"), "{stopped}");
    assert!(!hydra_e2e::group_alive(pid), "the monitor and its tmux waiter ended");
    // It also ends by itself once no live session is left.
    let third = Running::start(&p, &["monitor"]);
    let own = third.child.id().to_string();
    let mut third = third;
    wait_for(20, "the third monitor up", || {
        if let Ok(Some(status)) = third.child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = third.child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("the third monitor ended ({status}): {err}");
        }
        let pid = std::fs::read_to_string(p.root.join(".hydra/orchestrator/monitor.pid")).ok()?;
        (pid.trim() == own).then_some(())
    });
    ok(&p, &["kill", &id]);
    third.wait_line("exits when nothing is live", |l| l.contains("no live session left"));
    let code = wait_for(20, "the monitor exits", || third.child.try_wait().ok().flatten());
    assert!(code.success());
}

#[test]
fn logs_follow_streams_what_the_agent_prints_and_ends_with_the_session() {
    let p = Project::new();
    let agent = p.agent(
        "talker.sh",
        "cat > /dev/null; echo 'first line'; while [ ! -e \"$HYDRALPH_SESSION_ID.go\" ]; do sleep 0.05; done; echo '<promise>COMPLETE</promise>'",
    );
    let id = spawn(&p, &agent);
    let follow = Running::start(&p, &["logs", &id, "--follow"]);
    follow.wait_line("a line printed before the iteration ended", |l| l == "first line");
    std::fs::write(p.root.join(format!("{id}.go")), "").expect("go");
    let mut follow = follow;
    let status = wait_for(20, "logs --follow ends with the session", || {
        follow.child.try_wait().ok().flatten()
    });
    assert!(status.success());
    assert!(follow.lines().iter().any(|l| l.contains("<promise>COMPLETE</promise>")));
    // A session that has printed nothing says so.
    let quiet = p.agent("quiet.sh", "cat > /dev/null; exec sleep 600");
    let q = spawn(&p, &quiet);
    let out = hydra(&p, &["logs", &q]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("printed nothing yet"));
}

#[test]
fn a_bad_hydra_toml_is_refused_naming_the_key() {
    let p = Project::new();
    std::fs::write(p.root.join(".hydra/hydra.toml"), "[spawn]\nagnet = \"claude\"\n").expect("write");
    let out = hydra(&p, &["ls"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("spawn.agnet") || err.contains("agnet"), "{err}");
    assert!(err.contains(".hydra/hydra.toml") && err.contains("line 2"), "{err}");
    std::fs::write(p.root.join(".hydra/hydra.toml"), "[health]\nstuck_after = \"soon\"\n").expect("write");
    let err = String::from_utf8_lossy(&hydra(&p, &["ls"]).stderr).into_owned();
    assert!(err.contains("health.stuck_after") && err.contains("4h, 30m"), "{err}");
}

#[test]
fn the_config_says_where_each_value_comes_from() {
    let p = Project::new();
    std::fs::write(
        p.root.join(".hydra/hydra.toml"),
        "[spawn]\nmax_iterations = 33\n[notify]\ncommand = [\"notify-send\", \"hydra\"]\n",
    )
    .expect("write");
    let text = ok(&p, &["config"]);
    let line = |k: &str| text.lines().find(|l| l.starts_with(k)).unwrap_or_default().to_owned();
    assert!(
        line("spawn.max_iterations").contains("33") && line("spawn.max_iterations").ends_with(".hydra/hydra.toml"),
        "{text}"
    );
    assert!(line("spawn.max_duration").ends_with("default"), "{text}");
    assert!(text.contains("hydra.toml: not trusted"), "{text}");
    ok(&p, &["trust", "--yes"]);
    assert!(ok(&p, &["config"]).contains("hydra.toml: trusted"));
    let _ = p.tmux().snapshot();
}

/// The server's control-mode clients: `readonly session` of each.
fn control_clients(p: &Project) -> Vec<String> {
    let out = std::process::Command::new("tmux")
        .args(["-L", &p.socket, "list-clients", "-F"])
        .arg("#{client_control_mode} #{client_readonly} #{session_name}")
        .output()
        .expect("list-clients");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("1 ").map(str::to_owned))
        .collect()
}

#[test]
fn the_monitor_looks_through_one_read_only_control_client_and_ends_it() {
    let (p, ids) = sleepers(2);
    let (a, b) = (ids[0].clone(), ids[1].clone());
    ok(&p, &["ls"]);
    assert!(control_clients(&p).is_empty(), "a one-shot command keeps no client");
    let monitor = Running::start(&p, &["monitor"]);
    monitor.wait_line("a seen running", |l| l.contains(&a) && l.contains("running"));
    let client = wait_for(20, "the monitor's control client", || control_clients(&p).pop());
    let sessions = [format!("hydralph-{a}"), format!("hydralph-{b}")];
    assert!(
        sessions.iter().any(|s| client == format!("1 {s}")),
        "read-only, on a session of the project: {client}"
    );
    assert_eq!(control_clients(&p).len(), 1);
    // The session it is attached to ends: the monitor still tells, through a new client.
    let attached = client.trim_start_matches("1 hydralph-").to_owned();
    let other = if attached == a { &b } else { &a };
    p.tmux().kill(&format!("hydralph-{attached}")).expect("kill by hand");
    monitor.wait_line("the attached session failed", |l| {
        l.contains(&attached) && l.contains("failed")
    });
    ok(&p, &["pause", other, "--now"]);
    monitor.wait_line("the other paused", |l| {
        l.contains(other.as_str()) && l.contains("paused")
    });
    let (_, err) = monitor.stop();
    assert!(!err.contains("error"), "{err}");
    wait_for(20, "no client left behind", || {
        control_clients(&p).is_empty().then_some(())
    });
}

/// `hydra ls --json -v EXTRA` with `env` (free to ask the project's monitor unless `env` sets
/// `HYDRA_NO_MONITOR`): its sessions (without their age, which moves) and stderr.
fn ls_json(p: &Project, extra: &[&str], env: &[(&str, &str)]) -> (Vec<serde_json::Value>, String) {
    let args: Vec<&str> = ["ls", "--json", "-v"].iter().chain(extra).copied().collect();
    let mut cmd = p.hydra_cmd(HYDRA, &args);
    cmd.env_remove("HYDRA_NO_MONITOR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("hydra ls");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    let mut list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("ls --json");
    for s in &mut list {
        s.as_object_mut().expect("an object").remove("age_secs");
    }
    (list, err)
}

#[test]
fn ls_is_answered_by_the_running_monitor_with_a_new_look() {
    let (p, ids) = sleepers(2);
    let (a, b) = (ids[0].clone(), ids[1].clone());
    let socket = p.root.join(".hydra/orchestrator/monitor.sock");
    let monitor = Running::start(&p, &["monitor"]);
    monitor.wait_line("a seen running", |l| l.contains(&a) && l.contains("running"));
    wait_for(20, "the monitor's socket", || socket.exists().then_some(()));
    let pid = monitor.child.id();
    let (served, err) = ls_json(&p, &[], &[]);
    assert!(
        err.contains(&format!("answered by the project's monitor (pid {pid})")),
        "{err}"
    );
    let (local, err) = ls_json(&p, &[], &[("HYDRA_NO_MONITOR", "1")]);
    assert!(!err.contains("answered by"), "{err}");
    assert_eq!(served, local, "the monitor's answer is what ls finds itself");
    assert_eq!(served.len(), 2);
    // A change made by another process is in the next answer: each answer is a new look.
    ok(&p, &["pause", &a, "--now"]);
    ok(&p, &["kill", &b]);
    // Which sessions are shown is chosen as ls chooses them.
    for extra in [
        &[][..],
        &["--all"],
        &["--state", "paused"],
        &["--state", "running,failed"],
    ] {
        let (served, err) = ls_json(&p, extra, &[]);
        assert!(err.contains("answered by the project's monitor"), "{err}");
        let (local, _) = ls_json(&p, extra, &[("HYDRA_NO_MONITOR", "1")]);
        assert_eq!(served, local, "ls --json {extra:?}");
    }
    let (served, err) = ls_json(&p, &["--all"], &[]);
    assert!(err.contains("answered by the project's monitor"), "{err}");
    let state = |id: &str| {
        served
            .iter()
            .find(|s| s["id"] == id)
            .map(|s| s["state"].as_str().unwrap_or_default().to_owned())
    };
    assert_eq!(state(&a).as_deref(), Some("paused"));
    assert_eq!(state(&b).as_deref(), Some("failed"));
    // The text form comes from the same answer.
    let text = ok(&p, &["ls"]);
    assert!(
        text.contains(&a) && !text.contains(&b) && text.contains("1 ended session not shown"),
        "{text}"
    );
    let (_, err) = monitor.stop();
    assert!(!err.contains("cannot ask"), "{err}");
    assert!(!socket.exists(), "the socket goes with the monitor");
}

#[test]
fn a_stopped_monitor_is_not_waited_for() {
    let (p, ids) = sleepers(1);
    let socket = p.root.join(".hydra/orchestrator/monitor.sock");
    let monitor = Running::start(&p, &["monitor"]);
    monitor.wait_line("the session seen", |l| l.contains(&ids[0]));
    wait_for(20, "the monitor's socket", || socket.exists().then_some(()));
    let pid = monitor.child.id().to_string();
    let signal = |sig: &str| {
        let sent = std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .expect("kill");
        assert!(sent.success(), "kill {sig}");
    };
    // Stopped (SIGSTOP: as a debugger or a shell's job control leaves it), its socket still
    // accepts and it does no work: ls does not wait out the answer's 10 s, and looks itself.
    signal("-STOP");
    let (list, err) = ls_json(&p, &[], &[]);
    signal("-CONT");
    assert!(list.len() == 1 && list[0]["id"] == ids[0].as_str(), "{list:?}");
    assert!(
        err.contains("no answer from the project's monitor (it did no work for 1 s: stopped or stuck)"),
        "{err}"
    );
    // Running again, it answers the next ls (its answer to the departed one goes nowhere).
    let (_, err) = ls_json(&p, &[], &[]);
    assert!(
        err.contains(&format!("answered by the project's monitor (pid {pid})")),
        "{err}"
    );
    let (_, err) = monitor.stop();
    assert!(!err.contains("panicked"), "{err}");
}

/// Another hydra build, as after an upgrade replaced the executable under a running monitor:
/// the same program at another path (copied by `cp`, never opened for writing here, which a
/// parallel test's fork could inherit: "Text file busy"). Its path.
fn another_build(p: &Project) -> String {
    let old = p.dir.path().join("hydra-before-the-upgrade");
    assert!(std::process::Command::new("cp")
        .arg(HYDRA)
        .arg(&old)
        .status()
        .expect("cp")
        .success());
    old.to_str().expect("utf-8 path").to_owned()
}

#[test]
fn ls_looks_itself_when_no_monitor_can_answer() {
    use std::io::{BufRead, Write};
    use std::os::unix::net::UnixListener;
    let (p, ids) = sleepers(1);
    let a = ids[0].clone();
    let socket = p.root.join(".hydra/orchestrator/monitor.sock");
    let listed = |list: &[serde_json::Value]| list.len() == 1 && list[0]["id"] == a.as_str();
    // A socket nobody listens on (what a monitor killed with SIGKILL leaves).
    drop(UnixListener::bind(&socket).expect("bind"));
    let (list, err) = ls_json(&p, &[], &[]);
    assert!(listed(&list) && !err.contains("answered by"), "{err}");
    std::fs::remove_file(&socket).expect("rm");
    // Something that answers what is not an answer.
    let listener = UnixListener::bind(&socket).expect("bind");
    let server = std::thread::spawn(move || {
        let (conn, _) = listener.accept().expect("accept");
        let mut line = String::new();
        std::io::BufReader::new(&conn).read_line(&mut line).expect("request");
        (&conn).write_all(b"not an answer\n").expect("reply");
        line
    });
    let (list, err) = ls_json(&p, &[], &[]);
    let request = server.join().expect("the fake monitor");
    assert!(request.contains("\"protocol\":2"), "{request}");
    assert!(listed(&list), "{list:?}");
    assert!(err.contains("no answer from the project's monitor"), "{err}");
    std::fs::remove_file(&socket).expect("rm");
    // A real monitor refuses a look at another tmux server than its own.
    let monitor = Running::start(&p, &["monitor"]);
    monitor.wait_line("a seen running", |l| l.contains(&a) && l.contains("running"));
    wait_for(20, "the monitor's socket", || socket.exists().then_some(()));
    let out = std::process::Command::new(HYDRA)
        .args(["ls", "--json", "-v", "--project"])
        .arg(&p.root)
        .args(["--tmux-socket", "hydra-e2e-another-server"])
        .env_remove("HYDRA_TMUX_SOCKET")
        .env_remove("HYDRA_TRUST_ALL")
        .env("XDG_STATE_HOME", p.dir.path().join("state"))
        .output()
        .expect("hydra ls");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("did not answer (this monitor watches tmux server -L"),
        "{err}"
    );
    let _ = monitor.stop();
    // A monitor of another build, as after an upgrade replaced the executable under it.
    let old = another_build(&p);
    assert!(!socket.exists(), "the stopped monitor's socket is gone");
    let monitor = Running::start_bin(&p, &old, &["monitor"]);
    wait_for(20, "the other build's socket", || socket.exists().then_some(()));
    let (list, err) = ls_json(&p, &[], &[]);
    assert!(listed(&list), "{list:?}");
    assert!(
        err.contains("did not answer (this monitor is another hydra build"),
        "{err}"
    );
    let _ = monitor.stop();
}

#[test]
fn ls_says_when_no_monitor_watches_live_sessions() {
    // Spawned as the suite spawns (HYDRA_NO_MONITOR=1): no monitor runs.
    let (p, ids) = sleepers(2);
    let notice = "no monitor watches this project's 2 live sessions: their duration and stuck limits";
    let (list, err) = ls_json(&p, &[], &[]);
    assert_eq!(list.len(), 2, "{list:?}");
    assert!(err.contains(notice), "{err}");
    // No monitor wanted, by the environment or by the config: nothing said.
    let (_, err) = ls_json(&p, &[], &[("HYDRA_NO_MONITOR", "1")]);
    assert!(!err.contains("no monitor watches"), "{err}");
    quiet_config(&p, "[monitor]\nauto = false\n");
    let (_, err) = ls_json(&p, &[], &[]);
    assert!(!err.contains("no monitor watches"), "{err}");
    quiet_config(&p, "");
    // A running monitor answers, and watches them: nothing said.
    let socket = p.root.join(".hydra/orchestrator/monitor.sock");
    let monitor = Running::start(&p, &["monitor"]);
    wait_for(20, "the monitor's socket", || socket.exists().then_some(()));
    let (_, err) = ls_json(&p, &[], &[]);
    assert!(err.contains("answered by the project's monitor"), "{err}");
    assert!(!err.contains("no monitor watches"), "{err}");
    let _ = monitor.stop();
    // Without it again, one session killed: the count follows the live ones.
    ok(&p, &["kill", &ids[0]]);
    let (_, err) = ls_json(&p, &[], &[]);
    assert!(
        err.contains("no monitor watches this project's 1 live session: their"),
        "{err}"
    );
    // None live: nothing said.
    ok(&p, &["kill", &ids[1]]);
    let (_, err) = ls_json(&p, &[], &[]);
    assert!(!err.contains("no monitor watches"), "{err}");
}

/// A session's state as its record on disk says (read without running hydra): its kind and
/// reason.
fn record_state(p: &Project, id: &str) -> (String, String) {
    let path = p.root.join(format!(".hydra/orchestrator/sessions/{id}.json"));
    let rec: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).expect("the record")).expect("a record");
    let word = |k: &str| rec["state"][k].as_str().unwrap_or_default().to_owned();
    (word("kind"), word("reason"))
}

/// `hydra spawn --agent AGENT --prd (a PRD of its own) EXTRA` as a user runs it, without the
/// suite's `HYDRA_NO_MONITOR`: its output.
fn spawn_as_a_user(p: &Project, agent: &std::path::Path, extra: &[&str]) -> Output {
    p.spawn_cmd(HYDRA, agent, extra)
        .env_remove("HYDRA_NO_MONITOR")
        .output()
        .expect("hydra spawn")
}

/// The pid the project's monitor wrote.
fn monitor_pid(p: &Project) -> Option<u32> {
    std::fs::read_to_string(p.root.join(".hydra/orchestrator/monitor.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// A `hydra.toml` that tells nothing outside the test (no desktop, no tmux message), with `extra`.
fn quiet_config(p: &Project, extra: &str) {
    std::fs::write(
        p.root.join(".hydra/hydra.toml"),
        format!("[notify]\ndesktop = false\ntmux = false\n{extra}"),
    )
    .expect("hydra.toml");
}

#[test]
fn a_spawn_starts_the_monitor_which_keeps_the_duration_limit_while_nobody_runs_a_command() {
    let p = Project::new();
    quiet_config(&p, "");
    let agent = p.agent("sleeper.sh", "cat > /dev/null; echo working; exec sleep 600");
    let spawn = |limit: &str| {
        let out = spawn_as_a_user(&p, &agent, &["--max-duration", limit]);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{err}");
        (String::from_utf8_lossy(&out.stdout).trim().to_owned(), err)
    };
    let (a, err) = spawn("3s");
    let pid = monitor_pid(&p).expect("the monitor's pid file");
    assert!(
        err.contains(&format!("monitor started in the background (pid {pid})")),
        "{err}"
    );
    // A second spawn finds it running and starts none.
    let (b, err) = spawn("4s");
    assert!(!err.contains("monitor"), "{err}");
    assert_eq!(monitor_pid(&p), Some(pid));
    let (listed, err) = ls_json(&p, &[], &[]);
    assert!(
        err.contains(&format!("answered by the project's monitor (pid {pid})")),
        "{err}"
    );
    assert_eq!(listed.len(), 2, "{listed:?}");
    // From here no hydra command runs: the monitor alone ends both sessions at their limits,
    // and then itself.
    for id in [&a, &b] {
        let (kind, reason) = wait_for(30, "the session ended at its duration limit", || {
            let (kind, reason) = record_state(&p, id);
            (kind != "running" && kind != "starting").then_some((kind, reason))
        });
        assert_eq!(kind, "failed", "{reason}");
        assert!(reason.contains("duration"), "{reason}");
    }
    wait_for(30, "the monitor ends with the last live session", || {
        (monitor_pid(&p).is_none() && !hydra_e2e::group_alive(pid)).then_some(())
    });
    // Their agents are ended too, not only booked as failed.
    for id in [&a, &b] {
        let name = format!("hydralph-{id}");
        wait_for(20, "the session's agent ended", || {
            let snap = p.tmux().snapshot().ok()?;
            snap.get(&name).is_none_or(|pane| pane.dead).then_some(())
        });
    }
}

#[test]
fn a_spawn_whose_monitor_cannot_start_says_why_and_the_session_runs() {
    let p = Project::new();
    quiet_config(&p, "command = [\"true\"]\n");
    let agent = p.agent("sleeper.sh", "cat > /dev/null; exec sleep 600");
    let out = spawn_as_a_user(&p, &agent, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("no monitor watches these sessions") && err.contains("not trusted") && err.contains("hydra trust"),
        "{err}"
    );
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let (kind, _) = record_state(&p, &id);
    assert!(kind == "starting" || kind == "running", "{kind}");
    assert_eq!(monitor_pid(&p), None);
    // Once the file is trusted, the next spawn starts it.
    ok(&p, &["trust", "--yes"]);
    let out = spawn_as_a_user(&p, &agent, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("monitor started in the background"), "{err}");
    ok(&p, &["monitor", "--stop"]);
}

#[test]
fn spawns_at_once_start_one_monitor_between_them_and_say_nothing_wrong() {
    let p = Project::new();
    quiet_config(&p, "");
    let agent = p.agent("sleeper.sh", "cat > /dev/null; exec sleep 600");
    let outs: Vec<Output> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4).map(|_| s.spawn(|| spawn_as_a_user(&p, &agent, &[]))).collect();
        handles.into_iter().map(|h| h.join().expect("a spawn")).collect()
    });
    let errs: Vec<String> = outs
        .iter()
        .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
        .collect();
    assert!(outs.iter().all(|o| o.status.success()), "{errs:?}");
    assert_eq!(
        errs.iter().filter(|e| e.contains("monitor started")).count(),
        1,
        "{errs:?}"
    );
    assert!(!errs.iter().any(|e| e.contains("no monitor")), "{errs:?}");
    let pid = monitor_pid(&p).expect("pid file");
    assert!(hydra_e2e::group_alive(pid));
    for o in &outs {
        ok(&p, &["kill", String::from_utf8_lossy(&o.stdout).trim()]);
    }
    wait_for(30, "the monitor ends with the last live session", || {
        (monitor_pid(&p).is_none() && !hydra_e2e::group_alive(pid)).then_some(())
    });
}

#[test]
fn no_monitor_is_started_when_the_config_or_the_environment_says_so() {
    let p = Project::new();
    let agent = p.agent("sleeper.sh", "cat > /dev/null; exec sleep 600");
    // The suite's commands carry HYDRA_NO_MONITOR=1, as a script that wants none would.
    let out = p.spawn_cmd(HYDRA, &agent, &[]).output().expect("hydra spawn");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("monitor"));
    assert_eq!(monitor_pid(&p), None);
    let text = ok(&p, &["config"]);
    let line = text.lines().find(|l| l.starts_with("monitor.auto")).unwrap_or_default();
    assert!(line.contains("false") && line.ends_with("environment"), "{text}");
    // `[monitor] auto = false`, without the variable.
    std::fs::write(p.root.join(".hydra/hydra.toml"), "[monitor]\nauto = false\n").expect("hydra.toml");
    let out = spawn_as_a_user(&p, &agent, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("monitor"));
    assert_eq!(monitor_pid(&p), None);
    // Without either, `hydra config` says it is on by default.
    std::fs::remove_file(p.root.join(".hydra/hydra.toml")).expect("rm");
    let out = p
        .hydra_cmd(HYDRA, &["config"])
        .env_remove("HYDRA_NO_MONITOR")
        .output()
        .expect("config");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with("monitor.auto")).unwrap_or_default();
    assert!(line.contains("true") && line.ends_with("default"), "{text}");
}

#[test]
fn a_background_monitor_of_another_build_is_replaced_by_the_next_spawn_and_a_foreground_one_is_not() {
    let p = Project::new();
    quiet_config(&p, "");
    let agent = p.agent("sleeper.sh", "cat > /dev/null; exec sleep 600");
    spawn(&p, &agent);
    let old = another_build(&p);
    let old = old.as_str();
    // In the foreground (someone watches it): left alone.
    let foreground = Running::start_bin(&p, old, &["monitor"]);
    let fg = wait_for(20, "the foreground monitor up", || {
        monitor_pid(&p).filter(|pid| *pid == foreground.child.id())
    });
    let out = spawn_as_a_user(&p, &agent, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && !err.contains("monitor"), "{err}");
    assert_eq!(monitor_pid(&p), Some(fg));
    let _ = foreground.stop();
    // In the background: replaced.
    let out = p.hydra(old, &["monitor", "--detach"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let before = monitor_pid(&p).expect("the old build's monitor");
    let out = spawn_as_a_user(&p, &agent, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let after = monitor_pid(&p).expect("a monitor");
    assert_ne!(after, before);
    assert!(
        err.contains(&format!(
            "monitor (pid {before}) was of another hydra build; monitor {after} replaces it"
        )),
        "{err}"
    );
    assert!(!hydra_e2e::group_alive(before), "the old monitor ended");
    let (_, err) = ls_json(&p, &[], &[]);
    assert!(
        err.contains(&format!("answered by the project's monitor (pid {after})")),
        "{err}"
    );
    // This build's own monitor is kept by the next spawn.
    let out = spawn_as_a_user(&p, &agent, &[]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("monitor"));
    assert_eq!(monitor_pid(&p), Some(after));
    ok(&p, &["monitor", "--stop"]);
}

#[test]
fn ls_reads_unchanged_files_through_its_packs_and_sees_every_change() {
    let (p, ids) = sleepers(3);
    let orch = p.root.join(".hydra/orchestrator");
    let (records, reports) = (orch.join("records.pack"), orch.join("reports.pack"));
    let own = [("HYDRA_NO_MONITOR", "1")];
    let holds = |pack: &std::path::Path, needle: &str| {
        std::fs::read(pack)
            .unwrap_or_default()
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
    };
    // Once every record and report is a second old, an ls packs them all (the loops report
    // once their agent runs; the first ls may book that in the records).
    let packed = wait_for(20, "every record and report packed", || {
        let (list, _) = ls_json(&p, &[], &own);
        let all = ids.iter().all(|id| {
            holds(&records, &format!("\"id\": \"{id}\"")) && holds(&reports, &format!("\"session\":\"{id}\""))
        });
        all.then_some(list)
    });
    assert_eq!(packed.len(), 3, "{packed:?}");
    // Through the packs or without them, the same answer.
    let (through, _) = ls_json(&p, &[], &own);
    std::fs::remove_file(&records).expect("rm records.pack");
    std::fs::remove_file(&reports).expect("rm reports.pack");
    let (without, _) = ls_json(&p, &[], &own);
    assert_eq!(through, without);
    // A pack that is not one (a crash's leftover, a stray copy) is ignored.
    std::fs::write(&records, b"not a pack").expect("damage");
    let (damaged, _) = ls_json(&p, &[], &own);
    assert_eq!(damaged, without);
    // A change made by another command is seen by the next ls: the record has a new version.
    ok(&p, &["pause", &ids[0]]);
    let (after, _) = ls_json(&p, &[], &own);
    let state = |id: &str| {
        after
            .iter()
            .find(|s| s["id"] == id)
            .map(|s| s["state"].as_str().unwrap_or_default().to_owned())
    };
    assert_eq!(state(&ids[0]).as_deref(), Some("paused"), "{after:?}");
    assert_eq!(state(&ids[1]).as_deref(), Some("running"), "{after:?}");
}
