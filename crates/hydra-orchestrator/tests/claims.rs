//! Claims on fakes: sessions sharing one PRD split its stories, a held story cannot be
//! claimed again, an ended session lets go, finished stories reach the project's PRD with
//! nothing else of the file changed, and a shared checkout is warned about or refused.

mod support;

use hydra_orchestrator::{NoticeKind, SessionConfig, SessionId};
use orch_core::Clock;
use std::path::PathBuf;

const PROJECT: &str = "/claims/project";
const SIX: &str = "{\n  \"title\": \"shop\",\n  \"userStories\": [\n    {\"id\": \"US-1\", \"title\": \"a\", \"passes\": false},\n    {\"id\": \"US-2\", \"title\": \"b\", \"passes\": false},\n    {\"id\": \"US-3\", \"title\": \"c\", \"passes\": true},\n    {\"id\": \"US-4\", \"title\": \"d\", \"passes\": false}\n  ]\n}\n";

fn rig() -> (support::Fakes, SessionConfig) {
    let f = support::Fakes::new(PROJECT);
    let prd = PathBuf::from(PROJECT).join("shop.json");
    f.runtime.add_file(&prd, SIX);
    let cfg = SessionConfig {
        prd_path: prd,
        ..support::config(PROJECT)
    };
    (f, cfg)
}

fn claimed(f: &support::Fakes, id: &SessionId) -> Vec<String> {
    f.orch().record(id).expect("record").claimed.expect("claims")
}

fn err(r: hydra_orchestrator::Result<SessionId>) -> String {
    r.expect_err("refused").to_string()
}

#[test]
fn explicit_and_implicit_claims_split_the_stories_and_a_held_one_is_refused() {
    let (f, cfg) = rig();
    let orch = f.orch();
    let a = orch
        .spawn(SessionConfig {
            name: Some("api".into()),
            stories: Some(vec!["US-2".into()]),
            ..cfg.clone()
        })
        .expect("a");
    assert_eq!(claimed(&f, &a), ["US-2"]);
    // Its copy holds only its story.
    let copy = String::from_utf8(f.runtime.dir(&a).expect("dir").prd).expect("utf8");
    assert!(
        copy.contains("US-2") && !copy.contains("US-1") && !copy.contains("US-4"),
        "{copy}"
    );

    let msg = err(orch.spawn(SessionConfig {
        stories: Some(vec!["US-2".into()]),
        ..cfg.clone()
    }));
    assert!(
        msg.contains("stories") && msg.contains(&format!("held by live session {a} (api)")),
        "{msg}"
    );
    let msg = err(orch.spawn(SessionConfig {
        stories: Some(vec!["US-3".into()]),
        ..cfg.clone()
    }));
    assert!(msg.contains("already passes"), "{msg}");
    let msg = err(orch.spawn(SessionConfig {
        stories: Some(vec!["US-9".into()]),
        ..cfg.clone()
    }));
    assert!(msg.contains("its stories: US-1, US-2, US-3, US-4"), "{msg}");

    // Without stories: every free one (not done, not held).
    let b = orch.spawn(cfg.clone()).expect("b");
    assert_eq!(claimed(&f, &b), ["US-1", "US-4"]);
    let msg = err(orch.spawn(cfg.clone()));
    assert!(
        msg.contains(&format!("US-2 by {a} (api)")) && msg.contains(&format!("US-1 by {b}")),
        "{msg}"
    );

    // An ended session lets go of its stories.
    orch.kill(&a, "done with it").expect("kill");
    let c = orch.spawn(cfg.clone()).expect("c");
    assert_eq!(claimed(&f, &c), ["US-2"]);
}

#[test]
fn finished_stories_reach_the_project_prd_and_nothing_else_changes() {
    let (f, cfg) = rig();
    let orch = f.orch();
    let a = orch
        .spawn(SessionConfig {
            stories: Some(vec!["US-1".into(), "US-4".into()]),
            ..cfg.clone()
        })
        .expect("a");
    // The agent marks US-4 done in its copy, and the loop reports it.
    let copy = String::from_utf8(f.runtime.dir(&a).expect("dir").prd).expect("utf8");
    let done = copy.replacen(
        "{\"id\": \"US-4\", \"title\": \"d\", \"passes\": false}",
        "{\"id\": \"US-4\", \"title\": \"d\", \"passes\": true}",
        1,
    );
    assert_ne!(done, copy);
    f.runtime.write_prd_copy(&a, done.as_bytes());
    f.runtime.report(
        &a,
        r#"{"status":"running","iteration":1,"max":10,"stories":"1/2","run":1}"#,
        f.clock.now(),
    );
    orch.list();
    let project = String::from_utf8(f.runtime.file(&cfg.prd_path).expect("prd")).expect("utf8");
    assert_eq!(
        project,
        SIX.replacen(
            "{\"id\": \"US-4\", \"title\": \"d\", \"passes\": false}",
            "{\"id\": \"US-4\", \"title\": \"d\", \"passes\": true}",
            1
        )
    );
    // The agent rewrites its copy with every story done: only its own claims are taken.
    let all_done = SIX.replace("\"passes\": false", "\"passes\": true");
    f.runtime.write_prd_copy(&a, all_done.as_bytes());
    f.runtime.report(
        &a,
        r#"{"status":"running","iteration":2,"max":10,"stories":"4/4","run":1}"#,
        f.clock.now(),
    );
    orch.list();
    let project = String::from_utf8(f.runtime.file(&cfg.prd_path).expect("prd")).expect("utf8");
    let prd = hydra_orchestrator::Prd::parse(project.as_bytes()).expect("prd");
    let passing: Vec<&str> = prd.stories.iter().filter(|s| s.passes).map(|s| s.id.as_str()).collect();
    assert_eq!(passing, ["US-1", "US-3", "US-4"], "US-2 was not claimed: {project}");
}

#[test]
fn a_shared_checkout_is_warned_about_and_exclusive_refuses_it() {
    let f = support::Fakes::new(PROJECT);
    let orch = f.orch();
    let a = orch.spawn(f.config()).expect("a");
    orch.take_notices();
    let b = orch.spawn(f.config()).expect("b");
    let notices = orch.take_notices();
    let shared: Vec<_> = notices
        .iter()
        .filter(|n| n.kind == NoticeKind::SharedCheckout)
        .collect();
    assert_eq!(shared.len(), 1, "{notices:?}");
    assert!(
        shared[0].message.contains(&format!("as live session {a} does")),
        "{}",
        shared[0].message
    );
    assert!(shared[0].message.starts_with(b.as_str()));
    let msg = err(orch.spawn(SessionConfig {
        exclusive: true,
        ..f.config()
    }));
    assert!(msg.contains("working_dir") && msg.contains("already works in"), "{msg}");
    // A worktree of its own is no shared checkout.
    orch.spawn(SessionConfig {
        use_worktree: true,
        exclusive: true,
        ..f.config()
    })
    .expect("in a worktree");
}
