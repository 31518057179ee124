//! `orch-fs` holds the one copy of each file mechanism that hydra-orchestrator's adapters
//! share: writing a file atomically (temp file in the same directory, fsync, rename), making
//! private (0700) directories whatever the umask, taking an exclusive `flock` on a lock file,
//! and adding an entry to git's `info/exclude`; and what saves re-reading small files that did
//! not change: [`Dir`] (files read by name relative to an open directory), [`ReadCache`] (in a
//! long-lived process) and [`PackPass`] (across short-lived ones). It is a leaf: it knows
//! nothing of sessions or ports, and `orch-core` never depends on it (the core does no I/O).

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

mod cache;
mod pack;
pub use cache::{FileKey, ReadCache, ReadPass, SETTLE_MARGIN};
pub use pack::PackPass;

/// The marker in the names of temp files [`write_atomic`] makes: `.<name>.tmp-<pid>-<seq>`.
pub const TMP_MARK: &str = ".tmp-";

/// Writes `bytes` to `path` atomically with permissions `mode`: a temp file in the same
/// directory, written and fsynced, then renamed over `path`. A reader sees the old file or the
/// new one, never a mix; on error the temp file is removed and `path` is untouched.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let tmp = tmp_path(path)?;
    let result = (|| {
        write_new(&tmp, bytes, mode)?.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// [`write_atomic`] without the fsync: readers see the old or the new content, never a mix;
/// after a power failure either may be on disk (the rename is ordered after the data on
/// journaling file systems, so never a torn file).
pub fn replace(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let tmp = tmp_path(path)?;
    let result = write_new(&tmp, bytes, mode).and_then(|_| fs::rename(&tmp, path));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Writes each `(path, bytes)` atomically with permissions `mode`, all in one directory `dir`:
/// the temp files are written, then fsynced in parallel (the file system commits them
/// together), renamed into place, and the directory fsynced once. When it returns `Ok` every
/// file is durable; on error no temp file is left, and files renamed before the error keep
/// their new content.
pub fn write_atomic_batch(dir: &Path, files: &[(PathBuf, Vec<u8>)], mode: u32) -> io::Result<()> {
    let mut temps: Vec<PathBuf> = Vec::with_capacity(files.len());
    let result = (|| {
        let mut opened = Vec::with_capacity(files.len());
        for (path, bytes) in files {
            let tmp = tmp_path(path)?;
            let written = write_new(&tmp, bytes, mode);
            temps.push(tmp);
            opened.push(written?);
        }
        // At most a few threads: enough for the file system to commit the batch together.
        let per = opened.len().div_ceil(4).max(1);
        std::thread::scope(|s| {
            let handles: Vec<_> = opened
                .chunks(per)
                .map(|chunk| s.spawn(move || chunk.iter().try_for_each(File::sync_all)))
                .collect();
            handles
                .into_iter()
                .try_for_each(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
        })?;
        for (tmp, (path, _)) in temps.iter().zip(files) {
            fs::rename(tmp, path)?;
        }
        sync_dir(dir)
    })();
    if result.is_err() {
        for tmp in &temps {
            let _ = fs::remove_file(tmp);
        }
    }
    result
}

/// A fresh temp file name beside `path`: `.<name>.tmp-<pid>-<seq>`.
fn tmp_path(path: &Path) -> io::Result<PathBuf> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "a file path has a file name"))?
        .to_string_lossy()
        .into_owned();
    Ok(path.with_file_name(format!(
        ".{name}{TMP_MARK}{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )))
}

/// Creates the file `path`, which must not exist, with `bytes` and permissions exactly `mode`,
/// without waiting for the disk: for a file in a directory just made, that nobody reads yet
/// and that a crash would make worthless anyway (a session's loop files before it starts).
/// A partly written file is removed on error.
pub fn write_fresh(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    write_new(path, bytes, mode).map(drop).inspect_err(|_| {
        let _ = fs::remove_file(path);
    })
}

/// Creates the new file `tmp` with exactly `mode` (open's mode is cut by the umask) holding
/// `bytes`; not yet synced.
fn write_new(tmp: &Path, bytes: &[u8], mode: u32) -> io::Result<File> {
    let mut f = OpenOptions::new().write(true).create_new(true).mode(mode).open(tmp)?;
    f.set_permissions(fs::Permissions::from_mode(mode))?;
    f.write_all(bytes)?;
    Ok(f)
}

/// Fsyncs a directory, so a rename into it survives a power loss.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates `dir` (its parent must exist) with mode exactly 0700; an existing directory is left
/// as it is.
pub fn mkdir_private(dir: &Path) -> io::Result<()> {
    match DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => fs::set_permissions(dir, fs::Permissions::from_mode(0o700)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates `dir` and its missing parents, each new one with mode exactly 0700.
pub fn mkdir_private_all(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        mkdir_private_all(parent)?;
    }
    mkdir_private(dir)
}

/// Opens (creating, 0600) the lock file at `path` and takes an exclusive `flock` on it,
/// blocking until it is free. Dropping the file releases the lock.
pub fn lock_exclusive(path: &Path) -> io::Result<File> {
    let file = open_lock_file(path)?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)?;
    Ok(file)
}

/// Like [`lock_exclusive`] but never waits: `Ok(None)` when another holder has it.
pub fn try_lock_exclusive(path: &Path) -> io::Result<Option<File>> {
    let file = open_lock_file(path)?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(file)),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn open_lock_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
}

/// Whether `err` means "this cannot be written here" (a read-only file system, or no
/// permission) rather than a passing failure.
pub fn is_read_only(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ReadOnlyFilesystem | io::ErrorKind::PermissionDenied
    )
}

/// The entry [`add_git_exclude`] writes for the project's own files.
pub const HYDRA_EXCLUDE: &str = ".hydra/";

/// Adds `entry` (a directory pattern such as `.hydra/`) to `<git_dir>/info/exclude` unless a
/// line already names it (with or without a leading `/` or trailing `/`). Returns whether the
/// file changed. This is the one writer of that file, so every caller matches lines the same way.
pub fn add_git_exclude(git_dir: &Path, entry: &str) -> io::Result<bool> {
    let info = git_dir.join("info");
    fs::create_dir_all(&info)?;
    let exclude = info.join("exclude");
    let text = match fs::read_to_string(&exclude) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    let bare = entry.trim_matches('/');
    if text.lines().any(|l| l.trim().trim_matches('/') == bare) {
        return Ok(false);
    }
    let mut new = text;
    if !new.is_empty() && !new.ends_with('\n') {
        new.push('\n');
    }
    new.push_str(entry);
    new.push('\n');
    write_atomic(&exclude, new.as_bytes(), 0o644)?;
    Ok(true)
}

/// Removes `path` and everything under it; a missing path is `Ok`.
pub fn remove_dir_all_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Removes the file at `path`; a missing file is `Ok`.
pub fn remove_file_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The pid written into a temp file name by [`write_atomic`] or a pack's writer, if `name` is
/// one.
pub fn tmp_writer_pid(name: &str) -> Option<u32> {
    name.rsplit(TMP_MARK).next()?.split('-').next()?.parse().ok()
}

/// A temp file older than this is a crash's leftover even if its writer's pid was reused.
pub const STALE_TMP: std::time::Duration = std::time::Duration::from_secs(600);

/// Whether the temp file at `path`, named `name` by [`write_atomic`] or a pack's writer, was
/// left by a writer that is gone: no process has the pid in its name (another user's process,
/// which answers "not permitted", counts as alive), or the file is older than [`STALE_TMP`].
/// A name without a pid counts as left behind.
pub fn tmp_abandoned(path: &Path, name: &str) -> bool {
    let writer_alive = tmp_writer_pid(name)
        .and_then(|p| i32::try_from(p).ok())
        .and_then(rustix::process::Pid::from_raw)
        .is_some_and(|pid| {
            matches!(
                rustix::process::test_kill_process(pid),
                Ok(()) | Err(rustix::io::Errno::PERM)
            )
        });
    let old = fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > STALE_TMP);
    !writer_alive || old
}

/// `path` relative to nothing: the absolute form of a possibly relative path, against `base`.
pub fn absolute(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

/// A directory opened once, whose files are then opened by name relative to it: one path
/// component walked per file instead of the whole absolute path, and no `stat` before the
/// read. A refresh of many sessions reads two or three small files per session this way.
#[derive(Debug)]
pub struct Dir {
    fd: rustix::fd::OwnedFd,
}

/// What [`Dir::read`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileRead {
    /// How many bytes were read (the file's whole content).
    pub len: usize,
    /// The version of the file that was read (its `modified()` is when it last changed).
    pub key: FileKey,
}

impl Dir {
    /// Opens the directory at `path`; `None` when it does not exist.
    pub fn open(path: &Path) -> io::Result<Option<Dir>> {
        use rustix::fs::{Mode, OFlags};
        match rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => Ok(Some(Dir { fd })),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads the whole file `rel` (relative to this directory) into `buf`, replacing what it
    /// held; `None` when the file does not exist.
    pub fn read(&self, rel: &str, buf: &mut Vec<u8>) -> io::Result<Option<FileRead>> {
        use rustix::fs::{Mode, OFlags};
        let fd = match rustix::fs::openat(&self.fd, rel, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        // The size says when the content is all in, which saves the read that would find the
        // end (files here are replaced by rename, so the open file does not change).
        let st = rustix::fs::fstat(&fd)?;
        let size = usize::try_from(st.st_size).unwrap_or(0);
        buf.clear();
        buf.reserve(size + 1);
        loop {
            if buf.capacity() - buf.len() < 4096 {
                buf.reserve(buf.capacity().max(8192));
            }
            match rustix::io::read(&fd, rustix::buffer::spare_capacity(buf)) {
                Ok(0) => break,
                Ok(_) if size > 0 && buf.len() == size => break,
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Some(FileRead {
            len: buf.len(),
            key: FileKey::of(&st),
        }))
    }

    /// Whether the directory is on a local file system whose status-change times a stat can be
    /// trusted for (on Linux: ext2 to ext4, XFS, Btrfs, tmpfs, ramfs, F2FS, ZFS, overlayfs,
    /// bcachefs). A network file system can answer a stat from its cache of attributes while
    /// the file has changed, so [`ReadCache`] is not used there. Elsewhere than Linux: `false`.
    pub fn is_local(&self) -> bool {
        #[cfg(target_os = "linux")]
        {
            const LOCAL: [u64; 10] = [
                0xEF53,      // ext2, ext3, ext4
                0x5846_5342, // XFS
                0x9123_683E, // Btrfs
                0x0102_1994, // tmpfs
                0x8584_58F6, // ramfs
                0xF2F5_2010, // F2FS
                0x2FC1_2FC1, // ZFS
                0x794C_7630, // overlayfs
                0xCA45_1A4E, // bcachefs
                0x0000_EF51, // ext2 (old)
            ];
            #[allow(clippy::unnecessary_cast)] // the word's type differs across targets
            rustix::fs::fstatfs(&self.fd).is_ok_and(|st| LOCAL.contains(&((st.f_type as u64) & 0xFFFF_FFFF)))
        }
        #[cfg(not(target_os = "linux"))]
        {
            false
        }
    }

    /// The version of the file `rel` now (without opening it, so without telling watchers of
    /// the directory); `None` when it does not exist.
    pub fn key(&self, rel: &str) -> io::Result<Option<FileKey>> {
        match rustix::fs::statat(&self.fd, rel, rustix::fs::AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(FileKey::of(&st))),
            Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// How many entries of the directory `rel` (relative to this one; `.` and `..` aside)
    /// `keep` accepts; `None` when it does not exist.
    pub fn count(&self, rel: &str, keep: impl Fn(&str) -> bool) -> io::Result<Option<usize>> {
        use rustix::fs::{Mode, OFlags};
        let fd = match rustix::fs::openat(
            &self.fd,
            rel,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let mut n = 0;
        for entry in rustix::fs::Dir::new(fd)? {
            let entry = entry?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." && std::str::from_utf8(name).is_ok_and(&keep) {
                n += 1;
            }
        }
        Ok(Some(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).expect("stat").permissions().mode() & 0o777
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("a.json");
        write_atomic(&p, b"one", 0o600).expect("write");
        write_atomic(&p, b"two", 0o600).expect("rewrite");
        assert_eq!(fs::read(&p).expect("read"), b"two");
        assert_eq!(mode(&p), 0o600);
        assert_eq!(fs::read_dir(dir.path()).expect("ls").count(), 1);
        assert!(write_atomic(&dir.path().join("missing/x"), b"x", 0o600).is_err());
    }

    #[test]
    fn a_batch_is_written_whole_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let files: Vec<(PathBuf, Vec<u8>)> = (0..9)
            .map(|i| {
                (
                    dir.path().join(format!("r{i}.json")),
                    format!("record {i}").into_bytes(),
                )
            })
            .collect();
        write_atomic_batch(dir.path(), &files, 0o600).expect("batch");
        for (path, bytes) in &files {
            assert_eq!(&fs::read(path).expect("read"), bytes);
            assert_eq!(mode(path), 0o600);
        }
        assert_eq!(fs::read_dir(dir.path()).expect("ls").count(), 9);
        let bad = vec![(dir.path().join("missing/x"), b"x".to_vec())];
        assert!(write_atomic_batch(dir.path(), &bad, 0o600).is_err());
        write_atomic_batch(dir.path(), &[], 0o600).expect("an empty batch");
    }

    #[test]
    fn private_dirs_are_0700_whatever_exists() {
        let dir = tempfile::tempdir().expect("tmp");
        let deep = dir.path().join("a/b/c");
        mkdir_private_all(&deep).expect("mkdir");
        for d in [dir.path().join("a"), dir.path().join("a/b"), deep.clone()] {
            assert_eq!(mode(&d), 0o700, "{}", d.display());
        }
        mkdir_private(&deep).expect("existing is fine");
        let file = dir.path().join("f");
        fs::write(&file, "x").expect("file");
        assert!(mkdir_private(&file).is_err(), "a file is not a directory");
    }

    #[test]
    fn try_lock_sees_a_holder() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("lock");
        let held = lock_exclusive(&p).expect("lock");
        assert!(try_lock_exclusive(&p).expect("try").is_none());
        drop(held);
        assert!(try_lock_exclusive(&p).expect("try").is_some());
    }

    #[test]
    fn git_exclude_is_added_once_whatever_the_form() {
        let dir = tempfile::tempdir().expect("tmp");
        assert!(add_git_exclude(dir.path(), HYDRA_EXCLUDE).expect("add"));
        assert!(!add_git_exclude(dir.path(), HYDRA_EXCLUDE).expect("again"));
        let exclude = dir.path().join("info/exclude");
        assert_eq!(fs::read_to_string(&exclude).expect("read"), ".hydra/\n");
        fs::write(&exclude, "target\n/.hydra").expect("user's own form");
        assert!(!add_git_exclude(dir.path(), HYDRA_EXCLUDE).expect("recognised"));
        fs::write(&exclude, "target").expect("no newline");
        assert!(add_git_exclude(dir.path(), HYDRA_EXCLUDE).expect("add"));
        assert_eq!(fs::read_to_string(&exclude).expect("read"), "target\n.hydra/\n");
    }

    #[test]
    fn temp_names_carry_the_writer_pid() {
        assert_eq!(tmp_writer_pid(".a.json.tmp-123-4"), Some(123));
        assert_eq!(tmp_writer_pid("a.json"), None);
    }

    #[test]
    fn a_temp_file_is_abandoned_when_its_writer_is_gone_or_it_is_old() {
        let tmp = tempfile::tempdir().expect("tmp");
        let file = |name: &str| {
            let path = tmp.path().join(name);
            fs::write(&path, b"half").expect("write");
            path
        };
        let mine = format!(".a.json{TMP_MARK}{}-0", std::process::id());
        let fresh = file(&mine);
        assert!(!tmp_abandoned(&fresh, &mine), "this process is alive");
        // A pid above the kernel's largest: no process has it.
        let gone = format!(".a.pack{TMP_MARK}{}", 1 << 23);
        assert!(tmp_abandoned(&file(&gone), &gone));
        assert!(tmp_abandoned(&file(".a.json.tmp-x"), ".a.json.tmp-x"), "no pid");
        // Older than STALE_TMP: left behind even with a live pid (it may have been reused).
        let old = fs::File::options().write(true).open(&fresh).expect("open");
        old.set_modified(std::time::SystemTime::now() - STALE_TMP * 2)
            .expect("age it");
        assert!(tmp_abandoned(&fresh, &mine));
    }

    #[test]
    fn replace_writes_whole_files_with_their_mode_and_leaves_no_temp() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join("r.json");
        replace(&path, b"first", 0o600).expect("write");
        replace(&path, b"second", 0o600).expect("replace");
        assert_eq!(fs::read(&path).expect("read"), b"second");
        let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let names: Vec<_> = fs::read_dir(tmp.path())
            .expect("ls")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, ["r.json"], "no temp file left");
        assert!(replace(&tmp.path().join("absent/r.json"), b"x", 0o600).is_err());
    }

    #[test]
    fn a_dir_reads_files_and_counts_entries_relative_to_itself() {
        let tmp = tempfile::tempdir().expect("tmp");
        let sub = tmp.path().join("s1");
        std::fs::create_dir_all(sub.join("inbox")).expect("mkdir");
        let big = "x".repeat(20_000);
        std::fs::write(sub.join("status.json"), &big).expect("write");
        std::fs::write(sub.join("inbox/1.md"), "a").expect("write");
        std::fs::write(sub.join("inbox/.tmp"), "b").expect("write");
        let dir = Dir::open(tmp.path()).expect("open").expect("exists");
        let mut buf = Vec::new();
        let r = dir.read("s1/status.json", &mut buf).expect("read").expect("found");
        assert_eq!(r.len, 20_000);
        assert_eq!(buf, big.as_bytes(), "a file larger than the first buffer is read whole");
        let meta = std::fs::metadata(sub.join("status.json")).expect("stat");
        assert_eq!(r.key.modified(), meta.modified().expect("mtime"));
        // Its key, without opening it: the same until the file is replaced.
        assert_eq!(dir.key("s1/status.json").expect("key"), Some(r.key));
        std::fs::write(sub.join("next.json"), &big).expect("write");
        std::fs::rename(sub.join("next.json"), sub.join("status.json")).expect("rename");
        assert_ne!(dir.key("s1/status.json").expect("key"), Some(r.key), "another inode");
        assert_eq!(dir.key("s1/none.json").expect("key"), None);
        assert_eq!(dir.read("s1/none.json", &mut buf).expect("read"), None);
        assert_eq!(dir.read("nope/status.json", &mut buf).expect("read"), None);
        assert_eq!(dir.count("s1/inbox", |n| n.ends_with(".md")).expect("count"), Some(1));
        assert_eq!(dir.count("s1/none", |_| true).expect("count"), None);
        // The test machines' temp directories are on ext4 or tmpfs; /proc is no file system
        // whose times a cache could trust.
        #[cfg(target_os = "linux")]
        {
            assert!(dir.is_local());
            assert!(!Dir::open(Path::new("/proc")).expect("open").expect("exists").is_local());
        }
        assert!(Dir::open(&tmp.path().join("absent")).expect("open").is_none());
    }
}
