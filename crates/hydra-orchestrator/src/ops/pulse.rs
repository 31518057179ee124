//! Feeding `ralph:*` pulses from hydra-mail into session states. The loop's own report is the
//! truth about a loop; a pulse only hastens it, and only when it is newer than the record's
//! last transition and does not move the iteration backwards, so hydra-mail's replay of old
//! pulses (to a restarted monitor) changes nothing.

use crate::error::{Error, Result};
use crate::orchestrator::Orchestrator;
use crate::txn::Scope;
use orch_core::Pulse;

impl Orchestrator {
    /// Applies a `ralph:*` pulse to its session when it is fresh. Returns whether the session
    /// changed.
    ///
    /// Errors: `Mux`, `Store`, `ReadOnly`; a pulse for no session of this project is `Ok(false)`.
    pub fn apply_pulse(&self, pulse: &Pulse) -> Result<bool> {
        let (Some(id), Some(report)) = (pulse.session(), pulse.loop_report()) else {
            return Ok(false);
        };
        let Some(at) = pulse.at() else {
            // A pulse that cannot say when it was sent cannot be shown to be fresh.
            return Ok(false);
        };
        let applied = self.transact(Scope::One(&id), |txn| {
            let rec = txn.the_record();
            // What tmux and the loop's own report say comes first.
            let mut rec = txn.assess(&rec)?;
            if at <= rec.last_transition || report.run.is_some_and(|r| r < rec.run) {
                return Ok(false);
            }
            let mut events = Vec::new();
            for event in orch_core::progress_events(&rec.state, rec.iteration, &report) {
                if let Ok(ev) = rec.transition(&event, txn.now) {
                    events.push(ev);
                }
            }
            if events.is_empty() {
                return Ok(false);
            }
            txn.save(&mut rec)?;
            for ev in events {
                txn.emit(ev);
            }
            Ok(true)
        });
        match applied {
            Err(Error::NotFound(_)) => Ok(false),
            other => other,
        }
    }
}
