//! What the facade's fakes-only tests share: every port's fake for a project that exists only
//! in them, and a builder wired to those fakes.

#![allow(dead_code, reason = "each test binary uses its own part of this module")]

use hydra_orchestrator::{Builder, Orchestrator, SessionConfig};
use orch_core::testing::{
    FakeHost, FakeMultiplexer, FakeWorktrees, ManualClock, MemoryRuntime, MemoryStore, RecordingBus,
};
use orch_core::Timestamp;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The PRD every fake project holds at `<project>/prd.json`.
pub const PRD: &str =
    r#"{"userStories":[{"id":"1","title":"a","passes":false},{"id":"2","title":"b","passes":false}]}"#;

/// A runtime holding the project's PRD.
pub fn runtime(project: &str) -> Arc<MemoryRuntime> {
    let runtime = Arc::new(MemoryRuntime::new());
    runtime.add_file(Path::new(project).join("prd.json"), PRD);
    runtime
}

/// A host where the project exists and the program `agent` is on `PATH`.
pub fn host(project: &str) -> Arc<FakeHost> {
    let host = Arc::new(FakeHost::new());
    host.add_dir(project);
    host.add_program("agent");
    host
}

/// A spawn request for the `agent` program on the project's PRD.
pub fn config(project: &str) -> SessionConfig {
    SessionConfig {
        agent_cli: "agent".into(),
        prd_path: PathBuf::from(project).join("prd.json"),
        working_dir: PathBuf::from(project),
        max_duration: Duration::from_secs(3600),
        ..SessionConfig::default()
    }
}

/// Every port's fake, for one project.
pub struct Fakes {
    pub project: &'static str,
    pub mux: Arc<FakeMultiplexer>,
    pub store: Arc<MemoryStore>,
    pub bus: Arc<RecordingBus>,
    pub wt: Arc<FakeWorktrees>,
    pub runtime: Arc<MemoryRuntime>,
    pub host: Arc<FakeHost>,
    pub clock: Arc<ManualClock>,
}

impl Fakes {
    /// Fresh fakes for `project`.
    pub fn new(project: &'static str) -> Self {
        Fakes {
            project,
            mux: Arc::new(FakeMultiplexer::new()),
            store: Arc::new(MemoryStore::new()),
            bus: Arc::new(RecordingBus::new()),
            wt: Arc::new(FakeWorktrees::new()),
            runtime: runtime(project),
            host: host(project),
            clock: Arc::new(ManualClock::new(Timestamp::from_secs(1_800_000_000))),
        }
    }

    /// A builder wired to every fake.
    pub fn builder(&self) -> Builder {
        Orchestrator::builder()
            .project(self.project)
            .multiplexer(self.mux.clone())
            .store(self.store.clone())
            .bus(self.bus.clone())
            .worktrees(Some(self.wt.clone()))
            .runtime(self.runtime.clone())
            .host(self.host.clone())
            .clock(self.clock.clone())
            .kill_grace(Duration::ZERO)
    }

    /// A fresh orchestrator over the fakes.
    pub fn orch(&self) -> Orchestrator {
        self.builder().build().expect("build")
    }

    /// A spawn request for this project, on a PRD of its own (`prd-N.json`), so sessions of
    /// one test never compete for the same stories; `config(project)` shares `prd.json`.
    pub fn config(&self) -> SessionConfig {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let prd = PathBuf::from(self.project).join(format!("prd-{n}.json"));
        self.runtime.add_file(&prd, PRD);
        SessionConfig {
            prd_path: prd,
            ..config(self.project)
        }
    }
}
