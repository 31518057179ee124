//! What the CLI's benchmarks share: figures, a throwaway project with a private tmux server,
//! and readings of a process's CPU and memory from /proc.

#![allow(dead_code)] // each benchmark uses its own part

use hydra_orchestrator::adapters::{Tmux, TmuxConfig};
use hydra_orchestrator::{Orchestrator, SessionConfig, SessionId};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

/// Milliseconds of `d`.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Median and p95 of `v`, in ms.
pub fn stats(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let p95 = v[((v.len() as f64 * 0.95).ceil() as usize)
        .saturating_sub(1)
        .min(v.len() - 1)];
    (ms(v[v.len() / 2]), ms(p95))
}

/// Writes an executable `sh` script.
pub fn script(path: &Path, body: &str) {
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).expect("script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// Runs git in `dir` with a throwaway identity.
pub fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=bench", "-c", "user.email=bench@example.invalid"])
        .args(["-c", "commit.gpgsign=false"])
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(ok, "git {args:?}");
}

/// CPU ticks (its own, its waited-for children's) of a process.
pub fn cpu_ticks(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = after.split_whitespace().map(|x| x.parse().unwrap_or(0)).collect();
    // After the name: state(0) ... utime(11) stime(12) cutime(13) cstime(14).
    if f.len() > 14 {
        (f[11] + f[12], f[13] + f[14])
    } else {
        (0, 0)
    }
}

/// Percent of one core that `ticks` (USER_HZ = 100) over `elapsed` is.
pub fn cpu_percent(ticks: u64, elapsed: Duration) -> f64 {
    ticks as f64 / 100.0 / elapsed.as_secs_f64() * 100.0
}

/// A `/proc/PID/status` figure in KiB (`VmRSS:`, `VmHWM:`).
pub fn status_kib(pid: u32, key: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Nanoseconds a process has spent on a CPU, all its threads together (each thread's
/// `/proc/PID/task/TID/schedstat`; `None` where there is none).
pub fn on_cpu_ns(pid: u32) -> Option<u64> {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
        // A thread that ended between the listing and the read counts no more.
        let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        total += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}

/// How long a tmux server must have used no CPU for [`BenchProject::quiet_server`] to return.
pub const QUIET: Duration = Duration::from_millis(1);

/// How long a monitor just started must have used no CPU before it is timed.
pub const SETTLED: Duration = Duration::from_millis(50);

/// Waits until the processes `pids` together have used no CPU for `quiet`, looking every
/// 100 us, at most `limit`; waits `quiet` plus 5 ms where `/proc` cannot tell.
fn wait_idle(pids: &[u32], quiet: Duration, limit: Duration) {
    let used = || pids.iter().map(|p| on_cpu_ns(*p)).sum::<Option<u64>>();
    let Some(mut last) = used().filter(|_| !pids.is_empty()) else {
        std::thread::sleep(quiet + Duration::from_millis(5));
        return;
    };
    let deadline = std::time::Instant::now() + limit;
    let mut since = std::time::Instant::now();
    while since.elapsed() < quiet && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_micros(100));
        let Some(now) = used() else { return };
        if now != last {
            last = now;
            since = std::time::Instant::now();
        }
    }
}

/// Waits until `path` exists, looking every millisecond (a timing that ends here can be late
/// by about that much); panics after 30 s.
pub fn wait_file(path: &Path) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !path.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "{} did not appear within 30 s",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Runs `tmux -L SOCKET ARGS`, which must succeed; returns its output, trimmed.
pub fn tmux_on(socket: &str, args: &[&str]) -> String {
    let out = Command::new("tmux")
        .args(["-L", socket])
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("tmux");
    assert!(
        out.status.success(),
        "tmux {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// `tmux -V`.
pub fn tmux_version() -> String {
    Command::new("tmux")
        .arg("-V")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// A committed git project with a PRD and `.hydra/`, an agent that sleeps, and its own tmux
/// server; removed (server and files) when dropped.
pub struct BenchProject {
    /// The directory holding everything.
    pub base: PathBuf,
    /// The project root.
    pub root: PathBuf,
    /// The tmux server's `-L` name.
    pub socket: String,
    /// The tmux adapter (it counts its calls).
    pub tmux: Arc<Tmux>,
    /// The orchestrator on that server.
    pub orch: Orchestrator,
    /// A session of the sleeping agent.
    pub config: SessionConfig,
    /// The tmux server's pid, asked once.
    server_pid: std::sync::OnceLock<Option<u32>>,
    /// The background monitor's pid while [`start_monitor`](Self::start_monitor)'s runs.
    monitor_pid: std::sync::Mutex<Option<u32>>,
}

impl BenchProject {
    /// A project named after `what` and this process.
    pub fn new(what: &str) -> BenchProject {
        let base = std::env::temp_dir().join(format!("hydra-bench-{what}-{}", std::process::id()));
        let root = base.join("project");
        std::fs::create_dir_all(root.join(".hydra")).expect("dir");
        let root = root.canonicalize().expect("canonical");
        std::fs::write(
            root.join("prd.json"),
            r#"{"userStories":[{"id":"1","title":"t","passes":false}]}"#,
        )
        .expect("prd");
        std::fs::write(root.join("README.md"), "bench\n").expect("readme");
        git(&root, &["init", "-q", "-b", "main"]);
        git(&root, &["add", "."]);
        git(&root, &["commit", "-q", "-m", "bench"]);
        let agent = base.join("agent.sh");
        script(&agent, "exec sleep 3600");
        let socket = format!("hydra-bench-{what}-{}", std::process::id());
        let tmux = Arc::new(Tmux::new(TmuxConfig::with_socket_name(&socket)));
        let orch = hydra_orchestrator::Builder::from_env()
            .project(&root)
            .multiplexer(tmux.clone())
            .build()
            .expect("orchestrator");
        let config = SessionConfig {
            agent_cli: agent.to_string_lossy().into_owned(),
            prd_path: root.join("prd.json"),
            working_dir: root.clone(),
            max_duration: Duration::from_secs(7200),
            max_iterations: 1,
            ..SessionConfig::default()
        };
        BenchProject {
            base,
            root,
            socket,
            tmux,
            orch,
            config,
            server_pid: std::sync::OnceLock::new(),
            monitor_pid: std::sync::Mutex::new(None),
        }
    }

    /// A second orchestrator on the same project and server, set up as a long-lived process's
    /// (`Builder::long_lived`): its snapshots through a control-mode client, its unchanged
    /// records and reports not read again.
    pub fn long_lived_orchestrator(&self) -> Orchestrator {
        hydra_orchestrator::Builder::from_env()
            .project(&self.root)
            .tmux_socket(&self.socket)
            .long_lived(true)
            .build()
            .expect("orchestrator")
    }

    /// A PRD of its own for one session (sessions of one PRD split its stories).
    pub fn prd(&self) -> PathBuf {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = self.base.join("prds");
        std::fs::create_dir_all(&dir).expect("prds");
        let path = dir.join(format!("prd-{}.json", N.fetch_add(1, Ordering::SeqCst)));
        std::fs::copy(self.root.join("prd.json"), &path).expect("prd");
        path
    }

    /// Starts one sleeping session (on a PRD of its own).
    pub fn spawn(&self) -> SessionId {
        let config = SessionConfig {
            prd_path: self.prd(),
            ..self.config.clone()
        };
        self.orch.spawn(config).expect("spawn")
    }

    /// `hydra ARGS` for this project, its trust file private to the benchmark, free to use the
    /// project's monitor whatever the caller's `HYDRA_NO_MONITOR`.
    pub fn hydra(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_hydra"));
        c.args(args)
            .arg("--project")
            .arg(&self.root)
            .args(["--tmux-socket", &self.socket])
            .env("XDG_STATE_HOME", self.base.join("state"))
            .env_remove("HYDRA_TRUST_ALL")
            .env_remove("HYDRA_NO_MONITOR");
        c
    }

    /// Starts `hydra monitor` in the background, waits until it answers `hydra ls`, then
    /// until its start-up work is done (no CPU used for [`SETTLED`], at most 5 s): until
    /// then its first look and its watches slowed the commands timed first (at N = 500 the
    /// first three answers took 41.8, 17.3 and 12.9 ms, the rest 8.1 to 12.9).
    /// [`quiet_server`](Self::quiet_server) waits for it too while it runs.
    pub fn start_monitor(&self) {
        let out = self.hydra(&["monitor", "--detach"]).output().expect("hydra monitor");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let socket = self.root.join(".hydra/orchestrator/monitor.sock");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !socket.exists() {
            assert!(std::time::Instant::now() < deadline, "the monitor's socket");
            std::thread::sleep(Duration::from_millis(5));
        }
        let pid = std::fs::read_to_string(self.root.join(".hydra/orchestrator/monitor.pid"))
            .ok()
            .and_then(|p| p.trim().parse().ok());
        *self.monitor_pid.lock().expect("monitor pid") = pid;
        if let Some(pid) = pid {
            wait_idle(&[pid], SETTLED, Duration::from_secs(5));
        }
    }

    /// A tmux adapter on this project's server that takes its snapshots through a control-mode
    /// client (as a long-lived process's does).
    pub fn control_tmux(&self) -> Tmux {
        Tmux::new(TmuxConfig {
            control_tag: Some(self.orch.project_tag().to_owned()),
            ..TmuxConfig::with_socket_name(&self.socket)
        })
    }

    /// Stops the background monitor.
    pub fn stop_monitor(&self) {
        *self.monitor_pid.lock().expect("monitor pid") = None;
        let out = self
            .hydra(&["monitor", "--stop"])
            .output()
            .expect("hydra monitor --stop");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    /// What the loop does when its agent blocks: its report, replaced in one rename.
    pub fn write_final_status(&self, id: &SessionId) {
        let path = self.orch.runtime_layout(id).report_file();
        let mut v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).expect("status.json")).expect("json");
        v["status"] = "blocked".into();
        v["reason"] = "bench".into();
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, v.to_string()).expect("write");
        std::fs::rename(&tmp, &path).expect("rename");
    }

    /// Waits until this project's tmux server, and the background monitor while one runs,
    /// have used no CPU for [`QUIET`] (at most 200 ms).
    ///
    /// A tmux server goes on working for about 2 ms after a client has left (at 500 sessions
    /// on this machine: its event loop polls every pane's terminal on each turn), so a command
    /// timed right after another pays for the one before; a monitor finishes its answer (and
    /// frees it) after the client has read it. Each timed command starts on a quiet server
    /// instead, as a person's command does. Without `/proc` it waits [`QUIET`] plus 5 ms.
    pub fn quiet_server(&self) {
        let server = *self.server_pid.get_or_init(|| self.tmux.server_pid());
        let monitor = *self.monitor_pid.lock().expect("monitor pid");
        let pids: Vec<u32> = server.into_iter().chain(monitor).collect();
        wait_idle(&pids, QUIET, Duration::from_millis(200));
    }

    /// Waits until the session's loop has written its first report (see [`wait_file`]).
    pub fn wait_loop(&self, id: &SessionId) {
        wait_file(&self.orch.runtime_layout(id).report_file());
    }
}

impl Drop for BenchProject {
    fn drop(&mut self) {
        let _ = self.tmux.kill_server();
        let _ = std::fs::remove_dir_all(&self.base);
    }
}
