//! `hydra-orchestrator` runs many AI coding agents at once, each in its own tmux session, and
//! keeps them under control. It is the facade of a ports-and-adapters workspace: the pure
//! lifecycle and health rules live in `orch-core`; tmux (`orch-tmux`), the session store
//! (`orch-store-fs`), hydra-mail (`orch-mail`) and git worktrees (`orch-wt`, feature
//! `worktree`) are adapters; this crate assembles them into [`Orchestrator`] and re-exports
//! what an embedder needs, so one dependency line is enough. [`Orchestrator::builder`] swaps
//! any adapter or the clock.
//!
//! The store is the source of truth: every mutation takes the store's lock, re-reads the
//! record, applies the core's transition, writes it, and then publishes the event, so a
//! `hydra monitor` and a user's `hydra pause` in two processes lose no update.
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

mod demo_agent;
mod error;
mod orchestrator;
mod runtime;
mod support;

pub use demo_agent::run_demo_agent;
pub use error::{Error, Result};
pub use orchestrator::{find_project_root, Builder, KillReport, Orchestrator, Orphans, PruneReport};
pub use runtime::{read_prd, resolve_program, RuntimeDir, LOOP_SCRIPT};
pub use support::{NoSignals, NoopBus, PosixSignals, Sig, Signals, SystemClock};

pub use orch_core::{
    Channel, Clock, ConfigError, EventBus, HealthPolicy, LifecycleEvent, LoadProblem, LoopStatus, Multiplexer,
    PauseMode, Pulse, SessionConfig, SessionId, SessionRecord, SessionState, SessionStatus, Store, Subscription,
    Timestamp, Worktree,
};

/// The adapters, for embedders that configure them through [`Orchestrator::builder`].
pub mod adapters {
    pub use orch_mail::{MailBus, MailOptions};
    pub use orch_store_fs::FsStore;
    pub use orch_tmux::{Server, Tmux, TmuxConfig};
    #[cfg(feature = "worktree")]
    pub use orch_wt::GitWorktrees;
}
