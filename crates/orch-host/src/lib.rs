//! `orch-host` implements `orch_core`'s [`Host`] port on a POSIX system: programs are found on
//! the `PATH` the adapter was given (never read from the environment behind the caller's back),
//! directories are canonicalized, and a pane's process group is frozen, thawed and ended with
//! `kill(2)`. Members of a group are found with POSIX `ps -A -o pid= -o pgid= -o stat=`, or
//! `/proc` where `ps` is missing, so the main path works on Linux and macOS alike.

use orch_core::{Host, HostError, Sig};
use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The POSIX host.
#[derive(Debug, Clone, Default)]
pub struct PosixHost {
    path_var: Option<OsString>,
    cwd: Option<PathBuf>,
}

impl PosixHost {
    /// A host that finds programs on `path_var` (the value of `PATH`; none: only paths with a
    /// `/` are found) and resolves relative program paths against `cwd`.
    pub fn new(path_var: Option<OsString>, cwd: Option<PathBuf>) -> Self {
        PosixHost { path_var, cwd }
    }

    /// `(pid, pgid, zombie)` of every process.
    fn table() -> std::io::Result<Vec<(u32, u32, bool)>> {
        let text = match std::process::Command::new("ps")
            .args(["-A", "-o", "pid=", "-o", "pgid=", "-o", "stat="])
            .stdin(std::process::Stdio::null())
            .output()
        {
            Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
            _ => proc_table()?,
        };
        Ok(parse_table(&text))
    }
}

/// Parses `pid pgid stat` lines; a state starting with `Z` is a zombie.
fn parse_table(text: &str) -> Vec<(u32, u32, bool)> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let pid = f.next()?.parse().ok()?;
            let pgid = f.next()?.parse().ok()?;
            let zombie = f.next().is_some_and(|s| s.starts_with('Z'));
            Some((pid, pgid, zombie))
        })
        .collect()
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

fn pid_of(n: u32) -> Option<rustix::process::Pid> {
    // Never 0 (our own group) or 1 (init; as a group, "all processes").
    i32::try_from(n)
        .ok()
        .filter(|&n| n > 1)
        .and_then(rustix::process::Pid::from_raw)
}

fn is_exec(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

impl Host for PosixHost {
    fn find_program(&self, program: &str) -> Option<PathBuf> {
        if program.is_empty() {
            return None;
        }
        if program.contains('/') {
            let p = Path::new(program);
            let p = if p.is_absolute() {
                p.to_path_buf()
            } else {
                self.cwd.as_ref()?.join(p)
            };
            return is_exec(&p).then_some(p);
        }
        std::env::split_paths(self.path_var.as_ref()?)
            .filter(|d| d.is_absolute())
            .map(|d| d.join(program))
            .find(|p| is_exec(p))
    }

    fn canonical_dir(&self, path: &Path) -> Result<PathBuf, HostError> {
        let io = |source| HostError::Io {
            op: "open directory",
            target: path.display().to_string(),
            source,
        };
        let canonical = path.canonicalize().map_err(io)?;
        if !canonical.is_dir() {
            return Err(io(std::io::Error::other("not a directory")));
        }
        Ok(canonical)
    }

    fn signal_group(&self, pgid: u32, signal: Sig) -> Result<bool, HostError> {
        use rustix::process::{kill_process_group, Signal};
        let Some(pid) = pid_of(pgid) else {
            return Ok(false);
        };
        let sig = match signal {
            Sig::Cont => Signal::CONT,
            Sig::Term => Signal::TERM,
            _ => Signal::KILL,
        };
        match kill_process_group(pid, sig) {
            Ok(()) => Ok(true),
            Err(rustix::io::Errno::SRCH) => Ok(false),
            Err(e) => Err(HostError::Io {
                op: "signal process group",
                target: pgid.to_string(),
                source: e.into(),
            }),
        }
    }

    fn stop_group_members(&self, pgid: u32) -> Result<usize, HostError> {
        use rustix::process::{kill_process, Signal};
        let mut stopped = Vec::new();
        // Twice: a process forked while the first pass ran is caught by the second.
        for _ in 0..2 {
            let table = Self::table().map_err(|source| HostError::Io {
                op: "list the processes of group",
                target: pgid.to_string(),
                source,
            })?;
            for (pid, _, _) in table.into_iter().filter(|&(p, g, z)| g == pgid && p != pgid && !z) {
                if !stopped.contains(&pid) && pid_of(pid).is_some_and(|p| kill_process(p, Signal::STOP).is_ok()) {
                    stopped.push(pid);
                }
            }
        }
        Ok(stopped.len())
    }

    fn group_alive(&self, pgid: u32) -> bool {
        let Some(pid) = pid_of(pgid) else {
            return false;
        };
        if rustix::process::test_kill_process_group(pid).is_err() {
            return false;
        }
        // A group of zombies (exited, not yet reaped) answers kill(0) but holds nothing.
        Self::table().map_or(true, |t| t.iter().any(|&(_, g, zombie)| g == pgid && !zombie))
    }

    fn process_alive(&self, pid: u32) -> bool {
        pid_of(pid).is_some_and(|p| !matches!(rustix::process::test_kill_process(p), Err(rustix::io::Errno::SRCH)))
    }

    fn pid(&self) -> u32 {
        std::process::id()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::time::{Duration, Instant};

    #[test]
    fn ps_lines_parse() {
        assert_eq!(
            parse_table("  12  12 Ss\n 13 12 Z+\ngarbage\n"),
            [(12, 12, false), (13, 12, true)]
        );
    }

    #[test]
    fn programs_resolve_on_the_given_path_only() {
        let path = std::env::var_os("PATH");
        let host = PosixHost::new(path, Some(PathBuf::from("/")));
        assert!(host.find_program("sh").is_some());
        assert!(host.find_program("no-such-program-hydra").is_none());
        assert!(host.find_program("/bin/sh").is_some());
        assert!(host.find_program("bin/sh").is_some(), "relative to the given cwd");
        assert!(PosixHost::new(None, None).find_program("sh").is_none(), "no PATH given");
    }

    #[test]
    fn directories_canonicalize_and_files_are_refused() {
        let host = PosixHost::default();
        assert_eq!(
            host.canonical_dir(Path::new("/tmp/.")).expect("dir"),
            PathBuf::from("/tmp").canonicalize().expect("tmp")
        );
        assert!(host.canonical_dir(Path::new("/nonexistent/x")).is_err());
        assert!(host.canonical_dir(Path::new("/bin/sh")).is_err());
    }

    #[test]
    fn this_process_is_alive_and_init_is_never_signalled() {
        let host = PosixHost::default();
        assert!(host.process_alive(host.pid()));
        assert!(!host.signal_group(1, Sig::Cont).expect("refused quietly"));
        assert!(!host.signal_group(0, Sig::Kill).expect("refused quietly"));
    }

    /// Regression: every kill waited its full grace period because a group whose processes
    /// had exited but were not yet reaped (zombies) still answered `kill(-pgid, 0)`.
    #[test]
    fn regression_a_group_of_zombies_is_not_alive() {
        let mut child = std::process::Command::new("true")
            .process_group(0)
            .spawn()
            .expect("spawn");
        let pgid = child.id();
        let host = PosixHost::default();
        let deadline = Instant::now() + Duration::from_secs(10);
        while host.group_alive(pgid) {
            assert!(Instant::now() < deadline, "a zombie-only group counts as alive");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(host.process_alive(pgid), "still a zombie, so kill() sees it");
        child.wait().expect("reap");
        assert!(!host.group_alive(pgid));
    }

    #[test]
    fn a_running_group_is_alive_and_its_members_can_be_stopped() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 5 & wait"])
            .process_group(0)
            .spawn()
            .expect("spawn");
        let pgid = child.id();
        let host = PosixHost::default();
        assert!(host.group_alive(pgid));
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            host.stop_group_members(pgid).expect("stop") >= 1,
            "the sleep is stopped, the leader is not"
        );
        host.signal_group(pgid, Sig::Cont).expect("cont");
        host.signal_group(pgid, Sig::Kill).expect("kill");
        child.wait().expect("reap");
    }
}
