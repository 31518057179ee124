//! What a long-lived process keeps of the small files it reads again and again: each parsed
//! value beside the key of the file version it came from ([`FileKey`]: inode, size,
//! modification and status-change times). A later read stats the file instead of opening and
//! parsing it, and uses the kept value only while the key is the same.
//!
//! A key can repeat across versions only within one tick of the file system's clock (a file
//! rewritten in place, or a new file given a freed inode number, with the same size in the
//! same tick). So a value is kept only when its file's status changed more than a margin
//! before it was read: any later version then has a newer status-change time, which the kernel
//! sets and no program can set back.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The margin that suits every local file system: their clocks tick in nanoseconds to
/// milliseconds (ext4, XFS, Btrfs, tmpfs; FAT's two seconds are not among those allowed).
pub const SETTLE_MARGIN: Duration = Duration::from_secs(1);

/// One version of a file: replaced or rewritten, its key changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileKey {
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

fn time_of((secs, nanos): (i64, i64)) -> SystemTime {
    let nanos = u32::try_from(nanos).unwrap_or(0);
    match u64::try_from(secs) {
        Ok(s) => UNIX_EPOCH + Duration::new(s, nanos),
        Err(_) => UNIX_EPOCH,
    }
}

impl FileKey {
    pub(crate) fn of(st: &rustix::fs::Stat) -> FileKey {
        #[allow(clippy::unnecessary_cast)] // the field types differ across targets
        FileKey {
            ino: st.st_ino as u64,
            size: u64::try_from(st.st_size).unwrap_or(0),
            mtime: (st.st_mtime as i64, st.st_mtime_nsec as i64),
            ctime: (st.st_ctime as i64, st.st_ctime_nsec as i64),
        }
    }

    /// The file's size in bytes.
    pub fn len(&self) -> u64 {
        self.size
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// The key as 48 bytes (inode, size, then the two times' seconds and nanoseconds; each
    /// little-endian), as a pack stores it.
    pub(crate) fn to_bytes(self) -> [u8; 48] {
        let mut out = [0u8; 48];
        let words = [
            self.ino.to_le_bytes(),
            self.size.to_le_bytes(),
            self.mtime.0.to_le_bytes(),
            self.mtime.1.to_le_bytes(),
            self.ctime.0.to_le_bytes(),
            self.ctime.1.to_le_bytes(),
        ];
        for (chunk, word) in out.chunks_exact_mut(8).zip(words) {
            chunk.copy_from_slice(&word);
        }
        out
    }

    /// The key [`to_bytes`](Self::to_bytes) made `bytes` of.
    pub(crate) fn from_bytes(bytes: &[u8; 48]) -> FileKey {
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[i * 8..i * 8 + 8]);
            w
        };
        FileKey {
            ino: u64::from_le_bytes(word(0)),
            size: u64::from_le_bytes(word(1)),
            mtime: (i64::from_le_bytes(word(2)), i64::from_le_bytes(word(3))),
            ctime: (i64::from_le_bytes(word(4)), i64::from_le_bytes(word(5))),
        }
    }

    /// When the file's content last changed.
    pub fn modified(&self) -> SystemTime {
        time_of(self.mtime)
    }

    /// Whether its status changed at least `margin` before `now`, so that no later version can
    /// have the same key.
    pub fn settled(&self, now: SystemTime, margin: Duration) -> bool {
        time_of(self.ctime) + margin <= now
    }
}

/// Parsed values of files, each beside its file's key, shared by the reads of one process.
#[derive(Debug)]
pub struct ReadCache<T> {
    margin: Duration,
    inner: Mutex<Inner<T>>,
    hits: AtomicU64,
}

#[derive(Debug)]
struct Inner<T> {
    /// The number of the latest pass.
    pass: u64,
    entries: HashMap<String, Entry<T>>,
}

#[derive(Debug)]
struct Entry<T> {
    key: FileKey,
    value: T,
    /// The latest pass that read it.
    pass: u64,
}

impl<T: Clone> ReadCache<T> {
    /// A cache that keeps values of files whose status changed at least `margin` before they
    /// were read ([`SETTLE_MARGIN`] suits every local file system).
    pub fn new(margin: Duration) -> Self {
        ReadCache {
            margin,
            inner: Mutex::new(Inner {
                pass: 0,
                entries: HashMap::new(),
            }),
            hits: AtomicU64::new(0),
        }
    }

    /// How many reads the kept values saved, since the cache was made.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Starts one pass over the files of `dir` the caller keeps values of (one refresh), when
    /// `dir` is on a file system whose stat shows every new version ([`crate::Dir::is_local`]);
    /// `None` elsewhere (the caller then reads every file).
    pub fn pass_in(&self, dir: &crate::Dir) -> Option<ReadPass<'_, T>> {
        dir.is_local().then(|| self.pass())
    }

    /// Starts one pass over every file the caller keeps values of (one refresh): what the
    /// pass does not read is forgotten at its end (its file is gone, or no longer asked for).
    /// Passes may overlap. [`pass_in`](Self::pass_in) is the one that checks the file system.
    pub fn pass(&self) -> ReadPass<'_, T> {
        let mut inner = self.lock();
        inner.pass += 1;
        ReadPass {
            cache: self,
            now: SystemTime::now(),
            number: inner.pass,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<T>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One pass over a [`ReadCache`]; see [`ReadCache::pass`].
#[derive(Debug)]
pub struct ReadPass<'c, T: Clone> {
    cache: &'c ReadCache<T>,
    now: SystemTime,
    number: u64,
}

impl<T: Clone> ReadPass<'_, T> {
    /// The value kept for `rel` when `now`, its key as the caller just read it, is the key it
    /// was kept with; `None` otherwise (the caller then reads the file and [`keep`]s it).
    ///
    /// [`keep`]: Self::keep
    pub fn fresh(&self, rel: &str, now: Option<FileKey>) -> Option<T> {
        let mut inner = self.cache.lock();
        let entry = inner.entries.get_mut(rel)?;
        if now != Some(entry.key) {
            inner.entries.remove(rel);
            return None;
        }
        entry.pass = entry.pass.max(self.number);
        self.cache.hits.fetch_add(1, Ordering::Relaxed);
        Some(entry.value.clone())
    }

    /// Keeps `value`, read from the version `key` of `rel`, when that version is settled.
    pub fn keep(&self, rel: &str, key: FileKey, value: &T) {
        if key.settled(self.now, self.cache.margin) {
            let entry = Entry {
                key,
                value: value.clone(),
                pass: self.number,
            };
            self.cache.lock().entries.insert(rel.to_owned(), entry);
        }
    }
}

impl<T: Clone> Drop for ReadPass<'_, T> {
    fn drop(&mut self) {
        let number = self.number;
        self.cache.lock().entries.retain(|_, e| e.pass >= number);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ino: u64, size: u64, secs: i64) -> FileKey {
        FileKey {
            ino,
            size,
            mtime: (secs, 5),
            ctime: (secs, 7),
        }
    }

    #[test]
    fn a_key_survives_its_bytes() {
        let k = FileKey {
            ino: u64::MAX - 3,
            size: 1_500,
            mtime: (-2, 999_999_999),
            ctime: (1_796_602_794, 7),
        };
        assert_eq!(FileKey::from_bytes(&k.to_bytes()), k);
        assert_eq!(k.len(), 1_500);
        assert!(!k.is_empty());
    }

    #[test]
    fn a_version_is_settled_once_its_status_is_a_margin_old() {
        let k = key(1, 10, 100);
        let changed = UNIX_EPOCH + Duration::new(100, 7);
        assert!(!k.settled(changed, Duration::from_secs(1)));
        assert!(!k.settled(changed + Duration::from_millis(999), Duration::from_secs(1)));
        assert!(k.settled(changed + Duration::from_secs(1), Duration::from_secs(1)));
        assert!(k.settled(changed, Duration::ZERO));
        assert_eq!(k.modified(), UNIX_EPOCH + Duration::new(100, 5));
    }

    #[test]
    fn a_kept_value_serves_only_its_own_version_and_unread_files_are_forgotten() {
        let cache = ReadCache::new(Duration::ZERO);
        {
            let pass = cache.pass();
            assert_eq!(pass.fresh("a", Some(key(1, 10, 100))), None);
            pass.keep("a", key(1, 10, 100), &"a1");
            pass.keep("b", key(2, 10, 100), &"b1");
        }
        {
            let pass = cache.pass();
            assert_eq!(pass.fresh("a", Some(key(1, 10, 100))), Some("a1"));
            assert_eq!(pass.fresh("a", Some(key(1, 10, 100))), Some("a1"), "as often as asked");
            // Another inode, size or time: another version, and the kept value is dropped.
            assert_eq!(pass.fresh("b", Some(key(3, 10, 100))), None);
            assert_eq!(pass.fresh("b", Some(key(2, 10, 100))), None);
            pass.keep("c", key(4, 1, 100), &"c1");
        }
        assert_eq!(cache.hits(), 2);
        {
            // Overlapping passes: what either reads stays.
            let first = cache.pass();
            let second = cache.pass();
            assert_eq!(first.fresh("a", Some(key(1, 10, 100))), Some("a1"));
            assert_eq!(second.fresh("a", Some(key(1, 10, 100))), Some("a1"));
            drop(second);
            drop(first);
        }
        let pass = cache.pass();
        assert_eq!(pass.fresh("a", Some(key(1, 10, 100))), Some("a1"));
        assert_eq!(
            pass.fresh("c", Some(key(4, 1, 100))),
            None,
            "c was not read again: forgotten"
        );
        assert_eq!(pass.fresh("a", None), None, "a file gone is not served");
        drop(pass);
        assert_eq!(cache.pass().fresh("a", Some(key(1, 10, 100))), None, "nor kept");
    }

    #[test]
    fn a_version_younger_than_the_margin_is_not_kept() {
        let cache = ReadCache::new(Duration::from_secs(3600));
        let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs();
        let young = key(5, 1, i64::try_from(now).expect("secs"));
        {
            let pass = cache.pass();
            pass.keep("x", young, &1);
            pass.keep("old", key(9, 1, 0), &2);
        }
        let pass = cache.pass();
        assert_eq!(pass.fresh("x", Some(young)), None);
        assert_eq!(pass.fresh("old", Some(key(9, 1, 0))), Some(2));
    }
}
