//! Reading a session's agent log.

use crate::error::Result;
use crate::orchestrator::Orchestrator;
use orch_core::SessionId;

impl Orchestrator {
    /// The last `lines` lines of the agent's log, or `None` when the agent has printed
    /// nothing yet.
    ///
    /// Errors: `Id`, `NotFound`, `Foreign` for a session of the original tool (no log of its
    /// own), `Runtime`.
    pub fn logs(&self, id: &SessionId, lines: usize) -> Result<Option<String>> {
        let rec = self.record(id)?;
        if rec.is_foreign() {
            self.refuse_foreign(&rec, "read a log")?;
        }
        Ok(self.runtime.log_tail(id, lines)?)
    }
}
