//! The [`Store`] port: where session records live. The source of truth of the orchestrator.
//!
//! The lock is visible in the types: a write takes the [`LockGuard`] as an argument, so no
//! code path can write a record without holding the store's lock.

use crate::id::SessionId;
use crate::record::SessionRecord;
use std::path::PathBuf;
use std::time::Duration;

/// A record file that could not be loaded, and where it was moved.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoadProblem {
    /// The file as found.
    pub path: PathBuf,
    /// Where it was moved aside, if it was (never for records of a newer schema).
    pub quarantined: Option<PathBuf>,
    /// Why it did not load.
    pub reason: String,
}

impl LoadProblem {
    /// A problem with `path`, moved to `quarantined` (if it was), for `reason`.
    pub fn new(path: PathBuf, quarantined: Option<PathBuf>, reason: impl Into<String>) -> Self {
        LoadProblem {
            path,
            quarantined,
            reason: reason.into(),
        }
    }
}

/// The result of loading every record: the good ones and the problems, side by side.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct LoadReport {
    /// Every record that loaded, sorted by creation time.
    pub records: Vec<SessionRecord>,
    /// Files that did not load and were moved aside (or could not be read).
    pub problems: Vec<LoadProblem>,
    /// Records written by a newer build: left in place, untouched, and reported.
    pub newer: Vec<LoadProblem>,
}

impl LoadReport {
    /// A report of `records` with no problems.
    pub fn of(records: Vec<SessionRecord>) -> Self {
        LoadReport {
            records,
            ..LoadReport::default()
        }
    }
}

/// How the store's lock has been held so far, as measured by the adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct LockStats {
    /// How many times the lock was taken.
    pub acquisitions: u64,
    /// The longest time it was held.
    pub longest_hold: Duration,
    /// How long it was held the last time it was released.
    pub last_hold: Duration,
}

impl LockStats {
    /// Adds one hold of `held` to these figures.
    pub fn record(&mut self, held: Duration) {
        self.acquisitions += 1;
        self.longest_hold = self.longest_hold.max(held);
        self.last_hold = held;
    }
}

/// Proof of holding the store's exclusive lock; dropping it releases the lock.
pub struct LockGuard {
    _release: Box<dyn Send>,
}

impl LockGuard {
    /// Wraps whatever releases the lock when dropped.
    pub fn new(inner: impl Send + 'static) -> Self {
        LockGuard {
            _release: Box::new(inner),
        }
    }
}

impl std::fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LockGuard")
    }
}

/// Errors of a [`Store`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A file operation failed.
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
    /// The store cannot be written here (a read-only file system or no permission).
    #[error("the session store at {path} is read-only")]
    ReadOnly {
        /// The directory or file that could not be written.
        path: PathBuf,
    },
    /// A record did not parse; it was moved aside when `quarantined` says where.
    #[error("session record {path} is unreadable: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
        /// Where it was moved.
        quarantined: Option<PathBuf>,
    },
    /// A record was written by a newer build; it is left as it is.
    #[error(
        "session record {path} has schema_version {version}, newer than this build understands (up to {supported})"
    )]
    NewerSchema {
        /// The file.
        path: PathBuf,
        /// Its schema version.
        version: u32,
        /// The newest this build reads.
        supported: u32,
    },
    /// A record could not be encoded as JSON.
    #[error("failed to encode the record of session {id}: {reason}")]
    Encode {
        /// The session.
        id: SessionId,
        /// The encoder's message.
        reason: String,
    },
    /// An id that is not a valid [`SessionId`] reached the store.
    #[error(transparent)]
    BadId(#[from] crate::id::IdError),
}

/// Where session records live. The source of truth of the orchestrator.
pub trait Store: Send + Sync {
    /// Takes the store's exclusive lock (across processes), blocking until it is free.
    ///
    /// Errors: `ReadOnly` when the lock file cannot be created because the store cannot be
    /// written (reading still works), `Io` otherwise.
    fn lock(&self) -> Result<LockGuard, StoreError>;

    /// The record of `id`, or `None`.
    ///
    /// Errors: `BadId`; `Corrupt` when the file does not parse (it is moved aside, as
    /// `load_all` would); `NewerSchema` (left in place); `Io`.
    fn load(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError>;

    /// Every readable record, with the files that were not.
    ///
    /// Errors: `Io` only when the directory itself cannot be read; one bad file never hides
    /// the others.
    fn load_all(&self) -> Result<LoadReport, StoreError>;

    /// Writes `record` atomically: a reader sees the old or the new record, never a mix.
    ///
    /// Errors: `BadId` for an invalid id, `Encode`, `ReadOnly`, `Io` when the file cannot be
    /// written (the previous record stays intact).
    fn save(&self, lock: &LockGuard, record: &SessionRecord) -> Result<(), StoreError>;

    /// Writes every record of `records`, each atomically; when it returns `Ok`, all are
    /// durable. Adapters may make them durable together (one directory sync for the batch);
    /// by default they are saved one after the other.
    ///
    /// Errors: as [`save`](Self::save); records before the failing one may be written.
    fn save_all(&self, lock: &LockGuard, records: &[SessionRecord]) -> Result<(), StoreError> {
        records.iter().try_for_each(|r| self.save(lock, r))
    }

    /// [`save`](Self::save) without waiting for the disk: as atomic, visible to every other
    /// process at once, and durable only when the system writes it back (within half a
    /// minute) or a later save is synced. For writes a power failure makes moot: a spawn's
    /// records, whose session a power failure ends anyway. By default, `save`.
    ///
    /// Errors: as [`save`](Self::save).
    fn save_unsynced(&self, lock: &LockGuard, record: &SessionRecord) -> Result<(), StoreError> {
        self.save(lock, record)
    }

    /// Deletes the record of `id`; a missing record is `Ok`.
    ///
    /// Errors: `BadId`, `Io`.
    fn remove(&self, lock: &LockGuard, id: &SessionId) -> Result<(), StoreError>;

    /// How long this store's lock has been held, as far as this process has seen.
    fn lock_stats(&self) -> LockStats;

    /// The directory where each record is a file named `<id>.json`, for a watcher of file
    /// notifications (a write there is a record changing); `None` (the default) when records
    /// are not files, and a watcher then learns of other processes' writes at its tick.
    fn record_dir(&self) -> Option<PathBuf> {
        None
    }
}
