//! `.hydra/wt-ports.json`: hydra-wt's flat `{"branch": port}` registry, read as hydra-wt
//! writes it, and written pretty-printed (so hydra-wt reads ours) — but under an exclusive
//! `flock` and by atomic rename, so concurrent creates never hand out one port twice.

use crate::git::io;
use orch_core::WorktreeError;
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

/// The port registry of one repository.
#[derive(Debug, Clone)]
pub struct PortRegistry {
    path: PathBuf,
    lock_path: PathBuf,
}

/// Holds the registry's lock until dropped.
#[derive(Debug)]
pub struct RegistryLock(#[expect(dead_code, reason = "held only so that dropping it releases the lock")] File);

impl PortRegistry {
    /// The registry of the repository whose root is `root`.
    pub fn new(root: &Path) -> Self {
        PortRegistry {
            path: root.join(".hydra/wt-ports.json"),
            lock_path: root.join(".hydra/wt-ports.lock"),
        }
    }

    /// Takes the exclusive lock (blocking).
    pub fn lock(&self) -> Result<RegistryLock, WorktreeError> {
        if let Some(dir) = self.lock_path.parent() {
            orch_fs::mkdir_private_all(dir).map_err(io("create directory", dir))?;
        }
        let f = orch_fs::lock_exclusive(&self.lock_path).map_err(io("lock", &self.lock_path))?;
        Ok(RegistryLock(f))
    }

    /// The registry's entries (empty when the file does not exist).
    pub fn read(&self, _lock: &RegistryLock) -> Result<BTreeMap<String, u16>, WorktreeError> {
        match std::fs::read_to_string(&self.path) {
            Ok(t) if t.trim().is_empty() => Ok(BTreeMap::new()),
            Ok(t) => serde_json::from_str(&t).map_err(|e| WorktreeError::Config {
                path: self.path.clone(),
                why: format!("not a {{\"branch\": port}} map: {e}"),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(io("read", &self.path)(e)),
        }
    }

    /// Replaces the registry atomically (pretty-printed, as hydra-wt writes it).
    pub fn write(&self, _lock: &RegistryLock, map: &BTreeMap<String, u16>) -> Result<(), WorktreeError> {
        let mut text = serde_json::to_string_pretty(map).map_err(|e| WorktreeError::Config {
            path: self.path.clone(),
            why: e.to_string(),
        })?;
        text.push('\n');
        orch_fs::write_atomic(&self.path, text.as_bytes(), 0o600).map_err(io("write", &self.path))
    }

    /// The port of `branch`: its existing one, else the lowest port in `start..=end` that
    /// neither the registry nor `reserved` (ports sessions hold whose entries the registry may
    /// have lost) names.
    pub fn allocate(
        &self,
        lock: &RegistryLock,
        branch: &str,
        start: u16,
        end: u16,
        reserved: &[u16],
    ) -> Result<u16, WorktreeError> {
        let mut map = self.read(lock)?;
        if let Some(p) = map.get(branch) {
            return Ok(*p);
        }
        let port = (start..=end)
            .find(|p| !map.values().any(|v| v == p) && !reserved.contains(p))
            .ok_or(WorktreeError::RangeExhausted { start, end })?;
        map.insert(branch.to_owned(), port);
        self.write(lock, &map)?;
        Ok(port)
    }

    /// Frees the port of `branch`; returns it, if it had one.
    pub fn free(&self, lock: &RegistryLock, branch: &str) -> Result<Option<u16>, WorktreeError> {
        let mut map = self.read(lock)?;
        let port = map.remove(branch);
        if port.is_some() {
            self.write(lock, &map)?;
        }
        Ok(port)
    }
}
