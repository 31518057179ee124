//! Sample sessions for the dashboard's tests and its benchmark (no project needed).

use hydra_orchestrator::{SessionConfig, SessionId, SessionRecord, SessionState, SessionStatus, Timestamp};
use std::path::PathBuf;
use std::time::Duration;

/// How old every sample session is when it is looked at.
const AGE: u64 = 960;

/// A record of session `id` in `state`, created at second `created`.
fn record(id: &str, state: SessionState, created: u64) -> SessionRecord {
    let config = SessionConfig {
        agent_cli: "claude".into(),
        working_dir: PathBuf::from("/work/app"),
        max_iterations: 10,
        max_duration: Duration::from_secs(4 * 3600),
        ..SessionConfig::default()
    };
    let mut r = SessionRecord::new(SessionId(id.to_owned()), &config, Timestamp::from_secs(created));
    r.state = state;
    r.iteration = 1;
    r.stories = Some("0/3".into());
    r
}

fn seen(r: &SessionRecord) -> SessionStatus {
    SessionStatus::from_record(r, r.created().plus(Duration::from_secs(AGE)))
}

/// A session `id` in `state`, created at second `created`, seen 16 minutes later.
pub fn status(id: &str, state: SessionState, created: u64) -> SessionStatus {
    seen(&record(id, state, created))
}

/// Six sessions in six states, as seen at second 1,000 (each created 16 minutes before).
pub fn sample() -> Vec<SessionStatus> {
    let at = Timestamp::from_secs;
    let running = SessionState::Running {
        iteration: 3,
        stories: Some("2/3".into()),
    };
    let mut r = record("r0000001", running, 40);
    r.iteration = 3;
    r.stories = Some("2/3".into());
    r.last_activity = at(1000);
    let blocked = SessionState::Blocked {
        iteration: 2,
        reason: "needs the STAGING key".into(),
    };
    let mut b = record("b0000002", blocked, 40);
    b.name = Some("api".into());
    b.iteration = 2;
    b.stories = Some("1/3".into());
    b.last_activity = at(940);
    b.last_transition = at(990);
    let stuck = SessionState::Stuck {
        since: at(900),
        last_iteration: 4,
    };
    let mut s = record("s0000003", stuck, 40);
    s.iteration = 4;
    s.stories = Some("2/3".into());
    s.branch_name = Some("hydralph/s0000003".into());
    s.allocated_port = Some(3001);
    s.last_activity = at(40);
    s.last_transition = at(900);
    let paused = SessionState::Paused {
        iteration: 1,
        stories: Some("0/3".into()),
    };
    let mut p = record("p0000004", paused, 40);
    p.frozen = true;
    p.max_iterations = 5;
    p.last_activity = at(820);
    let failed = SessionState::Failed {
        reason: "killed by hand".into(),
    };
    let mut f = record("f0000005", failed, 40);
    f.ended_at = Some(at(1000));
    f.last_transition = at(950);
    let mut c = record("c0000006", SessionState::Completed { iterations: 3 }, 40);
    c.iteration = 3;
    c.stories = Some("3/3".into());
    c.ended_at = Some(at(1000));
    [r, b, s, p, f, c].iter().map(seen).collect()
}
