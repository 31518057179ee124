//! [`FsStore`]: records as files, atomic saves, quarantine of bad files, a cross-process lock
//! whose hold times it measures.

use orch_core::{LoadProblem, LoadReport, LockGuard, LockStats, SessionId, SessionRecord, Store, StoreError};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Records in `<project>/.hydra/orchestrator/sessions/<id>.json`.
#[derive(Debug, Clone)]
pub struct FsStore {
    hydra: PathBuf,
    orchestrator: PathBuf,
    sessions: PathBuf,
    stats: Arc<Mutex<LockStats>>,
    /// Records as parsed, beside their files' keys (a long-lived process's choice).
    cache: Option<Arc<orch_fs::ReadCache<SessionRecord>>>,
    /// The settle margin of the pack of records `load_all` reads through, when it does (a
    /// short-lived process's choice).
    pack: Option<Duration>,
    /// How many reads the pack saved.
    pack_hits: Arc<AtomicU64>,
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StoreError + 'a {
    move |source| {
        if orch_fs::is_read_only(&source) && op != "read" && op != "read directory" {
            StoreError::ReadOnly {
                path: path.to_path_buf(),
            }
        } else {
            StoreError::Io {
                op,
                path: path.to_path_buf(),
                source,
            }
        }
    }
}

/// What a record file turned out to be.
enum Parsed {
    Record(Box<SessionRecord>),
    Corrupt(String),
    Newer(u32),
}

impl FsStore {
    /// A store for the project at `project_root`. Nothing is created until the first write.
    pub fn new(project_root: impl AsRef<Path>) -> Self {
        let hydra = project_root.as_ref().join(".hydra");
        let orchestrator = hydra.join("orchestrator");
        let sessions = orchestrator.join("sessions");
        FsStore {
            hydra,
            orchestrator,
            sessions,
            stats: Arc::default(),
            cache: None,
            pack: None,
            pack_hits: Arc::default(),
        }
    }

    /// This store, keeping in one file, `.hydra/orchestrator/records.pack`, a copy of each
    /// record file whose status changed at least `margin` before it was read, beside its
    /// file's key (see [`orch_fs::PackPass`]), so that the next process's `load_all` stats an
    /// unchanged record instead of opening and reading it; what it parses is the same bytes.
    /// [`orch_fs::SETTLE_MARGIN`] suits every local file system. For short-lived processes
    /// that read every record (a CLI's `ls`); a store [`with_read_cache`](Self::with_read_cache)
    /// does not use it.
    pub fn with_pack(mut self, margin: Duration) -> Self {
        self.pack = Some(margin);
        self
    }

    /// The pack [`with_pack`](Self::with_pack) reads and writes.
    pub fn pack_path(&self) -> PathBuf {
        self.orchestrator.join("records.pack")
    }

    /// This store, keeping each record it parses beside its file's key so that a later
    /// `load_all` stats an unchanged file instead of opening and parsing it (and does not
    /// wake watchers of the directory). Records whose file changed less than `margin` before
    /// they were read are read again each time (see [`orch_fs::ReadCache`]);
    /// [`orch_fs::SETTLE_MARGIN`] suits every local file system. For long-lived processes:
    /// the cache holds a copy of every record.
    pub fn with_read_cache(mut self, margin: Duration) -> Self {
        self.cache = Some(Arc::new(orch_fs::ReadCache::new(margin)));
        self
    }

    /// How many reads of a record file the record cache or the pack saved (0 without either).
    pub fn cache_hits(&self) -> u64 {
        self.cache.as_ref().map_or(0, |c| c.hits()) + self.pack_hits.load(Ordering::Relaxed)
    }

    /// The directory holding the records.
    pub fn sessions_dir(&self) -> &Path {
        &self.sessions
    }

    /// The file of `id` (validated first, so no id can name a path outside the store).
    pub fn record_path(&self, id: &SessionId) -> Result<PathBuf, StoreError> {
        id.validate()?;
        Ok(self.sessions.join(format!("{}.json", id.as_str())))
    }

    fn ensure_dirs(&self) -> Result<(), StoreError> {
        for dir in [&self.hydra, &self.orchestrator, &self.sessions] {
            orch_fs::mkdir_private(dir).map_err(io("create directory", dir))?;
        }
        Ok(())
    }

    fn parse(&self, path: &Path, bytes: &[u8], expected: &str) -> Parsed {
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => return Parsed::Corrupt(format!("not UTF-8: {e}")),
        };
        let record: SessionRecord = match serde_json::from_str(text) {
            Ok(r) => r,
            Err(e) => {
                // A newer build may have changed what a field holds: read its version alone
                // before calling it corrupt.
                return match newer_version(text) {
                    Some(v) => Parsed::Newer(v),
                    None => Parsed::Corrupt(format!("not a session record: {e}")),
                };
            }
        };
        let record = match record.migrate() {
            Ok(r) => r,
            Err(version) => return Parsed::Newer(version),
        };
        if let Err(e) = record.id.validate() {
            return Parsed::Corrupt(e.to_string());
        }
        if record.id.as_str() != expected {
            return Parsed::Corrupt(format!(
                "its id {:?} does not match its file name {}",
                record.id.as_str(),
                path.display()
            ));
        }
        Parsed::Record(Box::new(record))
    }

    /// The file and the bytes of `record`, as this build writes it.
    fn encode(&self, record: &SessionRecord) -> Result<(PathBuf, Vec<u8>), StoreError> {
        let path = self.record_path(&record.id)?;
        let mut record = record.clone();
        record.schema_version = orch_core::CURRENT_SCHEMA_VERSION;
        let mut bytes = serde_json::to_vec_pretty(&record).map_err(|e| StoreError::Encode {
            id: record.id.clone(),
            reason: e.to_string(),
        })?;
        bytes.push(b'\n');
        Ok((path, bytes))
    }

    /// Moves a bad file aside to `<name>.corrupt-<timestamp>`.
    fn quarantine(&self, path: &Path, reason: String) -> LoadProblem {
        let stamp = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let mut target = path.as_os_str().to_owned();
        target.push(format!(".corrupt-{}{:09}", stamp.as_secs(), stamp.subsec_nanos()));
        let target = PathBuf::from(target);
        let quarantined = fs::rename(path, &target).ok().map(|()| target);
        LoadProblem::new(path.to_path_buf(), quarantined, reason)
    }

    fn newer(&self, path: &Path, version: u32) -> LoadProblem {
        LoadProblem::new(
            path.to_path_buf(),
            None,
            format!(
                "schema_version {version} is newer than this build understands (up to {}); left as it is",
                orch_core::CURRENT_SCHEMA_VERSION
            ),
        )
    }

    /// Removes a temp file left by a writer that died (see [`orch_fs::tmp_abandoned`]).
    fn clean_tmp(&self, path: &Path, name: &str) {
        if orch_fs::tmp_abandoned(path, name) {
            let _ = fs::remove_file(path);
        }
    }
}

/// The `schema_version` of a JSON object newer than this build, if the text has one.
fn newer_version(text: &str) -> Option<u32> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let version = u32::try_from(v.get("schema_version")?.as_u64()?).ok()?;
    (version > orch_core::CURRENT_SCHEMA_VERSION).then_some(version)
}

/// The held flock and the time it was taken; dropping it records the hold and releases.
struct Held {
    _file: File,
    since: Instant,
    stats: Arc<Mutex<LockStats>>,
}

impl Drop for Held {
    fn drop(&mut self) {
        let held = self.since.elapsed();
        self.stats.lock().unwrap_or_else(|e| e.into_inner()).record(held);
    }
}

impl Store for FsStore {
    fn lock(&self) -> Result<LockGuard, StoreError> {
        self.ensure_dirs()?;
        let path = self.orchestrator.join("lock");
        let file = orch_fs::lock_exclusive(&path).map_err(io("lock", &path))?;
        Ok(LockGuard::new(Held {
            _file: file,
            since: Instant::now(),
            stats: Arc::clone(&self.stats),
        }))
    }

    fn load(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        let path = self.record_path(id)?;
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("read", &path)(e)),
        };
        match self.parse(&path, &bytes, id.as_str()) {
            Parsed::Record(r) => Ok(Some(*r)),
            Parsed::Newer(version) => Err(StoreError::NewerSchema {
                path,
                version,
                supported: orch_core::CURRENT_SCHEMA_VERSION,
            }),
            Parsed::Corrupt(reason) => {
                // As load_all does: a record that does not parse is moved aside.
                let problem = self.quarantine(&path, reason.clone());
                Err(StoreError::Corrupt {
                    path,
                    reason,
                    quarantined: problem.quarantined,
                })
            }
        }
    }

    fn load_all(&self) -> Result<LoadReport, StoreError> {
        let entries = match fs::read_dir(&self.sessions) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(LoadReport::default()),
            Err(e) => return Err(io("read directory", &self.sessions)(e)),
        };
        // The names first, so the records' vector is made once at its size (grown by doubling,
        // it held two copies at once at the last growth: the peak of a refresh at 1,000).
        let names = entries
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(io("read directory", &self.sessions))?;
        let mut report = LoadReport::default();
        report.records.reserve_exact(names.len());
        // Each record is read by name relative to the directory (a refresh reads them all).
        let dir = orch_fs::Dir::open(&self.sessions).map_err(io("open directory", &self.sessions))?;
        let mut buf = Vec::with_capacity(8192);
        let cached = match (&self.cache, &dir) {
            (Some(c), Some(d)) => c.pass_in(d),
            _ => None,
        };
        let mut pack = match (&dir, self.pack.filter(|_| self.cache.is_none())) {
            (Some(d), Some(margin)) => orch_fs::PackPass::open(d, &self.pack_path(), margin),
            _ => None,
        };
        for name in names {
            let Some(name) = name.to_str() else { continue };
            let path = self.sessions.join(name);
            if name.contains(orch_fs::TMP_MARK) {
                self.clean_tmp(&path, name);
                continue;
            }
            let Some(stem) = name.strip_suffix(".json") else {
                continue; // quarantined files and anything not ours
            };
            if let Err(e) = SessionId::parse(stem) {
                report
                    .problems
                    .push(self.quarantine(&path, format!("file name is not a session id: {e}")));
                continue;
            }
            if let (Some(pass), Some(d)) = (&cached, &dir) {
                if let Some(r) = pass.fresh(name, d.key(name).ok().flatten()) {
                    report.records.push(r);
                    continue;
                }
            }
            let read = match (&dir, &mut pack) {
                (Some(d), Some(pack)) => pack.read(d, name, &mut buf),
                (Some(d), None) => d.read(name, &mut buf),
                (None, _) => Ok(None),
            };
            let file = match read {
                Ok(Some(file)) => file,
                // Removed between listing and reading: not a problem.
                Ok(None) => continue,
                Err(e) => {
                    let problem = LoadProblem::new(path, None, format!("unreadable: {e}"));
                    report.problems.push(problem);
                    continue;
                }
            };
            let parsed = match (&dir, &mut pack) {
                (Some(d), Some(pack)) => match self.parse(&path, &buf, stem) {
                    Parsed::Record(r) => Parsed::Record(r),
                    // What does not parse is judged by the file itself: a bad copy in the pack
                    // must never get a good record quarantined.
                    _ => match pack.read_file(d, name, &mut buf) {
                        Ok(Some(_)) => self.parse(&path, &buf, stem),
                        _ => continue, // removed meanwhile
                    },
                },
                _ => self.parse(&path, &buf, stem),
            };
            match parsed {
                Parsed::Record(r) => {
                    if let Some(pass) = &cached {
                        pass.keep(name, file.key, &r);
                    }
                    report.records.push(*r)
                }
                Parsed::Newer(v) => report.newer.push(self.newer(&path, v)),
                Parsed::Corrupt(reason) => report.problems.push(self.quarantine(&path, reason)),
            }
        }
        if let (Some(pack), Some(d)) = (pack, &dir) {
            self.pack_hits.fetch_add(pack.hits() as u64, Ordering::Relaxed);
            pack.finish(d);
        }
        report
            .records
            // In place: the key is unique (ids are), and a stable sort's scratch copy of every
            // record was the largest allocation of a refresh.
            .sort_unstable_by(|a, b| (a.created(), &a.id).cmp(&(b.created(), &b.id)));
        Ok(report)
    }

    fn save(&self, _lock: &LockGuard, record: &SessionRecord) -> Result<(), StoreError> {
        let (path, bytes) = self.encode(record)?;
        self.ensure_dirs()?;
        orch_fs::write_atomic(&path, &bytes, 0o600).map_err(io("write", &path))?;
        orch_fs::sync_dir(&self.sessions).map_err(io("fsync", &self.sessions))
    }

    fn save_unsynced(&self, _lock: &LockGuard, record: &SessionRecord) -> Result<(), StoreError> {
        let (path, bytes) = self.encode(record)?;
        self.ensure_dirs()?;
        orch_fs::replace(&path, &bytes, 0o600).map_err(io("write", &path))
    }

    fn save_all(&self, lock: &LockGuard, records: &[SessionRecord]) -> Result<(), StoreError> {
        match records {
            [] => Ok(()),
            [one] => self.save(lock, one),
            many => {
                let files = many.iter().map(|r| self.encode(r)).collect::<Result<Vec<_>, _>>()?;
                self.ensure_dirs()?;
                orch_fs::write_atomic_batch(&self.sessions, &files, 0o600).map_err(io("write", &self.sessions))
            }
        }
    }

    fn remove(&self, _lock: &LockGuard, id: &SessionId) -> Result<(), StoreError> {
        let path = self.record_path(id)?;
        match fs::remove_file(&path) {
            Ok(()) => orch_fs::sync_dir(&self.sessions).map_err(io("fsync", &self.sessions)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("remove", &path)(e)),
        }
    }

    fn record_dir(&self) -> Option<PathBuf> {
        Some(self.sessions.clone())
    }

    fn lock_stats(&self) -> LockStats {
        *self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_ids_never_become_paths() {
        let store = FsStore::new("/project");
        for bad in ["../x", "a/b", ".", "", "UPPER", "a\0b", "../../../victim"] {
            assert!(store.record_path(&SessionId(bad.into())).is_err(), "{bad:?}");
        }
        assert!(store.record_path(&SessionId("a".repeat(65))).is_err());
        assert_eq!(
            store.record_path(&SessionId("ab12".into())).expect("valid"),
            Path::new("/project/.hydra/orchestrator/sessions/ab12.json")
        );
    }

    #[test]
    fn a_newer_version_is_recognised_even_when_its_fields_changed() {
        assert_eq!(newer_version(r#"{"schema_version": 9, "state": 42}"#), Some(9));
        assert_eq!(newer_version(r#"{"schema_version": 1}"#), None);
        assert_eq!(newer_version("garbage"), None);
    }
}
