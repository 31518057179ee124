//! The ports: one narrow trait per external system, each with its error type. Adapter crates
//! implement them; the facade only ever talks to these.
//!
//! | port | adapter | what it stands for |
//! | --- | --- | --- |
//! | [`Multiplexer`] | `orch-tmux` | the tmux server holding one session per agent |
//! | [`Store`] | `orch-store-fs` | the session records, the source of truth |
//! | [`EventBus`] | `orch-mail` | hydra-mail, where lifecycle events go |
//! | [`Worktrees`] | `orch-wt` | per-session git worktrees and their ports |
//! | [`LoopRuntime`] | `orch-loop` | each session's loop directory (status, pause, inbox, PRD copy) |
//! | [`Host`] | `orch-host` | programs on `PATH`, directories, process signals, a process's start time |
//! | [`Trust`] | `orch-trust` | which project files that run programs the user trusts |
//! | [`FileEvents`] | `orch-fswatch` | being told that status files and records changed |
//! | [`Clock`] | the facade | "now" |

mod bus;
mod clock;
mod files;
mod host;
mod mux;
mod runtime;
mod store;
mod trust;
mod worktrees;

pub use bus::{BusError, EventBus, Subscription};
pub use clock::Clock;
pub use files::{FileEvents, FileEventsError, OnChange};
pub use host::{Host, HostError, ProcessInfo, Sig};
pub use mux::{
    AttachCommand, Multiplexer, MuxError, MuxServer, MuxSnapshot, MuxWake, MuxWatch, PaneInfo, PendingSnapshot,
    SpawnSpec,
};
pub use runtime::{LogDisposal, LoopReading, LoopRuntime, ReadAsk, RuntimeError, RuntimeRequest};
pub use store::{LoadProblem, LoadReport, LockGuard, LockStats, Store, StoreError};
pub use trust::{Trust, TrustAll, TrustNothing};
pub use worktrees::{
    BranchChanges, MergeOutcome, PortHold, PortRepair, RemoveOutcome, WorktreeError, WorktreeInfo, WorktreeRequest,
    Worktrees,
};
