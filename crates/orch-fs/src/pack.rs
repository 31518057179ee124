//! What a short-lived process keeps, across runs, of the many small files it reads on each
//! run: one file, the pack, holding a copy of each file's bytes beside the key of the version
//! copied ([`FileKey`]). A later run stats each file instead of opening, reading and closing
//! it, and takes the bytes from the pack while the key is the same; the caller parses them as
//! it parses the file, so what it gets is what the file holds.
//!
//! Only settled versions are copied (their status changed a margin before the run began, see
//! [`FileKey::settled`]), so a key seen again is the same version. The pack is a cache: it is
//! written without fsync and replaced by rename, anything in it that does not add up makes it
//! ignored, and a copy the caller cannot parse is read again from its file
//! ([`PackPass::read_file`]).
//!
//! Layout: `MAGIC`, the bodies, the index (per file: its name, key, offset and length), and a
//! trailer (the index's offset, the count, `MAGIC`). Integers are little-endian.

use crate::{Dir, FileKey, FileRead, TMP_MARK};
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The first and last bytes of a pack of this format.
const MAGIC: &[u8; 8] = b"hydpack1";
/// The trailer: the index's offset (8), the number of entries (4), `MAGIC` (8).
const TRAILER: u64 = 20;
/// An index entry's bytes after its name: the key (48), the offset (8), the length (4).
const ENTRY_FIXED: usize = 60;
/// The largest pack read (a pack larger than this is ignored and not written).
const MAX_PACK: u64 = 256 * 1024 * 1024;

/// A copy in the old pack: its version, where its bytes are, how many.
#[derive(Debug, Clone, Copy)]
struct Copy {
    key: FileKey,
    offset: u64,
    len: u32,
}

/// The pack a run began with, its index kept as read (a thousand entries in under 100 KB, no
/// copy of a name: a short-lived process's peak memory counts).
#[derive(Debug)]
struct Old {
    file: File,
    index: Vec<u8>,
    /// Where each entry starts in `index`, in the order of the entries' names.
    by_name: Vec<u32>,
    /// Which entries this run served (in `by_name`'s order): the next pack keeps them.
    served: Vec<bool>,
    /// How many entries this run asked for.
    asked: usize,
}

/// A settled file this run read from itself, which the next pack holds.
#[derive(Debug)]
struct Fresh {
    rel: Box<str>,
    key: FileKey,
    len: u32,
}

/// One run's reads of the files of one directory through the pack at a path: see the module
/// documentation. [`finish`](Self::finish) writes the next pack when this run read a settled
/// file the pack did not hold, or did not ask for a file it held.
#[derive(Debug)]
pub struct PackPass {
    path: PathBuf,
    margin: Duration,
    now: SystemTime,
    old: Option<Old>,
    fresh: Vec<Fresh>,
    /// The entry served last (a copy the caller may find unparsable).
    last_served: Option<usize>,
    /// Whether the next pack would differ from the old one in more than what was not asked.
    news: bool,
    /// How many reads the pack saved.
    hits: usize,
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

/// The name of the index entry at `at` (checked by [`read_index`]).
fn name_at(index: &[u8], at: u32) -> &[u8] {
    let at = at as usize;
    let len = u16_at(index, at).map_or(0, usize::from);
    index.get(at + 2..at + 2 + len).unwrap_or_default()
}

/// The copy of the index entry at `at` (checked by [`read_index`]).
fn copy_at(index: &[u8], at: u32) -> Option<Copy> {
    let at = at as usize + 2 + name_at(index, at).len();
    let key = FileKey::from_bytes(index.get(at..at + 48)?.try_into().ok()?);
    Some(Copy {
        key,
        offset: u64_at(index, at + 48)?,
        len: u32_at(index, at + 56)?,
    })
}

/// The pack `file` as an [`Old`], when it is one whose every part adds up.
fn read_index(file: File) -> Option<Old> {
    let size = file.metadata().ok()?.len();
    if !(MAGIC.len() as u64 + TRAILER..=MAX_PACK).contains(&size) {
        return None;
    }
    let mut trailer = [0u8; TRAILER as usize];
    file.read_exact_at(&mut trailer, size - TRAILER).ok()?;
    if &trailer[12..] != MAGIC {
        return None;
    }
    let index_at = u64_at(&trailer, 0)?;
    let count = u32_at(&trailer, 8)? as usize;
    if index_at < MAGIC.len() as u64 || index_at > size - TRAILER {
        return None;
    }
    let mut head = [0u8; 8];
    file.read_exact_at(&mut head, 0).ok()?;
    if &head != MAGIC {
        return None;
    }
    let mut index = vec![0u8; usize::try_from(size - TRAILER - index_at).ok()?];
    file.read_exact_at(&mut index, index_at).ok()?;
    let mut by_name = Vec::with_capacity(count.min(index.len() / ENTRY_FIXED));
    let mut at = 0usize;
    let mut previous: Option<&[u8]> = None;
    for _ in 0..count {
        let start = u32::try_from(at).ok()?;
        let name_len = usize::from(u16_at(&index, at)?);
        let name = index.get(at + 2..at + 2 + name_len)?;
        std::str::from_utf8(name).ok()?;
        // In name order, one copy per name, as this module writes them: so read in one pass,
        // without a sort.
        if previous.is_some_and(|p| p >= name) {
            return None;
        }
        previous = Some(name);
        index.get(at + 2 + name_len..at + 2 + name_len + ENTRY_FIXED)?;
        let copy = copy_at(&index, start)?;
        let end = copy.offset.checked_add(u64::from(copy.len))?;
        if copy.offset < MAGIC.len() as u64 || end > index_at || u64::from(copy.len) != copy.key.len() {
            return None;
        }
        by_name.push(start);
        at += 2 + name_len + ENTRY_FIXED;
    }
    if at != index.len() {
        return None;
    }
    let served = vec![false; by_name.len()];
    Some(Old {
        file,
        index,
        by_name,
        served,
        asked: 0,
    })
}

impl Old {
    /// The position in `by_name` of the entry of `rel`.
    fn find(&self, rel: &str) -> Option<usize> {
        self.by_name
            .binary_search_by(|&at| name_at(&self.index, at).cmp(rel.as_bytes()))
            .ok()
    }
}

impl PackPass {
    /// Starts a run over the files of `dir` through the pack at `path` (absent, unreadable or
    /// not a pack: an empty one), keeping versions settled `margin` before now. `None` when
    /// `dir` is on a file system whose stat may not show every new version
    /// ([`Dir::is_local`]): the caller then reads every file.
    pub fn open(dir: &Dir, path: &Path, margin: Duration) -> Option<PackPass> {
        if !dir.is_local() {
            return None;
        }
        let old = File::open(path).ok().and_then(read_index);
        Some(PackPass {
            path: path.to_path_buf(),
            margin,
            now: SystemTime::now(),
            old,
            fresh: Vec::new(),
            last_served: None,
            news: false,
            hits: 0,
        })
    }

    /// How many reads of a file the pack saved in this run.
    pub fn hits(&self) -> usize {
        self.hits
    }

    /// The bytes of `rel` (relative to `dir`, the directory given to [`open`](Self::open))
    /// in `buf`: the pack's copy when it is of the version there now, else the file's;
    /// `None` when there is no such file.
    pub fn read(&mut self, dir: &Dir, rel: &str, buf: &mut Vec<u8>) -> io::Result<Option<FileRead>> {
        let Some(old) = &mut self.old else {
            return self.read_file(dir, rel, buf);
        };
        let Some(i) = old.find(rel) else {
            return self.read_file(dir, rel, buf);
        };
        old.asked += 1;
        let Some(key) = dir.key(rel)? else {
            // Gone: the next pack drops its copy.
            self.news = true;
            return Ok(None);
        };
        match copy_at(&old.index, old.by_name[i]) {
            Some(copy) if copy.key == key => {
                buf.clear();
                buf.resize(copy.len as usize, 0);
                if old.file.read_exact_at(buf, copy.offset).is_ok() {
                    old.served[i] = true;
                    self.last_served = Some(i);
                    self.hits += 1;
                    return Ok(Some(FileRead { len: buf.len(), key }));
                }
                self.read_file(dir, rel, buf)
            }
            _ => self.read_file(dir, rel, buf),
        }
    }

    /// The bytes of `rel` read from the file itself (as [`Dir::read`]), for a file the pack
    /// holds no copy of, or whose copy the caller could not parse: the next pack holds this
    /// version once it is settled.
    pub fn read_file(&mut self, dir: &Dir, rel: &str, buf: &mut Vec<u8>) -> io::Result<Option<FileRead>> {
        let read = dir.read(rel, buf)?;
        // The copy served last, when it is of `rel`, gives way to the file.
        if let (Some(i), Some(old)) = (self.last_served.take(), &mut self.old) {
            if name_at(&old.index, old.by_name[i]) == rel.as_bytes() {
                old.served[i] = false;
                self.hits -= 1;
                self.news = true;
            }
        }
        // Read twice in a row (a caller's second look): kept once.
        if self.fresh.last().is_some_and(|f| &*f.rel == rel) {
            self.fresh.pop();
        }
        if let Some(r) = read {
            if let Ok(len) = u32::try_from(r.len) {
                if r.key.settled(self.now, self.margin) && u64::from(len) == r.key.len() {
                    self.news = true;
                    self.fresh.push(Fresh {
                        rel: rel.into(),
                        key: r.key,
                        len,
                    });
                }
            }
        }
        Ok(read)
    }

    /// Ends the run: when the pack would change (a settled file read from itself, or a file
    /// of the pack not asked for), writes the next one beside it and renames it into place.
    /// A pack that cannot be written is left as it is: the next run reads the files.
    pub fn finish(self, dir: &Dir) {
        let dropped = self.old.as_ref().is_some_and(|old| old.asked < old.by_name.len());
        if !self.news && !dropped {
            return;
        }
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let prefix = format!(".{name}{TMP_MARK}");
        remove_dead_writers_files(&self.path, &prefix);
        let tmp = self.path.with_file_name(format!("{prefix}{}", std::process::id()));
        if self
            .write(dir, &tmp)
            .and_then(|()| std::fs::rename(&tmp, &self.path))
            .is_err()
        {
            let _ = std::fs::remove_file(&tmp);
        }
    }

    fn write(&self, dir: &Dir, tmp: &Path) -> io::Result<()> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(tmp)?;
        let mut out = BufWriter::with_capacity(64 * 1024, file);
        out.write_all(MAGIC)?;
        let mut next = Next {
            at: MAGIC.len() as u64,
            index: Vec::new(),
            count: 0,
        };
        // Every copy the next pack holds, in name order (its reader checks the order).
        let mut entries: Vec<(&str, Entry<'_>)> = Vec::with_capacity(self.fresh.len());
        if let Some(old) = &self.old {
            for (i, &at) in old.by_name.iter().enumerate() {
                let (true, Some(copy)) = (old.served[i], copy_at(&old.index, at)) else {
                    continue;
                };
                if let Ok(rel) = std::str::from_utf8(name_at(&old.index, at)) {
                    entries.push((rel, Entry::Old(&old.file, copy)));
                }
            }
        }
        entries.extend(self.fresh.iter().map(|f| (&*f.rel, Entry::Fresh(f))));
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        entries.dedup_by(|a, b| a.0 == b.0);
        let mut buf = Vec::new();
        for (rel, entry) in entries {
            let key = match entry {
                Entry::Old(file, copy) => {
                    buf.clear();
                    buf.resize(copy.len as usize, 0);
                    if file.read_exact_at(&mut buf, copy.offset).is_err() {
                        continue;
                    }
                    copy.key
                }
                // Read again, and kept only when it is still the version that was settled.
                Entry::Fresh(f) => {
                    let same = dir.read(rel, &mut buf).ok().flatten().is_some_and(|r| r.key == f.key);
                    if !same || buf.len() != f.len as usize {
                        continue;
                    }
                    f.key
                }
            };
            next.add(&mut out, rel, key, &buf)?;
        }
        out.write_all(&next.index)?;
        out.write_all(&next.at.to_le_bytes())?;
        out.write_all(&next.count.to_le_bytes())?;
        out.write_all(MAGIC)?;
        out.into_inner().map_err(|e| e.into_error())?;
        Ok(())
    }
}

/// Removes the temp files beside `path` whose names start with `prefix` and whose writer is
/// gone (a run killed while it wrote the next pack; see [`crate::tmp_abandoned`]); a live
/// writer's are left to it.
fn remove_dead_writers_files(path: &Path, prefix: &str) {
    let Some(Ok(entries)) = path.parent().map(std::fs::read_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str().filter(|n| n.starts_with(prefix)) else {
            continue;
        };
        if crate::tmp_abandoned(&entry.path(), name) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Where the next pack takes a copy's bytes from.
enum Entry<'a> {
    /// The old pack's file.
    Old(&'a File, Copy),
    /// The file itself.
    Fresh(&'a Fresh),
}

/// The next pack as it is written: where the next body goes, the index so far.
struct Next {
    at: u64,
    index: Vec<u8>,
    count: u32,
}

impl Next {
    /// Writes `bytes`, the version `key` of `rel`, and indexes it (unless the pack would grow
    /// past what a reader accepts).
    fn add(&mut self, out: &mut impl Write, rel: &str, key: FileKey, bytes: &[u8]) -> io::Result<()> {
        let (Ok(name_len), Ok(len)) = (u16::try_from(rel.len()), u32::try_from(bytes.len())) else {
            return Ok(());
        };
        if self.at + u64::from(len) > MAX_PACK / 2 {
            return Ok(());
        }
        out.write_all(bytes)?;
        self.index.extend_from_slice(&name_len.to_le_bytes());
        self.index.extend_from_slice(rel.as_bytes());
        self.index.extend_from_slice(&key.to_bytes());
        self.index.extend_from_slice(&self.at.to_le_bytes());
        self.index.extend_from_slice(&len.to_le_bytes());
        self.at += u64::from(len);
        self.count += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::time::Duration;

    /// A run over `dir` through `pack`. A file's status-change time cannot be set back (the
    /// kernel sets it), so the tests choose the margin: zero keeps every version, an hour none.
    fn pass(dir: &Path, pack: &Path, margin: Duration) -> (Dir, PackPass) {
        let d = Dir::open(dir).expect("open").expect("dir");
        let p = PackPass::open(&d, pack, margin).expect("a local file system");
        (d, p)
    }

    fn read_all(d: &Dir, p: &mut PackPass, names: &[&str]) -> Vec<Option<Vec<u8>>> {
        let mut buf = Vec::new();
        names
            .iter()
            .map(|n| p.read(d, n, &mut buf).expect("read").map(|r| buf[..r.len].to_vec()))
            .collect()
    }

    /// A temp directory holding a directory `files` and the path of a pack beside it.
    fn files_and_pack() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("files");
        fs::create_dir(&dir).expect("dir");
        let pack = tmp.path().join("files.pack");
        (tmp, dir, pack)
    }

    #[test]
    fn a_second_run_takes_unchanged_files_from_the_pack_and_changed_ones_from_themselves() {
        let (_tmp, dir, pack) = files_and_pack();
        fs::write(dir.join("a"), b"alpha").expect("a");
        fs::write(dir.join("b"), b"").expect("b");
        fs::write(dir.join("c"), b"gamma").expect("c");
        let names = ["a", "b", "c", "missing"];
        let (d, mut p) = pass(&dir, &pack, Duration::ZERO);
        let first = read_all(&d, &mut p, &names);
        assert_eq!(p.hits(), 0);
        p.finish(&d);
        assert!(pack.exists());

        let (d, mut p) = pass(&dir, &pack, Duration::ZERO);
        assert_eq!(read_all(&d, &mut p, &names), first);
        assert_eq!(p.hits(), 3, "every file that exists came from the pack");
        p.finish(&d);

        // Replaced (a new inode), rewritten in place with another size, removed.
        fs::write(dir.join("a.new"), b"ALPHA!").expect("a.new");
        fs::rename(dir.join("a.new"), dir.join("a")).expect("rename");
        fs::write(dir.join("b"), b"beta").expect("b");
        fs::remove_file(dir.join("c")).expect("rm c");
        let (d, mut p) = pass(&dir, &pack, Duration::ZERO);
        let now = read_all(&d, &mut p, &names);
        assert_eq!(now, vec![Some(b"ALPHA!".to_vec()), Some(b"beta".to_vec()), None, None]);
        assert_eq!(p.hits(), 0);
        p.finish(&d);
        let (d, mut p) = pass(&dir, &pack, Duration::ZERO);
        assert_eq!(read_all(&d, &mut p, &names), now);
        assert_eq!(p.hits(), 2);
    }

    #[test]
    fn unsettled_versions_are_not_kept_and_an_unchanged_run_writes_nothing() {
        let tmp = tempfile::tempdir().expect("tmp");
        let pack = tmp.path().join("p.pack");
        fs::write(tmp.path().join("young"), b"y").expect("young");
        let (d, mut p) = pass(tmp.path(), &pack, Duration::from_secs(3600));
        read_all(&d, &mut p, &["young"]);
        p.finish(&d);
        assert!(!pack.exists(), "nothing settled, nothing to keep");

        let (d, mut p) = pass(tmp.path(), &pack, Duration::ZERO);
        read_all(&d, &mut p, &["young"]);
        p.finish(&d);
        let written = fs::metadata(&pack).expect("pack").modified().expect("mtime");
        let ino = std::os::unix::fs::MetadataExt::ino(&fs::metadata(&pack).expect("pack"));
        let (d, mut p) = pass(tmp.path(), &pack, Duration::ZERO);
        read_all(&d, &mut p, &["young"]);
        assert_eq!(p.hits(), 1);
        p.finish(&d);
        let again = fs::metadata(&pack).expect("pack");
        assert_eq!(std::os::unix::fs::MetadataExt::ino(&again), ino, "not rewritten");
        assert_eq!(again.modified().expect("mtime"), written);
    }

    #[test]
    fn a_damaged_pack_is_ignored_and_an_unparsable_copy_gives_way_to_its_file() {
        let (_tmp, dir, pack) = files_and_pack();
        fs::write(dir.join("a"), b"{\"a\":1}").expect("a");
        let (d, mut p) = pass(&dir, &pack, Duration::ZERO);
        read_all(&d, &mut p, &["a"]);
        p.finish(&d);
        let good = fs::read(&pack).expect("pack");

        // Cut short, or any byte of its frame changed: an empty pack, the file is read.
        for damaged in [
            good[..good.len() - 1].to_vec(),
            [&good[..good.len() - 1], b"X"].concat(),
            [b"X", &good[1..]].concat(),
            Vec::new(),
        ] {
            fs::write(&pack, &damaged).expect("damage");
            let (d, mut p) = pass(&dir, &pack, Duration::ZERO);
            assert_eq!(read_all(&d, &mut p, &["a"]), vec![Some(b"{\"a\":1}".to_vec())]);
            assert_eq!(p.hits(), 0);
        }

        // A body changed inside a well-formed pack: served, found unparsable by the caller,
        // read from the file, and the next pack holds the file's bytes.
        let body = good.windows(7).position(|w| w == b"{\"a\":1}").expect("body");
        let mut bad = good.clone();
        bad[body] = b'#';
        fs::write(&pack, &bad).expect("damage");
        let (d, mut p) = pass(&dir, &pack, Duration::ZERO);
        let mut buf = Vec::new();
        p.read(&d, "a", &mut buf).expect("read");
        assert_eq!(buf, b"#\"a\":1}");
        p.read_file(&d, "a", &mut buf).expect("read again");
        assert_eq!(buf, b"{\"a\":1}");
        p.finish(&d);
        assert_eq!(fs::read(&pack).expect("pack"), good);

        // A file read from itself twice in a row is packed once.
        fs::remove_file(&pack).expect("rm");
        let (d, mut p) = pass(&dir, &pack, Duration::ZERO);
        p.read(&d, "a", &mut buf).expect("read");
        p.read_file(&d, "a", &mut buf).expect("read again");
        p.finish(&d);
        assert_eq!(fs::read(&pack).expect("pack"), good);
        let (d, mut p) = pass(&dir, &pack, Duration::ZERO);
        p.read(&d, "a", &mut buf).expect("read");
        assert_eq!(p.hits(), 1);
    }

    #[test]
    fn a_pack_whose_index_is_out_of_name_order_or_names_a_file_twice_is_ignored() {
        let (_tmp, dir, pack) = files_and_pack();
        fs::write(dir.join("m"), b"em").expect("m");
        fs::write(dir.join("q"), b"queue").expect("q");
        let (d, mut p) = pass(&dir, &pack, Duration::ZERO);
        read_all(&d, &mut p, &["q", "m"]);
        p.finish(&d);
        let good = fs::read(&pack).expect("pack");
        let (d, mut p) = pass(&dir, &pack, Duration::ZERO);
        read_all(&d, &mut p, &["m", "q"]);
        assert_eq!(p.hits(), 2, "written in name order whatever the order read");
        // The index's two entries (63 bytes each for a one-letter name) swapped: "q" before
        // "m"; and "m" twice. Each copy still names its file's version, but an index out of
        // order would be searched wrong, so the pack is not used at all.
        let entry = 2 + 1 + ENTRY_FIXED;
        let index_at = good.len() - TRAILER as usize - 2 * entry;
        let (first, second) = (index_at..index_at + entry, index_at + entry..index_at + 2 * entry);
        assert_eq!((good[first.start + 2], good[second.start + 2]), (b'm', b'q'));
        // The pack with its index's entries as `a` then `b`.
        let with_index = |a: std::ops::Range<usize>, b: std::ops::Range<usize>| {
            [&good[..index_at], &good[a], &good[b], &good[second.end..]].concat()
        };
        let swapped = with_index(second.clone(), first.clone());
        let twice = with_index(first.clone(), first.clone());
        for bad in [swapped, twice] {
            fs::write(&pack, &bad).expect("damage");
            let (d, mut p) = pass(&dir, &pack, Duration::ZERO);
            assert_eq!(
                read_all(&d, &mut p, &["m", "q"]),
                vec![Some(b"em".to_vec()), Some(b"queue".to_vec())]
            );
            assert_eq!(p.hits(), 0);
        }
    }

    #[test]
    fn a_killed_writers_temp_file_is_removed_by_the_next_writer() {
        let (_tmp, dir, pack) = files_and_pack();
        fs::write(dir.join("a"), b"alpha").expect("a");
        // A pid no process can have (above the kernel's largest): a writer that is gone.
        let dead = pack.with_file_name(format!(".files.pack{TMP_MARK}{}", 1 << 23));
        let mine = pack.with_file_name(format!(".files.pack{TMP_MARK}{}", std::process::id()));
        let other = pack.with_file_name("files.pack.keep");
        for f in [&dead, &other] {
            fs::write(f, b"half a pack").expect("leftover");
        }
        let (d, mut p) = pass(&dir, &pack, Duration::ZERO);
        read_all(&d, &mut p, &["a"]);
        p.finish(&d);
        assert!(pack.exists());
        assert!(!dead.exists(), "a dead writer's leftover goes");
        assert!(!mine.exists(), "this run's own was renamed into place");
        assert!(other.exists(), "what is not a pack's temp file stays");
    }

    #[test]
    fn many_files_round_trip() {
        let (_tmp, dir, pack) = files_and_pack();
        let names: Vec<String> = (0..300).map(|i| format!("{i:04}/status.json")).collect();
        for (i, n) in names.iter().enumerate() {
            fs::create_dir(dir.join(&n[..4])).expect("sub");
            fs::write(dir.join(n), "x".repeat(i * 7)).expect("file");
        }
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let (d, mut p) = pass(&dir, &pack, Duration::ZERO);
        let first = read_all(&d, &mut p, &refs);
        p.finish(&d);
        let (d, mut p) = pass(&dir, &pack, Duration::ZERO);
        assert_eq!(read_all(&d, &mut p, &refs), first);
        assert_eq!(p.hits(), 300);
        // Asked for fewer: the next pack holds only those.
        let (d, mut p) = pass(&dir, &pack, Duration::ZERO);
        read_all(&d, &mut p, &refs[..10]);
        p.finish(&d);
        let (d, mut p) = pass(&dir, &pack, Duration::ZERO);
        read_all(&d, &mut p, &refs);
        assert_eq!(p.hits(), 10);
    }
}
