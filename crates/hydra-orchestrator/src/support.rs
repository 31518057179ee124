//! Small adapters the facade needs beside the ports: the system clock, a bus that delivers
//! nothing, and process-group signals for freeze and kill.

use orch_core::{BusError, Clock, EventBus, LifecycleEvent, Subscription, Timestamp};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        Timestamp(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

/// The bus of a standalone orchestrator: events go nowhere.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopBus;

impl EventBus for NoopBus {
    fn publish(&self, _event: &LifecycleEvent) -> Result<(), BusError> {
        Ok(())
    }
    fn flush(&self, _timeout: Duration) -> Result<(), BusError> {
        Ok(())
    }
    fn subscribe(&self, _channels: &[&str]) -> Result<Box<dyn Subscription>, BusError> {
        Err(BusError::Standalone {
            why: "this orchestrator has no hydra-mail connection".into(),
        })
    }
}

/// Signals to a pane's process group (freeze, thaw, terminate).
pub trait Signals: Send + Sync {
    /// Sends `signal` to the process group `pgid`; `Ok(false)` when the group is gone.
    fn signal_group(&self, pgid: u32, signal: Sig) -> std::io::Result<bool>;

    /// Stops (SIGSTOP) every process of group `pgid` except its leader, the pane's own
    /// process; returns how many were stopped.
    ///
    /// tmux continues a pane process that stops (it sends SIGCONT to the pane's group when its
    /// child stops), so a freeze must leave the leader — the loop, which only waits — running.
    fn stop_group_members(&self, pgid: u32) -> std::io::Result<usize>;

    /// Whether group `pgid` still has a process that is not a zombie (an exited process
    /// that no one has reaped yet holds no resources and ignores signals).
    fn group_alive(&self, pgid: u32) -> bool;
}

/// The signals the facade sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sig {
    /// SIGCONT: thaw.
    Cont,
    /// SIGTERM: ask to end.
    Term,
    /// SIGKILL: end.
    Kill,
    /// Signal 0: is the group still there?
    Probe,
}

/// POSIX process-group signals (`kill(-pgid, sig)`).
#[derive(Debug, Default, Clone, Copy)]
pub struct PosixSignals;

impl Signals for PosixSignals {
    fn signal_group(&self, pgid: u32, signal: Sig) -> std::io::Result<bool> {
        use rustix::process::{kill_process_group, test_kill_process_group, Pid, Signal};
        let Some(pid) = i32::try_from(pgid).ok().and_then(Pid::from_raw) else {
            return Ok(false);
        };
        if pid.as_raw_nonzero().get() <= 1 {
            return Ok(false); // never signal init's group or "all processes"
        }
        let result = match signal {
            Sig::Probe => test_kill_process_group(pid),
            Sig::Cont => kill_process_group(pid, Signal::CONT),
            Sig::Term => kill_process_group(pid, Signal::TERM),
            Sig::Kill => kill_process_group(pid, Signal::KILL),
        };
        match result {
            Ok(()) => Ok(true),
            Err(rustix::io::Errno::SRCH) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    fn stop_group_members(&self, pgid: u32) -> std::io::Result<usize> {
        use rustix::process::{kill_process, Pid, Signal};
        let mut stopped = Vec::new();
        // Twice: a process forked while the first pass ran is caught by the second.
        for _ in 0..2 {
            let members = Self::table()?
                .into_iter()
                .filter(|&(pid, g, zombie)| g == pgid && pid != pgid && !zombie);
            for (pid, _, _) in members {
                if stopped.contains(&pid) {
                    continue;
                }
                if let Some(p) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
                    if kill_process(p, Signal::STOP).is_ok() {
                        stopped.push(pid);
                    }
                }
            }
        }
        Ok(stopped.len())
    }

    fn group_alive(&self, pgid: u32) -> bool {
        if !self.signal_group(pgid, Sig::Probe).unwrap_or(false) {
            return false;
        }
        Self::table().map_or(true, |t| t.iter().any(|&(_, g, zombie)| g == pgid && !zombie))
    }
}

impl PosixSignals {
    /// `(pid, pgid, zombie)` of every process: POSIX `ps -A -o pid= -o pgid= -o stat=`, or
    /// `/proc` where `ps` is missing.
    fn table() -> std::io::Result<Vec<(u32, u32, bool)>> {
        let text = match std::process::Command::new("ps")
            .args(["-A", "-o", "pid=", "-o", "pgid=", "-o", "stat="])
            .output()
        {
            Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
            _ => proc_table()?,
        };
        Ok(text
            .lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                let pid = f.next()?.parse().ok()?;
                let pgid = f.next()?.parse().ok()?;
                let zombie = f.next().is_some_and(|s| s.starts_with('Z'));
                Some((pid, pgid, zombie))
            })
            .collect())
    }
}

/// `pid pgid state` lines read from `/proc/<pid>/stat` (the fallback when `ps` is missing).
fn proc_table() -> std::io::Result<String> {
    let mut out = String::new();
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // Fields after the command name (which may hold spaces, in parentheses): state ppid pgrp.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if let (Some(state), Some(pgid), Some(pid)) = (fields.first(), fields.get(2), entry.file_name().to_str()) {
            out.push_str(&format!("{pid} {pgid} {state}\n"));
        }
    }
    Ok(out)
}

/// Signals that go nowhere, for an orchestrator driven with fake ports (fake pids).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoSignals;

impl Signals for NoSignals {
    fn signal_group(&self, _pgid: u32, _signal: Sig) -> std::io::Result<bool> {
        Ok(false)
    }
    fn stop_group_members(&self, _pgid: u32) -> std::io::Result<usize> {
        Ok(0)
    }
    fn group_alive(&self, _pgid: u32) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    /// Regression: every kill waited its full grace period because a group whose processes
    /// had exited but were not yet reaped (zombies) still answered `kill(-pgid, 0)`.
    #[test]
    fn regression_a_group_of_zombies_is_not_alive() {
        let mut child = std::process::Command::new("true")
            .process_group(0)
            .spawn()
            .expect("spawn");
        let pgid = child.id();
        // Not reaped yet: a zombie of this test process.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while PosixSignals.group_alive(pgid) {
            assert!(
                std::time::Instant::now() < deadline,
                "a zombie-only group counts as alive"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            PosixSignals.signal_group(pgid, Sig::Probe).expect("probe"),
            "still a zombie, so kill() sees it"
        );
        child.wait().expect("reap");
        assert!(!PosixSignals.group_alive(pgid));
    }

    #[test]
    fn a_running_group_is_alive_and_its_members_can_be_stopped() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 5 & wait"])
            .process_group(0)
            .spawn()
            .expect("spawn");
        let pgid = child.id();
        assert!(PosixSignals.group_alive(pgid));
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            PosixSignals.stop_group_members(pgid).expect("stop") >= 1,
            "the sleep is stopped, the leader is not"
        );
        PosixSignals.signal_group(pgid, Sig::Cont).expect("cont");
        PosixSignals.signal_group(pgid, Sig::Kill).expect("kill");
        child.wait().expect("reap");
    }
}
