//! `hydra`, the command-line face of hydra-orchestrator: spawn agent sessions in tmux, list
//! them, pause, resume, steer and kill them, follow their logs, run the health monitor, clean
//! up, and run a self-contained demo. Human output by default, `--json` for scripts; exit code
//! 0 on success, 1 on failure, 2 on a usage error.
//!
//! The command lives in this library ([`main_entry`]) so that test suites can build their own
//! copy of the binary; `src/main.rs` only calls it.

mod demo;
pub mod demo_agent;
mod log;
mod output;
mod report;
mod trust;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use hydra_orchestrator::{
    InjectMode, KillOptions, Orchestrator, PauseMode, PruneOptions, SessionConfig, SessionId, SessionStatus,
};
use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "hydra",
    version,
    about = "Run many AI coding agents at once, each in its own tmux session, and keep them under control"
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct Global {
    /// Project root (where .hydra/ lives); found from the current directory otherwise
    #[arg(long, global = true, value_name = "DIR")]
    project: Option<PathBuf>,
    /// Private tmux server to use (tmux -L NAME)
    #[arg(long, global = true, env = "HYDRA_TMUX_SOCKET", value_name = "NAME")]
    tmux_socket: Option<String>,
    /// Print JSON instead of text (spawn, ls, status, monitor, prune)
    #[arg(long, global = true)]
    json: bool,
    /// Show more of what the libraries report (-v info, -vv debug); RUST_LOG=LEVEL also works
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
}

#[derive(Subcommand)]
enum Command {
    /// Prepare this project: .hydra/ and a sample PRD
    Init,
    /// Start an agent session; prints its id
    Spawn(SpawnArgs),
    /// List sessions
    #[command(alias = "list")]
    Ls,
    /// Show one session
    Status {
        /// Session id
        #[arg(value_parser = parse_id)]
        id: SessionId,
    },
    /// Attach this terminal to a session's tmux session
    Attach {
        /// Session id
        #[arg(value_parser = parse_id)]
        id: SessionId,
    },
    /// Pause a session (before its next iteration, or at once with --now)
    Pause {
        /// Session id
        #[arg(value_parser = parse_id)]
        id: SessionId,
        /// Freeze the agent at once (SIGSTOP) instead of waiting for the iteration to end
        #[arg(long)]
        now: bool,
    },
    /// Resume a paused session, or restart a blocked one where it stopped
    Resume {
        /// Session id
        #[arg(value_parser = parse_id)]
        id: SessionId,
    },
    /// Send a message to the agent (queued for its next prompt; `-` reads stdin)
    Inject {
        /// Session id
        #[arg(value_parser = parse_id)]
        id: SessionId,
        /// The message, or `-` to read it from stdin
        message: String,
        /// Type it into the agent's pane now instead of queueing it
        #[arg(long)]
        live: bool,
    },
    /// End a session; its record stays as failed(reason)
    Kill {
        /// Session id
        #[arg(value_parser = parse_id)]
        id: SessionId,
        /// Why (recorded and published)
        #[arg(long, default_value = "killed by user")]
        reason: String,
        /// Remove the worktree even if it holds uncommitted or unmerged work
        #[arg(long)]
        force: bool,
    },
    /// Show the agent's output log
    Logs {
        /// Session id
        #[arg(value_parser = parse_id)]
        id: SessionId,
        /// How many lines
        #[arg(long, default_value_t = 50)]
        lines: usize,
        /// Keep printing new output until the session ends
        #[arg(long)]
        follow: bool,
    },
    /// Run health checks in the foreground (stuck, duration limits, vanished sessions)
    Monitor {
        /// Seconds between checks
        #[arg(long, default_value_t = 60)]
        interval: u64,
        /// Check once and exit
        #[arg(long)]
        once: bool,
    },
    /// Remove ended sessions and orphans (worktrees holding work are kept)
    #[command(alias = "gc")]
    Prune {
        /// Only say what would be removed
        #[arg(long)]
        dry_run: bool,
        /// Also end untagged hydralph-* tmux sessions (another tool's, or from before tags)
        #[arg(long)]
        force: bool,
        /// Delete the ended sessions' logs instead of archiving them under .hydra/archive/
        #[arg(long)]
        logs: bool,
    },
    /// Trust the project's files that can start programs (wt.toml hooks, hydra.toml commands)
    Trust {
        /// Forget this project's trusted files
        #[arg(long, conflicts_with = "list")]
        revoke: bool,
        /// List every trusted file and whether it changed since
        #[arg(long)]
        list: bool,
        /// Trust without asking (after reviewing what is shown)
        #[arg(long, short)]
        yes: bool,
    },
    /// Run the whole lifecycle with the built-in demo agent in a temporary repository
    Demo {
        /// How many sessions
        #[arg(long, default_value_t = 3)]
        sessions: usize,
    },
    /// The built-in scripted agent (used by `hydra demo`)
    #[command(hide = true)]
    DemoAgent,
}

#[derive(Args)]
struct SpawnArgs {
    /// A name for the session, usable wherever its id is
    #[arg(long)]
    name: Option<String>,
    /// The PRD to work through
    #[arg(long, default_value = ".hydra/ralph/prd.json")]
    prd: PathBuf,
    /// Agent program
    #[arg(long, default_value = "claude")]
    agent: String,
    /// Extra arguments for the agent (split on whitespace, never evaluated)
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    flags: String,
    /// Iteration limit
    #[arg(long, default_value_t = 10)]
    max_iterations: u32,
    /// Wall-clock limit, e.g. 4h, 30m, 1h30m, 90s
    #[arg(long, default_value = "4h", value_parser = orch_config::parse_duration)]
    max_duration: Duration,
    /// Give the session its own git worktree and port
    #[arg(long)]
    worktree: bool,
    /// Worktree branch (default hydralph/ID); implies --worktree
    #[arg(long)]
    branch: Option<String>,
    /// Working directory (default: the project root)
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Silence after which the session is reported stuck
    #[arg(long, default_value = "15m", value_parser = orch_config::parse_duration)]
    stuck_after: Duration,
    /// How `pause` stops this session
    #[arg(long, default_value = "checkpoint", value_parser = parse_pause_mode)]
    pause_mode: PauseMode,
    /// An external hydralph.sh instead of the built-in loop
    #[arg(long)]
    loop_script: Option<PathBuf>,
}

fn parse_id(s: &str) -> Result<SessionId, String> {
    SessionId::parse(s).map_err(|e| e.to_string())
}

fn parse_pause_mode(s: &str) -> Result<PauseMode, String> {
    s.parse::<PauseMode>().map_err(|e| e.to_string())
}

fn open(g: &Global) -> Result<Orchestrator> {
    let mut b = hydra_orchestrator::Builder::from_env().with_mail().reconcile(false);
    if let Some(p) = &g.project {
        b = b.project(p);
    }
    if let Some(s) = &g.tmux_socket {
        b = b.tmux_socket(s.clone());
    }
    b.build()
        .context("cannot open the project; pass --project DIR or run inside it")
}

fn finish(orch: &Orchestrator) {
    // Deliver this command's events before exiting, but never wait long for a daemon.
    let _ = orch.flush_events(Duration::from_secs(1));
}

/// Runs `hydra` with the process's arguments and returns its exit code.
pub fn main_entry() -> i32 {
    let cli = Cli::parse();
    log::install(cli.global.verbose);
    let code = match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprint!("{}", report::render(&e));
            1
        }
    };
    if std::env::var_os("HYDRA_REPORT_RSS").is_some() {
        // Instrumentation for the benchmark: this process's peak resident set (Linux).
        if let Some(line) = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_owned))
        {
            eprintln!("hydra: peak rss {}", line.trim_start_matches("VmHWM:").trim());
        }
    }
    code
}

fn run(cli: Cli) -> Result<i32> {
    let g = cli.global;
    match cli.command {
        Command::DemoAgent => Ok(demo_agent::run_demo_agent()),
        Command::Demo { sessions } => demo::run(sessions, g.json),
        Command::Init => init(&g),
        Command::Trust { revoke, list, yes } => {
            let root = match &g.project {
                Some(p) => p
                    .canonicalize()
                    .with_context(|| format!("cannot open {}", p.display()))?,
                None => hydra_orchestrator::find_project_root(&std::env::current_dir()?),
            };
            trust::run(&root, revoke, list, yes)
        }
        Command::Spawn(args) => {
            let orch = open(&g)?;
            let config = SessionConfig {
                name: args.name,
                max_iterations: args.max_iterations,
                max_duration: args.max_duration,
                agent_cli: args.agent,
                agent_flags: args.flags,
                prd_path: args.prd,
                working_dir: args.dir.unwrap_or_else(|| orch.project().to_path_buf()),
                use_worktree: args.worktree || args.branch.is_some(),
                branch_name: args.branch,
                stuck_after: args.stuck_after,
                pause_mode: args.pause_mode,
                loop_script: args.loop_script,
                ..SessionConfig::default()
            };
            let id = orch.spawn(config)?;
            if g.json {
                let rec = orch.record(&id)?;
                let st = SessionStatus::from_record(&rec, rec.created());
                println!("{}", st.to_json());
            } else {
                println!("{id}");
            }
            finish(&orch);
            Ok(0)
        }
        Command::Ls => {
            let orch = open(&g)?;
            let statuses = orch.refresh()?;
            let orphans = orch.last_orphans();
            for name in &orphans.tmux_sessions {
                eprintln!("hydra: orphaned tmux session {name} has no record; `hydra prune` ends it");
            }
            for name in &orphans.untagged_sessions {
                eprintln!(
                    "hydra: tmux session {name} belongs to no project (another tool's); `hydra prune --force` ends it"
                );
            }
            for n in orch.take_notices() {
                eprintln!("hydra: {n}");
            }
            if g.json {
                println!(
                    "{}",
                    serde_json::Value::Array(statuses.iter().map(SessionStatus::to_json).collect())
                );
            } else {
                print!("{}", output::table(&statuses));
            }
            finish(&orch);
            Ok(0)
        }
        Command::Status { id } => {
            let orch = open(&g)?;
            let st = orch.status(&id)?;
            if g.json {
                println!("{}", st.to_json());
            } else {
                print!("{}", output::detail(&st, &orch));
            }
            finish(&orch);
            Ok(0)
        }
        Command::Attach { id } => {
            let orch = open(&g)?;
            orch.attach(&id)?;
            Ok(0)
        }
        Command::Pause { id, now } => {
            let orch = open(&g)?;
            if now {
                orch.pause_with(&id, PauseMode::Freeze)?;
            } else {
                orch.pause(&id)?;
            }
            println!(
                "{id} paused{}",
                if now {
                    " (frozen)"
                } else {
                    "; the loop stops before its next iteration"
                }
            );
            finish(&orch);
            Ok(0)
        }
        Command::Resume { id } => {
            let orch = open(&g)?;
            orch.resume(&id)?;
            println!("{id} resumed");
            finish(&orch);
            Ok(0)
        }
        Command::Inject { id, message, live } => {
            let orch = open(&g)?;
            let text = if message == "-" {
                let mut buf = String::new();
                std::io::stdin()
                    .read_to_string(&mut buf)
                    .context("cannot read the message from stdin")?;
                buf
            } else {
                message
            };
            orch.inject_with(&id, &text, if live { InjectMode::Live } else { InjectMode::Queue })?;
            println!(
                "{id}: message {}",
                if live {
                    "typed into the pane"
                } else {
                    "queued for the next prompt"
                }
            );
            finish(&orch);
            Ok(0)
        }
        Command::Kill { id, reason, force } => {
            let orch = open(&g)?;
            let report = orch.kill_with(&id, &reason, KillOptions { force })?;
            println!("{id} killed ({reason})");
            if let Some((path, why)) = report.worktree_kept {
                eprintln!(
                    "hydra: kept worktree {} because it holds work: {}; `hydra kill --force` or remove it yourself",
                    path.display(),
                    why.join("; ")
                );
            }
            finish(&orch);
            Ok(0)
        }
        Command::Logs { id, lines, follow } => {
            let orch = open(&g)?;
            if let Some(text) = orch.logs(&id, lines)? {
                println!("{text}");
            }
            if follow {
                follow_log(&orch, &id)?;
            }
            Ok(0)
        }
        Command::Monitor { interval, once } => monitor(&g, interval, once),
        Command::Prune { dry_run, force, logs } => {
            let orch = open(&g)?;
            let report = orch.prune_with(PruneOptions {
                dry_run,
                force,
                drop_logs: logs,
            })?;
            print!("{}", output::prune(&report, g.json));
            finish(&orch);
            Ok(0)
        }
    }
}

fn init(g: &Global) -> Result<i32> {
    let here = match &g.project {
        Some(p) => p.clone(),
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    let root = match hydra_orchestrator::find_project(&here) {
        Some(existing) if g.project.is_none() => existing,
        _ => here,
    };
    let hydra = root.join(".hydra");
    let ralph = hydra.join("ralph");
    for d in [&hydra, &ralph] {
        orch_fs::mkdir_private(d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    let prd = ralph.join("prd.json");
    if prd.exists() {
        println!("{} exists; left as it is", prd.display());
    } else {
        orch_fs::write_atomic(&prd, demo::SAMPLE_PRD.as_bytes(), 0o600)
            .with_context(|| format!("cannot write {}", prd.display()))?;
        println!("wrote a sample PRD to {}; edit its userStories", prd.display());
    }
    let config = orch_config::Config::path(&root);
    if config.exists() {
        println!("{} exists; left as it is", config.display());
    } else {
        orch_fs::write_atomic(&config, orch_config::EXAMPLE.as_bytes(), 0o600)
            .with_context(|| format!("cannot write {}", config.display()))?;
        // A file hydra wrote on this machine is trusted as written; an edit needs `hydra trust`.
        if let Ok(store) = trust::store() {
            let runs = trust::Runs {
                file: config.canonicalize().unwrap_or(config.clone()),
                contents: orch_config::EXAMPLE.as_bytes().to_vec(),
                commands: Vec::new(),
            };
            let _ = trust::record(&store, &runs);
        }
        println!(
            "wrote {} (commented; `hydra config` shows what applies)",
            config.display()
        );
    }
    let git_dir = root.join(".git");
    if git_dir.is_dir() {
        let added = orch_fs::add_git_exclude(&git_dir, orch_fs::HYDRA_EXCLUDE)
            .with_context(|| format!("cannot write {}", git_dir.join("info/exclude").display()))?;
        if added {
            println!("added .hydra/ to .git/info/exclude");
        }
    }
    println!(
        "ready: `hydra spawn --agent claude` starts an agent on {}",
        prd.display()
    );
    Ok(0)
}

fn follow_log(orch: &Orchestrator, id: &SessionId) -> Result<()> {
    let path = orch.runtime_layout(id).log();
    let mut offset = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if len < offset {
            offset = 0; // rotated
        }
        if len > offset {
            use std::io::{Seek, SeekFrom};
            let mut f = std::fs::File::open(&path)?;
            f.seek(SeekFrom::Start(offset))?;
            let mut buf = Vec::new();
            f.read_to_end(&mut buf)?;
            print!("{}", String::from_utf8_lossy(&buf));
            offset = len;
        }
        if orch.record(id)?.state.is_terminal() {
            return Ok(());
        }
    }
}

fn monitor(g: &Global, interval: u64, once: bool) -> Result<i32> {
    if interval == 0 {
        bail!("--interval must be at least 1 second");
    }
    let orch = open(g)?;
    for n in orch.take_notices() {
        eprintln!("hydra: {n}");
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        // `ralph:*` pulses from loops that publish them move states at once; the periodic
        // health check catches everything else.
        let channels = ["ralph:started", "ralph:iteration", "ralph:complete", "ralph:blocked", "ralph:max-iterations"];
        let mut sub = orch.subscribe(&channels).ok();
        let mut last: Vec<(String, String)> = Vec::new();
        loop {
            let (statuses, killed) = orch.survey()?;
            let now: Vec<(String, String)> = statuses.iter().map(|s| (s.id.to_string(), s.state.to_string())).collect();
            for (id, state) in &now {
                if !last.iter().any(|(i, s)| i == id && s == state) {
                    if g.json {
                        println!("{}", serde_json::json!({"id": id, "state": state, "killed": killed.iter().any(|k| k.as_str() == id)}));
                    } else {
                        println!("{id}: {state}");
                    }
                }
            }
            for id in &killed {
                if !g.json {
                    println!("{id}: killed by health check (duration limit exceeded)");
                }
            }
            last = now;
            finish(&orch);
            if once {
                return Ok(0);
            }
            let sleep = tokio::time::sleep(Duration::from_secs(interval));
            tokio::pin!(sleep);
            loop {
                match sub.as_mut() {
                    Some(s) => tokio::select! {
                        _ = &mut sleep => break,
                        pulse = s.next() => match pulse {
                            Some(p) => { let _ = orch.apply_pulse(&p); }
                            None => { sub = None; }
                        },
                    },
                    None => {
                        (&mut sleep).await;
                        break;
                    }
                }
            }
        }
    })
}
