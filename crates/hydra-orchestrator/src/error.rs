//! The facade's error: every port's error, plus what only the facade can get wrong. Messages
//! say what failed and, where there is one, what to do next.

use orch_core::{BusError, ConfigError, IdError, MuxError, SessionId, StoreError, TransitionError, WorktreeError};
use std::path::PathBuf;

/// Everything an [`crate::Orchestrator`] call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A field of the request is not acceptable (names the field and what is allowed).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The session id is not valid.
    #[error(transparent)]
    Id(#[from] IdError),
    /// No session has this id.
    #[error("no session {0}; `hydra ls` lists the sessions of this project")]
    NotFound(SessionId),
    /// The session's state does not allow this.
    #[error("session {id}: {source}")]
    Transition {
        /// The session.
        id: SessionId,
        /// Why.
        #[source]
        source: TransitionError,
    },
    /// tmux failed.
    #[error(transparent)]
    Mux(#[from] MuxError),
    /// The session store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The worktree adapter failed.
    #[error(transparent)]
    Worktree(#[from] WorktreeError),
    /// The event bus failed.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// A file operation of the facade failed.
    #[error("failed to {op} {path}")]
    Io {
        /// What was attempted.
        op: &'static str,
        /// On what.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A spawn failed and some of its steps could not be undone.
    #[error("{cause}; and undoing the spawn left: {}", leftovers.join("; "))]
    Rollback {
        /// The error that made the spawn fail.
        cause: Box<Error>,
        /// Steps whose undo failed, with why.
        leftovers: Vec<String>,
    },
}

/// `Result` with the facade's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Maps an I/O error on `path` to [`Error::Io`].
pub(crate) fn io<'a>(op: &'static str, path: &'a std::path::Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}
