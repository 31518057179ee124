//! `orch-core` is the pure heart of hydra-orchestrator: the session lifecycle as a state machine
//! ([`apply`], booked on a record by [`SessionRecord::transition`]), the health policy that
//! turns observations into transitions and intents ([`assess`]), the persisted record and the
//! status shown to users, and the *ports*, narrow traits for the outside world
//! ([`Multiplexer`], [`Store`], [`EventBus`], [`Worktrees`], [`LoopRuntime`], [`Host`],
//! [`Clock`]).
//!
//! Nothing in this crate performs I/O, reads a clock or draws randomness: time, process ids
//! and new ids are arguments, so every rule here is testable as a plain function. Adapter
//! crates implement the ports; the `hydra-orchestrator` facade wires them together. With the
//! `testing` feature, the `testing` module holds stateful fakes of every port and a manual clock.

pub mod agents;
mod config;
mod duration;
mod events;
mod foreign;
mod health;
mod id;
mod intent;
mod loop_report;
mod ports;
pub mod prd;
mod project;
mod record;
mod saga;
mod state;
mod status;
mod time;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use agents::{builtin_profile, builtin_profiles, AgentProfile, PromptMode};
pub use config::{check_name, ConfigError, PauseMode, SessionConfig, MAX_COST_USD, MAX_ITERATIONS_LIMIT, MAX_NAME_LEN};
pub use duration::{format_duration, parse_duration};
pub use events::{Channel, LifecycleEvent, Pulse};
pub use foreign::foreign_reading;
pub use health::{
    assess, assess_owned, process_probe_suffices, progress_events, Assessment, HealthPolicy, MuxObservation,
    Observation, GONE_REASON, SPAWN_INTERRUPTED,
};
pub use id::{IdError, SessionId, BRANCH_PREFIX, MAX_ID_LEN, TMUX_PREFIX};
pub use intent::{Cleanup, KeptWorktree, Lease, PruneIntent, WorktreeRelease, LEASE_EXPIRY};
pub use loop_report::{LoopPhase, LoopReport};
pub use ports::{
    AttachCommand, BranchChanges, BusError, Clock, EventBus, FileEvents, FileEventsError, Host, HostError, LoadProblem,
    LoadReport, LockGuard, LockStats, LogDisposal, LoopReading, LoopRuntime, MergeOutcome, Multiplexer, MuxError,
    MuxServer, MuxSnapshot, MuxWake, MuxWatch, OnChange, PaneInfo, PendingSnapshot, PortHold, PortRepair, ProcessInfo,
    ReadAsk, RemoveOutcome, RuntimeError, RuntimeRequest, Sig, SpawnSpec, Store, StoreError, Subscription, Trust,
    TrustAll, TrustNothing, WorktreeError, WorktreeInfo, WorktreeRequest, Worktrees,
};
pub use prd::{plan_parallel, Prd, Story};
pub use project::{project_tag, RuntimeLayout};
pub use record::{
    micros_from_usd, usd_from_micros, usd_micros, usd_text, PaneProcess, SessionRecord, Waiting, CURRENT_SCHEMA_VERSION,
};
pub use saga::Saga;
pub use state::{apply, Event, SessionState, TransitionError};
pub use status::{SessionStatus, StatusJson};
pub use time::{civil_from_days, Timestamp};

#[cfg(test)]
mod proptests;
