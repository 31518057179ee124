//! `hydra demo`: what the tool is for, on a bare machine, in seconds. In a temporary git
//! repository, on a private tmux server, with the built-in demo agent: three sessions share one
//! PRD's six stories, each in its own worktree; one blocks with a reason and is unblocked by an
//! inject and a resume; one is paused and resumed; a fourth, runaway session is killed with a
//! reason; the project PRD ends 6/6 and the three branches are merged home. Each step is
//! printed as it happens, then a summary; everything is cleaned up. Exits 0 only if every
//! step happened.

use anyhow::{bail, Context, Result};
use hydra_orchestrator::adapters::{Tmux, TmuxConfig};
use hydra_orchestrator::{
    AgentProfile, MergeOptions, MergeOutcome, Orchestrator, PauseMode, SessionConfig, SessionId, SessionState,
    SessionStatus,
};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The sample PRD of `hydra init`.
pub const SAMPLE_PRD: &str = r#"{
  "title": "Sample project",
  "userStories": [
    {"id": "US-1", "title": "Add a greeting module", "description": "A function that returns a greeting.", "passes": false, "acceptance": ["greet() returns a string"]},
    {"id": "US-2", "title": "Add a command-line entry point", "description": "Print the greeting.", "passes": false, "acceptance": ["running it prints the greeting"], "dependsOn": ["US-1"]},
    {"id": "US-3", "title": "Document usage", "description": "Explain how to run it.", "passes": false, "acceptance": ["README mentions the command"], "dependsOn": ["US-2"]}
  ]
}
"#;

/// The demo's PRD: six stories in three pairs; US-4 needs the staging key (the demo agent
/// blocks on it until an operator sends it).
const DEMO_PRD: &str = r#"{
  "title": "Demo shop",
  "userStories": [
    {"id": "US-1", "title": "Product list", "passes": false},
    {"id": "US-2", "title": "Product detail page", "passes": false, "dependsOn": ["US-1"]},
    {"id": "US-3", "title": "Cart", "passes": false},
    {"id": "US-4", "title": "Checkout against the staging payment API", "passes": false, "dependsOn": ["US-3"], "needs": "staging key"},
    {"id": "US-5", "title": "Search", "passes": false},
    {"id": "US-6", "title": "Search filters", "passes": false, "dependsOn": ["US-5"]}
  ]
}
"#;

/// The runaway session's own PRD (it never gets anywhere).
const RUNAWAY_PRD: &str = r#"{"title": "Rewrite everything", "userStories": [{"id": "R-1", "title": "Rewrite the whole app", "passes": false}]}
"#;

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

fn git(dir: &Path, args: &[&str]) -> String {
    Command::new("git")
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
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// Prints the steps with the time since the start.
struct Steps {
    start: Instant,
    done: Vec<&'static str>,
}

impl Steps {
    fn say(&self, text: impl AsRef<str>) {
        println!("[{:>5.1}s] {}", self.start.elapsed().as_secs_f64(), text.as_ref());
    }
    fn step(&mut self, key: &'static str, text: impl AsRef<str>) {
        self.say(text);
        self.done.push(key);
    }
}

/// Waits (looking every 100 ms, 60 s at most) until `f` holds for one of the sessions.
fn until(orch: &Orchestrator, what: &str, mut f: impl FnMut(&[SessionStatus]) -> bool) -> Result<Vec<SessionStatus>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let all = orch.refresh()?;
        if f(&all) {
            return Ok(all);
        }
        if Instant::now() > deadline {
            bail!("the demo waited 60 s for {what}; it did not happen");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn of<'a>(all: &'a [SessionStatus], id: &SessionId) -> Option<&'a SessionStatus> {
    all.iter().find(|s| &s.id == id)
}

/// Runs the demo; returns the exit code (0 only if every step happened).
pub fn run(json: bool) -> Result<i32> {
    let sessions = 3;
    let dir = std::env::temp_dir().join(format!("hydra-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let socket = format!("hydra-demo-{}", std::process::id());
    let tmux = Tmux::new(TmuxConfig::with_socket_name(&socket));
    let _cleanup = Cleanup { tmux: &tmux, dir: &dir };
    std::fs::write(dir.join("prd.json"), DEMO_PRD)?;
    std::fs::write(dir.join("runaway.json"), RUNAWAY_PRD)?;
    std::fs::write(dir.join("README.md"), "# demo shop\n")?;
    git(&dir, &["init", "-q", "-b", "main"]);
    git(&dir, &["add", "README.md"]);
    git(&dir, &["commit", "-q", "-m", "demo shop"]);
    // The PRDs are hydra's working files, not the shop's: git leaves them alone.
    for entry in ["prd.json", "runaway.json"] {
        orch_fs::add_git_exclude(&dir.join(".git"), entry)
            .with_context(|| format!("cannot exclude {entry} from git in {}", dir.display()))?;
    }

    let orch = hydra_orchestrator::Builder::from_env()
        .project(&dir)
        .tmux_socket(socket.clone())
        .reconcile(false)
        .build()?;
    let exe = std::env::current_exe().context("cannot find the hydra executable for the demo agent")?;
    let agent = |env: &[(&str, &str)]| AgentProfile {
        command: vec![exe.to_string_lossy().into_owned(), crate::DEMO_AGENT_ARG.to_owned()],
        env: env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        ..AgentProfile::program("demo-agent")
    };
    let base = SessionConfig {
        agent_cli: exe.to_string_lossy().into_owned(),
        agent_profile: Some(agent(&[])),
        prd_path: dir.join("prd.json"),
        working_dir: dir.clone(),
        max_iterations: 10,
        max_duration: Duration::from_secs(600),
        loop_delay: Duration::from_millis(200),
        ..SessionConfig::default()
    };
    let mut steps = Steps {
        start: Instant::now(),
        done: Vec::new(),
    };
    println!(
        "hydra demo: the built-in demo agent on tmux server -L {socket}, in {}",
        dir.display()
    );
    println!("(`tmux -L {socket} ls` shows the sessions while it runs)\n");

    // 1. Three sessions split one PRD's six stories, a worktree each.
    let parallel = orch.spawn_parallel(
        SessionConfig {
            use_worktree: true,
            ..base.clone()
        },
        sessions,
    )?;
    for (id, stories) in parallel.ids.iter().zip(&parallel.stories) {
        steps.say(format!(
            "spawned {id}: stories {} on branch hydralph/{id}, in its own worktree",
            stories.join(", ")
        ));
    }
    steps.step(
        "parallel",
        "three sessions share prd.json's six stories; none does another's",
    );
    let ids = parallel.ids.clone();
    let holder = |story: &str| -> Option<SessionId> {
        ids.iter()
            .zip(&parallel.stories)
            .find(|(_, s)| s.iter().any(|x| x == story))
            .map(|(id, _)| id.clone())
    };
    let (blocker, pauser) = match (holder("US-4"), holder("US-6")) {
        (Some(b), Some(p)) => (b, p),
        _ => bail!("the demo PRD was split unexpectedly"),
    };

    // 2. A fourth session on a PRD of its own, which never gets anywhere.
    let runaway = orch.spawn(SessionConfig {
        name: Some("runaway".into()),
        prd_path: dir.join("runaway.json"),
        agent_profile: Some(agent(&[("HYDRA_DEMO_RUNAWAY", "1")])),
        no_progress_limit: 0,
        ..base.clone()
    })?;
    steps.say(format!(
        "spawned {runaway} (runaway): a session that thinks and never writes anything"
    ));

    // 3. Pause one at its next checkpoint (it has two stories, so it has one), then resume it.
    orch.pause_with(&pauser, PauseMode::Checkpoint)?;
    steps.say(format!("pausing {pauser}: it stops before its next iteration"));
    let all = until(&orch, "the pause to take hold", |all| {
        of(all, &pauser).is_some_and(|s| matches!(s.state, SessionState::Paused { .. }) && !s.pausing)
    })?;
    let at = of(&all, &pauser).and_then(|s| s.stories.clone()).unwrap_or_default();
    steps.step("paused", format!("{pauser} is paused at its checkpoint (stories {at})"));
    std::thread::sleep(Duration::from_millis(500));
    orch.resume(&pauser)?;
    steps.step("resumed", format!("resumed {pauser}; it goes on with US-6"));

    // 4. One blocks with a reason; an operator's message and a resume unblock it.
    let all = until(&orch, "the session of US-4 to block", |all| {
        of(all, &blocker).is_some_and(|s| matches!(s.state, SessionState::Blocked { .. }))
    })?;
    let reason = of(&all, &blocker)
        .and_then(|s| s.state.reason().map(str::to_owned))
        .unwrap_or_default();
    steps.step("blocked", format!("{blocker} is blocked: {reason}"));
    orch.inject(&blocker, "The staging key is K-42 (use the sandbox account).")?;
    steps.step(
        "injected",
        format!("sent {blocker} a message: \"The staging key is K-42\""),
    );
    orch.resume(&blocker)?;
    steps.step(
        "unblocked",
        format!("resumed {blocker}; its next prompt carries the message"),
    );

    // 5. The runaway session is killed with a reason.
    orch.kill(&runaway, "runaway: burning tokens without writing anything")?;
    steps.step(
        "killed",
        format!("killed {runaway}: runaway: burning tokens without writing anything"),
    );

    // 6. Every story done; the PRD marked as they finished.
    until(&orch, "the three sessions to complete", |all| {
        parallel
            .ids
            .iter()
            .all(|id| of(all, id).is_some_and(|s| s.state.is_terminal()))
    })?;
    let all = orch.refresh()?;
    for id in &parallel.ids {
        if let Some(s) = of(&all, id) {
            steps.say(format!("{id}: {}", s.state));
        }
    }
    let (done, total) = std::fs::read(dir.join("prd.json"))
        .ok()
        .and_then(|b| hydra_orchestrator::Prd::parse(&b).ok())
        .map_or((0, 0), |p| p.counts());
    if done == total && total == 6 {
        steps.step("prd", format!("project PRD: {done}/{total} stories pass"));
    } else {
        steps.say(format!("project PRD: {done}/{total} stories pass"));
    }

    // 7. Every branch merged home.
    let mut merged = 0;
    for id in &parallel.ids {
        let r = orch.merge(id, &MergeOptions::default())?;
        match r.outcome {
            MergeOutcome::Merged { commit } => {
                merged += 1;
                steps.say(format!(
                    "merged {} into {} ({})",
                    r.branch,
                    r.into,
                    commit.get(..10).unwrap_or(&commit)
                ));
            }
            other => steps.say(format!("{} not merged: {other:?}", r.branch)),
        }
    }
    let files = git(&dir, &["ls-tree", "-r", "--name-only", "main", "stories"]);
    let story_files = files.lines().filter(|l| l.ends_with(".md")).count();
    if merged == 3 && story_files == 6 {
        steps.step("merged", format!("main holds all {story_files} stories' files"));
    } else {
        steps.say(format!("main holds {story_files} stories' files"));
    }

    // The summary.
    let statuses = orch.refresh()?;
    println!();
    print!("{}", crate::output::table(&statuses, crate::now(), false));
    if json {
        println!(
            "{}",
            serde_json::Value::Array(statuses.iter().map(|s| s.to_json()).collect())
        );
    }
    let expected = [
        "parallel",
        "paused",
        "resumed",
        "blocked",
        "injected",
        "unblocked",
        "killed",
        "prd",
        "merged",
    ];
    let completed = statuses
        .iter()
        .filter(|s| matches!(s.state, SessionState::Completed { .. }))
        .count();
    let missing: Vec<&str> = expected.iter().filter(|k| !steps.done.contains(k)).copied().collect();
    println!(
        "summary: {completed}/3 sessions completed, 1 killed, PRD {done}/{total}, {merged}/3 branches merged, in {:.1}s",
        steps.start.elapsed().as_secs_f64()
    );
    if missing.is_empty() && completed == 3 {
        println!("demo ok: every step happened; cleaned up");
        Ok(0)
    } else {
        println!("demo FAILED: missing {missing:?}");
        Ok(1)
    }
}
