//! `orch-core` is the pure heart of hydra-orchestrator: the session lifecycle as a state machine
//! ([`apply`]), the health policy that turns observations into decisions ([`assess`]), the
//! persisted record and the status shown to users, and the *ports* — narrow traits for the
//! outside world ([`Multiplexer`], [`Store`], [`EventBus`], [`Worktree`], [`Clock`]).
//!
//! Nothing in this crate performs I/O, reads a clock or draws randomness: time and new ids are
//! arguments, so every rule here is testable as a plain function. Adapter crates (`orch-tmux`,
//! `orch-store-fs`, `orch-mail`, `orch-wt`) implement the ports; the `hydra-orchestrator` facade
//! wires them together. With the `testing` feature, the `testing` module holds stateful fakes of every
//! port and a manual clock.

mod config;
mod events;
mod health;
mod id;
mod loop_status;
mod ports;
mod record;
mod saga;
mod state;
mod status;
mod time;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use config::{ConfigError, PauseMode, SessionConfig, MAX_ITERATIONS_LIMIT};
pub use events::{Channel, LifecycleEvent, Pulse};
pub use health::{assess, progress_events, Assessment, Decision, HealthPolicy, MuxObservation, Observation};
pub use id::{IdError, SessionId};
pub use loop_status::{LoopPhase, LoopStatus};
pub use ports::{
    AttachCommand, BusError, Clock, EventBus, LoadProblem, LoadReport, LockGuard, Multiplexer, MuxError, MuxSnapshot,
    PaneInfo, RemoveOutcome, SpawnSpec, Store, StoreError, Subscription, Worktree, WorktreeError, WorktreeInfo,
    WorktreeRequest,
};
pub use record::{SessionRecord, CURRENT_SCHEMA_VERSION};
pub use saga::Saga;
pub use state::{apply, Event, SessionState, TransitionError};
pub use status::SessionStatus;
pub use time::Timestamp;

#[cfg(test)]
mod proptests;
