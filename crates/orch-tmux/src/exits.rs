//! Waiting for the first of some processes to end: the `tmux wait-for` client a watch runs,
//! or the process of one of the server's panes.
//!
//! Why the panes too: tmux before 3.6, built with utempter (Debian's 3.3a is), can lose the
//! SIGCHLD of a pane whose process ends, because utempter's helper runs with a SIGCHLD
//! handler of its own just as the pane's terminal closes. The pane then reads as dead, but its
//! `pane-died` hook never runs (measured here: about one kill in seven) and its exit status
//! stays unknown until the server reaps it (`Tmux::snapshot` makes it, see `settled`). The kernel still
//! tells us when the process ended: a pidfd (Linux 5.3) becomes readable then, whoever its
//! parent is. Elsewhere the hooks alone are used.

/// What ended first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum First {
    /// The `wait-for` client (a hook signalled, or the server went away).
    Waiter,
    /// The process of a pane.
    Pane(u32),
    /// This system cannot wait on other processes: wait on the client alone.
    Unsupported,
}

/// Blocks until `waiter` (a child of ours) or one of `panes` ends.
#[cfg(target_os = "linux")]
pub(crate) fn first(waiter: u32, panes: &[u32]) -> First {
    use rustix::event::{poll, PollFd, PollFlags};
    use rustix::fd::OwnedFd;
    use rustix::process::{pidfd_open, Pid, PidfdFlags};

    let open = |pid: u32| -> Option<OwnedFd> {
        let pid = Pid::from_raw(i32::try_from(pid).ok()?)?;
        pidfd_open(pid, PidfdFlags::empty()).ok()
    };
    let Some(waiter_fd) = open(waiter) else {
        return First::Unsupported;
    };
    // A pane whose process is already gone (reaped) cannot be opened: tmux knows of it.
    let pane_fds: Vec<(u32, OwnedFd)> = panes.iter().filter_map(|&p| Some((p, open(p)?))).collect();
    loop {
        let mut fds: Vec<PollFd<'_>> = std::iter::once(&waiter_fd)
            .chain(pane_fds.iter().map(|(_, fd)| fd))
            .map(|fd| PollFd::new(fd, PollFlags::IN))
            .collect();
        match poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return First::Unsupported,
        }
        if !fds[0].revents().is_empty() {
            return First::Waiter;
        }
        if let Some(i) = fds[1..].iter().position(|f| !f.revents().is_empty()) {
            return First::Pane(pane_fds[i].0);
        }
    }
}

/// Blocks until `waiter` or one of `panes` ends (not on this system: see the module).
#[cfg(not(target_os = "linux"))]
pub(crate) fn first(_waiter: u32, _panes: &[u32]) -> First {
    First::Unsupported
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn the_first_process_to_end_is_told() {
        let mut waiter = Command::new("sleep").arg("30").spawn().expect("sleep");
        let mut pane = Command::new("sleep").arg("0.05").spawn().expect("sleep");
        assert_eq!(first(waiter.id(), &[pane.id()]), First::Pane(pane.id()));
        // Not reaped yet (a zombie, as a pane tmux has not reaped): still told at once.
        assert_eq!(first(waiter.id(), &[pane.id()]), First::Pane(pane.id()));
        pane.wait().expect("reap");
        // Reaped: nothing to wait on but the waiter.
        waiter.kill().expect("kill");
        assert_eq!(first(waiter.id(), &[pane.id()]), First::Waiter);
        waiter.wait().expect("reap");
    }
}
