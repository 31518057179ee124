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
}

/// The signals the facade sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sig {
    /// SIGSTOP: freeze.
    Stop,
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
            Sig::Stop => kill_process_group(pid, Signal::STOP),
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
}

/// Signals that go nowhere, for an orchestrator driven with fake ports (fake pids).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoSignals;

impl Signals for NoSignals {
    fn signal_group(&self, _pgid: u32, _signal: Sig) -> std::io::Result<bool> {
        Ok(false)
    }
}
