//! Tests of the file store on a real file system, including other processes that crash or race.

use orch_core::{SessionConfig, SessionId, SessionRecord, SessionState, Store, StoreError, Timestamp};
use orch_store_fs::FsStore;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use orch_core::testing::SEED_RECORD;

fn record(id: &str, revision: u64) -> SessionRecord {
    let mut r = SessionRecord::new(
        SessionId(id.into()),
        &SessionConfig::default(),
        Timestamp::from_secs(1_700_000_000),
    );
    r.revision = revision;
    // Content that depends on the revision, so a torn or mixed file cannot pass as valid.
    r.agent_flags = format!("{}-{}", revision, "x".repeat((revision % 4096) as usize));
    r
}

fn sessions(dir: &Path) -> std::path::PathBuf {
    dir.join(".hydra/orchestrator/sessions")
}

/// The helper process (`src/bin/orch-store-child.rs`) in `mode` on the store at `dir`.
fn child(mode: &str, dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_orch-store-child"));
    cmd.arg(mode).arg(dir).stdout(Stdio::null()).stderr(Stdio::inherit());
    cmd
}

/// Saves under the store's lock.
fn save(store: &FsStore, r: &SessionRecord) -> Result<(), StoreError> {
    let guard = store.lock()?;
    store.save(&guard, r)
}

#[test]
fn seed_record_loads() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::create_dir_all(sessions(dir.path())).expect("mkdir");
    std::fs::write(sessions(dir.path()).join("a1b2c3d4.json"), SEED_RECORD).expect("write");
    let store = FsStore::new(dir.path());
    let report = store.load_all().expect("load");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.records.len(), 1);
    let r = &report.records[0];
    assert_eq!(r.id.as_str(), "a1b2c3d4");
    assert_eq!(r.schema_version, orch_core::CURRENT_SCHEMA_VERSION);
    assert_eq!(r.state, SessionState::Starting);
    // Saving writes the current version and keeps the seed's fields.
    save(&store, r).expect("save");
    let text = std::fs::read_to_string(sessions(dir.path()).join("a1b2c3d4.json")).expect("read");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["schema_version"], orch_core::CURRENT_SCHEMA_VERSION);
    assert_eq!(v["allocated_port"], 8080);
}

#[test]
fn save_load_remove_round_trip() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = FsStore::new(dir.path());
    let r = record("ab12", 7);
    save(&store, &r).expect("save");
    assert_eq!(store.load(&r.id).expect("load"), Some(r.clone()));
    let guard = store.lock().expect("lock");
    store.remove(&guard, &r.id).expect("remove");
    assert_eq!(store.load(&r.id).expect("load"), None);
    store.remove(&guard, &r.id).expect("removing a missing record is fine");
}

#[test]
fn an_unsynced_save_is_a_whole_record_at_once() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = FsStore::new(dir.path());
    let mut r = record("ab13", 2);
    let guard = store.lock().expect("lock");
    store
        .save_unsynced(&guard, &r)
        .expect("first save creates the directories");
    r.iteration = 3;
    store.save_unsynced(&guard, &r).expect("replace");
    assert_eq!(store.load(&r.id).expect("load"), Some(r.clone()));
    let names: Vec<_> = std::fs::read_dir(sessions(dir.path()))
        .expect("ls")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names, ["ab13.json"], "no temp file left");
}

#[test]
fn crash_during_save_never_leaves_a_torn_record() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = FsStore::new(dir.path());
    // A pseudo-random sequence of kill moments (xorshift seeded from the pid).
    let mut x = u64::from(std::process::id()) | 1;
    let mut last = 0;
    for round in 0..50 {
        let mut c = child("writer", dir.path()).spawn().expect("spawn writer");
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // Wait until this child is saving, then kill it at a random moment.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while store
            .load(&SessionId("crash".into()))
            .ok()
            .flatten()
            .map_or(0, |r| r.revision)
            <= last
        {
            assert!(std::time::Instant::now() < deadline, "writer never saved");
            std::thread::sleep(Duration::from_micros(200));
        }
        std::thread::sleep(Duration::from_micros(x % 5_000));
        c.kill().expect("SIGKILL");
        c.wait().expect("reap");
        let r = store
            .load(&SessionId("crash".into()))
            .expect("record parses after SIGKILL")
            .expect("exists");
        assert_eq!(
            r,
            record("crash", r.revision),
            "round {round}: record is not a version that was written"
        );
        assert!(r.revision > last);
        last = r.revision;
    }
    // Temp files of the killed writers are cleaned up by the next load_all.
    let report = store.load_all().expect("load");
    assert_eq!(report.records.len(), 1);
    let leftovers: Vec<_> = std::fs::read_dir(sessions(dir.path()))
        .expect("dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn four_processes_lose_no_increment() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = FsStore::new(dir.path());
    save(&store, &record("counter", 0)).expect("save");
    let children: Vec<_> = (0..4)
        .map(|_| child("increment", dir.path()).spawn().expect("spawn"))
        .collect();
    for mut c in children {
        assert!(c.wait().expect("wait").success());
    }
    assert_eq!(
        store
            .load(&SessionId("counter".into()))
            .expect("load")
            .expect("exists")
            .revision,
        800
    );
}

#[test]
fn bad_files_are_quarantined_and_good_ones_load() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = FsStore::new(dir.path());
    save(&store, &record("good1", 1)).expect("save");
    save(&store, &record("good2", 2)).expect("save");
    let s = sessions(dir.path());
    let full = serde_json::to_string(&record("trunc", 1)).expect("json");
    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("corrupt.json", b"{ this is not json".to_vec()),
        ("empty.json", Vec::new()),
        ("trunc.json", full.as_bytes()[..full.len() / 2].to_vec()),
        ("nonutf8.json", vec![0xff, 0xfe, b'{', 0x80]),
        ("wrongid.json", serde_json::to_vec(&record("other", 1)).expect("json")),
        ("Bad-Name.json", serde_json::to_vec(&record("good1", 1)).expect("json")),
    ];
    for (name, bytes) in &bad {
        std::fs::write(s.join(name), bytes).expect("write");
    }
    let report = store.load_all().expect("load_all never fails on bad files");
    let ids: Vec<_> = report.records.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&"good1") && ids.contains(&"good2"));
    assert_eq!(report.problems.len(), bad.len(), "{:?}", report.problems);
    for (name, _) in &bad {
        assert!(!s.join(name).exists(), "{name} still in place");
        let p = report
            .problems
            .iter()
            .find(|p| p.path.ends_with(name))
            .expect("reported");
        let q = p.quarantined.as_ref().expect("moved aside");
        assert!(q.exists() && q.to_string_lossy().contains(".corrupt-"), "{q:?}");
    }
    // A second load is clean: quarantined files are not looked at again.
    let again = store.load_all().expect("load");
    assert!(again.problems.is_empty());
    assert_eq!(again.records.len(), 2);
}

#[test]
fn hostile_ids_are_refused_before_any_path_is_built() {
    let dir = tempfile::tempdir().expect("tmp");
    let victim = dir.path().join("victim.json");
    std::fs::write(&victim, "precious").expect("write");
    std::fs::create_dir(dir.path().join("project")).expect("project");
    let store = FsStore::new(dir.path().join("project"));
    for bad in [
        "../x",
        "a/b",
        ".",
        "",
        "UPPER",
        "a\0b",
        "../../../victim",
        "../../victim",
    ] {
        let id = SessionId(bad.into());
        assert!(matches!(store.load(&id), Err(StoreError::BadId(_))), "{bad:?}");
        let mut r = record("x", 1);
        r.id = id;
        assert!(matches!(save(&store, &r), Err(StoreError::BadId(_))), "{bad:?}");
    }
    let guard = store.lock().expect("lock");
    assert!(matches!(
        store.remove(&guard, &SessionId("a".repeat(65))),
        Err(StoreError::BadId(_))
    ));
    assert!(matches!(
        store.remove(&guard, &SessionId("../x".into())),
        Err(StoreError::BadId(_))
    ));
    drop(guard);
    assert_eq!(std::fs::read_to_string(&victim).expect("victim intact"), "precious");
    let sessions = dir.path().join("project/.hydra/orchestrator/sessions");
    assert_eq!(
        std::fs::read_dir(&sessions).expect("store dir").count(),
        0,
        "nothing written for refused ids"
    );
}

#[test]
fn permissions_are_private_even_with_a_permissive_umask() {
    let dir = tempfile::tempdir().expect("tmp");
    assert!(child("umask0", dir.path()).status().expect("run").success());
    let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode(&dir.path().join(".hydra")), 0o700);
    assert_eq!(mode(&dir.path().join(".hydra/orchestrator")), 0o700);
    assert_eq!(mode(&sessions(dir.path())), 0o700);
    assert_eq!(mode(&sessions(dir.path()).join("perm.json")), 0o600);
}

#[test]
fn read_only_directory_fails_clearly_and_keeps_the_old_record() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = FsStore::new(dir.path());
    save(&store, &record("ro", 1)).expect("save");
    let s = sessions(dir.path());
    // Root ignores directory permissions, so as root the directory is made read-only by a
    // read-only bind mount; otherwise by its mode. Either way the save must fail.
    let _readonly = ReadOnly::new(&s);
    let err = save(&store, &record("ro", 2)).expect_err("a read-only directory refuses the save");
    assert!(matches!(err, StoreError::ReadOnly { .. }), "{err}");
    assert!(err.to_string().contains("read-only"), "{err}");
    assert_eq!(
        store
            .load(&SessionId("ro".into()))
            .expect("load")
            .expect("exists")
            .revision,
        1
    );
}

/// Makes a directory read-only until dropped (even when the test panics).
struct ReadOnly {
    dir: std::path::PathBuf,
    mounted: bool,
}

impl ReadOnly {
    fn new(dir: &Path) -> Self {
        let root = rustix::process::geteuid().as_raw() == 0;
        if root {
            let run = |args: &[&str]| {
                Command::new("mount")
                    .args(args)
                    .arg(dir)
                    .arg(dir)
                    .status()
                    .is_ok_and(|s| s.success())
            };
            assert!(
                run(&["--bind"]),
                "mount --bind (root is needed to make a directory read-only for root)"
            );
            let ro = Command::new("mount")
                .args(["-o", "remount,ro,bind"])
                .arg(dir)
                .status()
                .is_ok_and(|s| s.success());
            let guard = ReadOnly {
                dir: dir.to_path_buf(),
                mounted: true,
            };
            assert!(ro, "remount read-only");
            guard
        } else {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o500)).expect("chmod");
            ReadOnly {
                dir: dir.to_path_buf(),
                mounted: false,
            }
        }
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount").arg(&self.dir).status();
        } else {
            let _ = std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700));
        }
    }
}

#[test]
fn records_of_a_newer_schema_are_skipped_and_reported_never_quarantined() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = FsStore::new(dir.path());
    save(&store, &record("good", 1)).expect("save");
    let mut future = serde_json::to_value(record("future", 1)).expect("json");
    future["schema_version"] = 99.into();
    future["state"] = "a shape this build does not know".into();
    let path = sessions(dir.path()).join("future.json");
    std::fs::write(&path, future.to_string()).expect("write");
    let report = store.load_all().expect("load");
    assert_eq!(report.records.len(), 1);
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.newer.len(), 1);
    assert!(report.newer[0].reason.contains("99"), "{:?}", report.newer);
    assert!(path.exists(), "left in place for the newer build");
    // load agrees with load_all.
    let err = store.load(&SessionId("future".into())).expect_err("newer");
    assert!(matches!(err, StoreError::NewerSchema { version: 99, .. }), "{err}");
    assert!(path.exists());
}

#[test]
fn load_quarantines_a_corrupt_record_as_load_all_does() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = FsStore::new(dir.path());
    save(&store, &record("bad", 1)).expect("save");
    let path = sessions(dir.path()).join("bad.json");
    std::fs::write(&path, "{ torn").expect("corrupt it");
    let err = store.load(&SessionId("bad".into())).expect_err("corrupt");
    let StoreError::Corrupt { quarantined, .. } = err else {
        panic!("not Corrupt: {err}");
    };
    assert!(quarantined.expect("moved").exists());
    assert!(!path.exists());
    assert_eq!(store.load(&SessionId("bad".into())).expect("load"), None);
}

#[test]
fn the_store_measures_how_long_its_lock_is_held() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = FsStore::new(dir.path());
    let guard = store.lock().expect("lock");
    std::thread::sleep(Duration::from_millis(30));
    drop(guard);
    drop(store.lock().expect("lock"));
    let stats = store.lock_stats();
    assert_eq!(stats.acquisitions, 2);
    assert!(stats.longest_hold >= Duration::from_millis(30), "{stats:?}");
    assert!(stats.last_hold < stats.longest_hold, "{stats:?}");
}

#[test]
fn a_read_only_store_can_be_read_but_not_locked() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = FsStore::new(dir.path());
    save(&store, &record("ro", 1)).expect("save");
    // Without root, a 0500 directory still lets the existing lock file be opened: take its
    // write permission too (as root the read-only mount does it all).
    let lock = dir.path().join(".hydra/orchestrator/lock");
    std::fs::set_permissions(&lock, std::fs::Permissions::from_mode(0o400)).expect("chmod");
    let _readonly = ReadOnly::new(&dir.path().join(".hydra/orchestrator"));
    assert_eq!(store.load_all().expect("reading works").records.len(), 1);
    let err = store.lock().expect_err("no lock on a read-only store");
    assert!(matches!(err, StoreError::ReadOnly { .. }), "{err}");
}

#[test]
fn a_batch_of_records_is_saved_whole() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = FsStore::new(dir.path());
    let records: Vec<_> = (0..12).map(|i| record(&format!("b{i:02}"), i)).collect();
    let guard = store.lock().expect("lock");
    store.save_all(&guard, &records).expect("batch");
    drop(guard);
    let loaded = store.load_all().expect("load").records;
    assert_eq!(loaded.len(), 12);
    for r in &records {
        assert_eq!(store.load(&r.id).expect("load").as_ref(), Some(r));
    }
}

#[test]
fn a_large_store_loads_every_record_once_in_order_with_its_bad_files_reported() {
    // A store of some size, with bad and newer files among its records.
    let dir = tempfile::tempdir().expect("tmp");
    let store = FsStore::new(dir.path());
    let n = 200;
    let guard = store.lock().expect("lock");
    for i in 0..n {
        let mut r = record(&format!("r{i:04}"), 1);
        // Creation times against the names' order, so the sort is seen to happen.
        r.created_at_ms = 1_700_000_000_000 - i as u64;
        store.save_unsynced(&guard, &r).expect("save");
    }
    drop(guard);
    let s = sessions(dir.path());
    let bad: Vec<String> = (0..6).map(|k| format!("bad{k}.json")).collect();
    for name in &bad {
        std::fs::write(s.join(name), b"{ not json").expect("write");
    }
    let mut future = serde_json::to_value(record("future", 1)).expect("json");
    future["schema_version"] = 99.into();
    std::fs::write(s.join("future.json"), future.to_string()).expect("write");

    let report = store.load_all().expect("load");
    let ids: Vec<String> = report.records.iter().map(|r| r.id.to_string()).collect();
    let expected: Vec<String> = (0..n).rev().map(|i| format!("r{i:04}")).collect();
    assert_eq!(ids, expected, "every record once, oldest first");
    assert_eq!(report.problems.len(), bad.len(), "{:?}", report.problems);
    for name in &bad {
        assert!(!s.join(name).exists(), "{name} quarantined");
    }
    assert_eq!(report.newer.len(), 1, "{:?}", report.newer);
}

/// Waits (at most 10 s) until the file at `path` is settled by the read cache's own rule.
fn wait_settled(path: &Path, margin: Duration) {
    let dir = orch_fs::Dir::open(path.parent().expect("a directory"))
        .expect("open")
        .expect("exists");
    let name = path.file_name().and_then(|n| n.to_str()).expect("a name");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !dir
        .key(name)
        .expect("stat")
        .expect("the file")
        .settled(std::time::SystemTime::now(), margin)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "{} did not settle",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Rewrites `id`'s record file in place (as an editor may), its revision `from` made `to` (one
/// digit each, so the size stays).
fn edit_in_place(dir: &Path, id: &str, from: u64, to: u64) {
    let path = sessions(dir).join(format!("{id}.json"));
    let text = std::fs::read_to_string(&path).expect("read");
    let edited = text.replace(&format!("\"revision\": {from}"), &format!("\"revision\": {to}"));
    assert_eq!(edited.len(), text.len());
    std::fs::write(&path, &edited).expect("write in place");
}

/// Whether `records` hold `id` at `revision`.
fn holds(records: &[SessionRecord], id: &str, revision: u64) -> bool {
    records.iter().any(|r| r.id.as_str() == id && r.revision == revision)
}

#[test]
fn a_cached_store_serves_unchanged_records_and_reads_every_new_version() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = FsStore::new(dir.path()).with_read_cache(Duration::from_secs(1));
    let plain = FsStore::new(dir.path());
    save(&store, &record("aa11", 2)).expect("save");
    save(&store, &record("bb22", 2)).expect("save");
    let first = store.load_all().expect("load").records;
    assert_eq!(first.len(), 2);
    assert_eq!(store.cache_hits(), 0, "younger than the margin: not kept");
    for id in ["aa11", "bb22"] {
        wait_settled(&sessions(dir.path()).join(format!("{id}.json")), Duration::from_secs(1));
    }
    store.load_all().expect("load");
    let kept = store.load_all().expect("load").records;
    assert_eq!(store.cache_hits(), 2);
    assert_eq!(kept, first);
    // A save (a new file, renamed into place): read, not served.
    save(&store, &record("aa11", 3)).expect("save");
    let after = store.load_all().expect("load").records;
    assert_eq!(after, plain.load_all().expect("load").records);
    assert!(holds(&after, "aa11", 3));
    assert_eq!(store.cache_hits(), 3, "only bb22 served");
    // Rewritten in place with the same size (an editor's save): read too.
    edit_in_place(dir.path(), "bb22", 2, 7);
    let after = store.load_all().expect("load").records;
    assert!(holds(&after, "bb22", 7), "{after:?}");
    // Removed: gone.
    let guard = store.lock().expect("lock");
    store.remove(&guard, &SessionId("aa11".into())).expect("remove");
    drop(guard);
    let after = store.load_all().expect("load").records;
    assert_eq!(after.len(), 1);
    assert_eq!(after, plain.load_all().expect("load").records);
}

#[test]
fn a_packed_store_serves_unchanged_records_across_processes_and_reads_every_new_version() {
    let dir = tempfile::tempdir().expect("tmp");
    // Each short-lived process makes its store anew; what it keeps is the pack on disk.
    let process = || FsStore::new(dir.path()).with_pack(Duration::from_secs(1));
    let plain = FsStore::new(dir.path());
    save(&plain, &record("aa11", 2)).expect("save");
    save(&plain, &record("bb22", 2)).expect("save");
    let first = process();
    let records = first.load_all().expect("load").records;
    assert_eq!(records.len(), 2);
    assert!(!first.pack_path().exists(), "younger than the margin: nothing packed");
    for id in ["aa11", "bb22"] {
        wait_settled(&sessions(dir.path()).join(format!("{id}.json")), Duration::from_secs(1));
    }
    process().load_all().expect("load");
    assert!(first.pack_path().exists());
    let second = process();
    assert_eq!(second.load_all().expect("load").records, records);
    assert_eq!(second.cache_hits(), 2, "both served from the pack");

    // A save (a new file, renamed into place): read, not served.
    save(&plain, &record("aa11", 3)).expect("save");
    let third = process();
    let after = third.load_all().expect("load").records;
    assert_eq!(after, plain.load_all().expect("load").records);
    assert!(holds(&after, "aa11", 3));
    assert_eq!(third.cache_hits(), 1, "only bb22 served");
    // Rewritten in place with the same size (an editor's save): read too.
    edit_in_place(dir.path(), "bb22", 2, 7);
    let after = process().load_all().expect("load").records;
    assert!(holds(&after, "bb22", 7), "{after:?}");
    // Removed: gone.
    let guard = plain.lock().expect("lock");
    plain.remove(&guard, &SessionId("aa11".into())).expect("remove");
    drop(guard);
    let after = process().load_all().expect("load").records;
    assert_eq!(after.len(), 1);
    assert_eq!(after, plain.load_all().expect("load").records);
}

#[test]
fn a_damaged_copy_in_the_pack_never_costs_a_good_record_and_a_bad_file_is_still_quarantined() {
    let dir = tempfile::tempdir().expect("tmp");
    let process = || FsStore::new(dir.path()).with_pack(Duration::ZERO);
    let plain = FsStore::new(dir.path());
    save(&plain, &record("cc33", 5)).expect("save");
    process().load_all().expect("load");
    let pack = process().pack_path();
    // The copy's bytes made unparsable where the record's id is, its frame left whole.
    let bytes = std::fs::read(&pack).expect("pack");
    let at = bytes.windows(6).position(|w| w == b"\"cc33\"").expect("the copy");
    let mut damaged = bytes.clone();
    damaged[at] = b'{';
    std::fs::write(&pack, &damaged).expect("damage");
    let store = process();
    let report = store.load_all().expect("load");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.records, plain.load_all().expect("load").records);
    assert!(sessions(dir.path()).join("cc33.json").exists(), "not quarantined");
    assert_eq!(
        std::fs::read(&pack).expect("pack"),
        bytes,
        "the next pack holds the file"
    );

    // A record file that is itself bad is quarantined as without the pack.
    std::fs::write(sessions(dir.path()).join("dd44.json"), b"{ not json").expect("bad");
    process().load_all().expect("load");
    let report = process().load_all().expect("load");
    assert!(report.problems.is_empty(), "moved aside on the first load");
    assert_eq!(report.records.len(), 1);
    assert!(!sessions(dir.path()).join("dd44.json").exists());
}
