//! The watcher on fakes: it tells a loop's report as soon as the file changes, a pane that died
//! as soon as tmux says so, another process's change of a record, and a session going stuck
//! when the clock says so (at the deadline its last look named, not at its next tick); it does
//! not look again for its own writes.

mod support;

use hydra_orchestrator::{Orchestrator, PauseMode, SessionId, WatchEvent, WatchOptions, Watcher};
use orch_core::testing::ManualFileEvents;
use orch_core::Clock;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PROJECT: &str = "/watch/project";

struct Rig {
    fakes: support::Fakes,
    files: Arc<ManualFileEvents>,
}

impl Rig {
    fn new() -> Self {
        let fakes = support::Fakes::new(PROJECT);
        fakes
            .store
            .set_record_dir(PathBuf::from(PROJECT).join(".hydra/orchestrator/sessions"));
        Rig {
            fakes,
            files: Arc::new(ManualFileEvents::new()),
        }
    }
    fn orch(&self) -> Arc<Orchestrator> {
        Arc::new(
            self.fakes
                .builder()
                .file_events(self.files.clone())
                .build()
                .expect("build"),
        )
    }
    fn status_file(&self, id: &SessionId) -> PathBuf {
        PathBuf::from(PROJECT)
            .join(".hydra/ralph")
            .join(id.as_str())
            .join("status.json")
    }
    fn record_file(&self, id: &SessionId) -> PathBuf {
        PathBuf::from(PROJECT)
            .join(".hydra/orchestrator/sessions")
            .join(format!("{id}.json"))
    }
}

/// The next change of `id` to a state shown as `word`, within a few seconds.
#[track_caller]
fn change_to(w: &mut Watcher, id: &SessionId, word: &str) -> hydra_orchestrator::Change {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        assert!(Instant::now() < deadline, "no change of {id} to {word}");
        match w.try_recv() {
            Some(WatchEvent::Change(c)) if &c.status.id == id && c.status.state_word() == word => return *c,
            Some(_) => {}
            None => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

#[test]
fn the_watcher_tells_each_change_as_it_happens() {
    let rig = Rig::new();
    let orch = rig.orch();
    let id = orch.spawn(rig.fakes.config()).expect("spawn");
    let mut w = orch.watch(WatchOptions::default()).expect("watch");
    let first = change_to(&mut w, &id, "starting");
    assert_eq!(first.from, None, "first seen");
    assert!(rig.files.dirs().iter().any(|d| d.ends_with(".hydra/ralph")));

    // A loop's report: told when its file changes.
    rig.fakes.runtime.report(
        &id,
        r#"{"status":"running","iteration":1,"max":10,"run":1}"#,
        rig.fakes.clock.now(),
    );
    rig.files.changed(&rig.status_file(&id));
    let c = change_to(&mut w, &id, "running");
    assert_eq!(c.from.as_deref(), Some("starting"));

    // Another process pauses it: its record changes.
    let other = rig.orch();
    other.pause_with(&id, PauseMode::Freeze).expect("pause");
    rig.files.changed(&rig.record_file(&id));
    change_to(&mut w, &id, "paused");
    other.resume(&id).expect("resume");
    rig.files.changed(&rig.record_file(&id));
    change_to(&mut w, &id, "running");

    // tmux says the pane died: no file is involved.
    rig.fakes.mux.vanish(&id.tmux_name());
    let c = change_to(&mut w, &id, "failed");
    assert_eq!(c.status.state.reason(), Some("tmux session ended unexpectedly"));
    w.stop();
}

/// A new session whose loop has just reported its first iteration running.
fn reported_running(rig: &Rig, orch: &Orchestrator) -> SessionId {
    let id = orch.spawn(rig.fakes.config()).expect("spawn");
    rig.fakes.runtime.report(
        &id,
        r#"{"status":"running","iteration":1,"max":10,"run":1}"#,
        rig.fakes.clock.now(),
    );
    id
}

/// A watcher whose tick (its slow look) is `tick`.
fn watch_ticking(orch: &Arc<Orchestrator>, tick: Duration) -> Watcher {
    orch.watch(WatchOptions {
        tick,
        ..WatchOptions::default()
    })
    .expect("watch")
}

#[test]
fn the_clock_makes_a_quiet_session_stuck_without_any_event() {
    let rig = Rig::new();
    let orch = rig.orch();
    let id = reported_running(&rig, &orch);
    let mut w = watch_ticking(&orch, Duration::from_millis(20));
    change_to(&mut w, &id, "running");
    rig.fakes.clock.advance(Duration::from_secs(16 * 60));
    change_to(&mut w, &id, "stuck");
}

#[test]
fn it_looks_again_at_the_next_deadline_not_only_on_its_tick() {
    let rig = Rig::new();
    let orch = rig.orch();
    let id = reported_running(&rig, &orch);
    orch.refresh().expect("running, booked before the watcher starts");
    // Its stuck threshold (15 minutes of silence) is 200 ms away; the tick is an hour away.
    rig.fakes
        .clock
        .advance(Duration::from_secs(15 * 60) - Duration::from_millis(200));
    let mut w = watch_ticking(&orch, Duration::from_secs(3600));
    change_to(&mut w, &id, "running");
    // Past the threshold, and nothing the watcher is told of happens: only the deadline of
    // its last look wakes it.
    rig.fakes.clock.advance(Duration::from_secs(1));
    change_to(&mut w, &id, "stuck");
    w.stop();
}

#[test]
fn its_own_writes_do_not_make_it_look_again() {
    let rig = Rig::new();
    let orch = rig.orch();
    let id = orch.spawn(rig.fakes.config()).expect("spawn");
    let mut w = orch.watch(WatchOptions::default()).expect("watch");
    change_to(&mut w, &id, "starting");
    std::thread::sleep(Duration::from_millis(50));
    let snapshots = rig.fakes.mux.snapshot_calls();
    // The record as the watcher's own look left it...
    rig.files.changed(&rig.record_file(&id));
    // ...then, well after the watcher gathered that one, a poke: its look is the positive
    // signal that the record event was handled.
    std::thread::sleep(Duration::from_millis(100));
    w.poke();
    let deadline = Instant::now() + Duration::from_secs(5);
    while rig.fakes.mux.snapshot_calls() == snapshots {
        assert!(Instant::now() < deadline, "the poke was not looked at");
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        rig.fakes.mux.snapshot_calls(),
        snapshots + 1,
        "one look for the poke, none for the unchanged record"
    );
    // A record another process wrote is looked at.
    rig.orch().pause(&id).expect("pause");
    rig.files.changed(&rig.record_file(&id));
    change_to(&mut w, &id, "pausing");
}

/// From a tokio task on a single-threaded runtime: `next().await` yields the changes (a
/// blocking wait there would hang the runtime or panic).
#[tokio::test(flavor = "current_thread")]
async fn a_tokio_task_awaits_the_changes() {
    let rig = Rig::new();
    let orch = rig.orch();
    let id = orch.spawn(rig.fakes.config()).expect("spawn");
    let mut w = orch.watch(WatchOptions::default()).expect("watch");
    let seen = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match w.next().await {
                Some(WatchEvent::Change(c)) if c.status.id == id => return c.status.state_word().to_owned(),
                Some(_) => {}
                None => panic!("the watcher stopped"),
            }
        }
    })
    .await
    .expect("a change within 5 s");
    assert_eq!(seen, "starting");
    rig.fakes.mux.vanish(&id.tmux_name());
    let failed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Some(WatchEvent::Change(c)) = w.next().await {
                if c.status.state.is_terminal() {
                    return c.status.state_word().to_owned();
                }
            }
        }
    })
    .await
    .expect("the failure within 5 s");
    assert_eq!(failed, "failed");
    // Stopping joins the watcher's thread; off the runtime's thread, as any blocking call.
    tokio::task::spawn_blocking(move || w.stop()).await.expect("stop");
}
