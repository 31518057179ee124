//! Reading a session's agent log.

use crate::error::{Error, Result};
use crate::orchestrator::Orchestrator;
use orch_core::SessionId;

/// How many lines of its pane a session of the original tool shows at most (tmux keeps
/// 2000 of history by default).
const MAX_PANE_LINES: usize = 10_000;

impl Orchestrator {
    /// The last `lines` lines of the agent's log, or `None` when the agent has printed
    /// nothing yet. A session of the original tool has no log file: its pane (history
    /// included) is read instead, while it exists.
    ///
    /// Errors: `Id`, `NotFound`, `Foreign` for a session of the original tool whose pane is
    /// gone or out of reach, `Mux`, `Runtime`.
    pub fn logs(&self, id: &SessionId, lines: usize) -> Result<Option<String>> {
        let rec = self.record(id)?;
        if !rec.is_foreign() {
            return Ok(self.runtime.log_tail(id, lines)?);
        }
        let gone = |why: &str| Error::Foreign {
            id: id.clone(),
            why: format!("it keeps no log file, and its pane {why}"),
        };
        let mux = self
            .muxes
            .get(self.server_of(&rec))
            .ok_or_else(|| gone("is on a tmux server that cannot be reached from here"))?;
        if mux.probe(&rec.tmux_session)?.is_none() {
            return Err(gone("has ended"));
        }
        let n = u32::try_from(lines.min(MAX_PANE_LINES)).unwrap_or(u32::MAX);
        let text = mux.capture(&rec.tmux_session, n)?;
        let text = text.trim_end_matches('\n');
        Ok((!text.trim().is_empty()).then(|| text.to_owned()))
    }
}
