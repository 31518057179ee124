//! `hydra-orchestrator` runs many AI coding agents at once, each in its own tmux session, and
//! keeps them under control. It is the facade of a ports-and-adapters workspace: the pure
//! lifecycle and health rules live in `orch-core`; tmux (`orch-tmux`), the session store
//! (`orch-store-fs`), hydra-mail (`orch-mail`) and git worktrees (`orch-wt`, feature
//! `worktree`) are adapters; this crate assembles them into [`Orchestrator`] and re-exports
//! what an embedder needs, so one dependency line is enough. [`Orchestrator::builder`] swaps
//! any adapter or the clock.
//!
//! The store is the source of truth, and every command goes through one transaction: lock the
//! store, load the records, take one tmux snapshot and read the loops' reports, decide with
//! the pure core, write, unlock, publish, and only then do the slow work decided (ending
//! processes, removing worktrees), finalized by a second short transaction. So a
//! `hydra monitor`, a user's `hydra pause` and a `hydra spawn` in three processes lose no
//! update and never misjudge each other's sessions.
//!
//! # Blocking
//!
//! The calls are synchronous: `list`, `status` and the control calls take a few milliseconds
//! (tmux and the disk), `spawn` with a worktree some tens (git), and `kill` up to the second
//! an agent gets to end. From async code, run them on the blocking pool, as the background
//! monitor below does with `tokio::task::spawn_blocking`.
//!
//! # Creating an Orchestrator
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use hydra_orchestrator::Orchestrator;
//! use std::path::Path;
//!
//! // Standalone (no hydra-mail)
//! let orch = Orchestrator::new();
//!
//! // With hydra-mail integration for event coordination
//! let orch = Orchestrator::with_mail(Path::new("/your/project"))?;
//! # Ok(())
//! # }
//! ```
//!
//! # Spawning Sessions
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use hydra_orchestrator::{Orchestrator, SessionConfig};
//! use std::time::Duration;
//!
//! let mut orch = Orchestrator::new();
//!
//! let config = SessionConfig {
//!     max_iterations: 50,
//!     max_duration: Duration::from_secs(3600),
//!     agent_cli: "claude".into(),
//!     agent_flags: "-p fast".into(),
//!     prd_path: "/path/to/prd.json".into(),
//!     working_dir: std::env::current_dir()?,
//!     use_worktree: true,  // Requires "worktree" feature
//!     branch_name: Some("feature/agent-work".into()),
//!     ..Default::default()
//! };
//!
//! let session_id = orch.spawn(config)?;
//! println!("Agent started: {}", session_id);
//! # Ok(())
//! # }
//! ```
//!
//! # Session Control
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # use hydra_orchestrator::{Orchestrator, SessionConfig};
//! # let mut orch = Orchestrator::new();
//! # let session_id = orch.spawn(SessionConfig::default())?;
//! // List all sessions
//! let sessions = orch.list();
//! for status in sessions {
//!     println!("{}: {} ({:?})", status.id, status.state, status.duration);
//! }
//!
//! // Pause an agent
//! orch.pause(&session_id)?;
//!
//! // Resume a paused agent
//! orch.resume(&session_id)?;
//!
//! // Inject a message into the agent's context
//! orch.inject(&session_id, "Please focus on X instead")?;
//!
//! // Attach to the agent's TMUX session (interactive)
//! orch.attach(&session_id)?;
//!
//! // Kill a session
//! orch.kill(&session_id, "Task completed")?;
//! # Ok(())
//! # }
//! ```
//!
//! # Health Monitoring
//!
//! ```no_run
//! # async fn run(mut orch: hydra_orchestrator::Orchestrator) -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//!
//! // Run periodic health checks
//! loop {
//!     tokio::time::sleep(Duration::from_secs(60)).await;
//!     let killed = orch.health_check()?;
//!
//!     for id in killed {
//!         println!("Session {} killed by health check", id);
//!     }
//! }
//! # }
//! ```
//!
//! # CLI Wrapper (hydra-cli)
//!
//! ```no_run
//! use hydra_orchestrator::Orchestrator;
//!
//! fn main() -> anyhow::Result<()> {
//!     let mut orch = Orchestrator::with_mail(std::path::Path::new("."))?;
//!
//!     match std::env::args().nth(1).as_deref() {
//!         Some("list") => {
//!             for s in orch.list() {
//!                 println!("{}: {}", s.id, s.state);
//!             }
//!         }
//!         Some("attach") => {
//!             let id = std::env::args().nth(2).unwrap();
//!             orch.attach(&hydra_orchestrator::SessionId(id))?;
//!         }
//!         _ => {}
//!     }
//!     Ok(())
//! }
//! ```
//!
//! # Background Health Monitor
//!
//! ```no_run
//! # use hydra_orchestrator::Orchestrator;
//! async fn monitor_task(mut orch: Orchestrator) {
//!     loop {
//!         tokio::time::sleep(tokio::time::Duration::from_secs(60)).await;
//!         let _ = orch.health_check();
//!     }
//! }
//! # fn main() { let rt = tokio::runtime::Runtime::new().unwrap(); let _ = rt.spawn(monitor_task(Orchestrator::new())); }
//! ```
//!
//! `health_check` blocks for a few milliseconds; a monitor that shares its runtime with
//! latency-sensitive tasks runs it on the blocking pool instead:
//!
//! ```no_run
//! # use hydra_orchestrator::Orchestrator;
//! # use std::sync::Arc;
//! async fn monitor_task(orch: Arc<Orchestrator>) {
//!     loop {
//!         tokio::time::sleep(std::time::Duration::from_secs(60)).await;
//!         let o = Arc::clone(&orch);
//!         match tokio::task::spawn_blocking(move || o.health_check()).await {
//!             Ok(Ok(killed)) => killed.iter().for_each(|id| println!("{id} killed")),
//!             Ok(Err(e)) => eprintln!("health check failed: {e}"),
//!             Err(e) => eprintln!("health check panicked: {e}"),
//!         }
//!     }
//! }
//! ```

mod error;
mod muxes;
mod ops;
mod orchestrator;
mod support;
mod txn;
mod watch;

pub use error::{Error, Result};
pub use ops::control::{Delivery, InjectMode, KillOptions, KillReport, MAX_LIVE_BYTES, MAX_MESSAGE_BYTES};
pub use ops::parallel::ParallelSpawn;
pub use ops::prune::{KeptSession, PruneOptions, PruneReport};
pub use ops::review::{MergeOptions, MergeReport, SessionDiff};
pub use orchestrator::{
    find_project, find_project_root, trust_from_env, Builder, Notice, NoticeKind, Orchestrator, Orphans,
};
pub use support::{NoopBus, SystemClock};
pub use watch::{Change, WatchEvent, WatchOptions, WatchStopper, Watcher};

pub use orch_core::{
    builtin_profile, builtin_profiles, check_name, project_tag, AgentProfile, PromptMode, MAX_ITERATIONS_LIMIT,
};
pub use orch_core::{
    BranchChanges, Channel, Clock, ConfigError, EventBus, HealthPolicy, Host, LifecycleEvent, LoadProblem, LoopPhase,
    LoopReport, LoopRuntime, MergeOutcome, Multiplexer, MuxServer, PauseMode, Prd, Pulse, RemoveOutcome, RuntimeLayout,
    SessionConfig, SessionId, SessionRecord, SessionState, SessionStatus, Store, Subscription, Timestamp,
    TransitionError, Trust, TrustAll, TrustNothing, Worktrees,
};

/// The adapters, for embedders that configure them through [`Orchestrator::builder`].
pub mod adapters {
    pub use orch_host::PosixHost;
    pub use orch_loop::{FsLoopRuntime, LOOP_SCRIPT};
    pub use orch_mail::{MailBus, MailOptions};
    pub use orch_store_fs::FsStore;
    pub use orch_tmux::{Tmux, TmuxConfig};
    pub use orch_trust::{digest, FileTrust, TrustedFile};
    #[cfg(feature = "worktree")]
    pub use orch_wt::{GitWorktrees, WtConfig};
}
