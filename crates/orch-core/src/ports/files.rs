//! The [`FileEvents`] port: being told that files changed, so a watcher sleeps until then
//! instead of polling each session's files.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Called with the path of each changed file, from a thread of the adapter's.
pub type OnChange = Arc<dyn Fn(&Path) + Send + Sync>;

/// Errors of a [`FileEvents`] adapter.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileEventsError {
    /// A directory could not be watched.
    #[error("failed to watch {path}: {why}")]
    Watch {
        /// The directory.
        path: PathBuf,
        /// Why.
        why: String,
    },
}

/// A source of file-change notifications (inotify, FSEvents, kqueue).
pub trait FileEvents: Send + Sync {
    /// Calls `on_change` for every file that changes under each of `dirs` (recursively,
    /// directories made later included), until the returned guard is dropped. A directory
    /// that does not exist yet is made (these are the project's own directories).
    ///
    /// Errors: `Watch` when a directory cannot be made or watched.
    fn watch(&self, dirs: &[PathBuf], on_change: OnChange) -> Result<Box<dyn Send>, FileEventsError>;
}
