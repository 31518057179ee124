//! Interaction checks with mockall mocks, driving the facade's real `spawn` through the
//! builder (not a copy of its steps): what a failed spawn undoes, exactly once, and what it
//! must never touch.

use hydra_orchestrator::{Orchestrator, SessionConfig};
use orch_core::testing::{ManualClock, MemoryStore, RecordingBus};
use orch_core::{
    AttachCommand, MuxError, MuxServer, MuxSnapshot, PaneInfo, RemoveOutcome, SpawnSpec, Timestamp, WorktreeError,
    WorktreeInfo, WorktreeRequest,
};
use std::path::Path;
use std::sync::Arc;

mod support;

mockall::mock! {
    Mux {}
    impl orch_core::Multiplexer for Mux {
        fn server(&self) -> MuxServer;
        fn create(&self, spec: &SpawnSpec) -> Result<(), MuxError>;
        fn snapshot(&self) -> Result<MuxSnapshot, MuxError>;
        fn probe(&self, name: &str) -> Result<Option<PaneInfo>, MuxError>;
        fn send_text(&self, name: &str, text: &str, enter: bool) -> Result<(), MuxError>;
        fn capture(&self, name: &str, lines: u32) -> Result<String, MuxError>;
        fn kill(&self, name: &str) -> Result<(), MuxError>;
        fn attach_command(&self, name: &str) -> Result<AttachCommand, MuxError>;
        fn watch(&self) -> Result<std::sync::Arc<dyn orch_core::MuxWatch>, MuxError>;
    }
}

mockall::mock! {
    Wt {}
    impl orch_core::Worktrees for Wt {
        fn create(&self, req: &WorktreeRequest) -> Result<WorktreeInfo, WorktreeError>;
        fn remove(&self, repo: &Path, branch: &str, force: bool) -> Result<RemoveOutcome, WorktreeError>;
        fn list(&self, repo: &Path) -> Result<Vec<WorktreeInfo>, WorktreeError>;
        fn delete_branch(&self, repo: &Path, branch: &str) -> Result<bool, WorktreeError>;
        fn changes(&self, repo: &Path, from: &str, branch: &str, patch: bool) -> Result<orch_core::BranchChanges, WorktreeError>;
        fn merge(&self, repo: &Path, branch: &str, into: &str, squash: bool, message: &str) -> Result<orch_core::MergeOutcome, WorktreeError>;
    }
}

const PROJECT: &str = "/mock/project";

fn orchestrator(mux: MockMux, wt: MockWt, store: Arc<MemoryStore>, bus: Arc<RecordingBus>) -> Orchestrator {
    Orchestrator::builder()
        .project(PROJECT)
        .multiplexer(Arc::new(mux))
        .worktrees(Some(Arc::new(wt)))
        .store(store)
        .bus(bus)
        .runtime(support::runtime(PROJECT))
        .host(support::host(PROJECT))
        .clock(Arc::new(ManualClock::new(Timestamp::from_secs(1_800_000_000))))
        .build()
        .expect("build")
}

fn config() -> SessionConfig {
    SessionConfig {
        use_worktree: true,
        ..support::config(PROJECT)
    }
}

/// A worktree adapter whose one create succeeds with port 3001 at the planned path.
fn worktrees_creating_once() -> MockWt {
    let mut wt = MockWt::new();
    wt.expect_create().times(1).returning(|req| {
        Ok(WorktreeInfo::new(
            req.branch.clone(),
            req.path.clone().expect("planned path"),
            Some(3001),
        ))
    });
    wt
}

#[test]
fn a_failed_tmux_create_undoes_the_worktree_once_and_never_kills_a_session() {
    let mut mux = MockMux::new();
    mux.expect_server().return_const(MuxServer::Name("mock".into()));
    mux.expect_create().times(1).returning(|spec| {
        Err(MuxError::NameTaken {
            name: spec.name.clone(),
        })
    });
    mux.expect_kill().times(0);
    mux.expect_snapshot().times(0);
    let mut wt = worktrees_creating_once();
    wt.expect_remove()
        .withf(|repo, branch, force| repo == Path::new(PROJECT) && branch.starts_with("hydralph/") && *force)
        .times(1)
        .returning(|_, _, _| Ok(RemoveOutcome::Removed));
    let store = Arc::new(MemoryStore::new());
    let bus = Arc::new(RecordingBus::new());
    let orch = orchestrator(mux, wt, Arc::clone(&store), Arc::clone(&bus));
    let err = orch.spawn(config()).expect_err("tmux refuses");
    assert!(err.to_string().contains("already exists"), "{err}");
    assert!(store.records().is_empty(), "the booked record is removed");
    assert!(bus.events().is_empty(), "nothing was announced");
}

#[test]
fn a_successful_spawn_undoes_nothing() {
    let mut mux = MockMux::new();
    mux.expect_server().return_const(MuxServer::Name("mock".into()));
    mux.expect_create().times(1).returning(|_| Ok(()));
    mux.expect_kill().times(0);
    let mut wt = worktrees_creating_once();
    wt.expect_remove().times(0);
    let store = Arc::new(MemoryStore::new());
    let bus = Arc::new(RecordingBus::new());
    let orch = orchestrator(mux, wt, Arc::clone(&store), Arc::clone(&bus));
    let id = orch.spawn(config()).expect("spawn");
    let rec = &store.records()[0];
    assert_eq!(rec.id, id);
    assert_eq!(rec.allocated_port, Some(3001));
    assert_eq!(bus.channels(), ["session:spawned", "sys:registry"]);
    // The worktree is announced as hydra-wt announces its own: its fields, no others.
    let registry = &bus.events()[1];
    let keys: Vec<&str> = registry.data.keys().map(String::as_str).collect();
    let mut keys = keys;
    keys.sort_unstable();
    assert_eq!(keys, ["path", "port", "type", "worktree"]);
    assert_eq!(registry.data["type"], "worktree_created");
    assert_eq!(registry.data["port"], 3001);
    assert_eq!(
        registry.data["worktree"],
        rec.branch_name.clone().expect("branch").as_str()
    );
}
