//! Small adapters the facade needs beside the ports: the system clock, and the bus of a
//! project whose events go nowhere (standalone, or hydra-mail configured but down).

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

/// The bus of a standalone orchestrator: events go nowhere. When hydra-mail is configured but
/// cannot be reached it says so through [`EventBus::delivery_problem`].
#[derive(Debug, Default, Clone)]
pub struct NoopBus {
    problem: Option<String>,
}

impl NoopBus {
    /// A bus for a project without hydra-mail: nothing to say.
    pub fn new() -> Self {
        NoopBus::default()
    }

    /// A bus for a project whose hydra-mail cannot be reached, for the reason `why`.
    pub fn down(why: impl Into<String>) -> Self {
        NoopBus {
            problem: Some(why.into()),
        }
    }
}

impl EventBus for NoopBus {
    fn publish(&self, _event: &LifecycleEvent) -> Result<(), BusError> {
        Ok(())
    }
    fn flush(&self, _timeout: Duration) -> Result<(), BusError> {
        Ok(())
    }
    fn subscribe(&self, _channels: &[&str]) -> Result<Box<dyn Subscription>, BusError> {
        Err(BusError::Standalone {
            why: self
                .problem
                .clone()
                .unwrap_or_else(|| "this orchestrator has no hydra-mail connection".into()),
        })
    }
    fn delivery_problem(&self) -> Option<String> {
        self.problem.clone()
    }
}
