//! `orch-host` implements `orch_core`'s [`Host`] port on a POSIX system: programs are found on
//! the `PATH` the adapter was given (never read from the environment behind the caller's back),
//! directories are canonicalized, and a pane's process group is frozen, thawed and ended with
//! `kill(2)`. Members of a group are found with POSIX `ps -A -o pid= -o pgid= -o stat=`, or
//! `/proc` where `ps` is missing, so the main path works on Linux and macOS alike. On Linux a
//! process's start time and state are read from `/proc/<pid>/stat`, which lets the facade
//! probe one session's pane without a tmux call; elsewhere that answer is "unknown" and tmux
//! is asked.

use orch_core::{Host, HostError, ProcessInfo, Sig};
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

    /// The CPU time process `pid` has used, all its threads together (`utime` + `stime` of
    /// `/proc/<pid>/stat`, in clock ticks); `None` where there is no `/proc`, or no such
    /// process. Whether a process does any work at all, without asking it.
    pub fn cpu_ticks(pid: u32) -> Option<u64> {
        parse_cpu_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
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
        let fields = stat_fields(&stat);
        if let (Some(state), Some(pgid), Some(pid)) = (fields.first(), fields.get(2), entry.file_name().to_str()) {
            out.push_str(&format!("{pid} {pgid} {state}\n"));
        }
    }
    Ok(out)
}

/// The fields of a `/proc/<pid>/stat` line after the command name, which may hold spaces
/// and parentheses itself: state, ppid, pgrp, ... (field 3 of proc(5) onwards).
fn stat_fields(stat: &str) -> Vec<&str> {
    stat.rfind(')')
        .map(|i| stat[i + 1..].split_whitespace().collect())
        .unwrap_or_default()
}

/// A process from its `/proc/<pid>/stat` line: its start time (field 22, clock ticks since
/// boot), whether it is a zombie (state `Z`) or dead (`X`), and whether it has a
/// controlling terminal (field 7, `tty_nr`, is 0 without one).
fn parse_stat(stat: &str) -> Option<ProcessInfo> {
    let fields = stat_fields(stat);
    let state = fields.first()?;
    let tty: i64 = fields.get(4)?.parse().ok()?;
    let start = fields.get(19)?.parse().ok()?;
    Some(ProcessInfo::new(start, state.starts_with(['Z', 'X']), tty != 0))
}

/// `utime` + `stime` (fields 14 and 15) of a `/proc/<pid>/stat` line.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let fields = stat_fields(stat);
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some(user + system)
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

    /// From `/proc/<pid>/stat` (one small read); `None` where there is no `/proc` (macOS),
    /// and the caller asks tmux instead.
    fn process_info(&self, pid: u32) -> Option<ProcessInfo> {
        if pid == 0 {
            return None;
        }
        parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
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
    fn stat_lines_parse_whatever_the_command_name_holds() {
        let line = |comm: &str, state: &str, tty: u32| {
            format!("4242 ({comm}) {state} 1 4242 4242 {tty} -1 4194560 100 0 0 0 3 1 0 0 20 0 1 0 987654 1000 200 18446744073709551615")
        };
        // (command name, state, tty_nr) -> (zombie, has a terminal), each as named.
        let cases = [
            ("bash", "S", 34817, (false, true), "a running pane program"),
            (
                "a b) (c",
                "R",
                34817,
                (false, true),
                "spaces and parentheses in the name",
            ),
            ("sh", "Z", 0, (true, false), "a zombie"),
            ("sh", "X", 0, (true, false), "a dead process"),
            (
                "bash",
                "S",
                0,
                (false, false),
                "no controlling terminal (a hung-up pane's program)",
            ),
        ];
        for (comm, state, tty, (zombie, terminal), what) in cases {
            assert_eq!(
                parse_stat(&line(comm, state, tty)),
                Some(ProcessInfo::new(987654, zombie, terminal)),
                "{what}"
            );
        }
        assert_eq!(parse_stat("4242 (sh) S 1 2"), None, "too short");
        assert_eq!(parse_stat("garbage"), None);
        // utime 3 + stime 1, whatever the name holds.
        assert_eq!(parse_cpu_ticks(&line("a b) (c", "R", 0)), Some(4));
        assert_eq!(parse_cpu_ticks("4242 (sh) S 1 2"), None, "too short");
    }

    #[test]
    fn a_busy_process_is_seen_to_use_cpu() {
        let me = std::process::id();
        let before = PosixHost::cpu_ticks(me).expect("this process, on Linux");
        let start = Instant::now();
        let mut spun = 0u64;
        while PosixHost::cpu_ticks(me) == Some(before) {
            assert!(start.elapsed() < Duration::from_secs(20), "no tick in 20 s of spinning");
            spun = spun.wrapping_add(std::hint::black_box(1));
        }
        assert!(PosixHost::cpu_ticks(me) > Some(before), "after {spun} turns");
        assert_eq!(PosixHost::cpu_ticks(u32::MAX), None, "no such process");
    }

    #[test]
    fn a_process_is_told_by_its_start_time_and_a_zombie_as_such() {
        let host = PosixHost::default();
        let me = host.process_info(host.pid()).expect("this process, on Linux");
        assert!(!me.zombie);
        assert_eq!(host.process_info(host.pid()), Some(me), "the same start every time");
        let mut child = std::process::Command::new("true").spawn().expect("spawn");
        let pid = child.id();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let info = host.process_info(pid).expect("unreaped, it is still listed");
            if info.zombie {
                break;
            }
            assert!(Instant::now() < deadline, "the child never became a zombie");
            std::thread::sleep(Duration::from_millis(5));
        }
        child.wait().expect("reap");
        assert_eq!(host.process_info(pid), None, "gone once reaped");
        assert_eq!(host.process_info(0), None);
        assert_eq!(host.process_info(1).map(|i| i.zombie), Some(false), "init runs");
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
