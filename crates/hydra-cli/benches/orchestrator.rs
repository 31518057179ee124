//! The orchestrator benchmark: on a private tmux server with a trivial long-running agent, it
//! measures spawn latency (with and without a worktree, and until the loop runs), `list()`,
//! `health_check()` and `hydra ls --json` at N live sessions against the per-session strategy
//! (one tmux call per session), tmux calls per refresh, peak RSS, and the caller's cost of a
//! hydra-mail publish. Prints a table and writes `target/hydra-bench.json`.
//!
//! Run: `cargo bench -p hydra-cli` (`HYDRA_BENCH_QUICK=1` for N = 10 only; `HYDRA_BENCH_MAX_N`
//! to change the largest N, default 500; the RSS probe uses N = 1,000 unless quick).

use hydra_orchestrator::adapters::{MailBus, Tmux, TmuxConfig};
use hydra_orchestrator::{Channel, EventBus, LifecycleEvent, Orchestrator, SessionConfig, SessionId, Timestamp};
use orch_mail::test_daemon::TestDaemon;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn stats(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let p95 = v[((v.len() as f64 * 0.95) as usize).min(v.len() - 1)];
    (ms(v[v.len() / 2]), ms(p95))
}

fn median(v: Vec<Duration>) -> f64 {
    stats(v).0
}

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@example.invalid",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(ok, "git {args:?}");
}

fn kib(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

struct Bench {
    root: PathBuf,
    socket: String,
    tmux: Arc<Tmux>,
    orch: Orchestrator,
    config: SessionConfig,
    ids: Vec<SessionId>,
    spawned: usize,
}

impl Bench {
    /// A PRD of its own for the next session (sessions of one PRD split its stories).
    fn prd(&self) -> PathBuf {
        let dir = self.root.parent().unwrap_or(&self.root).join("prds");
        std::fs::create_dir_all(&dir).expect("prds");
        let path = dir.join(format!("prd-{}.json", self.spawned));
        std::fs::copy(self.root.join("prd.json"), &path).expect("prd");
        path
    }

    fn spawn_one(&mut self) -> Duration {
        let config = SessionConfig {
            prd_path: self.prd(),
            ..self.config.clone()
        };
        self.spawned += 1;
        let t = Instant::now();
        let id = self.orch.spawn(config).expect("spawn");
        let d = t.elapsed();
        self.ids.push(id);
        d
    }

    fn ls_process(&self) -> (Duration, Option<String>) {
        let t = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_hydra"))
            .args(["ls", "--json", "--project"])
            .arg(&self.root)
            .args(["--tmux-socket", &self.socket])
            .env("HYDRA_REPORT_RSS", "1")
            .output()
            .expect("hydra ls");
        let d = t.elapsed();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let rss = String::from_utf8_lossy(&out.stderr)
            .lines()
            .find_map(|l| l.strip_prefix("hydra: peak rss ").map(str::to_owned));
        (d, rss)
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        let _ = self.tmux.kill_server();
        let _ = std::fs::remove_dir_all(self.root.parent().unwrap_or(&self.root));
    }
}

fn main() {
    let quick = std::env::var_os("HYDRA_BENCH_QUICK").is_some();
    let max_n: usize = std::env::var("HYDRA_BENCH_MAX_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let sizes: Vec<usize> = if quick {
        vec![10]
    } else {
        [10, 100, 500].into_iter().filter(|n| *n <= max_n).collect()
    };
    let rss_n = if quick { 10 } else { 1000 };
    let base = std::env::temp_dir().join(format!("hydra-bench-{}", std::process::id()));
    let root = base.join("project");
    std::fs::create_dir_all(&root).expect("dir");
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
    std::fs::write(&agent, "#!/bin/sh\nexec sleep 3600\n").expect("agent");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let socket = format!("hydra-bench-{}", std::process::id());
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
    let mut b = Bench {
        root: root.clone(),
        socket: socket.clone(),
        tmux,
        orch,
        config,
        ids: Vec::new(),
        spawned: 0,
    };
    let mut json = serde_json::Map::new();
    println!(
        "hydra-orchestrator benchmark ({} cores, tmux -L {socket}, agent: sleep 3600)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    // 1. spawn latency and time until the loop runs, without and with a worktree.
    let rounds = if quick { 5 } else { 30 };
    let mut spawn = Vec::new();
    let mut loop_up = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        spawn.push(b.spawn_one());
        let status = b.orch.runtime_layout(b.ids.last().expect("id")).report_file();
        while !status.exists() {
            std::thread::sleep(Duration::from_micros(200));
        }
        loop_up.push(t.elapsed());
    }
    let (spawn_med, spawn_p95) = stats(spawn);
    let (loop_med, loop_p95) = stats(loop_up);
    let wt_rounds = if quick { 3 } else { 10 };
    let mut wt = Vec::new();
    for _ in 0..wt_rounds {
        let prd = b.prd();
        b.spawned += 1;
        let t = Instant::now();
        let id = b
            .orch
            .spawn(SessionConfig {
                use_worktree: true,
                prd_path: prd,
                ..b.config.clone()
            })
            .expect("spawn wt");
        wt.push(t.elapsed());
        b.orch
            .kill_with(&id, "bench", hydra_orchestrator::KillOptions::forced())
            .expect("kill");
    }
    let (wt_med, wt_p95) = stats(wt);
    println!("\nspawn()                       median {spawn_med:7.2} ms   p95 {spawn_p95:7.2} ms");
    println!("spawn() until the loop runs   median {loop_med:7.2} ms   p95 {loop_p95:7.2} ms");
    println!("spawn() with a worktree       median {wt_med:7.2} ms   p95 {wt_p95:7.2} ms");
    json.insert(
        "spawn_ms".into(),
        serde_json::json!({"median": spawn_med, "p95": spawn_p95}),
    );
    json.insert(
        "spawn_until_loop_runs_ms".into(),
        serde_json::json!({"median": loop_med, "p95": loop_p95}),
    );
    json.insert(
        "spawn_worktree_ms".into(),
        serde_json::json!({"median": wt_med, "p95": wt_p95}),
    );
    for id in std::mem::take(&mut b.ids) {
        b.orch.kill(&id, "bench").expect("kill");
    }
    b.orch.prune(false).expect("prune the spawn-phase sessions");

    // 2-4. list / health_check / hydra ls at N, against one tmux call per session.
    println!(
        "\n{:>5} {:>10} {:>14} {:>16} {:>18} {:>9} {:>12}",
        "N", "list (ms)", "health (ms)", "hydra ls (ms)", "per-session (ms)", "ratio", "tmux calls"
    );
    let mut rows = Vec::new();
    for &n in &sizes {
        while b.ids.len() < n {
            b.spawn_one();
        }
        let reps = if n >= 500 { 7 } else { 11 };
        let before = b.tmux.calls();
        let list = median(
            (0..reps)
                .map(|_| {
                    let t = Instant::now();
                    let l = b.orch.list();
                    assert_eq!(l.len(), n);
                    t.elapsed()
                })
                .collect(),
        );
        let list_calls = (b.tmux.calls() - before) as f64 / reps as f64;
        let before = b.tmux.calls();
        let health = median(
            (0..reps)
                .map(|_| {
                    let t = Instant::now();
                    b.orch.health_check().expect("health");
                    t.elapsed()
                })
                .collect(),
        );
        let health_calls = (b.tmux.calls() - before) as f64 / reps as f64;
        let ls = median((0..reps).map(|_| b.ls_process().0).collect());
        let names: Vec<String> = b.ids.iter().map(SessionId::tmux_name).collect();
        let per = median(
            (0..3)
                .map(|_| {
                    let t = Instant::now();
                    for nm in &names {
                        assert!(b.tmux.has_session(nm).expect("has"));
                    }
                    t.elapsed()
                })
                .collect(),
        );
        println!(
            "{n:>5} {list:>10.2} {health:>14.2} {ls:>16.2} {per:>18.2} {:>8.0}x {:>6.0} / {:<4.0}",
            per / health,
            list_calls,
            health_calls
        );
        rows.push(serde_json::json!({
            "n": n, "list_ms": list, "health_check_ms": health, "hydra_ls_json_ms": ls,
            "per_session_strategy_ms": per, "ratio_per_session_to_health_check": per / health,
            "tmux_calls_per_list": list_calls, "tmux_calls_per_health_check": health_calls,
        }));
    }
    json.insert("at_n".into(), serde_json::Value::Array(rows));

    // 5. Peak RSS at rss_n sessions: this process (an orchestrator), `hydra ls`, tmux server.
    while b.ids.len() < rss_n {
        b.spawn_one();
    }
    let list = median(
        (0..3)
            .map(|_| {
                let t = Instant::now();
                b.orch.list();
                t.elapsed()
            })
            .collect(),
    );
    let own = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| kib(&s, "VmHWM:"));
    let (ls_time, ls_rss) = b.ls_process();
    let server_pid = Command::new("tmux")
        .args(["-L", &socket, "display-message", "-p", "#{pid}"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let server_rss = server_pid
        .and_then(|p| std::fs::read_to_string(format!("/proc/{p}/status")).ok())
        .and_then(|s| kib(&s, "VmRSS:"));
    println!(
        "\nat N = {rss_n}: list() {list:.2} ms, hydra ls --json {:.2} ms",
        ms(ls_time)
    );
    println!(
        "peak RSS: bench process (orchestrator library) {} KiB, `hydra ls --json` {}, tmux server {} KiB",
        own.map_or("n/a".into(), |v| v.to_string()),
        ls_rss.clone().unwrap_or_else(|| "n/a".into()),
        server_rss.map_or("n/a".into(), |v| v.to_string())
    );
    json.insert("rss".into(), serde_json::json!({"n": rss_n, "bench_process_kib": own, "hydra_ls_peak": ls_rss, "tmux_server_kib": server_rss, "list_ms": list, "hydra_ls_json_ms": ms(ls_time)}));

    // 6. hydra-mail publish cost as the caller sees it, daemon up and down.
    let sock = base.join("mail.sock");
    let ev = LifecycleEvent::new(Channel::Iteration, &SessionId("bench01".into()), Timestamp(0)).with("iteration", 3);
    let n_pub = if quick { 200 } else { 5000 };
    let up = {
        let _daemon = TestDaemon::start(&sock).expect("daemon");
        let bus = MailBus::new(&sock);
        let v: Vec<Duration> = (0..n_pub)
            .map(|_| {
                let t = Instant::now();
                bus.publish(&ev).expect("publish");
                t.elapsed()
            })
            .collect();
        let _ = bus.flush(Duration::from_secs(30));
        median(v) * 1000.0
    };
    let down = {
        let bus = MailBus::with_options(base.join("absent.sock"), Default::default());
        median(
            (0..n_pub)
                .map(|_| {
                    let t = Instant::now();
                    bus.publish(&ev).expect("publish");
                    t.elapsed()
                })
                .collect(),
        ) * 1000.0
    };
    println!("\nhydra-mail publish (caller side): daemon up {up:.1} us, daemon down {down:.1} us (median of {n_pub})");
    json.insert(
        "publish_us".into(),
        serde_json::json!({"daemon_up": up, "daemon_down": down}),
    );

    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/hydra-bench.json");
    if std::fs::write(
        &out,
        serde_json::to_string_pretty(&serde_json::Value::Object(json)).unwrap_or_default(),
    )
    .is_ok()
    {
        println!("\nfigures written to {}", out.display());
    }
}
