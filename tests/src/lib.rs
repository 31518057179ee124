//! Helpers of the end-to-end suites: a temp project with its own private tmux server (killed
//! on drop, even when a test panics), scripted agents, and deadline-bounded polling.

use hydra_orchestrator::adapters::{Tmux, TmuxConfig};
use hydra_orchestrator::{Orchestrator, SessionConfig, SessionId, SessionState};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A sample PRD of three stories.
pub const PRD: &str = r#"{"title":"t","userStories":[
 {"id":"US-1","title":"one","passes":false},
 {"id":"US-2","title":"two","passes":false},
 {"id":"US-3","title":"three","passes":false}]}"#;

/// A temporary git repository, a private tmux server, and orchestrators on both.
pub struct Project {
    /// The temp dir (the project root is inside it).
    pub dir: tempfile::TempDir,
    /// The project root (a git repository with one commit).
    pub root: PathBuf,
    /// The private tmux socket name.
    pub socket: String,
    tmux: Tmux,
}

impl Project {
    /// A new project with `prd.json`, committed, and its own tmux server name.
    pub fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("project");
        std::fs::create_dir(&root).expect("mkdir");
        let root = root.canonicalize().expect("canonical");
        std::fs::write(root.join("prd.json"), PRD).expect("prd");
        std::fs::write(root.join("README.md"), "# test\n").expect("readme");
        git(&root, &["init", "-q", "-b", "main"]);
        git(&root, &["add", "README.md"]);
        git(&root, &["commit", "-q", "-m", "init"]);
        // A hydra project (what `hydra init` makes first).
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(root.join(".hydra"))
                .expect(".hydra");
        }
        let socket = format!("hydra-e2e-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst));
        let tmux = Tmux::new(TmuxConfig::with_socket_name(&socket));
        Project {
            dir,
            root,
            socket,
            tmux,
        }
    }

    /// An orchestrator on this project and tmux server.
    pub fn orch(&self) -> Orchestrator {
        hydra_orchestrator::Builder::from_env()
            .project(&self.root)
            .tmux_socket(self.socket.clone())
            .reconcile(true)
            .build()
            .expect("orchestrator")
    }

    /// The tmux adapter of the private server.
    pub fn tmux(&self) -> &Tmux {
        &self.tmux
    }

    /// `hydra args` (the binary `bin`) on this project and server, with the user's state
    /// directory (the trust file) inside the test's temp dir, and `HYDRA_NO_MONITOR=1`: no
    /// spawn starts the project's monitor behind the test's back (a test that wants `ls`
    /// answered by a monitor it started removes the variable).
    pub fn hydra_cmd(&self, bin: &str, args: &[&str]) -> Command {
        let mut c = Command::new(bin);
        c.args(args)
            .arg("--project")
            .arg(&self.root)
            .args(["--tmux-socket", &self.socket])
            .env_remove("HYDRA_TMUX_SOCKET")
            .env_remove("HYDRA_TRUST_ALL")
            .env("HYDRA_NO_MONITOR", "1")
            .env("XDG_STATE_HOME", self.dir.path().join("state"))
            .stdin(std::process::Stdio::null());
        c
    }

    /// Runs [`hydra_cmd`](Self::hydra_cmd) to its end.
    pub fn hydra(&self, bin: &str, args: &[&str]) -> Output {
        self.hydra_cmd(bin, args).output().expect("hydra runs")
    }

    /// Runs `hydra args`, which must succeed; its stdout.
    #[track_caller]
    pub fn hydra_ok(&self, bin: &str, args: &[&str]) -> String {
        succeeded(self.hydra(bin, args), args)
    }

    /// `hydra spawn --agent AGENT --prd <a PRD of its own> EXTRA...`, as [`hydra_cmd`](Self::hydra_cmd)
    /// makes it.
    pub fn spawn_cmd(&self, bin: &str, agent: &Path, extra: &[&str]) -> Command {
        let prd = self.prd();
        let mut args = vec![
            "spawn",
            "--agent",
            agent.to_str().expect("utf8"),
            "--prd",
            prd.to_str().expect("utf8"),
        ];
        args.extend_from_slice(extra);
        self.hydra_cmd(bin, &args)
    }

    /// [`spawn_cmd`](Self::spawn_cmd), which must succeed: the new session's id.
    #[track_caller]
    pub fn spawn_agent(&self, bin: &str, agent: &Path, extra: &[&str]) -> String {
        let out = self.spawn_cmd(bin, agent, extra).output().expect("hydra runs");
        succeeded(out, &[&["spawn"], extra].concat()).trim().to_owned()
    }

    /// Writes an executable bash script agent named `name` and returns its path.
    pub fn agent(&self, name: &str, body: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        write_script(&path, &format!("#!/usr/bin/env bash\n{body}\n"));
        path
    }

    /// A config for `agent` on this project, with a short loop delay.
    /// A PRD of its own for one session (a copy of the project's, outside the checkout):
    /// sessions on one PRD split its stories, and these tests want each session to have all.
    pub fn prd(&self) -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = self.dir.path().join("prds");
        std::fs::create_dir_all(&dir).expect("prds dir");
        let path = dir.join(format!("prd-{}.json", N.fetch_add(1, Ordering::SeqCst)));
        std::fs::write(&path, PRD).expect("prd");
        path
    }

    /// A spawn request for `agent`, on a PRD of its own (see [`Project::prd`]).
    pub fn config(&self, agent: &Path) -> SessionConfig {
        SessionConfig {
            agent_cli: agent.to_string_lossy().into_owned(),
            prd_path: self.prd(),
            working_dir: self.root.clone(),
            loop_delay: Duration::from_millis(50),
            max_duration: Duration::from_secs(600),
            // These agents (metronomes, sleepers) make no progress by design: no breaker.
            no_progress_limit: 0,
            ..SessionConfig::default()
        }
    }
}

impl Default for Project {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = self.tmux.kill_server();
    }
}

/// Writes an executable script without ever holding it open for writing in this process.
///
/// A file this multi-threaded test process had open for writing can be inherited, for a moment,
/// by a child another thread is forking, and exec'ing the file then fails with "Text file busy"
/// (seen in CI). So the text goes to a side file and `cp`, a child process, writes the script.
pub fn write_script(path: &Path, text: &str) {
    let side = path.with_extension("src");
    std::fs::write(&side, text).expect("script text");
    let ok = Command::new("cp")
        .arg(&side)
        .arg(path)
        .status()
        .expect("cp runs")
        .success();
    assert!(ok, "cp {} failed", path.display());
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// Runs git in `dir` with a fixed identity; panics on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=e2e",
            "-c",
            "user.email=e2e@example.invalid",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The stdout of `hydra ARGS`, which must have succeeded (its stderr says why not).
#[track_caller]
fn succeeded(out: Output, args: &[&str]) -> String {
    assert!(
        out.status.success(),
        "hydra {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `f` every 20 ms until it returns `Some`, failing after `secs` seconds.
#[track_caller]
pub fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {secs}s waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Refreshes until `id` is in a state `pred` accepts; returns it.
#[track_caller]
pub fn wait_state(
    orch: &Orchestrator,
    id: &SessionId,
    secs: u64,
    what: &str,
    pred: impl Fn(&SessionState) -> bool,
) -> SessionState {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let st = orch.status(id).expect("status").state;
        if pred(&st) {
            return st;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; last state {st:?}"
        );
        std::thread::sleep(Duration::from_millis(30));
    }
}

/// The loop's last report in the runtime directory `layout`, if readable.
pub fn report(layout: &hydra_orchestrator::RuntimeLayout) -> Option<hydra_orchestrator::LoopReport> {
    hydra_orchestrator::LoopReport::parse(&std::fs::read(layout.report_file()).ok()?).ok()
}

/// Whether any process of group `pgid` is alive (zombies, exited but not yet reaped, are not).
pub fn group_alive(pgid: u32) -> bool {
    use hydra_orchestrator::Host;
    hydra_orchestrator::adapters::PosixHost::default().group_alive(pgid)
}
