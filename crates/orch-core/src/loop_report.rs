//! The agent loop's `status.json` (hydralph's contract, CONTRACTS.md), parsed from bytes: the
//! loop's *report* of where it is.

use crate::state::Event;
use serde::{Deserialize, Serialize};

/// The `status` field of the loop's `status.json`: the phase the loop is in.
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
    /// The loop used its last iteration (or its cost limit).
    MaxIterations,
    /// The agent hit a usage limit; the loop waits for its reset before the same iteration.
    Waiting,
}

/// One `status.json` as written by the loop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LoopReport {
    /// The session id the loop was started for.
    #[serde(default)]
    pub session: Option<String>,
    /// The loop's phase (hydralph's `status` field).
    #[serde(rename = "status")]
    pub phase: LoopPhase,
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
    /// Which start of the loop wrote this (our loop counts its restarts; hydralph has none).
    /// A report of an earlier run is stale.
    #[serde(default)]
    pub run: Option<u32>,
    /// While waiting: when the wait ends (seconds since the epoch).
    #[serde(default)]
    pub until: Option<u64>,
    /// The cost the agent reported so far, in USD, as decimal text.
    #[serde(default)]
    pub cost: Option<String>,
    /// The tokens the agent reported so far.
    #[serde(default)]
    pub tokens: Option<u64>,
}

impl LoopReport {
    /// A report in `phase` at `iteration` (the other fields empty).
    pub fn new(phase: LoopPhase, iteration: u32) -> Self {
        LoopReport {
            session: None,
            phase,
            iteration,
            max: 0,
            stories: None,
            reason: None,
            run: None,
            until: None,
            cost: None,
            tokens: None,
        }
    }

    /// Parses the bytes of a `status.json`; the error says what is wrong.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("status.json does not parse: {e}"))
    }

    /// The lifecycle event this report stands for, if it stands for one.
    ///
    /// `started` and `paused` report nothing: the first is the state `Starting` already, and
    /// the second is the echo of our own `pause`; `waiting` is a wait inside a running state.
    pub fn event(&self) -> Option<Event> {
        match self.phase {
            LoopPhase::Started | LoopPhase::Paused | LoopPhase::Waiting => None,
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
                    .filter(|r| !r.trim().is_empty())
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
        let s = LoopReport::parse(br#"{"session":"a1","status":"running","iteration":12,"max":50,"stories":"2/5"}"#)
            .expect("parses");
        assert_eq!(s.phase, LoopPhase::Running);
        assert_eq!(s.run, None);
        assert_eq!(
            s.event(),
            Some(Event::LoopRunning {
                iteration: 12,
                stories: Some("2/5".into())
            })
        );
        let b = LoopReport::parse(br#"{"status":"blocked","iteration":2,"max":5,"reason":"needs a key","run":3}"#)
            .expect("parses");
        assert_eq!(b.run, Some(3));
        assert_eq!(
            b.event(),
            Some(Event::LoopBlocked {
                iteration: 2,
                reason: "needs a key".into()
            })
        );
        let m = LoopReport::parse(br#"{"status":"max-iterations","iteration":5,"max":5}"#).expect("parses");
        assert_eq!(m.event(), Some(Event::LoopMaxIterations { iterations: 5 }));
    }

    #[test]
    fn the_seed_runtime_status_parses() {
        let s =
            LoopReport::parse(br#"{"status":"running","iteration":12,"max":50,"stories":"Implementing feature X"}"#)
                .expect("parses");
        assert_eq!(s.iteration, 12);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(LoopReport::parse(b"{\"status\":\"dancing\"}").is_err());
        assert!(LoopReport::parse(b"").is_err());
    }
}
