//! The live benchmark: how fast `hydra monitor` tells a change, and what it costs while nothing
//! happens. On a private tmux server with N sleeping agents and a real Unix-socket hydra-mail
//! peer, it measures
//!
//! - detection latency, from the loop's final `status.json` being written (or the agent's pane
//!   being killed) to the `session:*` event on hydra-mail and to the notification command
//!   having started, median and p95 at N = 10 and 100;
//! - an idle monitor at N = 100 over 60 s: CPU (its own, and with its tmux children), RSS, and
//!   the tmux processes it starts (counted by a `tmux` wrapper first in its PATH);
//! - why tmux hooks and not a control-mode client: the delay from a pane's death to a hook's
//!   `wait-for` waking, against a control client's `pane_dead` subscription.
//!
//! Run: `cargo bench -p hydra-cli --bench live` (`HYDRA_BENCH_QUICK=1`: N = 10, a 3 s idle
//! window). Prints a table and writes `target/hydra-bench-live.json`.

mod common;

use common::{cpu_ticks, script, stats, status_kib, tmux_on, tmux_version, BenchProject};
use hydra_orchestrator::SessionId;
use orch_mail::test_daemon::TestDaemon;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Lines of a stream, each with the instant it was read.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<(String, Instant)>>>);

impl Lines {
    fn read_from(&self, r: impl std::io::Read + Send + 'static) {
        let lines = self.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(r).lines() {
                let Ok(line) = line else { return };
                lines.0.lock().expect("lines").push((line, Instant::now()));
            }
        });
    }
    /// The instant of the first line with `needle` in it, waiting up to 20 s.
    fn wait(&self, needle: &str) -> Instant {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some((_, at)) = self.0.lock().expect("lines").iter().find(|(l, _)| l.contains(needle)) {
                return *at;
            }
            assert!(
                Instant::now() < deadline,
                "no line with {needle} in {:?}",
                self.0.lock().expect("lines").iter().map(|(l, _)| l).collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    fn count(&self, needle: &str) -> usize {
        self.0
            .lock()
            .expect("lines")
            .iter()
            .filter(|(l, _)| l.contains(needle))
            .count()
    }
}

/// The first instant hydra-mail holds a `channel` message naming `id` (polled every 0.2 ms).
fn bus_wait(daemon: &TestDaemon, channel: &str, id: &str) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if daemon.history(channel).iter().any(|m| m.contains(id)) {
            return Instant::now();
        }
        assert!(Instant::now() < deadline, "no {channel} for {id}");
        std::thread::sleep(Duration::from_micros(200));
    }
}

struct Rig {
    p: BenchProject,
    live: Vec<SessionId>,
    daemon: TestDaemon,
    notified: Lines,
}

impl Rig {
    fn top_up(&mut self, n: usize) {
        while self.live.len() < n {
            self.live.push(self.p.spawn());
        }
    }

    /// `hydra monitor --json`, once it has told every live session (its cursor removed first,
    /// so it tells them all).
    fn monitor(&self, path: Option<&Path>) -> (Child, Lines) {
        let _ = std::fs::remove_file(self.p.root.join(".hydra/orchestrator/monitor.seen"));
        let mut cmd = self.p.hydra(&["monitor", "--json"]);
        if let Some(dir) = path {
            let old = std::env::var_os("PATH").unwrap_or_default();
            let mut paths = vec![dir.to_path_buf()];
            paths.extend(std::env::split_paths(&old));
            cmd.env("PATH", std::env::join_paths(paths).expect("PATH"));
        }
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.p.base.join("monitor.err"))
            .expect("monitor.err");
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .expect("hydra monitor");
        let lines = Lines::default();
        lines.read_from(child.stdout.take().expect("stdout"));
        for id in &self.live {
            lines.wait(id.as_str());
        }
        (child, lines)
    }

    fn pane_pid(&self, id: &SessionId) -> i32 {
        let out = Command::new("tmux")
            .args(["-L", &self.p.socket, "display-message", "-p", "-t"])
            .arg(format!("={}:", id.tmux_name()))
            .arg("#{pane_pid}")
            .output()
            .expect("tmux");
        String::from_utf8_lossy(&out.stdout).trim().parse().expect("pane pid")
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.daemon.stop();
        if std::thread::panicking() {
            let err = std::fs::read_to_string(self.p.base.join("monitor.err")).unwrap_or_default();
            eprintln!("the monitor's stderr:\n{err}");
        }
    }
}

fn kill_group(pid: i32) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

fn setup() -> Rig {
    let p = BenchProject::new("live");
    // The notification command: one line per call into a FIFO the bench reads.
    let fifo = p.base.join("notified.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    let notify = p.base.join("notify.sh");
    script(
        &notify,
        &format!(
            "printf '%s %s\\n' \"$HYDRA_SESSION\" \"$HYDRA_STATE\" > '{}'",
            fifo.display()
        ),
    );
    std::fs::write(
        p.root.join(".hydra/hydra.toml"),
        format!(
            "[notify]\ncommand = [{:?}]\ntmux = false\ndesktop = false\nbell = false\n",
            notify.display()
        ),
    )
    .expect("hydra.toml");
    let daemon = TestDaemon::start(&p.base.join("mail.sock")).expect("hydra-mail peer");
    TestDaemon::write_config(&p.root, daemon.socket()).expect("config.toml");
    // Read end held open for writing too, so it never sees an end of file between calls.
    let reader = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo)
        .expect("fifo");
    let notified = Lines::default();
    notified.read_from(reader);
    let trusted = p.hydra(&["trust", "--yes"]).output().expect("hydra trust");
    assert!(trusted.status.success(), "{}", String::from_utf8_lossy(&trusted.stderr));
    Rig {
        p,
        live: Vec::new(),
        daemon,
        notified,
    }
}

/// Hook against control mode: from a pane's death to the watcher waking, `samples` each (on
/// separate sessions: tmux 3.3 runs no `pane-died` hook for a pane while a control client is
/// attached to its session).
fn wake_compare(socket: &str, samples: usize) -> (Vec<Option<Duration>>, Vec<Duration>) {
    let tmux = |args: &[&str]| tmux_on(socket, args);
    let session = |name: &str| {
        tmux(&["new-session", "-d", "-s", name, "sleep 600"]);
        let target = format!("={name}:");
        tmux(&["set-option", "-w", "-t", &target, "remain-on-exit", "on"]);
        let pid: i32 = tmux(&["display-message", "-p", "-t", &target, "#{pane_pid}"])
            .parse()
            .expect("pid");
        (target, pid)
    };
    let mut hook = Vec::new();
    let mut control = Vec::new();
    for i in 0..samples {
        let name = format!("hook{i}");
        let (target, pid) = session(&name);
        tmux(&[
            "set-hook",
            "-p",
            "-t",
            &target,
            "pane-died",
            &format!("wait-for -S {name}"),
        ]);
        let mut waiter = Command::new("tmux")
            .args(["-L", socket, "wait-for", &name])
            .spawn()
            .expect("wait-for");
        std::thread::sleep(Duration::from_millis(50)); // the waiter is waiting
        let t0 = Instant::now();
        kill_group(pid);
        let deadline = t0 + Duration::from_secs(2);
        while waiter.try_wait().expect("wait-for").is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(200));
        }
        if waiter.try_wait().expect("wait-for").is_some() {
            hook.push(Some(t0.elapsed()));
        } else {
            // The hook never ran (tmux lost the pane's SIGCHLD): release the waiter.
            hook.push(None);
            tmux(&["wait-for", "-S", &name]);
            let _ = waiter.wait();
        }
        tmux(&["kill-session", "-t", &target]);

        let name = format!("control{i}");
        let (target, pid) = session(&name);
        let mut client = Command::new("tmux")
            .args(["-L", socket, "-C", "attach", "-t", &format!("={name}")])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("control client");
        let lines = Lines::default();
        lines.read_from(client.stdout.take().expect("stdout"));
        let mut input = client.stdin.take().expect("stdin");
        lines.wait("%session-changed"); // attached: a subscription needs a client
        writeln!(input, "refresh-client -B 'dead:%*:#{{pane_dead}}'").expect("subscribe");
        lines.wait("%subscription-changed dead");
        let t0 = Instant::now();
        kill_group(pid);
        let dead = lines.wait(" : 1");
        control.push(dead.saturating_duration_since(t0));
        drop(input);
        let _ = client.kill();
        let _ = client.wait();
        tmux(&["kill-session", "-t", &target]);
    }
    (hook, control)
}

fn main() {
    let quick = std::env::var_os("HYDRA_BENCH_QUICK").is_some();
    let sizes: &[usize] = if quick { &[10] } else { &[10, 100] };
    let samples = if quick { 4 } else { 20 };
    let idle_n = if quick { 10 } else { 100 };
    let window = Duration::from_secs(if quick { 3 } else { 60 });
    let mut rig = setup();
    let mut json = serde_json::Map::new();
    println!(
        "hydra live benchmark ({} cores, {}, tmux -L {}, agents: sleep 3600, hydra-mail test peer)",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        tmux_version(),
        rig.p.socket
    );
    println!("\ndetection latency (ms), trigger -> session:* event on hydra-mail / notification command started");
    println!(
        "{:>5}  {:<14} {:>11} {:>9} {:>14} {:>12}",
        "N", "trigger", "bus median", "bus p95", "notify median", "notify p95"
    );
    let mut rows = Vec::new();
    for &n in sizes {
        rig.top_up(n);
        let (mut monitor, _lines) = rig.monitor(None);
        for trigger in ["final status", "pane death"] {
            let mut bus = Vec::new();
            let mut told = Vec::new();
            for _ in 0..samples {
                // Keep N live: the session the sample ends is replaced first.
                rig.top_up(n + 1);
                let id = rig.live.remove(0);
                let (t0, channel, state) = if trigger == "final status" {
                    let t0 = Instant::now();
                    rig.p.write_final_status(&id);
                    (t0, "session:blocked", "blocked")
                } else {
                    let pid = rig.pane_pid(&id);
                    let t0 = Instant::now();
                    kill_group(pid);
                    (t0, "session:failed", "failed")
                };
                let at_bus = bus_wait(&rig.daemon, channel, id.as_str());
                let at_told = rig.notified.wait(&format!("{id} {state}"));
                bus.push(at_bus.saturating_duration_since(t0));
                told.push(at_told.saturating_duration_since(t0));
            }
            let (bm, bp) = stats(bus);
            let (tm, tp) = stats(told);
            println!("{n:>5}  {trigger:<14} {bm:>11.1} {bp:>9.1} {tm:>14.1} {tp:>12.1}");
            rows.push(serde_json::json!({"n": n, "trigger": trigger, "samples": samples,
                "bus_median_ms": bm, "bus_p95_ms": bp, "notify_median_ms": tm, "notify_p95_ms": tp}));
        }
        let _ = monitor.kill();
        let _ = monitor.wait();
    }
    json.insert("detection".into(), serde_json::Value::Array(rows));

    // An idle monitor: nothing changes for `window`.
    rig.top_up(idle_n);
    let wrap = rig.p.base.join("bin");
    std::fs::create_dir_all(&wrap).expect("bin");
    let count = rig.p.base.join("tmux-calls");
    let real = Command::new("sh")
        .args(["-c", "command -v tmux"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .expect("tmux path");
    script(
        &wrap.join("tmux"),
        &format!("echo \"$*\" >> '{}'\nexec '{real}' \"$@\"", count.display()),
    );
    let (mut monitor, _lines) = rig.monitor(Some(&wrap));
    std::thread::sleep(Duration::from_millis(500)); // its first look's tail
    let pid = monitor.id();
    let calls = |p: &Path| std::fs::read_to_string(p).map_or(0, |s| s.lines().count());
    let (c0, k0) = (calls(&count), cpu_ticks(pid));
    let t = Instant::now();
    std::thread::sleep(window);
    let elapsed = t.elapsed();
    let (c1, k1) = (calls(&count), cpu_ticks(pid));
    let rss = status_kib(pid, "VmRSS:");
    let hwm = status_kib(pid, "VmHWM:");
    let threads = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Threads:"))
                .map(|l| l[8..].trim().to_owned())
        });
    let _ = monitor.kill();
    let _ = monitor.wait();
    let own = common::cpu_percent(k1.0 - k0.0, elapsed);
    let with_children = common::cpu_percent((k1.0 + k1.1) - (k0.0 + k0.1), elapsed);
    let per_min = (c1 - c0) as f64 * 60.0 / elapsed.as_secs_f64();
    println!(
        "\nidle `hydra monitor` at N = {idle_n} over {:.0} s: CPU {own:.2}% of a core ({with_children:.2}% with its tmux children), RSS {} KiB (peak {} KiB), {} threads; tmux processes started: {} ({per_min:.1}/min)",
        elapsed.as_secs_f64(),
        rss.map_or("n/a".into(), |v| v.to_string()),
        hwm.map_or("n/a".into(), |v| v.to_string()),
        threads.unwrap_or_else(|| "n/a".into()),
        c1 - c0,
    );
    json.insert(
        "idle".into(),
        serde_json::json!({"n": idle_n, "seconds": elapsed.as_secs_f64(), "cpu_percent": own,
            "cpu_percent_with_children": with_children, "rss_kib": rss, "peak_rss_kib": hwm,
            "tmux_processes": c1 - c0, "tmux_processes_per_min": per_min}),
    );
    assert!(
        rig.notified.count(" ") >= samples,
        "the notification command was started"
    );

    // Why hooks: a control client learns of a dead pane through a subscription tmux checks
    // once a second.
    let rounds = if quick { 3 } else { 20 };
    let (hook, control) = wake_compare(&rig.p.socket, rounds);
    let lost = hook.iter().filter(|h| h.is_none()).count();
    let told: Vec<Duration> = hook.into_iter().flatten().collect();
    let (hm, hp) = if told.is_empty() {
        (f64::NAN, f64::NAN)
    } else {
        stats(told)
    };
    let (cm, cp) = stats(control);
    println!(
        "\npane killed -> a watcher wakes ({}, {rounds} kills each):",
        tmux_version()
    );
    println!("  pane-died hook + wait-for alone:  median {hm:.1} ms, p95 {hp:.1} ms, never woken {lost} of {rounds}");
    println!("  control-mode pane_dead subscription: median {cm:.1} ms, p95 {cp:.1} ms");
    json.insert(
        "wake".into(),
        serde_json::json!({"kills": rounds, "hook_median_ms": hm, "hook_p95_ms": hp, "hook_never_woken": lost,
            "control_median_ms": cm, "control_p95_ms": cp}),
    );
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/hydra-bench-live.json");
    if std::fs::write(
        &out,
        serde_json::to_string_pretty(&serde_json::Value::Object(json)).unwrap_or_default(),
    )
    .is_ok()
    {
        println!("\nfigures written to {}", out.display());
    }
}
