//! What the CLI's test binaries share: a temp git project with its own tmux server, its own
//! trust file (so no test touches the user's), and a `hydra` to run in it.

#![allow(dead_code, reason = "each test binary uses its own part of this module")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A temp project (a git repository) with a private tmux server and state directory.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub socket: String,
}

impl Env {
    /// A new project.
    pub fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = tempfile::tempdir().expect("tmp");
        let root = dir.path();
        git(root, &["init", "-q", "-b", "main"]);
        let env = Env {
            dir,
            socket: format!(
                "hydra-cli-it-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::SeqCst)
            ),
        };
        // Commands need a project: `hydra init` makes one (as a user does first).
        let out = env.hydra(&["init"]);
        assert!(out.status.success(), "init: {}", String::from_utf8_lossy(&out.stderr));
        env
    }
    /// The project root.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }
    /// Runs `hydra args` in this project.
    pub fn hydra(&self, args: &[&str]) -> Output {
        self.hydra_stdin(args, "")
    }
    /// Runs `hydra args` with `stdin`.
    pub fn hydra_stdin(&self, args: &[&str], stdin: &str) -> Output {
        self.hydra_env(args, stdin, &[])
    }

    /// Runs `hydra args` with `stdin` and extra environment.
    pub fn hydra_env(&self, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_hydra"))
            .args(args)
            .args([
                "--project",
                self.root().to_str().expect("utf8"),
                "--tmux-socket",
                &self.socket,
            ])
            .env_remove("HYDRA_TMUX_SOCKET")
            .env_remove("HYDRA_TRUST_ALL")
            // No spawn starts the project's monitor behind the test's back.
            .env("HYDRA_NO_MONITOR", "1")
            .env("XDG_STATE_HOME", self.state())
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("hydra runs");
        use std::io::Write;
        c.stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write");
        c.wait_with_output().expect("wait")
    }
    /// Runs `hydra args`, which must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.hydra(args);
        assert!(
            out.status.success(),
            "hydra {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf8")
    }
    /// A copy of the project's `prd.json` for one session (sessions of one PRD split its
    /// stories; these tests want each to have all of them).
    pub fn prd(&self) -> String {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = self.root().join(".hydra/test-prds");
        std::fs::create_dir_all(&dir).expect("prds");
        let path = dir.join(format!("prd-{}.json", N.fetch_add(1, Ordering::SeqCst)));
        std::fs::copy(self.root().join("prd.json"), &path).expect("copy prd.json");
        path.to_str().expect("utf8").to_owned()
    }
    /// A PRD of two stories of its own for one session; its path.
    pub fn prd_file(&self) -> String {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = self.root().join(".hydra/test-prds");
        std::fs::create_dir_all(&dir).expect("prds");
        let path = dir.join(format!("two-{}.json", N.fetch_add(1, Ordering::SeqCst)));
        std::fs::write(
            &path,
            r#"{"userStories":[{"id":"1","title":"a","passes":false},{"id":"2","title":"b","passes":false}]}"#,
        )
        .expect("prd");
        path.to_str().expect("utf8").to_owned()
    }
    /// Spawns the built-in demo agent on a copy of `prd.json`; its id.
    pub fn spawn_demo(&self, extra: &[&str]) -> String {
        let prd = self.prd();
        let mut args = vec![
            "spawn",
            "--agent",
            env!("CARGO_BIN_EXE_hydra"),
            "--flags",
            "demo-agent",
            "--prd",
            prd.as_str(),
        ];
        args.extend(extra);
        self.ok(&args).trim().to_owned()
    }
    /// `hydra ls --all --json`: every session, ended ones too.
    pub fn ls(&self) -> Vec<serde_json::Value> {
        serde_json::from_str::<serde_json::Value>(&self.ok(&["ls", "--all", "--json"]))
            .expect("json")
            .as_array()
            .expect("array")
            .clone()
    }
}

impl Env {
    /// The state directory standing for the user's (`XDG_STATE_HOME`), outside the project.
    pub fn state(&self) -> PathBuf {
        self.dir.path().with_extension("state")
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        use hydra_orchestrator::adapters::{Tmux, TmuxConfig};
        let _ = Tmux::new(TmuxConfig::with_socket_name(&self.socket)).kill_server();
        let _ = std::fs::remove_dir_all(self.state());
    }
}

/// Polls `f` until it gives a value (30 s at most).
pub fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `git args` in `dir` with a test identity, which must succeed; its stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.invalid",
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
