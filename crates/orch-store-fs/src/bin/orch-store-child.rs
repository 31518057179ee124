//! A helper process for the store's integration tests (not a tool): it runs one of the child
//! roles those tests need against the store at `$HYDRA_STORE_DIR`, in a process of its own, so
//! the tests can SIGKILL it mid-write or run several at once.

use orch_core::{SessionConfig, SessionId, SessionRecord, Store, Timestamp};
use orch_store_fs::FsStore;

/// The record the tests write: its content depends on the revision, so a torn or mixed file
/// cannot pass as valid.
fn record(id: &str, revision: u64) -> SessionRecord {
    let mut r = SessionRecord::new(
        SessionId(id.into()),
        &SessionConfig::default(),
        Timestamp::from_secs(1_700_000_000),
    );
    r.revision = revision;
    r.agent_flags = format!("{}-{}", revision, "x".repeat((revision % 4096) as usize));
    r
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(mode), Some(dir)) = (args.next(), args.next()) else {
        eprintln!("usage: orch-store-child writer|increment|umask0 DIR");
        std::process::exit(2);
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
                let guard = store.lock().expect("lock");
                store.save(&guard, &record("crash", rev)).expect("save");
                drop(guard);
                rev += 1;
            }
        }
        "increment" => {
            for _ in 0..200 {
                let guard = store.lock().expect("lock");
                let mut r = store.load(&SessionId("counter".into())).expect("load").expect("exists");
                r.revision += 1;
                store.save(&guard, &r).expect("save");
            }
        }
        "umask0" => {
            rustix::process::umask(rustix::fs::Mode::empty());
            let guard = store.lock().expect("lock");
            store.save(&guard, &record("perm", 1)).expect("save");
        }
        other => {
            eprintln!("unknown mode {other}");
            std::process::exit(2);
        }
    }
}
