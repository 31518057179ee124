//! The transaction between processes, on real tmux (private sockets) and real processes:
//! spawns racing looping `ls`/`prune` processes lose nothing, two projects on one tmux server
//! never see or touch each other's sessions, and reaping ended sessions holds the store's lock
//! only briefly (as the store measures it).

use hydra_e2e::{wait_for, Project};
use hydra_orchestrator::{Multiplexer, SessionState};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

const HYDRA: &str = env!("CARGO_BIN_EXE_hydra-under-test");

fn hydra(root: &Path, socket: &str, args: &[&str]) -> Output {
    Command::new(HYDRA)
        .args(args)
        .arg("--project")
        .arg(root)
        .args(["--tmux-socket", socket])
        .env_remove("HYDRA_TMUX_SOCKET")
        // No spawn starts the project's monitor behind the test's back.
        .env("HYDRA_NO_MONITOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("hydra runs")
}

fn ok(root: &Path, socket: &str, args: &[&str]) -> String {
    let out = hydra(root, socket, args);
    assert!(
        out.status.success(),
        "hydra {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ls_ids(root: &Path, socket: &str) -> Vec<(String, String)> {
    let v: serde_json::Value = serde_json::from_str(&ok(root, socket, &["ls", "--json"])).expect("json");
    v.as_array()
        .expect("array")
        .iter()
        .map(|s| {
            (
                s["id"].as_str().expect("id").to_owned(),
                s["state"].as_str().expect("state").to_owned(),
            )
        })
        .collect()
}

/// Regression: of 30 sessions that `spawn` reported started, 5 ended up absent, marked Failed
/// by a refresh that took its snapshot before the spawn saved its record, then pruned.
#[test]
fn thirty_spawns_survive_looping_ls_and_prune_in_other_processes() {
    let p = Project::new();
    let agent = p.agent("sleeper.sh", "cat > /dev/null; echo working; exec sleep 600");
    let agent = agent.to_str().expect("utf8").to_owned();
    let stop = AtomicBool::new(false);
    let rounds = AtomicUsize::new(0);
    let spawned: Vec<String> = std::thread::scope(|s| {
        for args in [&["ls", "--json"][..], &["prune"][..]] {
            let (stop, rounds, p) = (&stop, &rounds, &p);
            s.spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let out = hydra(&p.root, &p.socket, args);
                    assert!(
                        out.status.success(),
                        "{args:?}: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                    rounds.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        let ids = (0..30)
            .map(|_| {
                let prd = p.prd();
                let prd = prd.to_str().expect("utf8");
                ok(&p.root, &p.socket, &["spawn", "--agent", &agent, "--prd", prd])
                    .trim()
                    .to_owned()
            })
            .collect();
        stop.store(true, Ordering::SeqCst);
        ids
    });
    println!("30 spawns raced {} ls/prune runs", rounds.load(Ordering::SeqCst));
    assert!(rounds.load(Ordering::SeqCst) >= 10, "the other processes hardly ran");
    let listed = wait_for(30, "every session running", || {
        let listed = ls_ids(&p.root, &p.socket);
        spawned
            .iter()
            .all(|id| listed.iter().any(|(l, st)| l == id && st == "running"))
            .then_some(listed)
    });
    let absent: Vec<_> = spawned
        .iter()
        .filter(|id| !listed.iter().any(|(l, _)| l == *id))
        .collect();
    assert!(absent.is_empty(), "absent: {absent:?}");
    let snapshot = p.tmux().snapshot().expect("snapshot");
    for id in &spawned {
        let pane = snapshot.get(&format!("hydralph-{id}")).expect("pane alive");
        assert!(!pane.dead, "{id}'s agent died");
    }
}

/// Regression: `hydra prune` (or `ls`, `monitor`) in project B ended the live agents of
/// project A on the same tmux server: every `hydralph-*` session without a record in B was an
/// "orphan".
#[test]
fn two_projects_on_one_tmux_server_never_touch_each_other() {
    let a = Project::new();
    let b = Project::new();
    let agent = a.agent("sleeper.sh", "cat > /dev/null; echo working; exec sleep 600");
    let agent = agent.to_str().expect("utf8").to_owned();
    let id = ok(&a.root, &a.socket, &["spawn", "--agent", &agent, "--prd", "prd.json"])
        .trim()
        .to_owned();
    // B uses A's tmux server.
    let server = a.socket.as_str();
    for args in [
        &["ls"][..],
        &["ls", "--json"],
        &["prune"],
        &["monitor", "--once"],
        &["prune", "--force"],
    ] {
        let out = hydra(&b.root, server, args);
        assert!(
            out.status.success(),
            "B {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!text.contains(&id), "B {args:?} showed A's session: {text}");
    }
    let snapshot = a.tmux().snapshot().expect("snapshot");
    let pane = snapshot
        .get(&format!("hydralph-{id}"))
        .expect("A's session still exists");
    assert!(!pane.dead);
    let listed = ls_ids(&a.root, &a.socket);
    assert!(listed.iter().any(|(l, st)| *l == id && st != "failed"), "{listed:?}");
}

/// Regression: one `ls` that reaped a few sessions blocked every other command for seconds,
/// because ending processes (polling `ps` up to 1 s each) and git ran inside the lock.
#[test]
fn one_ls_reaping_twenty_ended_sessions_holds_the_lock_briefly() {
    let p = Project::new();
    // Each agent ends at once; its loop reports complete and exits, leaving a dead pane.
    let agent = p.agent("done.sh", "cat > /dev/null; echo '<promise>COMPLETE</promise>'");
    let orch = p.orch();
    let ids: Vec<_> = (0..20).map(|_| orch.spawn(p.config(&agent)).expect("spawn")).collect();
    wait_for(30, "twenty dead panes", || {
        let snap = p.tmux().snapshot().ok()?;
        ids.iter()
            .all(|id| snap.get(&id.tmux_name()).is_some_and(|pane| pane.dead))
            .then_some(())
    });
    let reaper = hydra_orchestrator::Builder::from_env()
        .project(&p.root)
        .tmux_socket(p.socket.clone())
        .build()
        .expect("orchestrator");
    let before = reaper.lock_stats();
    let statuses = reaper.refresh().expect("refresh");
    let stats = reaper.lock_stats();
    assert!(statuses
        .iter()
        .all(|s| matches!(s.state, SessionState::Completed { .. })));
    assert!(
        p.tmux().snapshot().expect("snapshot").sessions().is_empty(),
        "the dead panes were reaped"
    );
    assert!(
        stats.acquisitions >= before.acquisitions + 21,
        "one transaction plus one finalization per session"
    );
    println!("longest lock hold while reaping 20 sessions: {:?}", stats.longest_hold);
    assert!(
        stats.longest_hold < Duration::from_millis(250),
        "the lock was held for {:?}",
        stats.longest_hold
    );
}
