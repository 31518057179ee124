//! `hydra demo`: the whole lifecycle on a bare machine. A temporary git repository with a
//! sample PRD, N sessions of the built-in demo agent on a private tmux server, live progress,
//! a summary, and a clean-up. Exits 0 only if every session completed.

use anyhow::{Context, Result};
use hydra_orchestrator::adapters::{Tmux, TmuxConfig};
use hydra_orchestrator::{SessionConfig, SessionState};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The sample PRD of `hydra init` and `hydra demo`.
pub const SAMPLE_PRD: &str = r#"{
  "title": "Sample project",
  "userStories": [
    {"id": "US-1", "title": "Add a greeting module", "description": "A function that returns a greeting.", "passes": false, "acceptance": ["greet() returns a string"]},
    {"id": "US-2", "title": "Add a command-line entry point", "description": "Print the greeting.", "passes": false, "acceptance": ["running it prints the greeting"], "dependsOn": ["US-1"]},
    {"id": "US-3", "title": "Document usage", "description": "Explain how to run it.", "passes": false, "acceptance": ["README mentions the command"], "dependsOn": ["US-2"]}
  ]
}
"#;

/// The demo's PRD: two stories per session, the second of each pair depending on the first.
fn demo_prd(sessions: usize) -> String {
    let stories: Vec<String> = (1..=sessions * 2)
        .map(|n| {
            let deps = if n % 2 == 0 {
                format!(", \"dependsOn\": [\"US-{}\"]", n - 1)
            } else {
                String::new()
            };
            format!("    {{\"id\": \"US-{n}\", \"title\": \"Demo story {n}\", \"passes\": false{deps}}}")
        })
        .collect();
    format!(
        "{{\n  \"title\": \"Demo project\",\n  \"userStories\": [\n{}\n  ]\n}}\n",
        stories.join(",\n")
    )
}

struct Cleanup<'a> {
    tmux: &'a Tmux,
    dir: &'a Path,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = self.tmux.kill_server();
        let _ = std::fs::remove_dir_all(self.dir);
    }
}

fn git(dir: &Path, args: &[&str]) {
    let _ = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=hydra demo",
            "-c",
            "user.email=demo@hydra.invalid",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .output();
}

/// Runs the demo with `sessions` sessions; returns the exit code.
pub fn run(sessions: usize, json: bool) -> Result<i32> {
    let sessions = sessions.clamp(1, 50);
    let dir = std::env::temp_dir().join(format!("hydra-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let socket = format!("hydra-demo-{}", std::process::id());
    let tmux = Tmux::new(TmuxConfig::with_socket_name(&socket));
    let _cleanup = Cleanup { tmux: &tmux, dir: &dir };
    std::fs::write(dir.join("prd.json"), demo_prd(sessions))?;
    std::fs::write(dir.join("README.md"), "# demo project\n")?;
    git(&dir, &["init", "-q", "-b", "main"]);
    git(&dir, &["add", "README.md"]);
    git(&dir, &["commit", "-q", "-m", "demo project"]);

    let orch = hydra_orchestrator::Builder::from_env()
        .project(&dir)
        .tmux_socket(socket.clone())
        .reconcile(false)
        .build()?;
    let exe = std::env::current_exe().context("cannot find the hydra executable for the demo agent")?;
    println!("hydra demo: {sessions} session(s) of the built-in demo agent on tmux server -L {socket}");
    println!("project: {}", dir.display());
    // One PRD shared by every session: the free stories are split, one worktree each.
    let parallel = orch.spawn_parallel(
        SessionConfig {
            agent_cli: exe.to_string_lossy().into_owned(),
            agent_flags: "demo-agent".into(),
            prd_path: dir.join("prd.json"),
            working_dir: dir.clone(),
            use_worktree: true,
            max_iterations: 10,
            max_duration: Duration::from_secs(600),
            loop_delay: Duration::from_millis(200),
            ..SessionConfig::default()
        },
        sessions,
    )?;
    for (id, stories) in parallel.ids.iter().zip(&parallel.stories) {
        println!(
            "spawned {id}: stories {} on branch hydralph/{id} in its own worktree",
            stories.join(", ")
        );
    }
    let started = Instant::now();
    let mut last = String::new();
    let statuses = loop {
        let statuses = orch.refresh()?;
        // Redrawn when a state, an iteration or a story count changes.
        let key: String = statuses
            .iter()
            .map(|s| format!("{} {} {} {:?};", s.id, s.state_word(), s.iteration, s.stories))
            .collect();
        if key != last {
            println!("--- {:>5.1}s", started.elapsed().as_secs_f64());
            print!("{}", crate::output::table(&statuses, crate::now(), false));
            last = key;
        }
        if statuses.iter().all(|s| s.state.is_terminal()) || started.elapsed() > Duration::from_secs(120) {
            break statuses;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let completed = statuses
        .iter()
        .filter(|s| matches!(s.state, SessionState::Completed { .. }))
        .count();
    if json {
        println!(
            "{}",
            serde_json::Value::Array(statuses.iter().map(|s| s.to_json()).collect())
        );
    }
    println!(
        "summary: {completed}/{} completed in {:.1}s; {}",
        statuses.len(),
        started.elapsed().as_secs_f64(),
        statuses
            .iter()
            .map(|s| format!("{} {}", s.id, s.state))
            .collect::<Vec<_>>()
            .join(", ")
    );
    // Each session's finished stories were marked in the project's PRD as they finished.
    let (done, total) = std::fs::read(dir.join("prd.json"))
        .ok()
        .and_then(|b| hydra_orchestrator::Prd::parse(&b).ok())
        .map_or((0, 0), |p| p.counts());
    println!("project PRD: {done}/{total} stories pass");
    let all = completed == statuses.len() && statuses.len() == sessions && total > 0 && done == total;
    println!(
        "{}",
        if all {
            "demo ok: every session completed; cleaned up"
        } else {
            "demo FAILED: not every session completed"
        }
    );
    Ok(if all { 0 } else { 1 })
}
