//! Benchmark of the tmux adapter on a private server: create, one snapshot at N sessions, and N
//! separate `has-session` calls at the same N (the per-session design it replaces).
//! Run: `cargo bench -p orch-tmux` (`HYDRA_BENCH_QUICK=1` for small N).

use orch_core::{Multiplexer, SpawnSpec};
use orch_tmux::{Tmux, TmuxConfig};
use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let quick = std::env::var_os("HYDRA_BENCH_QUICK").is_some();
    let sizes: &[usize] = if quick { &[10] } else { &[10, 100, 500] };
    let tmux = Tmux::new(TmuxConfig::with_socket_name(&format!(
        "orch-tmux-bench-{}",
        std::process::id()
    )));
    let cwd = std::env::temp_dir();
    let spec = |name: String| SpawnSpec {
        name,
        argv: vec!["sleep".into(), "600".into()],
        env: vec![],
        cwd: cwd.clone(),
        tag: Some("0123456789abcdef".into()),
    };
    let mut created = 0usize;
    let mut create_times = Vec::new();
    println!("orch-tmux benchmark (private server, `sleep 600` sessions)");
    println!(
        "{:>6} {:>14} {:>18} {:>8}",
        "N", "snapshot (ms)", "N x has-session", "ratio"
    );
    for &n in sizes {
        while created < n {
            let t = Instant::now();
            tmux.create(&spec(format!("hydralph-b{created}"))).expect("create");
            create_times.push(t.elapsed());
            created += 1;
        }
        let rounds = if quick { 3 } else { 9 };
        let snap = median(
            (0..rounds)
                .map(|_| {
                    let t = Instant::now();
                    let s = tmux.snapshot().expect("snapshot");
                    assert_eq!(s.sessions().len(), n);
                    t.elapsed()
                })
                .collect(),
        );
        let per = median(
            (0..3)
                .map(|_| {
                    let t = Instant::now();
                    for i in 0..n {
                        assert!(tmux.has_session(&format!("hydralph-b{i}")).expect("has"));
                    }
                    t.elapsed()
                })
                .collect(),
        );
        println!(
            "{:>6} {:>14.2} {:>18.2} {:>7.0}x",
            n,
            ms(snap),
            ms(per),
            per.as_secs_f64() / snap.as_secs_f64()
        );
    }
    println!(
        "create: median {:.2} ms over {} sessions",
        ms(median(create_times)),
        created
    );
    let _ = tmux.kill_server();
}
