//! [`Orchestrator`]: the seed's API, assembled from the ports. The store is the source of
//! truth: every mutation takes the store's lock, re-reads the record, applies the core's
//! transition, writes, and only then publishes.

use crate::error::{io, Error, Result};
use crate::runtime::{ralph_dir, read_prd, resolve_program, RuntimeDir, MAX_MESSAGE_BYTES};
use crate::support::{NoSignals, NoopBus, PosixSignals, Sig, Signals, SystemClock};
use orch_core::{
    apply, assess, Channel, Clock, ConfigError, Event, EventBus, HealthPolicy, LifecycleEvent, LoadProblem,
    Multiplexer, MuxObservation, MuxSnapshot, Observation, PaneInfo, PauseMode, Pulse, RemoveOutcome, Saga,
    SessionConfig, SessionId, SessionRecord, SessionState, SessionStatus, SpawnSpec, Store, Timestamp, Worktree,
    WorktreeRequest,
};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// What `kill` did besides ending the session.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KillReport {
    /// The worktree was kept because it holds work: its path and why.
    pub worktree_kept: Option<(PathBuf, Vec<String>)>,
    /// The worktree was removed and its port freed.
    pub worktree_removed: bool,
}

/// Leftovers that belong to no readable record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Orphans {
    /// `hydralph-*` tmux sessions without a record.
    pub tmux_sessions: Vec<String>,
    /// Runtime directories without a record.
    pub runtime_dirs: Vec<PathBuf>,
    /// Worktrees (or registered ports) of `hydralph-*` sessions without a record: branch, path.
    pub worktrees: Vec<(String, PathBuf)>,
}

impl Orphans {
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.tmux_sessions.is_empty() && self.runtime_dirs.is_empty() && self.worktrees.is_empty()
    }
}

/// What `prune` removed (or, with `dry_run`, would remove).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PruneReport {
    /// Ended sessions whose records were removed.
    pub removed_sessions: Vec<SessionId>,
    /// Orphans found (and cleaned unless `dry_run`).
    pub orphans: Orphans,
    /// Worktrees kept because they hold work: path and why.
    pub kept_worktrees: Vec<(PathBuf, Vec<String>)>,
    /// Nothing was changed.
    pub dry_run: bool,
}

#[derive(Default)]
struct Cache {
    notices: Vec<String>,
    orphans: Vec<String>,
    problems: Vec<LoadProblem>,
}

/// Runs and watches agent sessions. `Send + 'static`, so it can move into a tokio task.
pub struct Orchestrator {
    project: PathBuf,
    mux: Arc<dyn Multiplexer>,
    store: Arc<dyn Store>,
    bus: Arc<dyn EventBus>,
    worktree: Option<Arc<dyn Worktree>>,
    clock: Arc<dyn Clock>,
    signals: Arc<dyn Signals>,
    policy: HealthPolicy,
    path_var: Option<OsString>,
    kill_grace: Duration,
    cache: Mutex<Cache>,
}

impl std::fmt::Debug for Orchestrator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Orchestrator")
            .field("project", &self.project)
            .finish_non_exhaustive()
    }
}

/// Builds an [`Orchestrator`], swapping any adapter or the clock.
#[derive(Default)]
pub struct Builder {
    project: Option<PathBuf>,
    mux: Option<Arc<dyn Multiplexer>>,
    store: Option<Arc<dyn Store>>,
    bus: Option<Arc<dyn EventBus>>,
    worktree: Option<Option<Arc<dyn Worktree>>>,
    clock: Option<Arc<dyn Clock>>,
    signals: Option<Arc<dyn Signals>>,
    policy: HealthPolicy,
    tmux_socket: Option<String>,
    mail: bool,
    reconcile: bool,
}

impl Builder {
    /// The project root (where `.hydra/` lives); found from the current directory otherwise.
    pub fn project(mut self, root: impl Into<PathBuf>) -> Self {
        self.project = Some(root.into());
        self
    }
    /// Use this multiplexer instead of tmux.
    pub fn multiplexer(mut self, mux: Arc<dyn Multiplexer>) -> Self {
        self.mux = Some(mux);
        self
    }
    /// Use the private tmux server `tmux -L name` (ignored when a multiplexer is given).
    pub fn tmux_socket(mut self, name: impl Into<String>) -> Self {
        self.tmux_socket = Some(name.into());
        self
    }
    /// Use this store instead of the file store.
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }
    /// Use this event bus.
    pub fn bus(mut self, bus: Arc<dyn EventBus>) -> Self {
        self.bus = Some(bus);
        self
    }
    /// Connect to the project's hydra-mail daemon when it has one (standalone otherwise).
    pub fn with_mail(mut self) -> Self {
        self.mail = true;
        self
    }
    /// Use this worktree adapter (`None`: worktrees disabled).
    pub fn worktree(mut self, worktree: Option<Arc<dyn Worktree>>) -> Self {
        self.worktree = Some(worktree);
        self
    }
    /// Use this clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }
    /// Send no signals to process groups (for fake multiplexers, whose pids are not real).
    pub fn without_signals(mut self) -> Self {
        self.signals = Some(Arc::new(NoSignals));
        self
    }
    /// The health policy (default stuck threshold for records that carry none).
    pub fn policy(mut self, policy: HealthPolicy) -> Self {
        self.policy = policy;
        self
    }
    /// Reconcile at start-up (the default for `new`/`with_mail`): records whose tmux session
    /// is gone become Failed, orphans are noted.
    pub fn reconcile(mut self, yes: bool) -> Self {
        self.reconcile = yes;
        self
    }

    /// Assembles the orchestrator.
    ///
    /// Errors: `Io` when the project directory does not exist.
    pub fn build(self) -> Result<Orchestrator> {
        let project = match self.project {
            Some(p) => p,
            None => find_project_root(&std::env::current_dir().map_err(io("read current directory", Path::new(".")))?),
        };
        let project = project.canonicalize().map_err(io("open project directory", &project))?;
        let mut notices = Vec::new();
        let mux = self.mux.unwrap_or_else(|| {
            let socket = self
                .tmux_socket
                .or_else(|| std::env::var("HYDRA_TMUX_SOCKET").ok().filter(|s| !s.is_empty()));
            let config = match socket {
                Some(name) => orch_tmux::TmuxConfig::with_socket_name(&name),
                None => orch_tmux::TmuxConfig::default(),
            };
            Arc::new(orch_tmux::Tmux::new(config))
        });
        let store = self
            .store
            .unwrap_or_else(|| Arc::new(orch_store_fs::FsStore::new(&project)));
        let bus: Arc<dyn EventBus> = match self.bus {
            Some(b) => b,
            None if self.mail => match orch_mail::discover_socket(&project) {
                Ok(socket) => Arc::new(orch_mail::MailBus::new(socket)),
                Err(e) => {
                    notices.push(e.to_string());
                    Arc::new(NoopBus)
                }
            },
            None => Arc::new(NoopBus),
        };
        let worktree = self.worktree.unwrap_or_else(default_worktree);
        let orch = Orchestrator {
            project,
            mux,
            store,
            bus,
            worktree,
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
            signals: self.signals.unwrap_or_else(|| Arc::new(PosixSignals)),
            policy: self.policy,
            path_var: std::env::var_os("PATH"),
            kill_grace: Duration::from_secs(1),
            cache: Mutex::new(Cache {
                notices,
                ..Cache::default()
            }),
        };
        if self.reconcile {
            if let Err(e) = orch.refresh() {
                orch.notice(format!("start-up reconcile failed: {e}"));
            }
        }
        Ok(orch)
    }
}

#[cfg(feature = "worktree")]
fn default_worktree() -> Option<Arc<dyn Worktree>> {
    Some(Arc::new(orch_wt::GitWorktrees::new()))
}

#[cfg(not(feature = "worktree"))]
fn default_worktree() -> Option<Arc<dyn Worktree>> {
    None
}

/// The project root for `dir`: the nearest ancestor holding `.hydra/`, else the nearest
/// holding `.git`, else `dir` itself.
pub fn find_project_root(dir: &Path) -> PathBuf {
    dir.ancestors()
        .find(|d| d.join(".hydra").is_dir())
        .or_else(|| dir.ancestors().find(|d| d.join(".git").exists()))
        .unwrap_or(dir)
        .to_path_buf()
}

/// The validated, resolved parts of a spawn request.
struct Checked {
    working_dir: PathBuf,
    agent: PathBuf,
    prd: Vec<u8>,
    prd_path: PathBuf,
    bash: PathBuf,
    loop_script: Option<PathBuf>,
}

fn pane_observation(pane: Option<&PaneInfo>) -> MuxObservation {
    match pane {
        None => MuxObservation::Gone,
        Some(p) if p.dead => MuxObservation::Exited { status: p.exit_status },
        Some(p) => MuxObservation::Alive { activity: p.activity },
    }
}

impl Orchestrator {
    /// A standalone orchestrator for the project around the current directory (no hydra-mail).
    ///
    /// Never fails: problems (tmux missing, an unreadable store) are kept as
    /// [`notices`](Self::notices) and surface again on the calls that need the broken part.
    pub fn new() -> Self {
        match Self::builder().reconcile(true).build() {
            Ok(o) => o,
            Err(e) => {
                let fallback = Self::builder().project(".").reconcile(false).build();
                let o = fallback.unwrap_or_else(|_| Orchestrator::bare(PathBuf::from(".")));
                o.notice(format!("could not open the project: {e}"));
                o
            }
        }
    }

    fn bare(project: PathBuf) -> Self {
        Orchestrator {
            store: Arc::new(orch_store_fs::FsStore::new(&project)),
            project,
            mux: Arc::new(orch_tmux::Tmux::default()),
            bus: Arc::new(NoopBus),
            worktree: default_worktree(),
            clock: Arc::new(SystemClock),
            signals: Arc::new(PosixSignals),
            policy: HealthPolicy::default(),
            path_var: std::env::var_os("PATH"),
            kill_grace: Duration::from_secs(1),
            cache: Mutex::new(Cache::default()),
        }
    }

    /// An orchestrator for `project` that publishes lifecycle events to the project's
    /// hydra-mail daemon (standalone, with one notice, when there is none).
    ///
    /// Errors: `Io` when `project` does not exist.
    pub fn with_mail(project: &Path) -> Result<Self> {
        Self::builder().project(project).with_mail().reconcile(true).build()
    }

    /// A builder to swap adapters and the clock.
    pub fn builder() -> Builder {
        Builder::default()
    }

    fn cache(&self) -> MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn notice(&self, msg: String) {
        self.cache().notices.push(msg);
    }

    /// The project root.
    pub fn project(&self) -> &Path {
        &self.project
    }

    /// Things worth telling a person that were not errors (no daemon, a failed reconcile).
    pub fn notices(&self) -> Vec<String> {
        self.cache().notices.clone()
    }

    /// `hydralph-*` tmux sessions without a record, as of the last refresh.
    pub fn orphan_sessions(&self) -> Vec<String> {
        self.cache().orphans.clone()
    }

    /// Record files that did not load (quarantined), as of the last refresh.
    pub fn load_problems(&self) -> Vec<LoadProblem> {
        self.cache().problems.clone()
    }

    /// The runtime directory of `id`.
    pub fn runtime_dir(&self, id: &SessionId) -> RuntimeDir {
        RuntimeDir::new(&self.project, id)
    }

    /// The stored record of `id`.
    ///
    /// Errors: `Id` for an invalid id, `NotFound`, `Store`.
    pub fn record(&self, id: &SessionId) -> Result<SessionRecord> {
        id.validate()?;
        self.store.load(id)?.ok_or_else(|| Error::NotFound(id.clone()))
    }

    /// Waits at most `timeout` for published events to reach the bus.
    pub fn flush_events(&self, timeout: Duration) -> Result<()> {
        self.bus.flush(timeout).map_err(Error::from)
    }

    /// Subscribes to hydra-mail channels (e.g. `ralph:complete`); needs a tokio runtime.
    ///
    /// Errors: `Bus(Standalone)` without a daemon.
    pub fn subscribe(&self, channels: &[&str]) -> Result<Box<dyn orch_core::Subscription>> {
        self.bus.subscribe(channels).map_err(Error::from)
    }

    fn publish(&self, events: Vec<LifecycleEvent>) {
        for ev in events {
            if let Err(e) = self.bus.publish(&ev) {
                self.notice(format!("event {} not published: {e}", ev.channel));
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // spawn

    fn check(&self, config: &SessionConfig) -> Result<Checked> {
        config.validate()?;
        let bad = |field: &'static str, why: String| Error::Config(ConfigError::new(field, why));
        let wd = if config.working_dir.is_absolute() {
            config.working_dir.clone()
        } else {
            self.project.join(&config.working_dir)
        };
        let working_dir = wd.canonicalize().map_err(|e| {
            bad(
                "working_dir",
                format!("{} is not usable: {e}; give an existing directory", wd.display()),
            )
        })?;
        if !working_dir.is_dir() {
            return Err(bad(
                "working_dir",
                format!("{} is not a directory", working_dir.display()),
            ));
        }
        if !working_dir.starts_with(&self.project) {
            return Err(bad(
                "working_dir",
                format!(
                    "{} is outside the project {}; run from that project or pass its root as the project",
                    working_dir.display(),
                    self.project.display()
                ),
            ));
        }
        let agent = resolve_program(&config.agent_cli, self.path_var.as_deref()).ok_or_else(|| {
            bad(
                "agent_cli",
                format!(
                    "{:?} is not an executable on PATH; install it or give its path",
                    config.agent_cli
                ),
            )
        })?;
        let prd_path = if config.prd_path.is_absolute() {
            config.prd_path.clone()
        } else {
            self.project.join(&config.prd_path)
        };
        let prd = read_prd(&prd_path)?;
        let bash = resolve_program("bash", self.path_var.as_deref())
            .ok_or_else(|| bad("agent_cli", "bash is not on PATH; the agent loop needs bash".into()))?;
        let loop_script = match &config.loop_script {
            Some(p) if !p.is_file() => return Err(bad("loop_script", format!("{} is not a file", p.display()))),
            other => other.clone(),
        };
        if config.use_worktree && self.worktree.is_none() {
            return Err(bad(
                "use_worktree",
                "worktree support is not enabled; build with the \"worktree\" feature".into(),
            ));
        }
        Ok(Checked {
            working_dir,
            agent,
            prd,
            prd_path,
            bash,
            loop_script,
        })
    }

    fn new_id(&self, snapshot: &MuxSnapshot) -> Result<SessionId> {
        for _ in 0..64 {
            let bytes = uuid::Uuid::new_v4().into_bytes();
            let id = SessionId::from_random([bytes[0], bytes[1], bytes[2], bytes[3]]);
            if self.store.load(&id)?.is_none()
                && snapshot.get(&id.tmux_name()).is_none()
                && !self.runtime_dir(&id).path().exists()
            {
                return Ok(id);
            }
        }
        Err(Error::Config(ConfigError::new(
            "id",
            "could not find an unused session id",
        )))
    }

    fn loop_spec(
        &self,
        rec: &SessionRecord,
        bash: &Path,
        agent: &Path,
        start_iteration: u32,
        delay: Duration,
    ) -> SpawnSpec {
        let rt = self.runtime_dir(&rec.id);
        let s = |p: &Path| p.to_string_lossy().into_owned();
        let mut env = vec![
            ("HYDRALPH_SESSION_ID".to_owned(), rec.id.0.clone()),
            ("HYDRALPH_AGENT".to_owned(), s(agent)),
            ("HYDRALPH_FLAGS".to_owned(), rec.agent_flags.clone()),
            ("HYDRALPH_MAX_ITERATIONS".to_owned(), rec.max_iterations.to_string()),
            ("HYDRALPH_PRD".to_owned(), s(&rt.prd())),
            ("HYDRALPH_PROGRESS".to_owned(), s(&rt.progress())),
            ("HYDRALPH_PROMPT".to_owned(), s(&rt.prompt())),
            ("HYDRALPH_STATUS".to_owned(), s(&rt.status())),
            ("HYDRALPH_LOG".to_owned(), s(&rt.log())),
            (
                "HYDRALPH_START_ITERATION".to_owned(),
                start_iteration.max(1).to_string(),
            ),
            ("HYDRALPH_DELAY".to_owned(), format!("{:.3}", delay.as_secs_f64())),
        ];
        if let Some(port) = rec.allocated_port {
            env.push(("PORT".to_owned(), port.to_string()));
            env.push(("HYDRA_PORT".to_owned(), port.to_string()));
        }
        SpawnSpec {
            name: rec.tmux_session.clone(),
            argv: vec![s(bash), s(&rt.script())],
            env,
            cwd: rec.agent_dir().to_path_buf(),
        }
    }

    /// Starts a session: validates everything first (each failure names the field), then
    /// creates the worktree, runtime dir, tmux session and record; a failure at any step undoes
    /// the earlier ones. Returns the new session's id.
    pub fn spawn(&self, config: SessionConfig) -> Result<SessionId> {
        let checked = self.check(&config)?;
        let snapshot = self.mux.snapshot()?;
        let id = self.new_id(&snapshot)?;
        let now = self.clock.now();
        let mut cfg = config.clone();
        cfg.working_dir = checked.working_dir.clone();
        cfg.prd_path = checked.prd_path.clone();
        let mut rec = SessionRecord::new(id.clone(), &cfg, now);
        let rt = self.runtime_dir(&id);
        rec.runtime_dir = Some(rt.path().to_path_buf());

        let mut saga = Saga::new();
        let fail = |e: Error, saga: Saga<'_>| -> Error {
            let leftovers: Vec<String> = saga
                .rollback()
                .into_iter()
                .map(|(step, why)| format!("{step}: {why}"))
                .collect();
            if leftovers.is_empty() {
                e
            } else {
                Error::Rollback {
                    cause: Box::new(e),
                    leftovers,
                }
            }
        };

        if cfg.use_worktree {
            let wt = self
                .worktree
                .as_ref()
                .expect("checked: worktree adapter present when use_worktree");
            let branch = cfg.branch_name.clone().unwrap_or_else(|| id.default_branch());
            let req = WorktreeRequest {
                repo: checked.working_dir.clone(),
                branch: branch.clone(),
                base: cfg.base_ref.clone(),
                path: Some(self.project.join(".hydra").join("worktrees").join(id.tmux_name())),
                session: id.clone(),
            };
            let info = match wt.create(&req) {
                Ok(info) => info,
                Err(e) => return Err(fail(e.into(), saga)),
            };
            let repo = checked.working_dir.clone();
            let b = branch.clone();
            saga.on_undo("worktree", move || {
                wt.remove(&repo, &b, true).map(|_| ()).map_err(|e| e.to_string())
            });
            rec.branch_name = Some(branch);
            rec.worktree_path = Some(info.path);
            rec.allocated_port = info.port;
        }
        if let Err(e) = rt.create(
            &self.project,
            &id,
            &checked.prd,
            rec.agent_dir(),
            checked.loop_script.as_deref(),
        ) {
            // A partly created directory is still ours to remove.
            let _ = rt.remove();
            return Err(fail(e, saga));
        }
        let rt2 = rt.clone();
        saga.on_undo("runtime dir", move || rt2.remove().map_err(|e| e.to_string()));
        let spec = self.loop_spec(&rec, &checked.bash, &checked.agent, 1, cfg.loop_delay);
        if let Err(e) = self.mux.create(&spec) {
            return Err(fail(e.into(), saga));
        }
        let name = rec.tmux_session.clone();
        saga.on_undo("tmux session", move || self.mux.kill(&name).map_err(|e| e.to_string()));
        rec.revision = 1;
        let saved = self.store.lock().and_then(|_guard| self.store.save(&rec));
        if let Err(e) = saved {
            return Err(fail(e.into(), saga));
        }
        saga.commit();
        let mut ev = LifecycleEvent::new(Channel::Spawned, &id, now)
            .with("state", rec.state.name())
            .with("agent", rec.agent_cli.clone())
            .with("working_dir", rec.agent_dir().to_string_lossy().into_owned());
        if let Some(b) = &rec.branch_name {
            ev = ev.with("branch", b.clone());
        }
        if let Some(p) = rec.allocated_port {
            ev = ev.with("port", p);
        }
        self.publish(vec![ev]);
        Ok(id)
    }

    // -----------------------------------------------------------------------------------------
    // refresh, list, health

    /// Refreshes every session from one tmux snapshot and the loops' status files, persists
    /// the transitions, publishes their events, and returns every session's status.
    ///
    /// Errors: `Mux` when tmux cannot be asked, `Store` when the records cannot be read.
    pub fn refresh(&self) -> Result<Vec<SessionStatus>> {
        self.refresh_collecting(&mut Vec::new())
    }

    fn refresh_collecting(&self, killed: &mut Vec<SessionId>) -> Result<Vec<SessionStatus>> {
        let snapshot = self.mux.snapshot()?;
        let mut events = Vec::new();
        let mut statuses = Vec::new();
        let report = {
            let _guard = self.store.lock()?;
            let report = self.store.load_all()?;
            let now = self.clock.now();
            for rec in &report.records {
                let mut rec = rec.clone();
                if self.refresh_one(&mut rec, &snapshot, now, &mut events, killed)? {
                    rec.revision += 1;
                    self.store.save(&rec)?;
                }
                statuses.push(SessionStatus::from_record(&rec, now));
            }
            report
        };
        let known: Vec<String> = report.records.iter().map(|r| r.tmux_session.clone()).collect();
        let orphans: Vec<String> = snapshot
            .sessions
            .iter()
            .map(|p| p.session.clone())
            .filter(|n| n.starts_with("hydralph-") && !known.contains(n))
            .collect();
        {
            let mut cache = self.cache();
            cache.orphans = orphans;
            cache.problems.extend(report.problems);
        }
        self.publish(events);
        Ok(statuses)
    }

    /// Brings one record up to date; returns whether it changed.
    fn refresh_one(
        &self,
        rec: &mut SessionRecord,
        snapshot: &MuxSnapshot,
        now: Timestamp,
        events: &mut Vec<LifecycleEvent>,
        killed: &mut Vec<SessionId>,
    ) -> Result<bool> {
        let pane = snapshot.get(&rec.tmux_session);
        if rec.state.is_terminal() {
            // The loop's pane is kept dead for its exit status; once the end is recorded,
            // the session has no reason to live on.
            if let Some(p) = pane {
                self.end_processes(rec, Some(p))?;
            }
            return Ok(false);
        }
        let mut changed = false;
        if rec.frozen && !matches!(rec.state, SessionState::Paused { .. }) {
            // A freeze whose pause was never recorded (a crash in between): thaw it.
            if let Some(pid) = pane.and_then(|p| p.pane_pid) {
                let _ = self.signals.signal_group(pid, Sig::Cont);
            }
            rec.frozen = false;
            changed = true;
        }
        let rt = self.runtime_dir(&rec.id);
        let (loop_status, status_changed) = rt.read_status();
        let obs = Observation {
            mux: pane_observation(pane),
            loop_status,
            status_changed,
        };
        let assessment = assess(rec, &obs, now, &self.policy);
        if assessment.last_activity != rec.last_activity {
            rec.last_activity = assessment.last_activity;
            changed = true;
        }
        for decision in &assessment.decisions {
            let event = decision.event(rec);
            let from = rec.state.clone();
            let Ok(to) = apply(&from, &event, now) else { continue };
            if matches!(event, Event::DurationExceeded { .. }) {
                self.end_processes(rec, pane)?;
                let _ = self.release_worktree(rec, false);
                killed.push(rec.id.clone());
            }
            events.push(LifecycleEvent::transition(&rec.id, &from, &to, &event, now));
            rec.state = to;
            changed = true;
        }
        if rec.state.is_terminal() {
            rec.ended_at = Some(now);
            rec.frozen = false;
            if let Some(p) = pane {
                if !killed.contains(&rec.id) {
                    self.end_processes(rec, Some(p))?;
                }
            }
        }
        Ok(changed)
    }

    /// Every session's status, refreshed from one tmux snapshot. When tmux or the store
    /// cannot be read, the stored states are returned as they are (and a notice kept).
    pub fn list(&self) -> Vec<SessionStatus> {
        match self.refresh() {
            Ok(s) => s,
            Err(e) => {
                self.notice(format!("could not refresh sessions: {e}"));
                let now = self.clock.now();
                self.store
                    .load_all()
                    .map(|r| {
                        r.records
                            .iter()
                            .map(|rec| SessionStatus::from_record(rec, now))
                            .collect()
                    })
                    .unwrap_or_default()
            }
        }
    }

    /// The refreshed status of one session.
    ///
    /// Errors: `Id`, `NotFound`, and those of [`refresh`](Self::refresh).
    pub fn status(&self, id: &SessionId) -> Result<SessionStatus> {
        id.validate()?;
        self.refresh()?
            .into_iter()
            .find(|s| &s.id == id)
            .ok_or_else(|| Error::NotFound(id.clone()))
    }

    /// Runs the health rules on every session: vanished tmux sessions become Failed, silent
    /// ones Stuck (reported once), and sessions older than their `max_duration` are killed.
    /// Returns the ids it killed.
    pub fn health_check(&self) -> Result<Vec<SessionId>> {
        let mut killed = Vec::new();
        self.refresh_collecting(&mut killed)?;
        Ok(killed)
    }

    // -----------------------------------------------------------------------------------------
    // control

    /// Locks the store, loads `id`, lets `f` change the record, saves, then publishes.
    fn mutate<T>(
        &self,
        id: &SessionId,
        f: impl FnOnce(&mut SessionRecord, Timestamp) -> Result<(T, Vec<LifecycleEvent>)>,
    ) -> Result<T> {
        id.validate()?;
        let (out, events) = {
            let _guard = self.store.lock()?;
            let mut rec = self.store.load(id)?.ok_or_else(|| Error::NotFound(id.clone()))?;
            let now = self.clock.now();
            // Catch up with what the loop has reported since the last refresh, so a pause
            // keeps the real iteration and a finished session is not "paused".
            let mut events = Vec::new();
            if let Some(status) = self.runtime_dir(id).read_status().0 {
                for ev in orch_core::progress_events(&rec.state, &status) {
                    if let Ok(to) = apply(&rec.state, &ev, now) {
                        events.push(LifecycleEvent::transition(id, &rec.state, &to, &ev, now));
                        rec.state = to;
                    }
                }
            }
            let (out, more) = f(&mut rec, now)?;
            events.extend(more);
            rec.revision += 1;
            self.store.save(&rec)?;
            (out, events)
        };
        self.publish(events);
        Ok(out)
    }

    fn transition(id: &SessionId, rec: &SessionRecord, event: &Event, now: Timestamp) -> Result<SessionState> {
        apply(&rec.state, event, now).map_err(|source| Error::Transition { id: id.clone(), source })
    }

    fn pane(&self, rec: &SessionRecord) -> Result<Option<PaneInfo>> {
        Ok(self.mux.snapshot()?.get(&rec.tmux_session).cloned())
    }

    /// Pauses a session in its configured mode (checkpoint by default).
    ///
    /// Errors: `Id`, `NotFound`, `Transition` when the state cannot pause, `Mux`, `Io`.
    pub fn pause(&self, id: &SessionId) -> Result<()> {
        self.pause_with(id, None)
    }

    /// Pauses a session: `Checkpoint` lets the current iteration finish and holds the loop
    /// before the next; `Freeze` stops the pane's process group at once (SIGSTOP).
    pub fn pause_with(&self, id: &SessionId, mode: Option<PauseMode>) -> Result<()> {
        let rt = self.runtime_dir(id);
        self.mutate(id, |rec, now| {
            let to = Self::transition(id, rec, &Event::Pause, now)?;
            rt.set_paused(true)?;
            if mode.unwrap_or(rec.pause_mode) == PauseMode::Freeze {
                if let Some(pid) = self.pane(rec)?.filter(|p| !p.dead).and_then(|p| p.pane_pid) {
                    // Record the intent first: a crash after SIGSTOP then leaves a record that
                    // says frozen, and the next refresh thaws it.
                    rec.frozen = true;
                    self.store.save(rec)?;
                    self.signals
                        .stop_group_members(pid)
                        .map_err(io("stop the processes of", rt.path()))?;
                }
            }
            let ev = LifecycleEvent::transition(id, &rec.state, &to, &Event::Pause, now).with("frozen", rec.frozen);
            rec.state = to;
            rec.last_activity = now;
            Ok(((), vec![ev]))
        })
    }

    /// Resumes a paused session at the same iteration, or restarts the loop of a blocked one
    /// where it stopped (after an `inject`, say).
    ///
    /// Errors: `Id`, `NotFound`, `Transition` when neither paused nor blocked, `Mux`, `Io`.
    pub fn resume(&self, id: &SessionId) -> Result<()> {
        let rt = self.runtime_dir(id);
        self.mutate(id, |rec, now| {
            let to = Self::transition(id, rec, &Event::Resume, now)?;
            let pane = self.pane(rec)?;
            rt.set_paused(false)?;
            if rec.frozen {
                if let Some(pid) = pane.as_ref().and_then(|p| p.pane_pid) {
                    self.signals
                        .signal_group(pid, Sig::Cont)
                        .map_err(io("continue process group of", rt.path()))?;
                }
                rec.frozen = false;
            }
            if let SessionState::Blocked { iteration, .. } = rec.state {
                if pane.as_ref().is_none_or(|p| p.dead) {
                    self.restart_loop(rec, iteration)?;
                }
            }
            let ev = LifecycleEvent::transition(id, &rec.state, &to, &Event::Resume, now);
            rec.state = to;
            rec.last_activity = now;
            Ok(((), vec![ev]))
        })
    }

    fn restart_loop(&self, rec: &SessionRecord, iteration: u32) -> Result<()> {
        let rt = self.runtime_dir(&rec.id);
        self.mux.kill(&rec.tmux_session)?;
        rt.clear_status()?;
        let bad = |field: &'static str, why: String| Error::Config(ConfigError::new(field, why));
        let agent = resolve_program(&rec.agent_cli, self.path_var.as_deref())
            .ok_or_else(|| bad("agent_cli", format!("{:?} is no longer on PATH", rec.agent_cli)))?;
        let bash = resolve_program("bash", self.path_var.as_deref())
            .ok_or_else(|| bad("agent_cli", "bash is not on PATH".into()))?;
        let delay = Duration::from_millis(rec.loop_delay_ms);
        self.mux.create(&self.loop_spec(rec, &bash, &agent, iteration, delay))?;
        Ok(())
    }

    /// Queues `message` for the agent: the loop puts queued messages at the top of its next
    /// prompt, then clears them. The text is carried literally.
    ///
    /// Errors: `Id`, `NotFound`, `Config` (field `message`) for an empty, NUL-holding or
    /// oversized message, `Transition` when the session has ended, `Io`.
    pub fn inject(&self, id: &SessionId, message: &str) -> Result<()> {
        self.inject_with(id, message, false)
    }

    /// Like [`inject`](Self::inject), but with `live` the text is typed into the agent's pane
    /// at once (literally, then Enter) instead of queued.
    pub fn inject_with(&self, id: &SessionId, message: &str, live: bool) -> Result<()> {
        check_message(message)?;
        let rt = self.runtime_dir(id);
        self.mutate(id, |rec, now| {
            if rec.state.is_terminal() {
                return Err(Error::Transition {
                    id: id.clone(),
                    source: orch_core::TransitionError::Terminal {
                        state: rec.state.name(),
                    },
                });
            }
            if live {
                self.mux.send_text(&rec.tmux_session, message, true)?;
            } else {
                rt.queue_message(message, now)?;
            }
            rec.last_activity = now;
            let shown: String = message.chars().take(1000).collect();
            let ev = LifecycleEvent::new(Channel::Injected, id, now)
                .with("live", live)
                .with("bytes", message.len())
                .with("message", shown)
                .with("state", rec.state.name());
            Ok(((), vec![ev]))
        })
    }

    /// Attaches this terminal to the session's tmux session until it detaches.
    ///
    /// Errors: `Id`, `NotFound`, `Mux` when the tmux session is gone, `Io`.
    pub fn attach(&self, id: &SessionId) -> Result<()> {
        let rec = self.record(id)?;
        let cmd = self.mux.attach_command(&rec.tmux_session)?;
        let (program, args) = cmd
            .argv
            .split_first()
            .ok_or_else(|| Error::Config(ConfigError::new("attach", "empty attach command")))?;
        std::process::Command::new(program)
            .args(args)
            .status()
            .map_err(io("run", Path::new(program)))?;
        Ok(())
    }

    /// Kills a session: its tmux session and processes end, its worktree is removed only when
    /// it holds no work (its port freed then), and the record stays, as `Failed(reason)`.
    ///
    /// Errors: `Id`, `NotFound`, `Transition` when the session has already ended, `Mux`.
    pub fn kill(&self, id: &SessionId, reason: &str) -> Result<KillReport> {
        self.kill_with(id, reason, false)
    }

    /// Like [`kill`](Self::kill); with `force` the worktree is removed even if it holds work
    /// (the branch is still kept).
    pub fn kill_with(&self, id: &SessionId, reason: &str, force: bool) -> Result<KillReport> {
        let reason = if reason.trim().is_empty() { "killed" } else { reason };
        check_message(reason).map_err(|_| {
            Error::Config(ConfigError::new(
                "reason",
                "it must be at most 2 MiB and hold no NUL byte",
            ))
        })?;
        let rt = self.runtime_dir(id);
        self.mutate(id, |rec, now| {
            let event = Event::Kill {
                reason: reason.to_owned(),
            };
            let to = Self::transition(id, rec, &event, now)?;
            let pane = self.pane(rec)?;
            self.end_processes(rec, pane.as_ref())?;
            let report = self.release_worktree(rec, force);
            let _ = rt.set_paused(false);
            let mut ev = LifecycleEvent::transition(id, &rec.state, &to, &event, now);
            if let Some((path, reasons)) = &report.worktree_kept {
                ev = ev
                    .with("worktree_kept", path.to_string_lossy().into_owned())
                    .with("worktree_kept_because", reasons.join("; "));
            }
            rec.state = to;
            rec.frozen = false;
            rec.ended_at = Some(now);
            rec.last_activity = now;
            Ok((report, vec![ev]))
        })
    }

    /// Ends the session's processes: thaw if frozen, SIGTERM the group, end the tmux session,
    /// then SIGKILL whatever is left after a short grace.
    fn end_processes(&self, rec: &SessionRecord, pane: Option<&PaneInfo>) -> Result<()> {
        let pgid = pane.filter(|p| !p.dead).and_then(|p| p.pane_pid);
        if let Some(pid) = pgid {
            let _ = self.signals.signal_group(pid, Sig::Cont);
            let _ = self.signals.signal_group(pid, Sig::Term);
        }
        self.mux.kill(&rec.tmux_session)?;
        if let Some(pid) = pgid {
            let deadline = Instant::now() + self.kill_grace;
            while self.signals.group_alive(pid) {
                if Instant::now() >= deadline {
                    let _ = self.signals.signal_group(pid, Sig::Kill);
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        Ok(())
    }

    /// Removes the session's worktree when safe (or forced) and forgets its port.
    fn release_worktree(&self, rec: &mut SessionRecord, force: bool) -> KillReport {
        let mut report = KillReport::default();
        let (Some(wt), Some(branch)) = (self.worktree.as_ref(), rec.branch_name.clone()) else {
            return report;
        };
        if !rec.use_worktree || rec.worktree_path.is_none() {
            return report;
        }
        match wt.remove(&rec.working_dir, &branch, force) {
            Ok(RemoveOutcome::Removed | RemoveOutcome::NotFound) => {
                report.worktree_removed = true;
                rec.allocated_port = None;
            }
            Ok(RemoveOutcome::Kept { path, reasons }) => report.worktree_kept = Some((path, reasons)),
            Err(e) => {
                report.worktree_kept = Some((
                    rec.worktree_path.clone().unwrap_or_default(),
                    vec![format!("removal failed: {e}")],
                ))
            }
        }
        report
    }

    // -----------------------------------------------------------------------------------------
    // logs, pulses, orphans, prune

    /// The last `lines` lines of the agent's log.
    ///
    /// Errors: `Id`, `NotFound`, `Io`.
    pub fn logs(&self, id: &SessionId, lines: usize) -> Result<String> {
        self.record(id)?;
        let log = self.runtime_dir(id).log();
        let text = match std::fs::read(&log) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(io("read", &log)(e)),
        };
        let all: Vec<&str> = text.lines().collect();
        Ok(all[all.len().saturating_sub(lines)..].join("\n"))
    }

    /// Feeds a `ralph:*` pulse from hydra-mail into its session's state. Returns whether a
    /// session changed.
    pub fn apply_pulse(&self, pulse: &Pulse) -> Result<bool> {
        let (Some(id), Some(status)) = (pulse.session(), pulse.loop_status()) else {
            return Ok(false);
        };
        let Some(event) = status.event() else { return Ok(false) };
        match self.mutate(&id, |rec, now| match apply(&rec.state, &event, now) {
            Ok(to) => {
                let ev = LifecycleEvent::transition(&id, &rec.state, &to, &event, now);
                if to.is_terminal() {
                    rec.ended_at = Some(now);
                }
                rec.state = to;
                rec.last_activity = now;
                Ok((true, vec![ev]))
            }
            Err(_) => Ok((false, Vec::new())),
        }) {
            Err(Error::NotFound(_)) => Ok(false),
            other => other,
        }
    }

    /// Everything that belongs to no readable record: tmux sessions, runtime dirs, worktrees.
    pub fn orphans(&self) -> Result<Orphans> {
        let snapshot = self.mux.snapshot()?;
        let records = self.store.load_all()?.records;
        let owned = |id: &str| records.iter().any(|r| r.id.as_str() == id);
        let mut out = Orphans::default();
        for p in &snapshot.sessions {
            if let Some(id) = p.session.strip_prefix("hydralph-") {
                if !owned(id) {
                    out.tmux_sessions.push(p.session.clone());
                }
            }
        }
        if let Ok(entries) = std::fs::read_dir(ralph_dir(&self.project)) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if e.path().is_dir() && SessionId::parse(&name).is_ok() && !owned(&name) {
                    out.runtime_dirs.push(e.path());
                }
            }
        }
        if let Some(wt) = &self.worktree {
            if let Ok(list) = wt.list(&self.project) {
                let managed = self.project.join(".hydra").join("worktrees");
                for w in list {
                    let id = w
                        .path
                        .file_name()
                        .and_then(|n| n.to_str())
                        .and_then(|n| n.strip_prefix("hydralph-"))
                        .map(str::to_owned);
                    let owner = records
                        .iter()
                        .any(|r| r.branch_name.as_deref() == Some(w.branch.as_str()) && !r.state.is_terminal())
                        || id.as_deref().is_some_and(owned);
                    let ours = w.path.starts_with(&managed) || w.branch.starts_with("hydralph/");
                    if ours && !owner {
                        out.worktrees.push((w.branch, w.path));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Removes ended sessions (records, runtime dirs, tmux leftovers, worktrees that hold no
    /// work) and orphans; worktrees with work are kept and reported. With `dry_run`, only
    /// reports what it would do.
    pub fn prune(&self, dry_run: bool) -> Result<PruneReport> {
        self.refresh()?;
        let mut report = PruneReport {
            dry_run,
            ..PruneReport::default()
        };
        let ended: Vec<SessionRecord> = self
            .store
            .load_all()?
            .records
            .into_iter()
            .filter(|r| r.state.is_terminal())
            .collect();
        for rec in ended {
            report.removed_sessions.push(rec.id.clone());
            if dry_run {
                continue;
            }
            let _guard = self.store.lock()?;
            let Some(mut rec) = self.store.load(&rec.id)? else {
                continue;
            };
            if !rec.state.is_terminal() {
                continue;
            }
            self.mux.kill(&rec.tmux_session)?;
            let wt = self.release_worktree(&mut rec, false);
            if let Some(kept) = wt.worktree_kept {
                report.kept_worktrees.push(kept);
            }
            self.runtime_dir(&rec.id).remove()?;
            self.store.remove(&rec.id)?;
        }
        report.orphans = self.orphans()?;
        if !dry_run {
            for name in &report.orphans.tmux_sessions {
                self.mux.kill(name)?;
            }
            for dir in &report.orphans.runtime_dirs {
                std::fs::remove_dir_all(dir).map_err(io("remove", dir))?;
            }
            if let Some(wt) = &self.worktree {
                for (branch, path) in &report.orphans.worktrees {
                    if let Ok(RemoveOutcome::Kept { reasons, .. }) = wt.remove(&self.project, branch, false) {
                        report.kept_worktrees.push((path.clone(), reasons));
                    }
                }
            }
        }
        Ok(report)
    }
}

impl Default for Orchestrator {
    fn default() -> Self {
        Self::new()
    }
}

/// Checks an operator message: non-empty, no NUL, at most 2 MiB.
fn check_message(message: &str) -> Result<()> {
    let bad = |why: String| Error::Config(ConfigError::new("message", why));
    if message.is_empty() {
        return Err(bad("it is empty; give the text to send".into()));
    }
    if message.contains('\0') {
        return Err(bad("it contains a NUL byte, which cannot be carried".into()));
    }
    if message.len() > MAX_MESSAGE_BYTES {
        return Err(bad(format!(
            "it is {} bytes; at most {MAX_MESSAGE_BYTES} are allowed",
            message.len()
        )));
    }
    Ok(())
}
