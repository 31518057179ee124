//! The dashboard benchmark:
//!
//! - frame render time at N = 500 sessions (ratatui's test backend, 200x50, the selection
//!   moving down a row each frame, as a person scrolls);
//! - from a loop's status change to the changed row on screen: `hydra top` in a real tmux
//!   pane, read with `capture-pane` every 2 ms;
//! - CPU and RSS of an idle `hydra top` at N = 100 over 60 s.
//!
//! Run: `cargo bench -p hydra-cli --bench top` (`HYDRA_BENCH_QUICK=1`: fewer frames and
//! sessions, a 3 s idle window). Writes `target/hydra-bench-top.json`.

mod common;

use common::{cpu_percent, cpu_ticks, stats, status_kib, BenchProject};
use hydra_cli::top::app::{App, Sort};
use hydra_cli::top::{fixtures, view};
use hydra_orchestrator::adapters::{Tmux, TmuxConfig};
use hydra_orchestrator::{SessionState, Timestamp};
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::Rect;
use ratatui::Terminal;
use std::process::Command;
use std::time::{Duration, Instant};

/// `hydra top` in a pane of a private tmux server; the server ends when dropped.
struct Pane {
    server: String,
}

impl Pane {
    fn start(p: &BenchProject, width: u16, height: u16) -> Pane {
        let pane = Pane {
            server: format!("hydra-bench-top-ui-{}", std::process::id()),
        };
        let cmd = p.hydra(&["top"]);
        let out = Command::new("tmux")
            .args(["-L", &pane.server, "-f", "/dev/null", "new-session", "-d"])
            .args(["-x", &width.to_string(), "-y", &height.to_string()])
            .args(["-e", &format!("XDG_STATE_HOME={}", p.base.join("state").display())])
            .arg("--")
            .arg(cmd.get_program())
            .args(cmd.get_args())
            .output()
            .expect("tmux");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        pane
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.server, "capture-pane", "-p"])
            .output()
            .expect("capture");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn pid(&self) -> u32 {
        let out = Command::new("tmux")
            .args(["-L", &self.server, "display-message", "-p", "#{pane_pid}"])
            .output()
            .expect("tmux");
        String::from_utf8_lossy(&out.stdout).trim().parse().expect("pid")
    }

    /// Waits (polling every 2 ms, 20 s at most) until `f` holds for the screen; when it did.
    fn until(&self, what: &str, f: impl Fn(&str) -> bool) -> Instant {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let s = self.screen();
            if f(&s) {
                return Instant::now();
            }
            assert!(Instant::now() < deadline, "no {what} on screen:\n{s}");
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for Pane {
    fn drop(&mut self) {
        // Through the adapter, which also removes the socket file tmux leaves.
        let _ = Tmux::new(TmuxConfig::with_socket_name(&self.server)).kill_server();
    }
}

fn row_has(screen: &str, id: &str, word: &str) -> bool {
    screen.lines().any(|l| l.starts_with(id) && l.contains(word))
}

fn main() {
    let quick = std::env::var_os("HYDRA_BENCH_QUICK").is_some();
    let mut json = serde_json::Map::new();
    println!(
        "hydra top benchmark ({} cores, {})",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        common::tmux_version()
    );

    // 1. Frames at N = 500 on the test backend.
    let n = 500;
    let now = Timestamp::from_secs(1000);
    let mut app = App::new("/work/app".into(), now, true);
    app.set_sessions(
        (0..n)
            .map(|i| {
                let st = match i % 5 {
                    0 => SessionState::Blocked {
                        iteration: 2,
                        reason: "needs a key".into(),
                    },
                    1 => SessionState::Completed { iterations: 3 },
                    _ => SessionState::Running {
                        iteration: 1,
                        stories: Some("1/3".into()),
                    },
                };
                fixtures::status(&format!("s{i:07}"), st, i as u64)
            })
            .collect(),
    );
    app.sort = Sort::Attention;
    app.refresh_rows();
    let (w, h) = (200, 50);
    app.page = view::page(Rect::new(0, 0, w, h));
    let mut terminal = Terminal::new(TestBackend::new(w, h)).expect("terminal");
    let frames = if quick { 100 } else { 2000 };
    let mut times = Vec::with_capacity(frames);
    for _ in 0..frames {
        let _ = app.key(KeyEvent::new(KeyCode::Down, KeyModifiers::NONE));
        let t = Instant::now();
        terminal.draw(|f| view::draw(f, &app)).expect("draw");
        times.push(t.elapsed());
    }
    let (fm, fp) = stats(times);
    println!("\nframe at N = {n} (200x50, scrolling): median {fm:.3} ms, p95 {fp:.3} ms ({frames} frames)");
    json.insert(
        "frame_ms".into(),
        serde_json::json!({"n": n, "median": fm, "p95": fp, "frames": frames}),
    );

    // 2. A loop's status change -> the row on screen, in a real pane.
    let p = BenchProject::new("top");
    let samples = if quick { 4 } else { 20 };
    let ids: Vec<_> = (0..samples).map(|_| p.spawn()).collect();
    for id in &ids {
        p.wait_loop(id);
    }
    let pane = Pane::start(&p, 160, 50);
    pane.until("every row running", |s| {
        ids.iter().all(|id| row_has(s, id.as_str(), "running"))
    });
    let mut lat = Vec::new();
    for id in &ids {
        let t0 = Instant::now();
        p.write_final_status(id);
        let seen = pane.until("the blocked row", |s| row_has(s, id.as_str(), "blocked"));
        lat.push(seen - t0);
    }
    let (lm, lp) = stats(lat);
    println!("status.json changed -> the row on screen: median {lm:.1} ms, p95 {lp:.1} ms ({samples} changes, capture-pane every 2 ms)");
    json.insert(
        "change_to_screen_ms".into(),
        serde_json::json!({"median": lm, "p95": lp, "samples": samples}),
    );
    drop(pane);

    // 3. An idle top at N = 100.
    let idle_n = if quick { 10 } else { 100 };
    let more: Vec<_> = (ids.len()..idle_n).map(|_| p.spawn()).collect();
    for id in &more {
        p.wait_loop(id);
    }
    let pane = Pane::start(&p, 160, 50);
    pane.until("the sessions", |s| more.last().is_none_or(|id| s.contains(id.as_str())));
    std::thread::sleep(Duration::from_secs(1));
    let pid = pane.pid();
    let window = Duration::from_secs(if quick { 3 } else { 60 });
    let (k0, t0) = (cpu_ticks(pid), Instant::now());
    std::thread::sleep(window);
    let (k1, elapsed) = (cpu_ticks(pid), t0.elapsed());
    let own = cpu_percent(k1.0 - k0.0, elapsed);
    let with_children = cpu_percent((k1.0 + k1.1) - (k0.0 + k0.1), elapsed);
    let rss = status_kib(pid, "VmRSS:");
    println!(
        "idle `hydra top` at N = {idle_n} over {:.0} s: CPU {own:.2}% of a core ({with_children:.2}% with its tmux children), RSS {} KiB",
        elapsed.as_secs_f64(),
        rss.map_or("n/a".into(), |v| v.to_string())
    );
    json.insert(
        "idle".into(),
        serde_json::json!({"n": idle_n, "seconds": elapsed.as_secs_f64(), "cpu_percent": own,
            "cpu_percent_with_children": with_children, "rss_kib": rss}),
    );
    drop(pane);
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/hydra-bench-top.json");
    if std::fs::write(
        &out,
        serde_json::to_string_pretty(&serde_json::Value::Object(json)).unwrap_or_default(),
    )
    .is_ok()
    {
        println!("\nfigures written to {}", out.display());
    }
}
