//! Benchmark of the file store: save latency and load-all time at 100 and 1,000 records.
//! Run: `cargo bench -p orch-store-fs` (`HYDRA_BENCH_QUICK=1` for small N).

use orch_core::{SessionConfig, SessionId, SessionRecord, Store, Timestamp};
use orch_store_fs::FsStore;
use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let quick = std::env::var_os("HYDRA_BENCH_QUICK").is_some();
    let sizes: &[usize] = if quick { &[100] } else { &[100, 1000] };
    let dir = std::env::temp_dir().join(format!("orch-store-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("bench dir");
    let store = FsStore::new(&dir);
    let mut saves = Vec::new();
    let mut n = 0;
    println!("orch-store-fs benchmark ({})", dir.display());
    for &size in sizes {
        while n < size {
            let r = SessionRecord::new(
                SessionId(format!("s{n:06}")),
                &SessionConfig::default(),
                Timestamp::from_secs(1_700_000_000 + n as u64),
            );
            let guard = store.lock().expect("lock");
            let t = Instant::now();
            store.save(&guard, &r).expect("save");
            saves.push(t.elapsed());
            n += 1;
        }
        let load = median(
            (0..5)
                .map(|_| {
                    let t = Instant::now();
                    let rep = store.load_all().expect("load");
                    assert_eq!(rep.records.len(), size);
                    t.elapsed()
                })
                .collect(),
        );
        println!(
            "load_all of {size:>5} records: median {:.2} ms",
            load.as_secs_f64() * 1000.0
        );
    }
    println!(
        "save (atomic, fsync): median {:.3} ms over {} saves",
        median(saves).as_secs_f64() * 1000.0,
        n
    );
    let _ = std::fs::remove_dir_all(&dir);
}
