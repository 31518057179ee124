//! Usage-limit waits, cost and queued messages on fakes: a waiting session says until when, is
//! never stuck, does not use up its duration while it waits, and `resume` retries at once;
//! reported cost and tokens are kept; queued messages of a stopped session are counted.

mod support;

use hydra_orchestrator::{SessionConfig, SessionId, SessionState};
use orch_core::Clock;
use std::time::Duration;

const PROJECT: &str = "/waiting/project";

fn status(f: &support::Fakes, id: &SessionId) -> hydra_orchestrator::SessionStatus {
    f.orch().list().into_iter().find(|s| &s.id == id).expect("listed")
}

#[test]
fn a_waiting_session_is_not_stuck_keeps_its_duration_and_resume_retries() {
    let f = support::Fakes::new(PROJECT);
    let orch = f.orch();
    let id = orch
        .spawn(SessionConfig {
            stuck_after: Duration::from_secs(60),
            max_duration: Duration::from_secs(600),
            ..f.config()
        })
        .expect("spawn");
    let t0 = f.clock.now();
    f.runtime
        .report(&id, r#"{"status":"running","iteration":1,"max":10,"run":1}"#, t0);
    orch.list();
    let until = t0.as_secs() + 3600;
    f.runtime.report(
        &id,
        &format!(r#"{{"status":"waiting","iteration":1,"max":10,"run":1,"until":{until},"reason":"usage limit: hit your limit · resets 3pm","cost":"0.25","tokens":1200}}"#),
        t0,
    );
    let s = status(&f, &id);
    assert_eq!(s.state_word(), "waiting");
    assert_eq!(s.waiting.as_ref().map(|(u, _)| u.as_secs()), Some(until));
    assert_eq!((s.cost_micros, s.tokens), (Some(250_000), Some(1200)));
    // Silent for longer than stuck_after, and past max_duration in wall-clock time: neither
    // rule fires while it waits.
    f.clock.advance(Duration::from_secs(900));
    let s = status(&f, &id);
    assert_eq!(s.state_word(), "waiting", "{:?}", s.state);
    // resume asks the loop to retry now (no transition).
    orch.resume(&id).expect("resume");
    assert_eq!(f.runtime.dir(&id).expect("dir").retries, 1);
    // The wait ends with the next report; its 900 s are not the session's own time.
    f.runtime.report(
        &id,
        r#"{"status":"running","iteration":2,"max":10,"run":1}"#,
        f.clock.now(),
    );
    let s = status(&f, &id);
    assert!(
        matches!(s.state, SessionState::Running { iteration: 2, .. }),
        "{:?}",
        s.state
    );
    assert!(s.waiting.is_none());
    assert_eq!(f.orch().record(&id).expect("rec").waited_ms, 900_000);
    // Its own time runs out later: 600 s of its own, not counting the wait.
    f.clock.advance(Duration::from_secs(30));
    f.runtime.report(
        &id,
        r#"{"status":"running","iteration":3,"max":10,"run":1}"#,
        f.clock.now(),
    );
    assert!(
        !status(&f, &id).state.is_terminal(),
        "930 s after the start, 30 s of its own"
    );
    f.clock.advance(Duration::from_secs(600));
    let s = status(&f, &id);
    assert!(
        matches!(&s.state, SessionState::Failed { reason } if reason.contains("duration")),
        "{:?}",
        s.state
    );
}

#[test]
fn queued_messages_of_a_stopped_session_are_counted_as_undelivered() {
    let f = support::Fakes::new(PROJECT);
    let orch = f.orch();
    let id = orch.spawn(f.config()).expect("spawn");
    orch.inject(&id, "use the staging database").expect("queue");
    let s = status(&f, &id);
    assert_eq!((s.queued, s.undelivered()), (1, 0), "still live: it will read it");
    f.runtime.report(
        &id,
        r#"{"status":"blocked","iteration":1,"max":10,"run":1,"reason":"needs a key"}"#,
        f.clock.now(),
    );
    let s = status(&f, &id);
    assert!(matches!(s.state, SessionState::Blocked { .. }));
    assert_eq!(s.undelivered(), 1, "blocked: its loop stopped before reading it");
    assert_eq!(s.to_json()["undelivered_messages"], 1);
}
