//! `orch-trust` implements `orch_core`'s [`Trust`] port with a file of the user's own, outside
//! every repository: for each trusted project file, its absolute path and the SHA-256 of the
//! exact content the user trusted. A file edited since is untrusted again (its digest changed),
//! as `direnv allow` and `mise trust` work. The file lives in the user's state directory
//! (`$XDG_STATE_HOME/hydra/trusted.json`, else `~/.local/state/hydra/trusted.json`; on macOS
//! `~/Library/Application Support/hydra/trusted.json`), is written atomically under a lock,
//! and is readable by its owner only.

use orch_core::Trust;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

/// One trusted file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedFile {
    /// The SHA-256 of the content the user trusted, in hex.
    pub sha256: String,
    /// When, in seconds since the epoch.
    pub trusted_at: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Book {
    version: u32,
    files: BTreeMap<PathBuf, TrustedFile>,
}

/// The user's trust file.
#[derive(Debug, Clone)]
pub struct FileTrust {
    path: PathBuf,
}

/// The SHA-256 of `contents`, in hex.
pub fn digest(contents: &[u8]) -> String {
    Sha256::digest(contents).iter().map(|b| format!("{b:02x}")).collect()
}

impl FileTrust {
    /// The trust file at `path`.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        FileTrust { path: path.into() }
    }

    /// Where the user's trust file lives, from the values of `HOME` and `XDG_STATE_HOME`:
    /// `None` when neither says (no home to keep it in).
    pub fn location(home: Option<&Path>, xdg_state_home: Option<&Path>) -> Option<PathBuf> {
        if cfg!(target_os = "macos") {
            return home.map(|h| h.join("Library/Application Support/hydra/trusted.json"));
        }
        match xdg_state_home.filter(|p| p.is_absolute()) {
            Some(state) => Some(state.join("hydra/trusted.json")),
            None => home.map(|h| h.join(".local/state/hydra/trusted.json")),
        }
    }

    /// The trust file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read(&self) -> io::Result<Book> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", self.path.display()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Book::default()),
            Err(e) => Err(e),
        }
    }

    /// Changes the book under its lock, written atomically.
    fn update<T>(&self, change: impl FnOnce(&mut Book) -> T) -> io::Result<T> {
        let dir = self
            .path
            .parent()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the trust file has no directory"))?;
        orch_fs::mkdir_private_all(dir)?;
        let _lock = orch_fs::lock_exclusive(&dir.join("trusted.lock"))?;
        let mut book = self.read()?;
        let out = change(&mut book);
        book.version = 1;
        let mut text = serde_json::to_vec_pretty(&book).map_err(io::Error::other)?;
        text.push(b'\n');
        orch_fs::write_atomic(&self.path, &text, 0o600)?;
        Ok(out)
    }

    /// Records that the user trusts `file` (absolute) with exactly `contents`, at `now_secs`.
    ///
    /// Errors: the trust file cannot be read or written.
    pub fn trust(&self, file: &Path, contents: &[u8], now_secs: u64) -> io::Result<()> {
        let entry = TrustedFile {
            sha256: digest(contents),
            trusted_at: now_secs,
        };
        self.update(|book| {
            book.files.insert(key(file), entry);
        })
    }

    /// Forgets `file`; returns whether it was trusted.
    ///
    /// Errors: the trust file cannot be read or written.
    pub fn revoke(&self, file: &Path) -> io::Result<bool> {
        self.update(|book| book.files.remove(&key(file)).is_some())
    }

    /// Every trusted file.
    ///
    /// Errors: the trust file cannot be read.
    pub fn list(&self) -> io::Result<Vec<(PathBuf, TrustedFile)>> {
        Ok(self.read()?.files.into_iter().collect())
    }
}

/// The name a file is recorded under: its canonical path when it exists (so a path through a
/// symlink and the real one agree), else the path as given.
fn key(file: &Path) -> PathBuf {
    file.canonicalize().unwrap_or_else(|_| file.to_path_buf())
}

impl Trust for FileTrust {
    fn is_trusted(&self, file: &Path, contents: &[u8]) -> bool {
        // An unreadable book trusts nothing.
        self.read()
            .ok()
            .and_then(|book| book.files.get(&key(file)).map(|t| t.sha256 == digest(contents)))
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn digests_are_sha256() {
        assert_eq!(
            digest(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn trust_holds_for_the_exact_content_until_edited_or_revoked() {
        let dir = tempfile::tempdir().expect("tmp");
        let t = FileTrust::at(dir.path().join("state/hydra/trusted.json"));
        let f = Path::new("/p/.hydra/wt.toml");
        assert!(!t.is_trusted(f, b"a"), "nothing is trusted at first");
        t.trust(f, b"a", 7).expect("trust");
        assert!(t.is_trusted(f, b"a"));
        assert!(!t.is_trusted(f, b"a "), "an edit is untrusted");
        assert!(!t.is_trusted(Path::new("/q/.hydra/wt.toml"), b"a"), "per path");
        assert_eq!(t.list().expect("list")[0].1.trusted_at, 7);
        assert!(t.revoke(f).expect("revoke"));
        assert!(!t.is_trusted(f, b"a"));
        assert!(!t.revoke(f).expect("revoke again"));
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode(t.path()), 0o600);
        assert_eq!(mode(t.path().parent().expect("dir")), 0o700);
    }

    #[test]
    fn a_corrupt_book_trusts_nothing() {
        let dir = tempfile::tempdir().expect("tmp");
        let t = FileTrust::at(dir.path().join("trusted.json"));
        std::fs::write(t.path(), "{ not json").expect("write");
        assert!(!t.is_trusted(Path::new("/p/x"), b""));
        assert!(t.list().is_err());
    }

    #[test]
    fn the_location_follows_xdg_and_home() {
        if cfg!(target_os = "macos") {
            return;
        }
        assert_eq!(
            FileTrust::location(Some(Path::new("/home/u")), Some(Path::new("/s"))),
            Some(PathBuf::from("/s/hydra/trusted.json"))
        );
        assert_eq!(
            FileTrust::location(Some(Path::new("/home/u")), Some(Path::new("relative"))),
            Some(PathBuf::from("/home/u/.local/state/hydra/trusted.json"))
        );
        assert_eq!(FileTrust::location(None, None), None);
    }
}
