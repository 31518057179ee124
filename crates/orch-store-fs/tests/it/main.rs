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

/// Runs this test binary as a child process in `mode` (see `child_entry`).
fn child(mode: &str, dir: &Path) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
    cmd.args(["--exact", "child_entry", "--nocapture", "--test-threads=1"])
        .env("HYDRA_STORE_CHILD", mode)
        .env("HYDRA_STORE_DIR", dir)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    cmd
}

/// Not a test of its own: the body of the child processes the tests start.
#[test]
fn child_entry() {
    let (Ok(mode), Ok(dir)) = (std::env::var("HYDRA_STORE_CHILD"), std::env::var("HYDRA_STORE_DIR")) else {
        return;
    };
    let store = FsStore::new(&dir);
    match mode.as_str() {
        "writer" => {
            // Continue from the last version on disk, so the parent can see this child writing.
            let mut rev = store
                .load(&SessionId("crash".into()))
                .ok()
                .flatten()
                .map_or(1, |r| r.revision + 1);
            loop {
                store.save(&record("crash", rev)).expect("save");
                rev += 1;
            }
        }
        "increment" => {
            for _ in 0..200 {
                let _guard = store.lock().expect("lock");
                let mut r = store.load(&SessionId("counter".into())).expect("load").expect("exists");
                r.revision += 1;
                store.save(&r).expect("save");
            }
        }
        "umask0" => {
            rustix::process::umask(rustix::fs::Mode::empty());
            store.save(&record("perm", 1)).expect("save");
        }
        other => panic!("unknown child mode {other}"),
    }
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
    store.save(r).expect("save");
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
    store.save(&r).expect("save");
    assert_eq!(store.load(&r.id).expect("load"), Some(r.clone()));
    store.remove(&r.id).expect("remove");
    assert_eq!(store.load(&r.id).expect("load"), None);
    store.remove(&r.id).expect("removing a missing record is fine");
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
    store.save(&record("counter", 0)).expect("save");
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
    store.save(&record("good1", 1)).expect("save");
    store.save(&record("good2", 2)).expect("save");
    let s = sessions(dir.path());
    let full = serde_json::to_string(&record("trunc", 1)).expect("json");
    let mut future = serde_json::to_value(record("future", 1)).expect("json");
    future["schema_version"] = 99.into();
    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("corrupt.json", b"{ this is not json".to_vec()),
        ("empty.json", Vec::new()),
        ("trunc.json", full.as_bytes()[..full.len() / 2].to_vec()),
        ("nonutf8.json", vec![0xff, 0xfe, b'{', 0x80]),
        ("future.json", future.to_string().into_bytes()),
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
    assert!(report.problems.iter().any(|p| p.reason.contains("99")));
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
        assert!(matches!(store.remove(&id), Err(StoreError::BadId(_))), "{bad:?}");
        let mut r = record("x", 1);
        r.id = id;
        assert!(matches!(store.save(&r), Err(StoreError::BadId(_))), "{bad:?}");
    }
    assert!(matches!(
        store.remove(&SessionId("a".repeat(65))),
        Err(StoreError::BadId(_))
    ));
    assert_eq!(std::fs::read_to_string(&victim).expect("victim intact"), "precious");
    assert!(!dir.path().join("project").exists(), "nothing created for refused ids");
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
    store.save(&record("ro", 1)).expect("save");
    let s = sessions(dir.path());
    // Root ignores directory permissions, so as root the directory is made read-only by a
    // read-only bind mount; otherwise by its mode. Either way the save must fail.
    let _readonly = ReadOnly::new(&s);
    let err = store
        .save(&record("ro", 2))
        .expect_err("a read-only directory refuses the save");
    assert!(err.to_string().contains("failed to create"), "{err}");
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
