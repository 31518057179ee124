//! Lifecycle events as the orchestrator publishes them, their hydra-mail channels, and the
//! pulses that come back from the bus.

use crate::id::SessionId;
use crate::loop_report::LoopReport;
use crate::record::SessionRecord;
use crate::state::{Event, SessionState};
use crate::time::Timestamp;
use serde_json::{Map, Value};

/// A hydra-mail channel the orchestrator publishes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// `session:spawned` — a session was created.
    Spawned,
    /// `session:running` — the loop reported its first iteration.
    Running,
    /// `session:iteration` — the loop moved to another iteration.
    Iteration,
    /// `session:paused`.
    Paused,
    /// `session:resumed`.
    Resumed,
    /// `session:stuck` — no activity past the threshold (once per episode).
    Stuck,
    /// `session:unstuck` — activity after being stuck.
    Unstuck,
    /// `session:blocked` — the agent waits for a person.
    Blocked,
    /// `session:completed`.
    Completed,
    /// `session:max-iterations`.
    MaxIterations,
    /// `session:failed` — the tmux session or loop vanished.
    Failed,
    /// `session:killed` — killed by a person or by the duration limit.
    Killed,
    /// `session:injected` — a message was queued or typed for the agent.
    Injected,
    /// `sys:registry` — a session's worktree was created or removed, announced as hydra-wt
    /// announces its own (`worktree_created`, `worktree_removed`), for the tools that track
    /// worktrees and ports. Not a session channel: not in [`Channel::ALL`].
    Registry,
}

impl Channel {
    /// Every session channel, for subscribers and tests.
    pub const ALL: [Channel; 13] = [
        Channel::Spawned,
        Channel::Running,
        Channel::Iteration,
        Channel::Paused,
        Channel::Resumed,
        Channel::Stuck,
        Channel::Unstuck,
        Channel::Blocked,
        Channel::Completed,
        Channel::MaxIterations,
        Channel::Failed,
        Channel::Killed,
        Channel::Injected,
    ];

    /// The channel's name on the bus.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Spawned => "session:spawned",
            Channel::Running => "session:running",
            Channel::Iteration => "session:iteration",
            Channel::Paused => "session:paused",
            Channel::Resumed => "session:resumed",
            Channel::Stuck => "session:stuck",
            Channel::Unstuck => "session:unstuck",
            Channel::Blocked => "session:blocked",
            Channel::Completed => "session:completed",
            Channel::MaxIterations => "session:max-iterations",
            Channel::Failed => "session:failed",
            Channel::Killed => "session:killed",
            Channel::Injected => "session:injected",
            Channel::Registry => "sys:registry",
        }
    }

    /// The channel announcing the transition out of `from` caused by `event`.
    pub fn for_transition(from: &SessionState, event: &Event) -> Channel {
        match (from, event) {
            (_, Event::Pause) => Channel::Paused,
            (_, Event::Resume) => Channel::Resumed,
            (_, Event::Kill { .. } | Event::DurationExceeded { .. }) => Channel::Killed,
            (_, Event::Idle { .. }) => Channel::Stuck,
            (_, Event::Activity) | (SessionState::Stuck { .. }, Event::LoopRunning { .. }) => Channel::Unstuck,
            (SessionState::Starting, Event::LoopRunning { .. }) => Channel::Running,
            (_, Event::LoopRunning { .. }) => Channel::Iteration,
            (_, Event::LoopBlocked { .. }) => Channel::Blocked,
            (_, Event::LoopCompleted { .. }) => Channel::Completed,
            (_, Event::LoopMaxIterations { .. }) => Channel::MaxIterations,
            (_, Event::MuxGone { .. }) => Channel::Failed,
        }
    }
}

impl std::fmt::Display for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event to publish: a channel and its `data` object (with `session`, except on
/// `sys:registry`, whose pulses have hydra-wt's fields).
#[derive(Debug, Clone, PartialEq)]
pub struct LifecycleEvent {
    /// Where it goes.
    pub channel: Channel,
    /// The session it concerns.
    pub session: SessionId,
    /// When it happened.
    pub at: Timestamp,
    /// The pulse's `data`: `session` plus details such as `state`, `reason`, `iteration`.
    pub data: Map<String, Value>,
}

impl LifecycleEvent {
    /// An event on `channel` for `session`, with `data = {"session": id}`.
    pub fn new(channel: Channel, session: &SessionId, at: Timestamp) -> Self {
        let mut data = Map::new();
        data.insert("session".into(), Value::String(session.0.clone()));
        LifecycleEvent {
            channel,
            session: session.clone(),
            at,
            data,
        }
    }

    /// The `sys:registry` pulse of a new worktree, with hydra-wt's fields (`type`,
    /// `worktree` (the branch), `port`, `path`) and nothing else, so tools that read hydra-wt's
    /// pulses read ours.
    pub fn worktree_created(
        session: &SessionId,
        branch: &str,
        port: u16,
        path: &std::path::Path,
        at: Timestamp,
    ) -> Self {
        let mut data = Map::new();
        data.insert("type".into(), Value::from("worktree_created"));
        data.insert("worktree".into(), Value::from(branch));
        data.insert("port".into(), Value::from(port));
        data.insert("path".into(), Value::from(path.to_string_lossy().into_owned()));
        LifecycleEvent {
            channel: Channel::Registry,
            session: session.clone(),
            at,
            data,
        }
    }

    /// The `sys:registry` pulse of a removed worktree (its port freed), with hydra-wt's
    /// fields: `type` and `worktree` (the branch).
    pub fn worktree_removed(session: &SessionId, branch: &str, at: Timestamp) -> Self {
        let mut data = Map::new();
        data.insert("type".into(), Value::from("worktree_removed"));
        data.insert("worktree".into(), Value::from(branch));
        LifecycleEvent {
            channel: Channel::Registry,
            session: session.clone(),
            at,
            data,
        }
    }

    /// Adds a field to `data`.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.data.insert(key.to_owned(), value.into());
        self
    }

    /// The event announcing the transition of `record` out of `from` on `event` (the record
    /// already holds the new state): the new state's details, the iteration and story count
    /// the record keeps, and the session's name when it has one.
    pub fn transition(record: &SessionRecord, from: &SessionState, event: &Event, at: Timestamp) -> Self {
        let to = &record.state;
        let mut ev = LifecycleEvent::new(Channel::for_transition(from, event), &record.id, at)
            .with("state", to.name())
            .with("from", from.name())
            .with("iteration", record.iteration);
        if let Some(reason) = to.reason() {
            ev = ev.with("reason", reason);
        }
        if let Some(stories) = &record.stories {
            ev = ev.with("stories", stories.as_str());
        }
        if let Some(name) = &record.name {
            ev = ev.with("name", name.as_str());
        }
        ev
    }
}

/// A pulse received from the bus, decoded to JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Pulse {
    /// The pulse id.
    pub id: String,
    /// Its channel, e.g. `ralph:complete`.
    pub channel: String,
    /// Its `type`.
    pub kind: String,
    /// RFC 3339 timestamp as sent.
    pub timestamp: String,
    /// Its `data`.
    pub data: Value,
}

impl Pulse {
    /// The session id a `ralph:*` or `session:*` pulse names in `data.session`.
    pub fn session(&self) -> Option<SessionId> {
        let s = self.data.get("session")?.as_str()?;
        SessionId::parse(s).ok()
    }

    /// The loop report a `ralph:*` pulse carries (its `data` is the loop's status object).
    pub fn loop_report(&self) -> Option<LoopReport> {
        if !self.channel.starts_with("ralph:") {
            return None;
        }
        serde_json::from_value(self.data.clone()).ok()
    }

    /// When the pulse was sent, from its RFC 3339 `timestamp` (`None` when it has none that
    /// parses: such a pulse cannot be shown to be fresh).
    pub fn at(&self) -> Option<Timestamp> {
        Timestamp::parse_rfc3339(&self.timestamp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loop_report::LoopPhase;

    #[test]
    fn seed_channels_are_named_as_the_seed_says() {
        let names: Vec<_> = Channel::ALL.iter().map(|c| c.as_str()).collect();
        for seed in [
            "session:spawned",
            "session:paused",
            "session:resumed",
            "session:stuck",
            "session:killed",
            "session:injected",
        ] {
            assert!(names.contains(&seed), "{seed}");
        }
    }

    #[test]
    fn transitions_map_to_channels() {
        let run = SessionState::Running {
            iteration: 1,
            stories: None,
        };
        let stuck = SessionState::Stuck {
            since: Timestamp(1),
            last_iteration: 1,
        };
        assert_eq!(
            Channel::for_transition(
                &stuck,
                &Event::LoopRunning {
                    iteration: 2,
                    stories: None
                }
            ),
            Channel::Unstuck
        );
        assert_eq!(
            Channel::for_transition(
                &run,
                &Event::Idle {
                    last_activity: Timestamp(0),
                    stuck_after: std::time::Duration::ZERO
                }
            ),
            Channel::Stuck
        );
        assert_eq!(
            Channel::for_transition(
                &SessionState::Starting,
                &Event::LoopRunning {
                    iteration: 1,
                    stories: None
                }
            ),
            Channel::Running
        );
        assert_eq!(
            Channel::for_transition(&run, &Event::Kill { reason: "x".into() }),
            Channel::Killed
        );
        let mut rec = crate::SessionRecord::new(SessionId("ab".into()), &crate::SessionConfig::default(), Timestamp(1));
        rec.state = run.clone();
        let ev = rec
            .transition(&Event::MuxGone { reason: "gone".into() }, Timestamp(5))
            .expect("fails");
        assert_eq!(ev.channel, Channel::Failed);
        assert_eq!(ev.data["session"], "ab");
        assert_eq!(ev.data["reason"], "gone");
    }

    #[test]
    fn ralph_pulse_carries_loop_status() {
        let p = Pulse {
            id: "x".into(),
            channel: "ralph:complete".into(),
            kind: "status".into(),
            timestamp: "2026-11-24T05:47:25.871368348Z".into(),
            data: serde_json::json!({"session": "ab12", "status": "complete", "iteration": 4, "max": 10, "stories": "3/3"}),
        };
        assert_eq!(p.session(), Some(SessionId("ab12".into())));
        assert_eq!(p.loop_report().map(|s| s.phase), Some(LoopPhase::Complete));
        assert_eq!(p.at(), Some(Timestamp(1_795_499_245_871)));
    }
}
