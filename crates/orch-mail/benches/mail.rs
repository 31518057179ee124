//! Benchmark of the hydra-mail adapter: the caller's cost of one publish (daemon up and down)
//! and the sustained rate delivered to the test daemon.
//! Run: `cargo bench -p orch-mail` (`HYDRA_BENCH_QUICK=1` for fewer events).

use orch_core::{Channel, EventBus, LifecycleEvent, SessionId, Timestamp};
use orch_mail::test_daemon::TestDaemon;
use orch_mail::{MailBus, MailOptions};
use std::time::{Duration, Instant};

fn median_us(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e6
}

fn main() {
    let quick = std::env::var_os("HYDRA_BENCH_QUICK").is_some();
    let n = if quick { 500 } else { 10_000 };
    let dir = std::env::temp_dir().join(format!("orch-mail-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let sock = dir.join("hydra.sock");
    let ev = LifecycleEvent::new(Channel::Iteration, &SessionId("bench01".into()), Timestamp(0)).with("iteration", 3);
    let opts = MailOptions {
        queue_capacity: n * 2,
        ..MailOptions::default()
    };

    let daemon = TestDaemon::start(&sock).expect("daemon");
    let bus = MailBus::with_options(&sock, opts.clone());
    let mut costs = Vec::with_capacity(n);
    let start = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        bus.publish(&ev).expect("publish");
        costs.push(t.elapsed());
    }
    bus.flush(Duration::from_secs(60)).expect("flush");
    let elapsed = start.elapsed();
    println!("orch-mail benchmark ({n} events)");
    println!("publish, daemon up:   median {:.1} us (caller side)", median_us(costs));
    println!(
        "delivered:            {:.0} events/s sustained ({} acknowledged)",
        n as f64 / elapsed.as_secs_f64(),
        bus.stats().delivered
    );
    drop(bus);
    drop(daemon);

    let bus = MailBus::with_options(dir.join("absent.sock"), opts);
    let costs: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            bus.publish(&ev).expect("publish");
            t.elapsed()
        })
        .collect();
    println!("publish, daemon down: median {:.1} us (caller side)", median_us(costs));
    let _ = std::fs::remove_dir_all(&dir);
}
