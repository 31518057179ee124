//! Tests of the tmux adapter against a real tmux server on a private socket per test.

use orch_core::{Multiplexer, MuxError, MuxWake, SpawnSpec};
use orch_tmux::{Tmux, TmuxConfig};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A private tmux server, killed when the guard drops (even when the test panics).
struct Server {
    tmux: Tmux,
    dir: tempfile::TempDir,
}

impl Server {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "orch-tmux-it-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        Server {
            tmux: Tmux::new(TmuxConfig::with_socket_name(&name)),
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }
    fn name(&self) -> &str {
        match &self.tmux.config().server {
            orch_core::MuxServer::Name(n) => n,
            _ => unreachable!("the test servers are named"),
        }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn spawn(&self, name: &str, argv: &[&str]) {
        self.tmux.create(&spec(name, argv, self.dir.path())).expect("create");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.tmux.kill_server();
    }
}

fn spec(name: &str, argv: &[&str], cwd: &Path) -> SpawnSpec {
    SpawnSpec {
        name: name.into(),
        argv: argv.iter().map(|s| s.to_string()).collect(),
        env: vec![],
        cwd: cwd.to_path_buf(),
        tag: Some("0123456789abcdef".into()),
    }
}

/// Writes an executable script without ever holding it open for writing in this process: a
/// multi-threaded test process can leak a write descriptor into a child another thread is
/// forking, and exec'ing the file then fails with "Text file busy" (seen in CI). `cp`, a child
/// process, writes the script instead.
fn write_script(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    let side = path.with_extension("src");
    std::fs::write(&side, text).expect("script text");
    assert!(std::process::Command::new("cp")
        .arg(&side)
        .arg(path)
        .status()
        .expect("cp")
        .success());
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// Polls `f` until it returns `Some`, failing after 10 s.
#[track_caller]
fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn create_runs_the_program_with_env_and_cwd() {
    let srv = Server::new();
    let hostile = "it's \"quoted\" $(touch pwned) `touch pwned2`; rm -rf x\nline2";
    let mut s = spec(
        "hydralph-env",
        &[
            "sh",
            "-c",
            "printf '%s' \"$HYDRA_T\" > out.txt; pwd > cwd.txt; sleep 30",
        ],
        srv.dir.path(),
    );
    s.env.push(("HYDRA_T".into(), hostile.into()));
    srv.tmux.create(&s).expect("create");
    let got = wait_for("out.txt", || {
        std::fs::read_to_string(srv.path("cwd.txt"))
            .ok()
            .filter(|s| !s.is_empty())
    });
    assert_eq!(
        Path::new(got.trim()).canonicalize().ok(),
        srv.dir.path().canonicalize().ok()
    );
    assert_eq!(std::fs::read_to_string(srv.path("out.txt")).expect("out"), hostile);
    assert!(!srv.path("pwned").exists() && !srv.path("pwned2").exists());
}

/// tmux expands formats in `new-session -c`: `#S` became the session's name and `#(...)` ran
/// a shell command, so a directory named so started its agent elsewhere (or ran the command).
#[test]
fn regression_a_working_directory_with_format_characters_is_taken_literally() {
    let srv = Server::new();
    let marker = srv.path("pwned");
    let job = format!("x#(touch {})", marker.display());
    for (i, name) in ["C#S-project", "##D", job.as_str()].into_iter().enumerate() {
        let dir = srv.path(name);
        std::fs::create_dir_all(&dir).expect("dir");
        let out = srv.path(&format!("cwd-{i}.txt"));
        let script = format!("pwd > '{}'; sleep 30", out.display());
        let session = format!("hydralph-fmt{i}");
        srv.tmux
            .create(&spec(&session, &["sh", "-c", &script], &dir))
            .expect("create");
        let got = wait_for("cwd", || std::fs::read_to_string(&out).ok().filter(|s| !s.is_empty()));
        assert_eq!(
            Path::new(got.trim()).canonicalize().ok(),
            dir.canonicalize().ok(),
            "{name:?}"
        );
    }
    assert!(!marker.exists(), "tmux ran a command from the directory's name");
}

#[test]
fn a_lone_program_with_spaces_in_its_path_runs_without_a_shell() {
    let srv = Server::new();
    let dir = srv.path("a dir; echo pwned");
    std::fs::create_dir(&dir).expect("dir");
    let prog = dir.join("prog");
    write_script(&prog, "#!/bin/sh\ntouch ran\nsleep 30\n");
    srv.spawn("hydralph-lone", &[prog.to_str().expect("utf8")]);
    wait_for("program ran", || srv.path("ran").exists().then_some(()));
}

#[test]
fn exited_program_leaves_a_dead_pane_with_its_status() {
    let srv = Server::new();
    srv.spawn("hydralph-dead", &["sh", "-c", "exit 7"]);
    let pane = wait_for("dead pane", || {
        srv.tmux
            .snapshot()
            .expect("snapshot")
            .get("hydralph-dead")
            .filter(|p| p.dead)
            .cloned()
    });
    assert_eq!((pane.exit_status, pane.exit_signal), (Some(7), None));
}

/// Regression: tmux 3.3a (Debian's, built with utempter) lost the SIGCHLD of about one pane in
/// 50 whose program exited at once; the pane then stayed dead without a status until another
/// child of the server ended (a CI run waited 10 s for it). Every snapshot that shows a pane
/// dead must also say how its program ended. One pane at a time, each with its own status.
#[test]
fn regression_no_dead_pane_is_shown_without_its_status() {
    let srv = Server::new();
    srv.spawn("hydralph-keep", &["sleep", "60"]);
    for code in 1..=100 {
        let name = format!("hydralph-x{code}");
        srv.spawn(&name, &["sh", "-c", &format!("exit {code}")]);
        let pane = wait_for("dead pane", || {
            srv.tmux
                .snapshot()
                .expect("snapshot")
                .get(&name)
                .filter(|p| p.dead)
                .cloned()
        });
        assert_eq!((pane.exit_status, pane.exit_signal), (Some(code), None), "{name}");
        srv.tmux.kill(&name).expect("kill");
    }
}

#[test]
fn a_program_ended_by_a_signal_says_which() {
    let srv = Server::new();
    srv.spawn("hydralph-sig", &["sleep", "60"]);
    let pid = srv
        .tmux
        .probe("hydralph-sig")
        .expect("probe")
        .and_then(|p| p.pane_pid)
        .expect("pid");
    assert!(std::process::Command::new("kill")
        .args(["-s", "KILL", &pid.to_string()])
        .status()
        .expect("kill")
        .success());
    let pane = wait_for("dead pane", || {
        srv.tmux.probe("hydralph-sig").expect("probe").filter(|p| p.dead)
    });
    assert_eq!((pane.exit_status, pane.exit_signal), (None, Some(9)));
}

#[test]
fn snapshot_of_0_1_and_50_sessions_takes_one_call() {
    let srv = Server::new();
    assert!(srv
        .tmux
        .snapshot()
        .expect("no server is no sessions")
        .sessions()
        .is_empty());
    srv.spawn("hydralph-one", &["sleep", "30"]);
    let snap = srv.tmux.snapshot().expect("snapshot");
    assert_eq!(snap.sessions().len(), 1);
    let one = snap.get("hydralph-one").expect("listed");
    assert!(!one.dead && one.pane_pid.is_some() && one.activity.is_some());
    for i in 0..49 {
        srv.spawn(&format!("hydralph-n{i}"), &["sleep", "30"]);
    }
    let before = srv.tmux.calls();
    let snap = srv.tmux.snapshot().expect("snapshot");
    assert_eq!(srv.tmux.calls() - before, 1);
    assert_eq!(snap.sessions().len(), 50);
}

#[test]
fn a_begun_snapshot_says_what_a_snapshot_says() {
    let srv = Server::new();
    let none = srv.tmux.begin_snapshot().expect("a process adapter begins one");
    assert!(none.finish().expect("no server is no sessions").sessions().is_empty());
    srv.spawn("hydralph-a", &["sleep", "30"]);
    srv.spawn("hydralph-b", &["sh", "-c", "exit 3"]);
    wait_for("b's status", || {
        let snap = srv.tmux.snapshot().expect("snapshot");
        snap.get("hydralph-b").and_then(|p| p.exit_status)
    });
    let before = srv.tmux.calls();
    let pending = srv.tmux.begin_snapshot().expect("begun");
    // The process runs while this thread does other work: here, another snapshot.
    let taken = srv.tmux.snapshot().expect("snapshot");
    let begun = pending.finish().expect("finished");
    assert_eq!(srv.tmux.calls() - before, 2);
    let seen = |s: &orch_core::MuxSnapshot| {
        s.sessions()
            .iter()
            .map(|p| (p.session.clone(), p.dead, p.exit_status, p.pane_pid, p.tag.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(seen(&begun), seen(&taken));
    assert_eq!(begun.get("hydralph-b").and_then(|p| p.exit_status), Some(3));
    assert!(begun.get("hydralph-a").is_some_and(|p| !p.dead));
    // An adapter with a control client answers through it, so it begins nothing.
    assert!(control_adapter(&srv, "0123456789abcdef").begin_snapshot().is_none());
}

#[test]
fn a_begun_snapshot_dropped_unfinished_ends_and_reaps_its_process() {
    let dir = tempfile::tempdir().expect("tmp");
    let pid_file = dir.path().join("pid");
    let fake = dir.path().join("tmux");
    // A tmux that never answers.
    write_script(
        &fake,
        &format!("#!/bin/sh\necho $$ > '{}'\nexec sleep 30\n", pid_file.display()),
    );
    let tmux = Tmux::new(TmuxConfig {
        program: fake,
        ..TmuxConfig::with_socket_name("fake")
    });
    let pending = tmux.begin_snapshot().expect("begun");
    let pid = wait_for("the process's pid", || {
        std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok())
    });
    drop(pending);
    // Killed and waited for: not running, and no zombie left behind either.
    assert!(!Path::new(&format!("/proc/{pid}")).exists(), "process {pid} is left");
    let err = match Tmux::new(TmuxConfig {
        program: PathBuf::from("/nonexistent/bin/tmux"),
        ..TmuxConfig::with_socket_name("x")
    })
    .begin_snapshot()
    {
        Some(p) => p.finish().expect_err("missing"),
        None => panic!("a process adapter begins one"),
    };
    assert!(matches!(err, MuxError::NotInstalled), "{err}");
}

#[test]
fn targets_are_exact() {
    let srv = Server::new();
    srv.spawn("hydralph-abc", &["sleep", "30"]);
    assert!(matches!(
        srv.tmux.send_text("hydralph-ab", "x", false),
        Err(MuxError::NotFound { .. })
    ));
    assert!(matches!(
        srv.tmux.capture("hydralph-ab", 5),
        Err(MuxError::NotFound { .. })
    ));
    srv.tmux.kill("hydralph-ab").expect("missing session is not an error");
    assert!(srv.tmux.has_session("hydralph-abc").expect("has"));
    assert!(!srv.tmux.has_session("hydralph-ab").expect("has"));
    assert!(matches!(
        srv.tmux.attach_command("hydralph-ab"),
        Err(MuxError::NotFound { .. })
    ));
}

#[test]
fn duplicate_name_is_name_taken() {
    let srv = Server::new();
    srv.spawn("hydralph-dup", &["sleep", "30"]);
    let err = srv
        .tmux
        .create(&spec("hydralph-dup", &["sleep", "30"], srv.dir.path()))
        .expect_err("taken");
    assert!(matches!(err, MuxError::NameTaken { .. }), "{err}");
    assert_eq!(srv.tmux.snapshot().expect("snapshot").sessions().len(), 1);
}

#[test]
fn literal_text_arrives_exactly() {
    let srv = Server::new();
    srv.spawn("hydralph-lit", &["sh", "-c", "stty raw -echo; exec cat > received"]);
    // The shell creates the file for cat only after stty has switched the pane to raw mode.
    wait_for("cat started", || srv.path("received").exists().then_some(()));
    let mut text = String::from("it's \"q\" $(touch pwned) `x`; C-c Enter \u{1b}[31mred\u{1b}[0m ünï\n-l -- C-d\n");
    let mut i = 0;
    while text.len() < 100 * 1024 {
        text.push_str(&format!("line {i} with some padding text to fill the buffer\n"));
        i += 1;
    }
    srv.tmux.send_text("hydralph-lit", &text, false).expect("send");
    let got = wait_for("all text", || {
        let got = std::fs::read(srv.path("received")).ok()?;
        (got.len() >= text.len()).then_some(got)
    });
    assert_eq!(String::from_utf8(got).expect("utf8"), text);
    assert!(!srv.path("pwned").exists());
}

#[test]
fn capture_returns_the_last_lines() {
    let srv = Server::new();
    srv.spawn(
        "hydralph-cap",
        &["sh", "-c", "for i in 1 2 3 4 5 6; do echo line$i; done; sleep 30"],
    );
    let text = wait_for("output", || {
        let t = srv.tmux.capture("hydralph-cap", 3).ok()?;
        t.contains("line6").then_some(t)
    });
    let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    assert!(lines.len() <= 3, "{text:?}");
    assert!(!text.contains("line1"));
}

#[test]
fn kill_ends_the_session_and_tolerates_missing_ones() {
    let srv = Server::new();
    srv.tmux.kill("hydralph-none").expect("no server is not an error");
    srv.spawn("hydralph-k", &["sleep", "30"]);
    srv.tmux.kill("hydralph-k").expect("kill");
    assert!(srv.tmux.snapshot().expect("snapshot").get("hydralph-k").is_none());
    srv.tmux.kill("hydralph-k").expect("killing twice is fine");
}

#[test]
fn attach_command_targets_the_exact_session_on_our_server() {
    let srv = Server::new();
    srv.spawn("hydralph-att", &["sleep", "30"]);
    let cmd = srv.tmux.attach_command("hydralph-att").expect("attach");
    let joined = cmd.argv.join(" ");
    assert!(joined.contains("-L orch-tmux-it-"), "{joined}");
    assert!(joined.ends_with("-t =hydralph-att"), "{joined}");
}

#[test]
fn tmux_missing_is_a_typed_error() {
    let tmux = Tmux::new(TmuxConfig {
        program: PathBuf::from("/nonexistent/bin/tmux"),
        ..TmuxConfig::with_socket_name("x")
    });
    assert!(matches!(tmux.snapshot(), Err(MuxError::NotInstalled)));
    let err = tmux
        .create(&spec("hydralph-x", &["true"], Path::new("/")))
        .expect_err("missing");
    assert!(matches!(err, MuxError::NotInstalled));
    assert!(err.to_string().contains("not installed"), "{err}");
}

#[test]
fn no_server_is_distinct_from_not_found() {
    let srv = Server::new();
    let err = srv.tmux.send_text("hydralph-x", "hi", true).expect_err("no server");
    assert!(matches!(err, MuxError::NoServer { .. }), "{err}");
}

/// Regression: resuming a blocked session (kill its dead pane, then create the new loop's
/// session) failed in CI with "no server" when the killed session was the server's last: the
/// exiting server accepted the create and then went away. A stand-in tmux that answers that way
/// twice makes the case deterministic.
#[test]
fn regression_create_retries_when_the_server_exits_under_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let count = dir.path().join("count");
    let fake = dir.path().join("tmux");
    write_script(
        &fake,
        &format!(
            "#!/bin/sh\nn=$(cat '{c}' 2>/dev/null || echo 0); n=$((n+1)); echo $n > '{c}'\nif [ $n -le 2 ]; then echo 'server exited unexpectedly' >&2; exit 1; fi\nexit 0\n",
            c = count.display()
        ),
    );
    let tmux = Tmux::new(TmuxConfig {
        program: fake,
        ..TmuxConfig::with_socket_name("fake")
    });
    tmux.create(&spec("hydralph-retry", &["sleep", "30"], dir.path()))
        .expect("create succeeds on the third try");
    assert_eq!(std::fs::read_to_string(&count).expect("count").trim(), "3");
}

#[test]
fn sessions_carry_their_tag_and_probe_sees_one_session() {
    let srv = Server::new();
    srv.spawn("hydralph-tagged", &["sleep", "30"]);
    let mut untagged = spec("hydralph-plain", &["sleep", "30"], srv.dir.path());
    untagged.tag = None;
    srv.tmux.create(&untagged).expect("create");
    let snap = srv.tmux.snapshot().expect("snapshot");
    assert_eq!(
        snap.get("hydralph-tagged").and_then(|p| p.tag.as_deref()),
        Some("0123456789abcdef")
    );
    assert_eq!(snap.get("hydralph-plain").expect("listed").tag, None);
    let before = srv.tmux.calls();
    let one = srv.tmux.probe("hydralph-tagged").expect("probe").expect("exists");
    assert_eq!(srv.tmux.calls() - before, 1, "one tmux call");
    assert_eq!(Some(&one), snap.get("hydralph-tagged"));
    assert_eq!(srv.tmux.probe("hydralph-tag").expect("probe"), None, "exact name");
    assert_eq!(srv.tmux.probe("hydralph-nosuch").expect("probe"), None);
}

#[test]
fn probe_without_a_server_is_none() {
    let srv = Server::new();
    assert_eq!(srv.tmux.probe("hydralph-x").expect("probe"), None);
}

/// Regression: the suites left about 50 dead socket files in tmux's socket directory, because
/// tmux keeps the file of a killed server.
#[test]
fn regression_kill_server_removes_the_socket_file() {
    let srv = Server::new();
    srv.spawn("hydralph-sock", &["sleep", "30"]);
    let socket = srv.tmux.socket_path().expect("a running server has a socket");
    assert!(socket.exists());
    srv.tmux.kill_server().expect("kill");
    assert!(!socket.exists(), "{} left behind", socket.display());
    assert!(
        Tmux::new(TmuxConfig::default()).kill_server().is_err(),
        "the user's default server is never ours to kill"
    );
}

/// Regression: a server whose last session ended exits by itself and leaves its socket file;
/// the suites' clean-up (`kill_server`, with no server left to say where its socket was) left
/// about 36 such files in tmux's socket directory per CI run.
#[test]
fn kill_server_removes_the_socket_file_of_a_server_that_ended_by_itself() {
    let srv = Server::new();
    srv.spawn("hydralph-brief", &["sleep", "30"]);
    let socket = srv.tmux.socket_path().expect("a running server has a socket");
    let pid = srv.tmux.server_pid().expect("a running server has a pid");
    assert!(Path::new(&format!("/proc/{pid}")).exists(), "{pid} is the server's");
    // Its last session ended, the server exits on its own.
    srv.tmux.kill("hydralph-brief").expect("kill the session");
    wait_for("the server's end", || srv.tmux.socket_path().is_none().then_some(()));
    assert_eq!(srv.tmux.server_pid(), None, "no server, no pid");
    assert!(socket.exists(), "tmux left {} behind", socket.display());
    srv.tmux.kill_server().expect("kill");
    assert!(!socket.exists(), "{} left behind", socket.display());
}

/// Runs `f` with a wait on the server in a thread; returns the wake it saw.
fn wake_after(srv: &Server, f: impl FnOnce()) -> MuxWake {
    let watch = srv.tmux.watch().expect("watch");
    // Make sure the hooks are in and nothing is pending, then wait for `f`'s change.
    std::thread::scope(|s| {
        let w = std::sync::Arc::clone(&watch);
        let waiter = s.spawn(move || w.wait().expect("wait"));
        // The waiter blocks in `tmux wait-for`; a signal sent before it waits is kept, so the
        // order does not matter.
        f();
        waiter.join().expect("waiter")
    })
}

#[test]
fn a_watch_wakes_when_a_pane_dies() {
    let srv = Server::new();
    srv.spawn("hydralph-w1", &["sleep", "600"]);
    let pid = srv
        .tmux
        .snapshot()
        .expect("snapshot")
        .get("hydralph-w1")
        .and_then(|p| p.pane_pid)
        .expect("pid");
    let wake = wake_after(&srv, || {
        std::process::Command::new("kill")
            .arg(pid.to_string())
            .status()
            .expect("kill");
    });
    assert_eq!(wake, MuxWake::Changed);
}

#[test]
fn a_watch_wakes_when_a_session_is_killed_by_hand() {
    let srv = Server::new();
    // A session of another tool, with no hook of its own: the server's hook wakes us.
    std::process::Command::new("tmux")
        .args(["-L", srv.name(), "new-session", "-d", "-s", "keep", "sleep", "600"])
        .status()
        .expect("tmux");
    std::process::Command::new("tmux")
        .args(["-L", srv.name(), "new-session", "-d", "-s", "other", "sleep", "600"])
        .status()
        .expect("tmux");
    let wake = wake_after(&srv, || srv.tmux.kill("other").expect("kill-session"));
    assert_eq!(wake, MuxWake::Changed);
}

#[test]
fn a_stopped_watch_returns_and_no_server_is_said() {
    let srv = Server::new();
    let watch = srv.tmux.watch().expect("watch");
    assert_eq!(watch.wait().expect("wait"), MuxWake::NoServer);
    srv.spawn("hydralph-s1", &["sleep", "600"]);
    let started = std::time::Instant::now();
    let wake = std::thread::scope(|s| {
        let w = std::sync::Arc::clone(&watch);
        let waiter = s.spawn(move || w.wait().expect("wait"));
        std::thread::sleep(Duration::from_millis(50));
        watch.stop();
        waiter.join().expect("waiter")
    });
    assert_eq!(wake, MuxWake::Stopped);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(watch.wait().expect("wait"), MuxWake::Stopped, "stays stopped");
}

/// Regression: tmux 3.3a (Debian's, built with utempter) loses the SIGCHLD of about one pane
/// in seven killed with SIGKILL, and then never runs its `pane-died` hook: the watch slept on
/// through the agent's death. Twenty kills in a row, each must wake the watch.
#[test]
fn every_pane_killed_with_sigkill_wakes_the_watch() {
    let srv = Server::new();
    srv.spawn("hydralph-keep", &["sleep", "600"]);
    let watch = srv.tmux.watch().expect("watch");
    for i in 0..20 {
        let name = format!("hydralph-k{i}");
        srv.spawn(&name, &["sleep", "600"]);
        let pid = srv
            .tmux
            .snapshot()
            .expect("snapshot")
            .get(&name)
            .and_then(|p| p.pane_pid)
            .expect("pid");
        // Let the wake of the creation pass (a watch may wake for more than it is told).
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::scope(|s| {
            let w = std::sync::Arc::clone(&watch);
            let (srv, name) = (&srv, &name);
            s.spawn(move || {
                // The waits that end before the kill are for earlier changes; the one that
                // sees the pane dead is ours.
                loop {
                    let wake = w.wait().expect("wait");
                    let dead = srv.tmux.snapshot().expect("snapshot").get(name).is_some_and(|p| p.dead);
                    if dead || wake == MuxWake::Stopped {
                        let _ = tx.send(wake);
                        return;
                    }
                }
            });
            std::thread::sleep(Duration::from_millis(30));
            let killed = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status()
                .expect("kill");
            assert!(killed.success());
            let got = rx.recv_timeout(Duration::from_secs(5));
            if got.is_err() {
                watch.stop();
            }
            assert_eq!(got.ok(), Some(MuxWake::Changed), "kill {i}: the watch slept on");
        });
    }
}

/// The tag `spec` gives every session.
const TAG: &str = "0123456789abcdef";

/// An adapter on `srv`'s server that keeps a control-mode client for sessions tagged `tag`.
fn control_adapter(srv: &Server, tag: &str) -> Tmux {
    Tmux::new(TmuxConfig {
        control_tag: Some(tag.to_owned()),
        ..TmuxConfig::with_socket_name(srv.name())
    })
}

/// How many control-mode clients the server has.
fn control_clients(srv: &Server) -> usize {
    let out = std::process::Command::new("tmux")
        .args(["-L", srv.name(), "list-clients", "-F", "#{client_control_mode}"])
        .output()
        .expect("list-clients");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| *l == "1")
        .count()
}

/// A server with the sleeping sessions `hydralph-a` and `hydralph-b`, and an adapter on it
/// that keeps a control-mode client for their tag.
fn two_sessions_and_a_control_adapter() -> (Server, Tmux) {
    let srv = Server::new();
    let tmux = control_adapter(&srv, TAG);
    srv.spawn("hydralph-a", &["sleep", "30"]);
    srv.spawn("hydralph-b", &["sleep", "30"]);
    (srv, tmux)
}

#[test]
fn snapshots_go_through_the_control_client_and_match_a_process() {
    let (srv, tmux) = two_sessions_and_a_control_adapter();
    srv.spawn("hydralph-done", &["sh", "-c", "exit 3"]);
    wait_for("the dead pane's status", || {
        let snap = tmux.snapshot().ok()?;
        snap.get("hydralph-done")
            .filter(|p| p.dead && p.exit_status.is_some())
            .map(|_| ())
    });
    assert_eq!(control_clients(&srv), 1, "the first snapshot attached one client");
    let (calls, through) = (tmux.calls(), tmux.control_calls());
    let snap = tmux.snapshot().expect("snapshot");
    assert_eq!(tmux.calls(), calls, "no tmux process");
    assert_eq!(tmux.control_calls(), through + 1);
    assert_eq!(snap.sessions().len(), 3);
    assert_eq!(snap.get("hydralph-done").and_then(|p| p.exit_status), Some(3));
    // The same answer as a tmux process gives (the plain adapter of the test server).
    assert_eq!(snap, srv.tmux.snapshot().expect("snapshot"));
    assert_eq!(control_clients(&srv), 1, "one client, kept");
}

#[test]
fn the_control_client_moves_on_when_its_session_ends() {
    let (srv, tmux) = two_sessions_and_a_control_adapter();
    tmux.snapshot().expect("snapshot");
    assert_eq!(control_clients(&srv), 1);
    for name in ["hydralph-a", "hydralph-b"] {
        // Whichever session the client is attached to, the snapshot stays right.
        srv.tmux.kill(name).expect("kill");
        let snap = tmux.snapshot().expect("snapshot after a session ended");
        assert!(snap.get(name).is_none(), "{name} is gone");
    }
    srv.spawn("hydralph-c", &["sleep", "30"]);
    let snap = tmux.snapshot().expect("snapshot");
    assert_eq!(snap.sessions().len(), 1);
    wait_for("a client attached to the one session left", || {
        (control_clients(&srv) == 1).then_some(())
    });
    let calls = tmux.calls();
    assert!(tmux.snapshot().expect("snapshot").get("hydralph-c").is_some());
    assert_eq!(tmux.calls(), calls, "through the client again");
    tmux.kill_server().expect("kill server");
    assert!(tmux.snapshot().expect("no server is no sessions").sessions().is_empty());
}

#[test]
fn no_client_is_kept_without_a_live_session_of_the_project() {
    let srv = Server::new();
    let tmux = control_adapter(&srv, "another-project");
    srv.spawn("hydralph-theirs", &["sleep", "30"]);
    let mut plain = spec("hydralph-plain", &["sleep", "30"], srv.dir.path());
    plain.tag = None;
    srv.tmux.create(&plain).expect("create");
    for _ in 0..2 {
        let calls = tmux.calls();
        assert_eq!(tmux.snapshot().expect("snapshot").sessions().len(), 2);
        assert_eq!(tmux.calls(), calls + 1, "a tmux process each time");
    }
    assert_eq!(control_clients(&srv), 0);
}

#[test]
fn dropping_the_adapter_ends_its_client() {
    let srv = Server::new();
    srv.spawn("hydralph-a", &["sleep", "30"]);
    let first = control_adapter(&srv, TAG);
    first.snapshot().expect("snapshot");
    {
        let second = control_adapter(&srv, TAG);
        second.snapshot().expect("snapshot");
        assert_eq!(control_clients(&srv), 2);
    }
    wait_for("the dropped adapter's client to leave", || {
        (control_clients(&srv) == 1).then_some(())
    });
    let calls = first.calls();
    assert_eq!(first.snapshot().expect("snapshot").sessions().len(), 1);
    assert_eq!(first.calls(), calls, "the other adapter's client still answers");
}

#[test]
fn a_refused_attach_is_not_tried_again_at_once() {
    let srv = Server::new();
    srv.spawn("hydralph-a", &["sleep", "30"]);
    srv.spawn("hydralph-b", &["sleep", "30"]);
    // A tmux that refuses control mode, as one before 3.2 refuses `attach-session -f`; each
    // try is noted.
    let tries = srv.path("tries");
    let wrapper = srv.path("tmux-without-control");
    write_script(
        &wrapper,
        &format!(
            "#!/bin/sh\nfor a in \"$@\"; do\n  if [ \"$a\" = -C ]; then echo try >> '{}'; exit 1; fi\ndone\nexec tmux \"$@\"\n",
            tries.display()
        ),
    );
    let tmux = Tmux::new(TmuxConfig {
        program: wrapper,
        control_tag: Some(TAG.to_owned()),
        ..TmuxConfig::with_socket_name(srv.name())
    });
    for _ in 0..3 {
        assert_eq!(tmux.snapshot().expect("snapshot").sessions().len(), 2);
    }
    let tried = std::fs::read_to_string(&tries).unwrap_or_default().lines().count();
    assert_eq!(tried, 1, "one try for two sessions and three snapshots");
    assert_eq!(control_clients(&srv), 0);
}

/// The same server through an adapter that always runs tmux processes.
fn process_adapter(srv: &Server) -> Tmux {
    Tmux::new(TmuxConfig {
        native_client: false,
        ..TmuxConfig::with_socket_name(srv.name())
    })
}

#[test]
fn the_own_client_answers_as_a_tmux_process_does() {
    let srv = Server::new();
    let process = process_adapter(&srv);
    // Names with a space and with non-ASCII text; live panes and a dead one.
    for name in ["hydralph-a b", "hydralph-é"] {
        srv.spawn(name, &["sh", "-c", "printf 'hello\\n'; exec sleep 30"]);
    }
    srv.spawn("hydralph-dead", &["sh", "-c", "exit 3"]);
    wait_for("the dead pane's status", || {
        let snap = process.snapshot().ok()?;
        snap.get("hydralph-dead")?.exit_status.is_some().then_some(())
    });
    wait_for("the live panes' output", || {
        let text = process.capture("hydralph-a b", 5).ok()?;
        text.contains("hello").then_some(())
    });
    let before = srv.tmux.native_calls();
    assert_eq!(srv.tmux.snapshot().expect("own"), process.snapshot().expect("process"));
    let begun = srv.tmux.begin_snapshot().expect("begun").finish().expect("own");
    assert_eq!(begun, process.snapshot().expect("process"));
    for name in ["hydralph-é", "hydralph-dead", "hydralph-none"] {
        assert_eq!(
            srv.tmux.probe(name).expect("own"),
            process.probe(name).expect("process"),
            "{name}"
        );
    }
    assert_eq!(
        srv.tmux.capture("hydralph-a b", 5).expect("own"),
        process.capture("hydralph-a b", 5).expect("process")
    );
    assert_eq!(srv.tmux.server_pid(), process.server_pid());
    assert_eq!(srv.tmux.socket_path(), process.socket_path());
    // tmux's own errors arrive the same way: a missing session is NotFound both ways.
    let own = srv.tmux.capture("hydralph-none", 5).expect_err("no such session");
    let theirs = process.capture("hydralph-none", 5).expect_err("no such session");
    assert!(matches!(own, MuxError::NotFound { .. }), "{own}");
    assert_eq!(own.to_string(), theirs.to_string());
    assert!(srv.tmux.native_calls() - before >= 9, "the own client answered");
    assert_eq!(process.native_calls(), 0);
}

/// A Unix socket that answers every client with one message of type `kind` (12, `MSG_VERSION`:
/// as a tmux server of another protocol version would), counting the clients.
fn foreign_server(path: &Path, kind: u32) -> std::sync::Arc<AtomicUsize> {
    use std::io::{Read, Write};
    let listener = std::os::unix::net::UnixListener::bind(path).expect("bind");
    let seen = std::sync::Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            count.fetch_add(1, Ordering::SeqCst);
            let mut head = [0u8; 16];
            let _ = conn.read_exact(&mut head);
            // A header only: the type, the length, no flags, the protocol version (another
            // one for MSG_VERSION, as such a server says its own), a pid.
            let mut answer = Vec::new();
            answer.extend_from_slice(&kind.to_ne_bytes());
            answer.extend_from_slice(&16u16.to_ne_bytes());
            answer.extend_from_slice(&0u16.to_ne_bytes());
            answer.extend_from_slice(&(if kind == 12 { 9u32 } else { 8 }).to_ne_bytes());
            answer.extend_from_slice(&0u32.to_ne_bytes());
            let _ = conn.write_all(&answer);
        }
    });
    seen
}

/// A [`foreign_server`] answering with `kind` in a temp dir, and an adapter on its socket whose
/// tmux program is a script with the text `script` gives for that dir.
fn foreign_adapter(
    kind: u32,
    script: impl FnOnce(&Path) -> String,
) -> (tempfile::TempDir, std::sync::Arc<AtomicUsize>, Tmux) {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("sock");
    let seen = foreign_server(&socket, kind);
    let fake = dir.path().join("tmux");
    write_script(&fake, &script(dir.path()));
    let tmux = Tmux::new(TmuxConfig {
        program: fake,
        ..TmuxConfig::for_server(orch_core::MuxServer::Path(socket))
    });
    (dir, seen, tmux)
}

#[test]
fn a_server_the_own_client_does_not_understand_is_asked_by_a_tmux_process() {
    // The "tmux" that then runs prints one pane, as list-panes would.
    let (_dir, seen, tmux) = foreign_adapter(12, |_| {
        "#!/bin/sh\nprintf '4242 0   1700000000 @0123456789abcdef hydralph-fake\\n'\n".to_owned()
    });
    let snap = tmux.snapshot().expect("snapshot through the process");
    assert_eq!(snap.get("hydralph-fake").and_then(|p| p.pane_pid), Some(4242));
    let begun = tmux.begin_snapshot().expect("begun").finish().expect("process");
    assert_eq!(begun, snap);
    assert_eq!(seen.load(Ordering::SeqCst), 2, "the own client tried first, each time");
    assert_eq!(tmux.native_calls(), 0);
}

#[test]
fn a_session_made_through_the_own_client_takes_the_caller_s_environment() {
    let srv = Server::new();
    // A server whose own environment is not this process's: its PATH ends in a marker.
    let tmux_dir = std::process::Command::new("sh")
        .args(["-c", "dirname \"$(command -v tmux)\""])
        .output()
        .expect("sh");
    let server_path = format!(
        "{}:/bin:/nonexistent-marker",
        String::from_utf8_lossy(&tmux_dir.stdout).trim()
    );
    let started = std::process::Command::new("env")
        .args(["-i", &format!("PATH={server_path}"), "tmux", "-L", srv.name()])
        .args(["new-session", "-d", "-s", "base", "sleep", "30", ";"])
        .args(["set-option", "-g", "update-environment", "PATH"])
        .status()
        .expect("tmux");
    assert!(started.success());
    let process = process_adapter(&srv);
    let before = srv.tmux.native_calls();
    srv.spawn("hydralph-own", &["sleep", "30"]);
    assert_eq!(srv.tmux.native_calls() - before, 1, "made through the own client");
    process
        .create(&spec("hydralph-proc", &["sleep", "30"], srv.dir.path()))
        .expect("create");
    let ours = std::env::var("PATH").expect("PATH");
    assert_ne!(ours, server_path);
    for name in ["hydralph-own", "hydralph-proc"] {
        let shown = std::process::Command::new("tmux")
            .args(["-L", srv.name(), "show-environment", "-t", &format!("={name}"), "PATH"])
            .output()
            .expect("tmux");
        assert_eq!(
            String::from_utf8_lossy(&shown.stdout).trim(),
            format!("PATH={ours}"),
            "{name}"
        );
    }
}

#[test]
fn a_create_the_own_client_cannot_tell_the_end_of_is_an_error_and_not_run_twice() {
    // An answer no tmux gives to a command run without a terminal (MSG_READY: attached).
    let (dir, seen, tmux) = foreign_adapter(207, |d| format!("#!/bin/sh\ntouch '{}'\n", d.join("ran").display()));
    let ran = dir.path().join("ran");
    let err = tmux
        .create(&spec("hydralph-x", &["sleep", "30"], dir.path()))
        .expect_err("not understood");
    let MuxError::Io { op, source } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(op, "new-session");
    assert!(source.to_string().contains("not understood"), "{source}");
    assert_eq!(seen.load(Ordering::SeqCst), 1);
    assert!(!ran.exists(), "the tmux process did not run it again");
}
