//! The facade's error: every port's error, plus what only the facade can get wrong. Messages
//! describe what failed; advice on what to type next is the CLI's business. A variant with its
//! own message keeps its cause as `#[source]` and never repeats it, so a printed chain says
//! each cause once.

use orch_core::{
    BusError, ConfigError, HostError, IdError, MuxError, RuntimeError, SessionId, StoreError, TransitionError,
    WorktreeError,
};
use std::path::PathBuf;

/// Everything an [`crate::Orchestrator`] call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A field of the request is not acceptable (names the field and what is allowed).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The session id is not valid.
    #[error(transparent)]
    Id(#[from] IdError),
    /// No session of this project has this id, name or id prefix.
    #[error("no session {0} in this project")]
    NotFound(String),
    /// More than one session matches this id prefix.
    #[error("{prefix:?} matches {} sessions: {}", matches.len(), matches.join(", "))]
    Ambiguous {
        /// What was given.
        prefix: String,
        /// The ids it matches.
        matches: Vec<String>,
    },
    /// The session's state does not allow this.
    #[error("session {id}")]
    Transition {
        /// The session.
        id: SessionId,
        /// Why.
        #[source]
        source: TransitionError,
    },
    /// The session was killed or removed by another command while `spawn` was creating it;
    /// what the spawn had made is undone.
    #[error("session {id} was ended by another command while it was starting")]
    SpawnAborted {
        /// The session.
        id: SessionId,
    },
    /// Every one of many random ids was taken.
    #[error("could not find an unused session id")]
    NoFreeId,
    /// The agent loop needs a program that is not on `PATH`.
    #[error("the agent loop needs {program}, which is not on PATH")]
    LoopNeeds {
        /// The program.
        program: &'static str,
    },
    /// The session was started by another tool and this action cannot reach it.
    #[error("session {id} was started by another tool: {why}")]
    Foreign {
        /// The session.
        id: SessionId,
        /// What cannot be done and why.
        why: String,
    },
    /// The project's store cannot be written, so nothing can be changed.
    #[error("this project is read-only ({path}); nothing can be changed")]
    ReadOnly {
        /// What could not be written.
        path: PathBuf,
    },
    /// The attach command could not be run.
    #[error("failed to run {program}")]
    Attach {
        /// The program.
        program: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The builder was given settings that cannot be honoured together.
    #[error("the builder cannot {0}")]
    Builder(String),
    /// The project directory cannot be used.
    #[error("failed to open the project at {path}")]
    Project {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// tmux failed.
    #[error(transparent)]
    Mux(#[from] MuxError),
    /// The session store failed.
    #[error(transparent)]
    Store(StoreError),
    /// The worktree adapter failed.
    #[error(transparent)]
    Worktree(#[from] WorktreeError),
    /// The event bus failed.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// The loop runtime failed.
    #[error(transparent)]
    Runtime(RuntimeError),
    /// The host (programs, processes) failed.
    #[error(transparent)]
    Host(#[from] HostError),
    /// The session is not in a state that allows the call (a merge of a running session, a
    /// worktree removal of a live one): why, and what to do.
    #[error("session {id}: {why}")]
    Refused {
        /// The session.
        id: SessionId,
        /// Why, and what would allow it.
        why: String,
    },
    /// A spawn failed and some of its steps could not be undone.
    #[error("spawn failed, and undoing it left: {}", leftovers.join("; "))]
    Rollback {
        /// The error that made the spawn fail.
        #[source]
        cause: Box<Error>,
        /// Steps whose undo failed, with why.
        leftovers: Vec<String>,
    },
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::ReadOnly { path } => Error::ReadOnly { path },
            other => Error::Store(other),
        }
    }
}

impl From<RuntimeError> for Error {
    fn from(e: RuntimeError) -> Self {
        match e {
            // A PRD that cannot be used is bad input: name the field.
            RuntimeError::Prd { path, why } => {
                Error::Config(ConfigError::new("prd_path", format!("{}: {why}", path.display())))
            }
            other => Error::Runtime(other),
        }
    }
}

/// `Result` with the facade's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
