//! The orchestrator benchmark: on a private tmux server with a trivial long-running agent, it
//! measures, at N live sessions, `hydra ls --json`, `hydra status ID`, `hydra pause ID` and
//! `hydra resume ID` as whole processes beside the floor (one bare `tmux list-panes -a` with
//! the snapshot's format, on the same server, in the same run; each command, the floor's too,
//! started on a quiet tmux server), beside the relay (the least a process that runs that tmux
//! command as a tmux process and prints `ls`'s answer can cost: see `relay`), and the same
//! snapshot through a control-mode client already connected (the tmux adapter of a long-lived
//! process: the server's own share of the floor), `list()` and `health_check()` in the
//! library against one tmux call per session (and the longest time one of those refreshes
//! held the store's lock); spawn latency (back to back and one at a time on a settled
//! machine, until the loop runs, and with a worktree) beside its floor (a bare `tmux
//! new-session` whose program writes a file, on the same server), peak RSS of `hydra ls
//! --json`, and the caller's cost of a hydra-mail publish. Prints tables and writes
//! `target/hydra-bench.json`.
//!
//! Run: `cargo bench -p hydra-cli --bench orchestrator` (`HYDRA_BENCH_QUICK=1`: N = 10 only,
//! and it fails when the median of `hydra ls --json` exceeds 4x the floor, a ratio so that a
//! slow machine does not fail it; `HYDRA_BENCH_MAX_N` caps N, default 1,000).

mod common;

use common::{stats, status_kib, tmux_on, tmux_version, wait_file, BenchProject};
use hydra_orchestrator::adapters::MailBus;
use hydra_orchestrator::Multiplexer;
use hydra_orchestrator::{Channel, EventBus, LifecycleEvent, SessionConfig, SessionId, Timestamp};
use orch_mail::test_daemon::TestDaemon;
use std::process::Command;
use std::time::{Duration, Instant};

/// The largest ratio of `hydra ls --json` to the floor that quick mode accepts.
const QUICK_MAX_RATIO: f64 = 4.0;

/// The pause before each one-at-a-time spawn: the session before has written its first
/// report by then and, 150 ms later, started its agent (a `sleep`) and gone idle.
const SETTLE: Duration = Duration::from_millis(150);

/// Runs `cmd`, which must succeed; returns how long it took and its stderr.
fn timed(mut cmd: Command) -> (Duration, String) {
    let t = Instant::now();
    let out = cmd.output().expect("run");
    let d = t.elapsed();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{cmd:?}: {err}");
    (d, err)
}

/// Median and p95 of `reps` runs of `f`.
fn sample(reps: usize, mut f: impl FnMut() -> Duration) -> (f64, f64) {
    stats((0..reps).map(|_| f()).collect())
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or("?".to_owned(), |k| format!("{:.0} GiB", k as f64 / 1024.0 / 1024.0));
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_default();
    format!("{cores} cores ({cpu}), {mem}, {}", tmux_version())
}

/// Set (to `SOCKET BYTES`) in the environment of this benchmark's own executable when it runs
/// as the relay: see [`relay`].
const RELAY: &str = "HYDRA_BENCH_RELAY";

/// The least a command that asks tmux through a tmux process can cost: a process (this
/// executable, about as large as `hydra`) that runs the floor's `tmux list-panes` as its child,
/// as `hydra ls` did before it spoke tmux's client protocol itself, and prints as many bytes
/// as `hydra ls --json` printed, and nothing else: no arguments parsed, no record read, no
/// session judged.
fn relay(spec: &str) {
    use std::io::Write;
    let (socket, bytes) = spec.split_once(' ').expect("SOCKET BYTES");
    let bytes: usize = bytes.parse().expect("BYTES");
    let out = Command::new("tmux")
        .args(["-L", socket, "list-panes", "-a", "-F", orch_tmux::SNAPSHOT_FORMAT])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("tmux");
    assert!(out.status.success(), "tmux list-panes");
    let mut stdout = std::io::stdout().lock();
    let chunk = vec![b' '; 64 * 1024];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len());
        stdout.write_all(&chunk[..n]).expect("stdout");
        left -= n;
    }
}

/// The floor of a spawn: a bare `tmux new-session` on the benchmark's server whose program,
/// bash running a two-line script, writes a file and sleeps; the time until the file exists,
/// watched as a loop's first report is ([`wait_file`]). What a spawn does
/// beyond it: the record under the store's lock, the runtime directory, the session's
/// environment and options, and the loop's own start.
fn floor_spawn(b: &BenchProject, script: &std::path::Path, k: usize) -> Duration {
    let file = b.base.join(format!("floor-{k}.started"));
    let name = format!("bench-floor-{k}");
    let script = script.to_string_lossy();
    let file_arg = file.to_string_lossy();
    let t = Instant::now();
    tmux_on(
        &b.socket,
        &["new-session", "-d", "-s", &name, "bash", &script, &file_arg],
    );
    wait_file(&file);
    t.elapsed()
}

/// The peak RSS (kB) `hydra` printed on stderr with `HYDRA_REPORT_RSS` set.
fn peak_rss(stderr: &str) -> Option<u64> {
    stderr.lines().find_map(|l| {
        l.strip_prefix("hydra: peak rss ")
            .and_then(|v| v.trim_end_matches(" kB").trim().parse::<u64>().ok())
    })
}

/// Drops `path`'s pages from the page cache (written back first), so that the next process
/// reads them from disk; `false` when that could not be done (no GNU `dd`).
fn evict_from_page_cache(path: &std::path::Path) -> bool {
    let synced = Command::new("sync").arg(path).status().is_ok_and(|s| s.success());
    let input = format!("if={}", path.display());
    synced
        && Command::new("dd")
            .args([input.as_str(), "iflag=nocache", "count=0", "status=none"])
            .status()
            .is_ok_and(|s| s.success())
}

fn main() {
    if let Ok(spec) = std::env::var(RELAY) {
        return relay(&spec);
    }
    let quick = std::env::var_os("HYDRA_BENCH_QUICK").is_some();
    let max_n: usize = std::env::var("HYDRA_BENCH_MAX_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let sizes: Vec<usize> = if quick {
        vec![10]
    } else {
        [10, 100, 500, 1000].into_iter().filter(|n| *n <= max_n).collect()
    };
    let b = BenchProject::new("orch");
    let mut ids: Vec<SessionId> = Vec::new();
    let mut json = serde_json::Map::new();
    let machine = machine();
    println!(
        "hydra-orchestrator benchmark: {machine}; tmux -L {}; agent: sleep 3600",
        b.socket
    );
    json.insert("machine".into(), machine.into());

    // 1. spawn latency and time until the loop runs, without and with a worktree, beside the
    // floor: a bare `tmux new-session` on the same server (see `floor_spawn`).
    // Back to back (each spawn while the one before starts its first iteration: its git
    // calls and its agent compete for the two cores), and one at a time on a settled machine
    // (the latency of one spawn: a pause after each until the session before is idle). The
    // spawns and the floor's alternate in blocks, so a machine that slows down during the run
    // slows both.
    let rounds = if quick { 5 } else { 30 };
    let blocks = if quick { 1 } else { 3 };
    let floor_script = b.base.join("floor.sh");
    std::fs::write(&floor_script, "printf started > \"$1\"\nexec sleep 3600\n").expect("floor script");
    let mut floor_sessions = 0;
    let mut spawn = Vec::new();
    let mut loop_up = Vec::new();
    let mut settled_spawn = Vec::new();
    let mut settled_loop = Vec::new();
    let mut floor = Vec::new();
    let mut settled_floor = Vec::new();
    for settled in [false, true] {
        for _ in 0..blocks {
            for _ in 0..rounds / blocks {
                if settled {
                    std::thread::sleep(SETTLE);
                }
                let t = Instant::now();
                let id = b.spawn();
                let made = t.elapsed();
                b.wait_loop(&id);
                let up = t.elapsed();
                if settled {
                    settled_spawn.push(made);
                    settled_loop.push(up);
                } else {
                    spawn.push(made);
                    loop_up.push(up);
                }
                ids.push(id);
            }
            for _ in 0..rounds / blocks {
                if settled {
                    std::thread::sleep(SETTLE);
                }
                floor_sessions += 1;
                let up = floor_spawn(&b, &floor_script, floor_sessions);
                if settled {
                    settled_floor.push(up)
                } else {
                    floor.push(up)
                }
            }
        }
    }
    // All in one tmux command.
    let targets: Vec<String> = (1..=floor_sessions).map(|k| format!("=bench-floor-{k}")).collect();
    let mut kill: Vec<&str> = Vec::new();
    for t in &targets {
        if !kill.is_empty() {
            kill.push(";");
        }
        kill.extend(["kill-session", "-t", t]);
    }
    tmux_on(&b.socket, &kill);
    // The worktree spawns are killed at once; their sessions are not kept.
    let mut wt = Vec::new();
    for _ in 0..(if quick { 3 } else { 10 }) {
        let config = SessionConfig {
            use_worktree: true,
            prd_path: b.prd(),
            ..b.config.clone()
        };
        let t = Instant::now();
        let id = b.orch.spawn(config).expect("spawn wt");
        wt.push(t.elapsed());
        b.orch
            .kill_with(&id, "bench", hydra_orchestrator::KillOptions::forced())
            .expect("kill");
    }
    let (loop_up, settled_loop) = (stats(loop_up), stats(settled_loop));
    let (floor, settled_floor) = (stats(floor), stats(settled_floor));
    let rows = [
        ("spawn(), back to back", "spawn_ms", stats(spawn)),
        ("  until the loop runs", "spawn_until_loop_runs_ms", loop_up),
        ("  floor: tmux new-session", "spawn_floor_ms", floor),
        ("spawn(), one at a time", "spawn_one_at_a_time_ms", stats(settled_spawn)),
        (
            "  until the loop runs",
            "spawn_one_at_a_time_until_loop_runs_ms",
            settled_loop,
        ),
        (
            "  floor: tmux new-session",
            "spawn_floor_one_at_a_time_ms",
            settled_floor,
        ),
        ("spawn() with a worktree", "spawn_worktree_ms", stats(wt)),
    ];
    println!();
    for (label, key, (med, p95)) in rows {
        println!("{label:<30} median {med:7.2} ms   p95 {p95:7.2} ms");
        json.insert(key.into(), serde_json::json!({"median": med, "p95": p95}));
    }
    for (what, up, floor) in [
        ("back to back", loop_up, floor),
        ("one at a time", settled_loop, settled_floor),
    ] {
        println!(
            "until the loop runs, {what}: {:.2}x the floor (median), {:.2} ms above it",
            up.0 / floor.0,
            up.0 - floor.0
        );
    }
    for id in ids.drain(..) {
        b.orch.kill(&id, "bench").expect("kill");
    }
    b.orch.prune(false).expect("prune the spawn-phase sessions");

    // 2. The commands as processes, beside the floor, and the library's refresh, at each N.
    println!(
        "\n{:>5}  {:>15}  {:>15}  {:>15}  {:>6}  {:>15}  {:>6}  {:>15}  {:>6}  {:>15}  {:>15}  {:>15}  {:>8}  {:>8}  {:>8}  {:>12}  {:>5}  {:>8}",
        "N",
        "floor med/p95",
        "tmux -C",
        "relay",
        "ratio",
        "ls, no monitor",
        "ratio",
        "ls, monitor up",
        "ratio",
        "status ID",
        "pause ID",
        "resume ID",
        "list()",
        "list() LL",
        "health",
        "per-session",
        "calls",
        "lock max"
    );
    let mut rows = Vec::new();
    let mut quick_ratio = None;
    // Every run's peak RSS at the largest N (kB, as the kernel counts them): it moves by a
    // few hundred kB from build to build (which pages of the executable the kernel maps around
    // the code that runs; see `evict_from_page_cache`).
    let mut ls_peaks: Vec<u64> = Vec::new();
    for &n in &sizes {
        while ids.len() < n {
            ids.push(b.spawn());
        }
        let reps = if n >= 500 { 15 } else { 21 };
        let floor_cmd = || {
            let mut c = Command::new("tmux");
            c.args(["-L", &b.socket, "list-panes", "-a", "-F", orch_tmux::SNAPSHOT_FORMAT]);
            c
        };
        // `ls` looking itself, as with `HYDRA_NO_MONITOR=1`, `[monitor] auto = false` or
        // sessions an embedder spawned (no monitor runs here yet; the variable makes sure).
        let ls_cmd = || {
            let mut c = b.hydra(&["ls", "--json"]);
            c.env("HYDRA_REPORT_RSS", "1").env("HYDRA_NO_MONITOR", "1");
            c
        };
        // Warm both (page cache, the tmux server's buffers), then interleave them so each
        // pair sees the same machine; each starts on a quiet server (`quiet_server`).
        let timed = |cmd: Command| {
            b.quiet_server();
            timed(cmd)
        };
        timed(floor_cmd());
        let printed = ls_cmd().output().expect("hydra ls --json").stdout.len();
        let relay_cmd = || {
            let mut c = Command::new(std::env::current_exe().expect("this executable"));
            c.env(RELAY, format!("{} {printed}", b.socket));
            c
        };
        timed(relay_cmd());
        let mut floor = Vec::new();
        let mut relayed = Vec::new();
        let mut ls = Vec::new();
        for _ in 0..reps {
            floor.push(timed(floor_cmd()).0);
            relayed.push(timed(relay_cmd()).0);
            let (d, err) = timed(ls_cmd());
            ls.push(d);
            if n == *sizes.last().expect("a size") {
                ls_peaks.extend(peak_rss(&err));
            }
        }
        let (floor_med, floor_p95) = stats(floor);
        let (relay_med, relay_p95) = stats(relayed);
        let (ls_med, ls_p95) = stats(ls);
        let ratio = ls_med / floor_med;
        // Again with the project's monitor running, as `hydra spawn` leaves it by default,
        // which then answers `ls` (checked), beside a floor of its own (the monitor is stopped
        // after).
        b.start_monitor();
        let (_, err) = timed(b.hydra(&["ls", "--json", "-v"]));
        assert!(err.contains("answered by the project's monitor"), "{err}");
        timed(floor_cmd());
        let mut floor_m = Vec::new();
        let mut served = Vec::new();
        for _ in 0..reps {
            floor_m.push(timed(floor_cmd()).0);
            served.push(timed(b.hydra(&["ls", "--json"])).0);
        }
        b.stop_monitor();
        let (floor_m_med, _) = stats(floor_m);
        let (served_med, served_p95) = stats(served);
        let served_ratio = served_med / floor_m_med;
        let target = ids[n / 2].to_string();
        let (status_med, status_p95) = sample(reps, || timed(b.hydra(&["status", &target])).0);
        let mut pause = Vec::new();
        let mut resume = Vec::new();
        for _ in 0..reps {
            pause.push(timed(b.hydra(&["pause", &target])).0);
            resume.push(timed(b.hydra(&["resume", &target])).0);
        }
        let (pause_med, pause_p95) = stats(pause);
        let (resume_med, resume_p95) = stats(resume);
        let lib_reps = if n >= 500 { 7 } else { 11 };
        let before = b.tmux.calls();
        // The store's lock hold of each refresh, as the store measures it (its last hold is
        // the refresh's one transaction: nothing was reaped, so no finalization follows it).
        let mut holds = Vec::new();
        let (list, _) = sample(lib_reps, || {
            let t = Instant::now();
            assert_eq!(b.orch.list().len(), n);
            let d = t.elapsed();
            holds.push(b.orch.lock_stats().last_hold);
            d
        });
        let calls = (b.tmux.calls() - before) as f64 / lib_reps as f64;
        let (health, _) = sample(lib_reps, || {
            let t = Instant::now();
            b.orch.health_check().expect("health");
            let d = t.elapsed();
            holds.push(b.orch.lock_stats().last_hold);
            d
        });
        let hold_max = holds.iter().max().map_or(0.0, |d| d.as_secs_f64() * 1000.0);
        // The same refresh in a long-lived process: snapshots through a control-mode client
        // (attached by the first, untimed refresh), unchanged files not read again.
        let list_control = {
            let orch = b.long_lived_orchestrator();
            assert_eq!(orch.list().len(), n);
            sample(lib_reps, || {
                let t = Instant::now();
                assert_eq!(orch.list().len(), n);
                t.elapsed()
            })
            .0
        };
        // The floor's own server-side share: the same snapshot through a client that is
        // already connected (the adapter of a long-lived process, attached by a first, untimed
        // snapshot), checked to go through it and to list every session.
        let control = {
            let tmux = b.control_tmux();
            tmux.snapshot().expect("snapshot");
            sample(reps, || {
                let through = tmux.control_calls();
                let t = Instant::now();
                let snap = tmux.snapshot().expect("snapshot");
                let d = t.elapsed();
                assert_eq!(tmux.control_calls(), through + 1, "through the control-mode client");
                assert!(snap.sessions().len() >= n, "{} sessions of {n}", snap.sessions().len());
                d
            })
        };
        // One tmux call per session: the strategy the library does not use (slow; not at 1,000).
        let per = (n <= 500).then(|| {
            let names: Vec<String> = ids.iter().map(SessionId::tmux_name).collect();
            sample(3, || {
                let t = Instant::now();
                for nm in &names {
                    assert!(b.tmux.has_session(nm).expect("has"));
                }
                t.elapsed()
            })
            .0
        });
        println!(
            "{n:>5}  {floor_med:>6.2} / {floor_p95:>6.2}  {:>6.2} / {:>6.2}  {relay_med:>6.2} / {relay_p95:>6.2}  {:>5.2}x  {ls_med:>6.2} / {ls_p95:>6.2}  {ratio:>5.2}x  {served_med:>6.2} / {served_p95:>6.2}  {served_ratio:>5.2}x  {status_med:>6.2} / {status_p95:>6.2}  {pause_med:>6.2} / {pause_p95:>6.2}  {resume_med:>6.2} / {resume_p95:>6.2}  {list:>8.2}  {list_control:>8.2}  {health:>8.2}  {:>12}  {calls:>5.0}  {hold_max:>8.2}",
            control.0,
            control.1,
            relay_med / floor_med,
            per.map_or("-".to_owned(), |p| format!("{p:.1}"))
        );
        rows.push(serde_json::json!({
            "n": n,
            "floor_tmux_list_panes_ms": {"median": floor_med, "p95": floor_p95},
            "snapshot_through_control_mode_client_ms": {"median": control.0, "p95": control.1},
            "relay_ms": {"median": relay_med, "p95": relay_p95},
            "relay_to_floor_ratio": relay_med / floor_med,
            "hydra_ls_json_ms": {"median": ls_med, "p95": ls_p95},
            "ls_to_floor_ratio": ratio,
            "hydra_ls_json_monitor_running_ms": {"median": served_med, "p95": served_p95},
            "ls_monitor_running_to_floor_ratio": served_ratio,
            "floor_beside_monitor_running_ms": floor_m_med,
            "hydra_status_ms": {"median": status_med, "p95": status_p95},
            "hydra_pause_ms": {"median": pause_med, "p95": pause_p95},
            "hydra_resume_ms": {"median": resume_med, "p95": resume_p95},
            "list_ms": list, "list_long_lived_ms": list_control, "health_check_ms": health,
            "per_session_strategy_ms": per,
            "tmux_calls_per_list": calls,
            "longest_lock_hold_of_a_refresh_ms": hold_max,
        }));
        if quick {
            quick_ratio = Some((ratio, ls_med, floor_med));
        }
    }
    json.insert("at_n".into(), serde_json::Value::Array(rows));
    let largest = *sizes.last().expect("a size");
    let server_rss = b.tmux.server_pid().and_then(|p| status_kib(p, "VmRSS:"));
    let own = status_kib(std::process::id(), "VmHWM:");
    let peaks_text = |peaks: &mut Vec<u64>| {
        peaks.sort_unstable();
        let median = peaks.get(peaks.len() / 2).copied();
        let max = peaks.last().copied();
        let text = match (median, max) {
            (Some(m), Some(x)) => format!("median {m} kB, max {x} kB of {} runs", peaks.len()),
            _ => "n/a".into(),
        };
        (median, text)
    };
    let (ls_median, ls_text) = peaks_text(&mut ls_peaks);
    let ls_max = ls_peaks.last().copied();
    // The executable's pages count too, and how many the kernel maps around the code that runs
    // depends on how they came into the page cache: as the linker wrote them (large folios),
    // or read back from disk. Both, the second after dropping the file's cached pages.
    let mut disk_peaks: Vec<u64> = Vec::new();
    if evict_from_page_cache(std::path::Path::new(env!("CARGO_BIN_EXE_hydra"))) {
        for _ in 0..15 {
            b.quiet_server();
            let mut c = b.hydra(&["ls", "--json"]);
            c.env("HYDRA_REPORT_RSS", "1").env("HYDRA_NO_MONITOR", "1");
            let (_, err) = timed(c);
            disk_peaks.extend(peak_rss(&err));
        }
    }
    let (disk_median, disk_text) = peaks_text(&mut disk_peaks);
    println!(
        "\npeak RSS at N = {largest}: `hydra ls --json` {ls_text} (the executable as built), {disk_text} (read back from disk); this benchmark (an orchestrator) {} KiB, tmux server {} KiB",
        own.map_or("n/a".into(), |v| v.to_string()),
        server_rss.map_or("n/a".into(), |v| v.to_string())
    );
    json.insert(
        "rss".into(),
        serde_json::json!({
            "n": largest,
            "hydra_ls_peak_kb_median": ls_median,
            "hydra_ls_peak_kb_max": ls_max,
            "hydra_ls_peak_kb_median_read_from_disk": disk_median,
            "bench_process_kib": own,
            "tmux_server_kib": server_rss,
        }),
    );

    // 3. hydra-mail publish cost as the caller sees it, daemon up and down.
    let sock = b.base.join("mail.sock");
    let ev = LifecycleEvent::new(Channel::Iteration, &SessionId("bench01".into()), Timestamp(0)).with("iteration", 3);
    let n_pub = if quick { 200 } else { 5000 };
    let up = {
        let _daemon = TestDaemon::start(&sock).expect("daemon");
        let bus = MailBus::new(&sock);
        let (m, _) = sample(n_pub, || {
            let t = Instant::now();
            bus.publish(&ev).expect("publish");
            t.elapsed()
        });
        let _ = bus.flush(Duration::from_secs(30));
        m * 1000.0
    };
    let down = {
        let bus = MailBus::with_options(b.base.join("absent.sock"), Default::default());
        sample(n_pub, || {
            let t = Instant::now();
            bus.publish(&ev).expect("publish");
            t.elapsed()
        })
        .0 * 1000.0
    };
    println!("\nhydra-mail publish (caller side): daemon up {up:.1} us, daemon down {down:.1} us (median of {n_pub})");
    json.insert(
        "publish_us".into(),
        serde_json::json!({"daemon_up": up, "daemon_down": down}),
    );

    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/hydra-bench.json");
    if std::fs::write(
        &out,
        serde_json::to_string_pretty(&serde_json::Value::Object(json)).unwrap_or_default(),
    )
    .is_ok()
    {
        println!("\nfigures written to {}", out.display());
    }
    if let Some((ratio, ls, floor)) = quick_ratio {
        if ratio > QUICK_MAX_RATIO {
            eprintln!(
                "bench: `hydra ls --json` median {ls:.2} ms is {ratio:.2}x the floor ({floor:.2} ms), over the {QUICK_MAX_RATIO}x allowed"
            );
            drop(b);
            std::process::exit(1);
        }
        println!("quick check: `hydra ls --json` is {ratio:.2}x the floor (at most {QUICK_MAX_RATIO}x)");
    }
}
