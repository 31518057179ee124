//! The agent loop's `status.json` (hydralph's contract, CONTRACTS.md), parsed from bytes.

use crate::state::Event;
use serde::{Deserialize, Serialize};

/// The `status` field of the loop's `status.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LoopPhase {
    /// The loop started and has not begun an iteration.
    Started,
    /// The loop is in an iteration.
    Running,
    /// The loop waits on its pause marker.
    Paused,
    /// The agent printed `<promise>COMPLETE</promise>`.
    Complete,
    /// The agent printed `<promise>BLOCKED</promise>`.
    Blocked,
    /// The loop used its last iteration.
    MaxIterations,
}

/// One `status.json` as written by the loop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoopStatus {
    /// The session id the loop was started for.
    #[serde(default)]
    pub session: Option<String>,
    /// The loop's phase.
    pub status: LoopPhase,
    /// Current (or last) iteration.
    #[serde(default)]
    pub iteration: u32,
    /// The loop's iteration limit.
    #[serde(default)]
    pub max: u32,
    /// Stories done, `"done/total"`.
    #[serde(default)]
    pub stories: Option<String>,
    /// Why the loop blocked, when it knows.
    #[serde(default)]
    pub reason: Option<String>,
}

impl LoopStatus {
    /// Parses the bytes of a `status.json`; the error says what is wrong.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("status.json does not parse: {e}"))
    }

    /// The lifecycle event this status reports, if it reports one.
    ///
    /// `started` and `paused` report nothing: the first is the state `Starting` already, and
    /// the second is the echo of our own `pause`.
    pub fn event(&self) -> Option<Event> {
        match self.status {
            LoopPhase::Started | LoopPhase::Paused => None,
            LoopPhase::Running => Some(Event::LoopRunning {
                iteration: self.iteration,
                stories: self.stories.clone(),
            }),
            LoopPhase::Complete => Some(Event::LoopCompleted {
                iterations: self.iteration,
            }),
            LoopPhase::Blocked => Some(Event::LoopBlocked {
                iteration: self.iteration,
                reason: self
                    .reason
                    .clone()
                    .unwrap_or_else(|| "agent reported BLOCKED".to_owned()),
            }),
            LoopPhase::MaxIterations => Some(Event::LoopMaxIterations {
                iterations: self.iteration,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hydralph_status() {
        let s = LoopStatus::parse(br#"{"session":"a1","status":"running","iteration":12,"max":50,"stories":"2/5"}"#)
            .expect("parses");
        assert_eq!(s.status, LoopPhase::Running);
        assert_eq!(
            s.event(),
            Some(Event::LoopRunning {
                iteration: 12,
                stories: Some("2/5".into())
            })
        );
        let b = LoopStatus::parse(br#"{"status":"blocked","iteration":2,"max":5}"#).expect("parses");
        assert!(matches!(b.event(), Some(Event::LoopBlocked { iteration: 2, .. })));
        let m = LoopStatus::parse(br#"{"status":"max-iterations","iteration":5,"max":5}"#).expect("parses");
        assert_eq!(m.event(), Some(Event::LoopMaxIterations { iterations: 5 }));
    }

    #[test]
    fn the_seed_runtime_status_parses() {
        let s =
            LoopStatus::parse(br#"{"status":"running","iteration":12,"max":50,"stories":"Implementing feature X"}"#)
                .expect("parses");
        assert_eq!(s.iteration, 12);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(LoopStatus::parse(b"{\"status\":\"dancing\"}").is_err());
        assert!(LoopStatus::parse(b"").is_err());
    }
}
