//! [`FsStore`]: records as files, atomic saves, quarantine of bad files, a cross-process lock.

use orch_core::{LoadProblem, LoadReport, LockGuard, SessionId, SessionRecord, Store, StoreError};
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Records in `<project>/.hydra/orchestrator/sessions/<id>.json`.
#[derive(Debug, Clone)]
pub struct FsStore {
    hydra: PathBuf,
    orchestrator: PathBuf,
    sessions: PathBuf,
}

const TMP_MARK: &str = ".tmp-";
/// A temp file older than this is a crash's leftover even if its pid was reused.
const STALE_TMP: Duration = Duration::from_secs(600);

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
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
        }
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
            match DirBuilder::new().mode(0o700).create(dir) {
                Ok(()) => {
                    // The mode given to mkdir is cut by the umask; set it exactly.
                    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io("chmod", dir))?;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io("create directory", dir)(e)),
            }
        }
        Ok(())
    }

    fn sync_dir(&self) -> Result<(), StoreError> {
        File::open(&self.sessions)
            .and_then(|d| d.sync_all())
            .map_err(io("fsync", &self.sessions))
    }

    fn parse(&self, path: &Path, bytes: &[u8], expected: &str) -> Result<SessionRecord, String> {
        let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
        let record: SessionRecord = serde_json::from_str(text).map_err(|e| format!("not a session record: {e}"))?;
        let record = record.migrate()?;
        record.id.validate().map_err(|e| e.to_string())?;
        if record.id.as_str() != expected {
            return Err(format!(
                "its id {:?} does not match its file name {}",
                record.id.as_str(),
                path.display()
            ));
        }
        Ok(record)
    }

    /// Moves a bad file aside to `<name>.corrupt-<timestamp>`.
    fn quarantine(&self, path: &Path, reason: String) -> LoadProblem {
        let stamp = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let mut target = path.as_os_str().to_owned();
        target.push(format!(".corrupt-{}{:09}", stamp.as_secs(), stamp.subsec_nanos()));
        let target = PathBuf::from(target);
        let quarantined = fs::rename(path, &target).ok().map(|()| target);
        LoadProblem {
            path: path.to_path_buf(),
            quarantined,
            reason,
        }
    }

    /// Removes a temp file left by a writer that died (its pid is gone, or it is old).
    fn clean_tmp(&self, path: &Path, name: &str) {
        let pid = name
            .rsplit(TMP_MARK)
            .next()
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<i32>().ok());
        let writer_alive = pid
            .and_then(rustix::process::Pid::from_raw)
            .is_some_and(|pid| rustix::process::test_kill_process(pid).is_ok());
        let old = fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_TMP);
        if !writer_alive || old {
            let _ = fs::remove_file(path);
        }
    }
}

struct FlockFile(#[expect(dead_code, reason = "held only so that dropping it releases the lock")] File);

impl Store for FsStore {
    fn save(&self, record: &SessionRecord) -> Result<(), StoreError> {
        let path = self.record_path(&record.id)?;
        self.ensure_dirs()?;
        let mut record = record.clone();
        record.schema_version = orch_core::CURRENT_SCHEMA_VERSION;
        let mut bytes = serde_json::to_vec_pretty(&record).map_err(|e| StoreError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        bytes.push(b'\n');
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let tmp = self.sessions.join(format!(
            ".{}.json{TMP_MARK}{}-{}",
            record.id.as_str(),
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let write = || -> Result<(), StoreError> {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(io("create", &tmp))?;
            f.set_permissions(fs::Permissions::from_mode(0o600))
                .map_err(io("chmod", &tmp))?;
            f.write_all(&bytes).map_err(io("write", &tmp))?;
            f.sync_all().map_err(io("fsync", &tmp))?;
            fs::rename(&tmp, &path).map_err(io("rename into place", &path))
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        self.sync_dir()
    }

    fn load(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        let path = self.record_path(id)?;
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("read", &path)(e)),
        };
        self.parse(&path, &bytes, id.as_str())
            .map(Some)
            .map_err(|reason| StoreError::Corrupt { path, reason })
    }

    fn load_all(&self) -> Result<LoadReport, StoreError> {
        let entries = match fs::read_dir(&self.sessions) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(LoadReport::default()),
            Err(e) => return Err(io("read directory", &self.sessions)(e)),
        };
        let mut report = LoadReport::default();
        for entry in entries {
            let entry = entry.map_err(io("read directory", &self.sessions))?;
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
                continue;
            };
            if name.contains(TMP_MARK) {
                self.clean_tmp(&path, &name);
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
            match fs::read(&path) {
                Ok(bytes) => match self.parse(&path, &bytes, stem) {
                    Ok(record) => report.records.push(record),
                    Err(reason) => report.problems.push(self.quarantine(&path, reason)),
                },
                // Removed between listing and reading: not a problem.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => report.problems.push(LoadProblem {
                    path,
                    quarantined: None,
                    reason: format!("unreadable: {e}"),
                }),
            }
        }
        report
            .records
            .sort_by(|a, b| (a.created(), &a.id).cmp(&(b.created(), &b.id)));
        Ok(report)
    }

    fn remove(&self, id: &SessionId) -> Result<(), StoreError> {
        let path = self.record_path(id)?;
        match fs::remove_file(&path) {
            Ok(()) => self.sync_dir(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("remove", &path)(e)),
        }
    }

    fn lock(&self) -> Result<LockGuard, StoreError> {
        self.ensure_dirs()?;
        let path = self.orchestrator.join("lock");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io("open lock file", &path))?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| io("lock", &path)(std::io::Error::from(e)))?;
        Ok(LockGuard::new(FlockFile(file)))
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
}
