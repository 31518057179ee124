//! Benchmark of the worktree adapter: create and remove latency in a small repository.
//! Run: `cargo bench -p orch-wt` (`HYDRA_BENCH_QUICK=1` for fewer rounds).

use orch_core::{SessionId, WorktreeRequest, Worktrees};
use orch_wt::GitWorktrees;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=bench", "-c", "user.email=bench@example.invalid"])
        .args(args)
        .output()
        .expect("git")
        .status
        .success();
    assert!(ok, "git {args:?}");
}

fn median_ms(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1000.0
}

fn main() {
    let rounds = if std::env::var_os("HYDRA_BENCH_QUICK").is_some() {
        3
    } else {
        20
    };
    let root = std::env::temp_dir().join(format!("orch-wt-bench-{}", std::process::id()));
    std::fs::create_dir_all(&root).expect("dir");
    git(&root, &["init", "-q", "-b", "main"]);
    for i in 0..20 {
        std::fs::write(root.join(format!("f{i}.txt")), "content\n".repeat(50)).expect("write");
    }
    git(&root, &["add", "."]);
    git(&root, &["commit", "-q", "-m", "init"]);
    let wt = GitWorktrees::new();
    let (mut creates, mut removes) = (Vec::new(), Vec::new());
    for i in 0..rounds {
        let req = WorktreeRequest {
            repo: root.clone(),
            branch: format!("hydralph/b{i}"),
            base: None,
            path: None,
            session: SessionId(format!("b{i}")),
            reserved_ports: Vec::new(),
        };
        let t = Instant::now();
        wt.create(&req).expect("create");
        creates.push(t.elapsed());
        let t = Instant::now();
        wt.remove(&root, &req.branch, false).expect("remove");
        removes.push(t.elapsed());
    }
    println!("orch-wt benchmark (20-file repository, {rounds} rounds)");
    println!("create: median {:.1} ms", median_ms(creates));
    println!("remove: median {:.1} ms (safety checks included)", median_ms(removes));
    let _ = std::fs::remove_dir_all(&root);
}
