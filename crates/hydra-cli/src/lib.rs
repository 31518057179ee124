//! `hydra`, the command-line face of hydra-orchestrator: spawn agent sessions in tmux, list
//! them, pause, resume, steer and kill them, follow their logs, run the live monitor, clean
//! up, and run a self-contained demo. Human output by default, `--json` for scripts; exit code
//! 0 on success, 1 on failure, 2 on a usage error.
//!
//! The command lives in this library ([`main_entry`]) so that test suites can build their own
//! copy of the binary; `src/main.rs` only calls it.

mod agents;
mod completions;
mod context;
mod demo;
pub mod demo_agent;
mod log;
mod logs;
mod monitor;
mod notify;
mod output;
mod report;
mod review;
mod served;
mod settings;
mod show_config;
pub mod top;
mod trust;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use context::Ctx;
use hydra_orchestrator::{
    Delivery, InjectMode, KillOptions, MergeOptions, PauseMode, PruneOptions, SessionConfig, SessionStatus, WatchEvent,
};
use settings::pick;
use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "hydra",
    version,
    about = "Run many AI coding agents at once, each in its own tmux session, and keep them under control",
    disable_help_subcommand = true
)]
pub(crate) struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// The options every command takes.
#[derive(Args, Clone)]
pub(crate) struct Global {
    /// Project root (where .hydra/ lives); found from the current directory otherwise
    #[arg(long, global = true, value_name = "DIR")]
    pub project: Option<PathBuf>,
    /// Private tmux server to use (tmux -L NAME)
    #[arg(long, global = true, env = "HYDRA_TMUX_SOCKET", value_name = "NAME")]
    pub tmux_socket: Option<String>,
    /// Print JSON instead of text
    #[arg(long, global = true)]
    pub json: bool,
    /// Colour: auto (on a terminal, unless NO_COLOR is set), always, never
    #[arg(long, global = true, default_value = "auto", value_parser = ["auto", "always", "never"])]
    pub color: String,
    /// Show more of what the libraries report (-v info, -vv debug); RUST_LOG=LEVEL also works
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Subcommand)]
// Each subcommand's arguments are built only when it runs (or for help, completions, the
// manual): `hydra ls` no longer builds the other twenty-odd commands' arguments first.
#[command(defer = true)]
enum Command {
    /// Prepare this project: .hydra/, a sample PRD and a commented hydra.toml
    Init,
    /// Start an agent session (and the project's monitor, if none runs); prints its id
    Spawn(Box<SpawnArgs>),
    /// List the live sessions (--all: ended ones too)
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Show one session
    Status {
        /// Session id, unique id prefix, or name
        #[arg(value_parser = parse_ref)]
        id: String,
    },
    /// Attach this terminal to a session's tmux session
    Attach {
        /// Session id, unique id prefix, or name
        #[arg(value_parser = parse_ref)]
        id: String,
    },
    /// Pause a session (before its next iteration, or at once with --now)
    Pause {
        /// Session id, unique id prefix, or name
        #[arg(value_parser = parse_ref)]
        id: String,
        /// Freeze the agent at once (SIGSTOP) instead of waiting for the iteration to end
        #[arg(long)]
        now: bool,
    },
    /// Resume a paused session, or restart a blocked one where it stopped
    Resume {
        /// Session id, unique id prefix, or name
        #[arg(value_parser = parse_ref)]
        id: String,
    },
    /// Send a message to the agent (queued for its next prompt; `-` reads stdin)
    Inject {
        /// Session id, unique id prefix, or name
        #[arg(value_parser = parse_ref)]
        id: String,
        /// The message, or `-` to read it from stdin
        message: String,
        /// Type it into the agent's pane now instead of queueing it
        #[arg(long)]
        live: bool,
    },
    /// End a session; its record stays as failed(reason)
    Kill {
        /// Session id, unique id prefix, or name
        #[arg(value_parser = parse_ref)]
        id: String,
        /// Why (recorded and published)
        #[arg(long, default_value = "killed by user")]
        reason: String,
        /// Remove the worktree even if it holds uncommitted or unmerged work (the branch stays)
        #[arg(long)]
        force: bool,
    },
    /// Show the agent's output log
    Logs {
        /// Session id, unique id prefix, or name
        #[arg(value_parser = parse_ref)]
        id: String,
        /// How many lines
        #[arg(long, default_value_t = 50)]
        lines: usize,
        /// Keep printing what the agent prints until the session ends
        #[arg(long, short)]
        follow: bool,
    },
    /// What a session's branch changed since it started: commits and diffstat
    Diff {
        /// Session id, unique id prefix, or name
        #[arg(value_parser = parse_ref)]
        id: String,
        /// The whole diff too
        #[arg(long)]
        patch: bool,
    },
    /// Merge a session's branch into the branch it started from
    Merge {
        /// Session id, unique id prefix, or name
        #[arg(value_parser = parse_ref)]
        id: String,
        /// Merge into this branch instead (it must be checked out somewhere)
        #[arg(long)]
        into: Option<String>,
        /// One squashed commit instead of a merge commit
        #[arg(long)]
        squash: bool,
        /// Merge even while the session is still live
        #[arg(long)]
        force: bool,
    },
    /// Worktrees of ended sessions
    #[command(subcommand)]
    Worktree(WorktreeCommand),
    /// Watch the sessions live: one line per transition, notifications, health rules
    Monitor(MonitorArgs),
    /// The live dashboard: every session, its output, and keys to act on them
    Top,
    /// Remove ended sessions and this project's orphans (worktrees holding work are kept)
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
    /// Show the effective configuration, where each value comes from, and each file's trust
    Config,
    /// List the agent profiles (built-in and hydra.toml's) and whether each is on PATH
    Agents,
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
    Demo,
    /// Shell completions for bash, zsh or fish (session ids complete too in bash and fish)
    Completions {
        /// The shell
        #[arg(value_parser = ["bash", "zsh", "fish"])]
        shell: String,
    },
    /// The manual page (roff), for `man -l -` or a man directory
    Man,
}

#[derive(Subcommand)]
enum WorktreeCommand {
    /// Remove the worktree an ended session kept, when its work is merged or gone (the
    /// branch stays; the port is freed)
    Rm {
        /// Session id, unique id prefix, or name
        #[arg(value_parser = parse_ref)]
        id: String,
        /// Remove it even if it holds uncommitted or unmerged work
        #[arg(long)]
        force: bool,
    },
}

#[derive(Args)]
struct SpawnArgs {
    /// A name for the session, usable wherever its id is
    #[arg(long, value_parser = parse_name)]
    name: Option<String>,
    /// The PRD to work through
    #[arg(long, default_value = DEFAULT_PRD)]
    prd: PathBuf,
    /// Agent program (default: [spawn] agent in hydra.toml, else claude)
    #[arg(long)]
    agent: Option<String>,
    /// Extra arguments for the agent (split on whitespace, never evaluated)
    #[arg(long, allow_hyphen_values = true)]
    flags: Option<String>,
    /// Iteration limit, 1 to 100000 (default 10)
    #[arg(long, value_parser = parse_iterations)]
    max_iterations: Option<u32>,
    /// Wall-clock limit, e.g. 4h, 30m, 1h30m, 90s; 1s to 30d (default 4h)
    #[arg(long, value_parser = parse_limit)]
    max_duration: Option<Duration>,
    /// Give the session its own git worktree and port
    #[arg(long)]
    worktree: bool,
    /// Worktree branch (default hydralph/ID); implies --worktree
    #[arg(long)]
    branch: Option<String>,
    /// Working directory (default: the project root)
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Silence after which the session is reported stuck (default 15m)
    #[arg(long, value_parser = parse_limit)]
    stuck_after: Option<Duration>,
    /// How `pause` stops this session
    #[arg(long, default_value = "checkpoint", value_parser = parse_pause_mode)]
    pause_mode: PauseMode,
    /// An external hydralph.sh instead of the built-in loop
    #[arg(long)]
    loop_script: Option<PathBuf>,
    /// Only these PRD stories, comma-separated (default: every story not done that no live
    /// session holds)
    #[arg(long, value_delimiter = ',', conflicts_with = "parallel")]
    stories: Option<Vec<String>>,
    /// Split the PRD's free stories across N new sessions, each in its own worktree
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    parallel: Option<u16>,
    /// With --parallel, share the project checkout instead of a worktree each
    #[arg(long, requires = "parallel")]
    no_worktree: bool,
    /// Refuse to share a working directory with a live session (otherwise it is warned about)
    #[arg(long)]
    exclusive: bool,
    /// Block after N iterations in a row without progress (no commit, PRD or tree change);
    /// 0 turns it off (default 3, or [health] no_progress_limit)
    #[arg(long, value_name = "N", value_parser = parse_no_progress)]
    no_progress_limit: Option<u32>,
    /// Stop once the cost the agent reports reaches this many USD (agents that report it)
    #[arg(long, value_name = "USD", value_parser = parse_cost)]
    max_cost: Option<f64>,
}

#[derive(Args)]
struct LsArgs {
    /// Ended sessions too
    #[arg(long, short)]
    all: bool,
    /// Only these states, comma-separated (running,blocked,...)
    #[arg(long, value_delimiter = ',', value_parser = parse_state)]
    state: Vec<String>,
    /// Redraw the table in place as sessions change (Ctrl-C ends it)
    #[arg(long, short, conflicts_with = "json")]
    watch: bool,
    /// Only the ids (and names), one per line, for scripts and completions
    #[arg(long, short, conflicts_with_all = ["json", "watch"])]
    quiet: bool,
}

#[derive(Args)]
struct MonitorArgs {
    /// Look once, print every session's state, and exit
    #[arg(long, conflicts_with_all = ["detach", "stop"])]
    once: bool,
    /// Run in the background (pid and log under .hydra/orchestrator/)
    #[arg(long, conflicts_with = "stop")]
    detach: bool,
    /// End the project's background monitor
    #[arg(long)]
    stop: bool,
    /// Set by `--detach` and `spawn` on the monitor they start: a background monitor of
    /// another hydra build is replaced by the next spawn
    #[arg(long, hide = true, conflicts_with_all = ["once", "detach", "stop"])]
    background: bool,
}

/// The states `--state` accepts.
const STATES: &[&str] = &[
    "starting",
    "running",
    "pausing",
    "paused",
    "stuck",
    "blocked",
    "completed",
    "max-iterations",
    "failed",
];

/// An id, a unique prefix of one, or a name: 1 to 64 characters of a-z, 0-9, '.', '_', '-',
/// starting with a letter or digit (so it can never be an option or a path).
fn parse_ref(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "{s:?} is not a session id, prefix or name; those are 1 to 64 characters of a-z, 0-9, '.', '_' and '-', starting with a letter or digit"
        ))
    }
}

fn parse_name(s: &str) -> Result<String, String> {
    hydra_orchestrator::check_name(s)
        .map(|()| s.to_owned())
        .map_err(|e| e.to_string())
}

fn parse_pause_mode(s: &str) -> Result<PauseMode, String> {
    s.parse::<PauseMode>().map_err(|e| e.to_string())
}

pub(crate) fn parse_iterations(s: &str) -> Result<u32, String> {
    let max = hydra_orchestrator::MAX_ITERATIONS_LIMIT;
    let digits = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match s.parse::<u32>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ if digits => Err(format!("{s} is out of range; allowed: 1 to {max}")),
        _ => Err(format!("{s:?} is not a whole number; allowed: 1 to {max}")),
    }
}

fn parse_limit(s: &str) -> Result<Duration, String> {
    let d = orch_config::parse_duration(s)?;
    if d < Duration::from_secs(1) || d > Duration::from_secs(30 * 86_400) {
        return Err(format!(
            "{} is out of range; allowed: 1s to 30d",
            orch_config::format_duration(d)
        ));
    }
    Ok(d)
}

fn parse_no_progress(s: &str) -> Result<u32, String> {
    let max = hydra_orchestrator::MAX_ITERATIONS_LIMIT;
    match s.parse::<u32>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(format!("{s:?} is not allowed; give 0 (off) to {max} iterations")),
    }
}

fn parse_cost(s: &str) -> Result<f64, String> {
    match s.trim_start_matches('$').parse::<f64>() {
        Ok(c) if c.is_finite() && c > 0.0 && c <= orch_core::MAX_COST_USD => Ok(c),
        _ => Err(format!(
            "{s:?} is not allowed; give an amount in USD, more than 0 up to {} (5, 12.50)",
            orch_core::MAX_COST_USD
        )),
    }
}

fn parse_state(s: &str) -> Result<String, String> {
    if STATES.contains(&s) {
        Ok(s.to_owned())
    } else {
        Err(format!("{s:?} is not a state; allowed: {}", STATES.join(", ")))
    }
}

/// The argument that makes `hydra` the built-in demo agent (what `hydra demo`'s sessions run).
/// Read before the command line is parsed, so it is no subcommand: it never shows in help,
/// usage errors or suggestions.
pub const DEMO_AGENT_ARG: &str = "demo-agent";

/// Runs `hydra` with the process's arguments and returns its exit code.
pub fn main_entry() -> i32 {
    if std::env::args_os().nth(1).is_some_and(|a| a == DEMO_AGENT_ARG) {
        return demo_agent::run_demo_agent();
    }
    quiet_broken_pipe();
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
        Command::Completions { shell } => completions::run(&shell),
        Command::Man => completions::man(),
        Command::Demo => demo::run(g.json),
        Command::Init => init(&g),
        Command::Trust { revoke, list, yes } => {
            let root = context::project_root(&g)?;
            trust::run(&root, revoke, list, yes)
        }
        Command::Config => show_config::run(&Ctx::open(&g)?),
        Command::Agents => agents::run(&g),
        Command::Top => top::run(&Ctx::open_long_lived(&g)?),
        Command::Diff { id, patch } => {
            let ctx = Ctx::open(&g)?;
            let id = ctx.id(&id)?;
            let d = ctx.orch.diff(&id, patch)?;
            print!("{}", review::diff(&id, &d, ctx.g.json));
            Ok(0)
        }
        Command::Merge {
            id,
            into,
            squash,
            force,
        } => {
            let ctx = Ctx::open(&g)?;
            let id = ctx.id(&id)?;
            let report = ctx.orch.merge(&id, &MergeOptions { into, squash, force })?;
            let (text, ok) = review::merge(&id, &report, ctx.g.json);
            Ok(ctx.outcome(&text, ok))
        }
        Command::Worktree(WorktreeCommand::Rm { id, force }) => {
            let ctx = Ctx::open(&g)?;
            let id = ctx.id(&id)?;
            let outcome = ctx.orch.remove_worktree(&id, force)?;
            let (text, ok) = review::worktree_rm(&id, &outcome);
            Ok(ctx.outcome(&text, ok))
        }
        Command::Spawn(args) => spawn(&Ctx::open(&g)?, *args),
        Command::Ls(args) if args.watch => ls(&Ctx::open_long_lived(&g)?, &args),
        Command::Ls(args) => ls(&Ctx::open(&g)?, &args),
        Command::Status { id } => {
            let ctx = Ctx::open(&g)?;
            let st = ctx.orch.status(&ctx.id(&id)?)?;
            if g.json {
                println!("{}", st.to_json());
            } else {
                print!(
                    "{}",
                    output::detail(&st, ctx.orch.runtime_layout(&st.id).dir(), ctx.color)
                );
            }
            ctx.notices(false);
            Ok(0)
        }
        Command::Attach { id } => {
            let ctx = Ctx::open(&g)?;
            let id = ctx.id(&id)?;
            let st = ctx.orch.status(&id)?;
            if st.state.is_terminal() {
                bail!("session {id} has ended ({}); there is nothing to attach to", st.state);
            }
            eprintln!(
                "hydra: attaching to {}; detach with your tmux prefix then d (C-b d by default)",
                st.tmux_session
            );
            ctx.orch.attach(&id)?;
            Ok(0)
        }
        Command::Pause { id, now } => {
            let ctx = Ctx::open(&g)?;
            let id = ctx.id(&id)?;
            if now {
                ctx.orch.pause_with(&id, PauseMode::Freeze)?;
                println!("{id} frozen (its processes are stopped until `hydra resume {id}`)");
            } else {
                ctx.orch.pause(&id)?;
                println!("{id} pausing: the loop stops before its next iteration");
            }
            ctx.finish();
            Ok(0)
        }
        Command::Resume { id } => {
            let ctx = Ctx::open(&g)?;
            let id = ctx.id(&id)?;
            ctx.orch.resume(&id)?;
            println!("{id} resumed");
            ctx.finish();
            Ok(0)
        }
        Command::Inject { id, message, live } => {
            let ctx = Ctx::open(&g)?;
            let id = ctx.id(&id)?;
            let text = if message == "-" {
                let mut buf = String::new();
                std::io::stdin()
                    .read_to_string(&mut buf)
                    .context("cannot read the message from stdin")?;
                buf
            } else {
                message
            };
            let mode = if live { InjectMode::Live } else { InjectMode::Queue };
            let delivery = ctx.orch.inject_with(&id, &text, mode)?;
            let code = match delivery {
                Delivery::Typed => {
                    println!("{id}: message typed into the pane");
                    0
                }
                Delivery::QueuedInsteadOfTyped => {
                    // Said, and not a success: what was asked for did not happen.
                    eprintln!(
                        "hydra: not typed: {id}'s agent reads its prompt once per iteration and would never see typed text; the message was queued for its next prompt instead"
                    );
                    1
                }
                _ => {
                    println!("{id}: message queued for the next prompt");
                    0
                }
            };
            ctx.finish();
            Ok(code)
        }
        Command::Kill { id, reason, force } => {
            let ctx = Ctx::open(&g)?;
            let id = ctx.id(&id)?;
            let report = ctx.orch.kill_with(&id, &reason, KillOptions { force })?;
            println!("{id} killed ({reason})");
            if report.worktree_removed {
                println!("{id}: worktree removed and its port freed (its branch stays)");
            }
            if let Some((path, why)) = report.worktree_kept {
                eprintln!(
                    "hydra: kept worktree {} because it holds work: {}; `hydra kill --force` would have removed it (the branch always stays)",
                    path.display(),
                    why.join("; ")
                );
            }
            ctx.finish();
            Ok(0)
        }
        Command::Logs { id, lines, follow } => {
            let ctx = Ctx::open(&g)?;
            let id = ctx.id(&id)?;
            logs::run(&ctx, &id, lines, follow)
        }
        Command::Monitor(args) => {
            if args.stop {
                return monitor::stop(&context::project_root(&g)?);
            }
            let ctx = if args.once || args.detach {
                Ctx::open(&g)?
            } else {
                Ctx::open_long_lived(&g)?
            };
            if args.once {
                monitor::once(&ctx)
            } else if args.detach {
                monitor::detach(&ctx)
            } else {
                monitor::run(&ctx, args.background)
            }
        }
        Command::Prune { dry_run, force, logs } => {
            let ctx = Ctx::open(&g)?;
            let report = ctx.orch.prune_with(PruneOptions {
                dry_run,
                force,
                drop_logs: logs,
            })?;
            print!("{}", output::prune(&report, g.json));
            ctx.finish();
            Ok(0)
        }
    }
}

/// What a new session is asked to be, from `hydra spawn`'s flags or `hydra top`'s form; what
/// is not given comes from `hydra.toml`, else the defaults.
#[derive(Debug, Clone, Default)]
pub(crate) struct SpawnRequest {
    pub name: Option<String>,
    pub prd: Option<PathBuf>,
    pub agent: Option<String>,
    pub flags: Option<String>,
    pub max_iterations: Option<u32>,
    pub max_duration: Option<Duration>,
    pub worktree: bool,
    pub branch: Option<String>,
    pub dir: Option<PathBuf>,
    pub stuck_after: Option<Duration>,
    pub pause_mode: PauseMode,
    pub loop_script: Option<PathBuf>,
    pub stories: Option<Vec<String>>,
    pub exclusive: bool,
    pub no_progress_limit: Option<u32>,
    pub max_cost: Option<f64>,
}

impl From<SpawnArgs> for SpawnRequest {
    fn from(a: SpawnArgs) -> Self {
        SpawnRequest {
            name: a.name,
            prd: Some(a.prd),
            agent: a.agent,
            flags: a.flags,
            max_iterations: a.max_iterations,
            max_duration: a.max_duration,
            worktree: a.worktree,
            branch: a.branch,
            dir: a.dir,
            stuck_after: a.stuck_after,
            pause_mode: a.pause_mode,
            loop_script: a.loop_script,
            stories: a.stories,
            exclusive: a.exclusive,
            no_progress_limit: a.no_progress_limit,
            max_cost: a.max_cost,
        }
    }
}

/// The session configuration `req` asks for in this project.
///
/// Errors: the agent names a profile of `hydra.toml` that is not trusted.
pub(crate) fn session_config(ctx: &Ctx, req: SpawnRequest) -> Result<SessionConfig> {
    let s = &ctx.settings.config.spawn;
    let agent = pick(req.agent, s.agent.clone(), "claude".to_owned()).value;
    // A profile of hydra.toml starts the program it names: only when the file is trusted.
    let profile = ctx.settings.config.agents.get(&agent).map(|a| a.profile(&agent));
    if let Some(p) = &profile {
        ctx.settings.require_trust(
            &format!("agent profile {agent}"),
            &[format!("[agents.{agent}] command: {}", orch_config::shown(&p.command))],
            ctx.config_trusted(),
        )?;
    }
    let agent_cli = profile.as_ref().map_or(agent.clone(), |p| p.program_name().to_owned());
    let flags = pick(req.flags, s.flags.clone(), String::new()).value;
    let max_iterations = pick(req.max_iterations, s.max_iterations, 10).value;
    let max_duration = pick(
        req.max_duration,
        s.max_duration.map(|d| d.0),
        Duration::from_secs(4 * 3600),
    )
    .value;
    let use_worktree = req.worktree || req.branch.is_some() || s.worktree == Some(true);
    Ok(SessionConfig {
        name: req.name,
        max_iterations,
        max_duration,
        agent_cli,
        agent_profile: profile,
        no_progress_limit: pick(req.no_progress_limit, ctx.settings.config.health.no_progress_limit, 3).value,
        max_cost_usd: req.max_cost,
        agent_flags: flags,
        prd_path: req.prd.unwrap_or_else(|| PathBuf::from(DEFAULT_PRD)),
        working_dir: req.dir.unwrap_or_else(|| ctx.root.clone()),
        use_worktree,
        branch_name: req.branch,
        stuck_after: ctx.settings.stuck_after(req.stuck_after).value,
        pause_mode: req.pause_mode,
        loop_script: req.loop_script,
        stories: req.stories,
        exclusive: req.exclusive || s.exclusive == Some(true),
        ..SessionConfig::default()
    })
}

/// The PRD a session works through unless told otherwise.
pub(crate) const DEFAULT_PRD: &str = ".hydra/ralph/prd.json";

fn spawn(ctx: &Ctx, args: SpawnArgs) -> Result<i32> {
    let parallel = args.parallel;
    let no_worktree = args.no_worktree;
    let mut config = session_config(ctx, args.into())?;
    let ids = match parallel {
        None => vec![ctx.orch.spawn(config)?],
        Some(n) => {
            config.use_worktree = !no_worktree;
            let done = ctx.orch.spawn_parallel(config, usize::from(n))?;
            if done.ids.len() < done.asked {
                let free: usize = done.stories.iter().map(Vec::len).sum();
                eprintln!(
                    "hydra: {free} free stor{} for {} sessions: started {}",
                    if free == 1 { "y" } else { "ies" },
                    done.asked,
                    done.ids.len()
                );
            }
            done.ids
        }
    };
    for id in &ids {
        if ctx.g.json {
            let rec = ctx.orch.record(id)?;
            println!("{}", SessionStatus::from_record(&rec, rec.created()).to_json());
        } else if parallel.is_some() {
            let rec = ctx.orch.record(id)?;
            let stories = rec.claimed.unwrap_or_default().join(",");
            match rec.branch_name.filter(|_| rec.use_worktree) {
                Some(b) => println!("{id}  {stories}  {b}"),
                None => println!("{id}  {stories}"),
            }
        } else {
            println!("{id}");
        }
    }
    if ctx.settings.monitor_auto().value {
        monitor::start_for_spawn(&ctx.root, ctx.g.tmux_socket.as_deref());
    }
    ctx.finish();
    Ok(0)
}

/// The sessions `args` asks for, and how many ended ones were left out.
fn select(statuses: Vec<SessionStatus>, args: &LsArgs) -> (Vec<SessionStatus>, usize) {
    let selection = args.selection();
    let mut hidden = 0;
    let shown = statuses
        .into_iter()
        .filter(|s| {
            let keep = selection.shows(s);
            hidden += usize::from(!keep && selection.states.is_empty());
            keep
        })
        .collect();
    (shown, hidden)
}

impl LsArgs {
    /// The sessions these arguments show.
    fn selection(&self) -> served::Selection {
        served::Selection {
            all: self.all,
            states: self.state.clone(),
        }
    }
}

/// The time now, from the library's system clock.
pub(crate) fn now() -> hydra_orchestrator::Timestamp {
    hydra_orchestrator::Clock::now(&hydra_orchestrator::SystemClock)
}

fn ls_text(statuses: Vec<SessionStatus>, args: &LsArgs, color: bool, root: &std::path::Path) -> String {
    let (shown, hidden) = select(statuses, args);
    let mut out = if shown.is_empty() {
        if hidden > 0 {
            "no live sessions; `hydra spawn` starts one\n".to_owned()
        } else {
            "no sessions; `hydra spawn` starts one\n".to_owned()
        }
    } else {
        output::table(&shown, now(), color)
    };
    if hidden > 0 {
        out.push_str(&format!(
            "({hidden} ended session{} not shown; `hydra ls --all` shows them)\n",
            if hidden == 1 { "" } else { "s" }
        ));
    }
    out.push_str(&prd_footer(&shown, root));
    out
}

/// One line per PRD the shown sessions work on: how many of its stories pass (its path as
/// seen from the project root).
fn prd_footer(shown: &[SessionStatus], root: &std::path::Path) -> String {
    let mut seen: Vec<&std::path::Path> = Vec::new();
    let mut out = String::new();
    for s in shown {
        let path = s.prd_path.as_path();
        if s.claimed.is_none() || seen.contains(&path) {
            continue;
        }
        seen.push(path);
        if let Some(prd) = std::fs::read(path)
            .ok()
            .and_then(|b| hydra_orchestrator::Prd::parse(&b).ok())
        {
            let (done, total) = prd.counts();
            let shown_path = path.strip_prefix(root).unwrap_or(path);
            out.push_str(&format!("PRD {}: {done}/{total} stories pass\n", shown_path.display()));
        }
    }
    out
}

fn ls(ctx: &Ctx, args: &LsArgs) -> Result<i32> {
    if args.watch {
        let mut watcher = ctx.orch.watch(hydra_orchestrator::WatchOptions::default())?;
        while let Some(event) = watcher.recv() {
            if let WatchEvent::Looked { statuses } = event {
                // Home, clear, then the table: redrawn in place.
                print!("\x1b[H\x1b[2J{}", ls_text(statuses, args, ctx.color, &ctx.root));
                let _ = std::io::Write::flush(&mut std::io::stdout());
            }
        }
        return Ok(0);
    }
    // The project's monitor looks when it runs (cheaper: its tmux client is connected and its
    // process started); else this process does.
    // For --json the monitor writes the answer too.
    let selection = ctx.g.json.then(|| args.selection());
    let (statuses, served_json, orphans, untagged, served_notices) = match served::ask(&ctx.root, &ctx.orch, selection)
    {
        Some(a) => (a.statuses, a.json, a.orphans, a.untagged, a.notices),
        None => {
            let statuses = ctx.orch.refresh()?;
            let o = ctx.orch.last_orphans();
            let unwatched = unwatched_notice(ctx, &statuses);
            (
                statuses,
                None,
                o.tmux_sessions,
                o.untagged_sessions,
                unwatched.into_iter().collect(),
            )
        }
    };
    for name in &orphans {
        eprintln!("hydra: tmux session {name} is this project's but has no record; `hydra prune` ends it");
    }
    for name in &untagged {
        eprintln!("hydra: tmux session {name} is not tagged as this project's (another tool's?); `hydra prune --force` ends it");
    }
    // Only asked for, so only given, with --json.
    if let Some(mut bytes) = served_json {
        bytes.push(b'\n');
        write_stdout(&bytes)?;
    } else if ctx.g.json {
        let (shown, _) = select(statuses, args);
        // Serialized straight to stdout through one buffer of a fixed size: at a thousand
        // sessions the detour through `serde_json::Value` cost more than reading them, and a
        // buffer of the whole answer was a sixth of the process's memory.
        write_json_array(shown.iter().map(|s| s.json()))?;
    } else if args.quiet {
        let (shown, _) = select(statuses, args);
        let mut text = String::new();
        for s in shown {
            text.push_str(&s.id.0);
            text.push('\n');
            if let Some(n) = &s.name {
                text.push_str(n);
                text.push('\n');
            }
        }
        write_stdout(text.as_bytes())?;
    } else {
        write_stdout(ls_text(statuses, args, ctx.color, &ctx.root).as_bytes())?;
    }
    let _ = ctx.orch.flush_events(Duration::from_secs(1));
    for n in served_notices {
        eprintln!("hydra: {n}");
    }
    ctx.notices(false);
    Ok(0)
}

/// What `ls` says when it looked itself at live sessions that no monitor watches although
/// `[monitor] auto` wants one (the monitor a spawn started ended or was killed, or the
/// sessions were spawned without it): their duration and stuck limits then wait for the next
/// command that looks.
fn unwatched_notice(ctx: &Ctx, statuses: &[SessionStatus]) -> Option<String> {
    let live = statuses.iter().filter(|s| !s.state.is_terminal()).count();
    if live == 0 || !ctx.settings.monitor_auto().value || monitor::running(&ctx.root).is_some() {
        return None;
    }
    Some(format!(
        "no monitor watches this project's {live} live session{}: their duration and stuck limits are \
         kept only when a command looks; `hydra monitor --detach` starts one",
        if live == 1 { "" } else { "s" }
    ))
}

/// Writes `bytes` to stdout at once. A reader that went away (`hydra ls --json | head`) is
/// not an error: the command goes on to its end (its events are still delivered).
fn write_stdout(bytes: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    reader_gone_is_ok(std::io::Write::write_all(&mut out, bytes).and_then(|()| std::io::Write::flush(&mut out)))
}

/// `written`, with a closed pipe (the reader went away) counted as done.
fn reader_gone_is_ok(written: std::io::Result<()>) -> std::io::Result<()> {
    match written {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Writes the items as one JSON array and a newline to stdout, through a fixed buffer. A
/// reader that went away is not an error, as for [`write_stdout`].
fn write_json_array<T: serde::Serialize>(items: impl Iterator<Item = T>) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    let written = json_seq(&mut out, items)
        .and_then(|()| std::io::Write::write_all(&mut out, b"\n"))
        .and_then(|()| std::io::Write::flush(&mut out));
    reader_gone_is_ok(written)
}

/// Writes the items to `out` as one JSON array (no newline), as `ls --json` does whichever
/// process looked.
pub(crate) fn json_seq<T: serde::Serialize>(
    out: &mut impl std::io::Write,
    items: impl Iterator<Item = T>,
) -> std::io::Result<()> {
    use serde::Serializer;
    serde_json::Serializer::new(out)
        .collect_seq(items)
        .map_err(std::io::Error::from)
}

/// Makes `print!` into a closed pipe end the process quietly, as other Unix tools do when
/// their reader goes away, instead of with a panic message and a backtrace.
fn quiet_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let text = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if text.starts_with("failed printing to stdout") && text.contains("Broken pipe") {
            // 128 + SIGPIPE: what a shell reports for a process its reader stopped.
            std::process::exit(141);
        }
        default(info);
    }));
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
                file: config.clone(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_definition_is_consistent_with_its_deferred_arguments_built() {
        Cli::command().debug_assert();
    }

    #[test]
    fn a_deferred_subcommand_parses_its_own_and_the_global_arguments() {
        let cli = Cli::try_parse_from(["hydra", "spawn", "--agent", "codex", "--max-iterations", "3", "--json"])
            .expect("spawn parses");
        let Command::Spawn(args) = cli.command else {
            panic!("not spawn")
        };
        assert_eq!((args.agent.as_deref(), args.max_iterations), (Some("codex"), Some(3)));
        assert!(cli.global.json);
        assert!(Cli::try_parse_from(["hydra", "ls", "--max-iterations", "3"]).is_err());
        // Completions see every subcommand's arguments.
        let mut out = Vec::new();
        clap_complete::generate(clap_complete::Shell::Bash, &mut Cli::command(), "hydra", &mut out);
        assert!(String::from_utf8_lossy(&out).contains("--max-iterations"));
    }
}
