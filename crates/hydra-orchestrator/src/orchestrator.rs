//! [`Orchestrator`] and its [`Builder`]: the ports assembled, plus the little state a process
//! keeps between calls (notices to hand out, the orphans of the last refresh). Every
//! operation lives in `ops/`, and every observation and decision goes through the transaction
//! of `txn.rs`.

use crate::error::{Error, Result};
use crate::muxes::{MuxFactory, MuxSet};
use crate::support::{NoopBus, SystemClock};
use orch_core::{
    Clock, EventBus, FileEvents, HealthPolicy, Host, LifecycleEvent, LoadProblem, LoopRuntime, Multiplexer, MuxServer,
    SessionId, SessionRecord, Store, Trust, TrustAll, TrustNothing, Worktrees,
};
use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The most notices kept for [`Orchestrator::take_notices`]; older ones are dropped, so a
/// long-running monitor that never takes them does not grow.
const MAX_NOTICES: usize = 100;

/// What kind of thing a [`Notice`] tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoticeKind {
    /// Events are not reaching hydra-mail (configured but down).
    EventsNotDelivered,
    /// The store cannot be written: reading works, changing does not.
    ReadOnly,
    /// A record file did not parse and was moved aside.
    UnreadableRecord,
    /// A record written by a newer build was left alone.
    NewerRecord,
    /// Clean-up work (ending a pane, removing a worktree) did not fully succeed.
    Cleanup,
    /// A new session works in a checkout a live session already works in, without a
    /// worktree of its own.
    SharedCheckout,
    /// The worktree adapter skipped something (a missing env template), or the port registry
    /// disagreed with what sessions hold (an entry lost, and restored).
    Worktree,
    /// Something else worth telling that is not an error of the call.
    Other,
}

/// Something worth telling a person that was not an error of the call that found it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Notice {
    /// What kind of thing it is.
    pub kind: NoticeKind,
    /// What to tell, in words.
    pub message: String,
}

impl std::fmt::Display for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Leftovers that belong to no readable record of this project.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Orphans {
    /// This project's tmux sessions (tagged as ours) without a record.
    pub tmux_sessions: Vec<String>,
    /// `hydralph-*` tmux sessions with no tag and no record here: the original tool's, or
    /// another project's from before tags. Reported, never ended without `force`.
    pub untagged_sessions: Vec<String>,
    /// Runtime directories without a record.
    pub runtime_dirs: Vec<SessionId>,
    /// Worktrees (or registered ports) of `hydralph-*` sessions without a live record:
    /// branch, path.
    pub worktrees: Vec<(String, PathBuf)>,
}

impl Orphans {
    /// Whether there are none (untagged sessions included).
    pub fn is_empty(&self) -> bool {
        self.tmux_sessions.is_empty()
            && self.untagged_sessions.is_empty()
            && self.runtime_dirs.is_empty()
            && self.worktrees.is_empty()
    }
}

#[derive(Default)]
pub(crate) struct Shared {
    notices: VecDeque<Notice>,
    pub(crate) orphans: Orphans,
    pub(crate) said: Vec<String>,
}

/// Runs and watches agent sessions.
///
/// `Send + Sync + 'static`, so it can move into a thread or a tokio task. Its calls are
/// synchronous and block for as long as tmux, the disk and (for worktrees) git take: a few
/// milliseconds for `list`, `status` and the control calls, up to a second for `kill` (the
/// grace an agent gets to end). From async code, run them with
/// `tokio::task::spawn_blocking`.
pub struct Orchestrator {
    pub(crate) project: PathBuf,
    pub(crate) tag: String,
    pub(crate) muxes: MuxSet,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) bus: Arc<dyn EventBus>,
    pub(crate) worktrees: Option<Arc<dyn Worktrees>>,
    pub(crate) runtime: Arc<dyn LoopRuntime>,
    pub(crate) host: Arc<dyn Host>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) trust: Arc<dyn Trust>,
    pub(crate) files: Arc<dyn FileEvents>,
    pub(crate) policy: HealthPolicy,
    pub(crate) kill_grace: Duration,
    pub(crate) shared: Mutex<Shared>,
}

// The seed's background monitor moves the orchestrator into a tokio task.
const _: () = {
    const fn assert_send_sync_static<T: Send + Sync + 'static>() {}
    assert_send_sync_static::<Orchestrator>();
};

impl std::fmt::Debug for Orchestrator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Orchestrator")
            .field("project", &self.project)
            .field("server", &self.muxes.primary_server())
            .finish_non_exhaustive()
    }
}

/// Builds an [`Orchestrator`], swapping any adapter or the clock.
///
/// The builder reads no environment variable: what a process's environment says (its `PATH`,
/// whether it runs inside tmux, a socket chosen by `HYDRA_TMUX_SOCKET`) is passed in by the
/// caller, or taken at once with [`Builder::from_env`]. Settings that cannot be honoured
/// together make [`Builder::build`] fail rather than being ignored.
#[derive(Default)]
pub struct Builder {
    project: Option<PathBuf>,
    mux: Option<Arc<dyn Multiplexer>>,
    mux_factory: Option<MuxFactory>,
    tmux_socket: Option<String>,
    inside_tmux: bool,
    long_lived: bool,
    store: Option<Arc<dyn Store>>,
    bus: Option<Arc<dyn EventBus>>,
    mail: bool,
    worktrees: Option<Option<Arc<dyn Worktrees>>>,
    runtime: Option<Arc<dyn LoopRuntime>>,
    host: Option<Arc<dyn Host>>,
    clock: Option<Arc<dyn Clock>>,
    trust: Option<Arc<dyn Trust>>,
    files: Option<Arc<dyn FileEvents>>,
    policy: HealthPolicy,
    path_var: Option<OsString>,
    cwd: Option<PathBuf>,
    reconcile: bool,
    kill_grace: Option<Duration>,
}

impl Builder {
    /// A builder that takes from this process what the defaults need: the current directory
    /// (the project is the nearest one holding `.hydra/`, else the current directory itself),
    /// `PATH` (to find agents and bash), `TMUX` (attach switches the client inside tmux), and
    /// the user's trust file (found from `HOME` and `XDG_STATE_HOME`; `HYDRA_TRUST_ALL=1`
    /// trusts every file instead, for CI and throwaway containers).
    pub fn from_env() -> Self {
        let cwd = std::env::current_dir().ok();
        Builder {
            project: cwd.as_deref().map(find_project_root),
            cwd,
            path_var: std::env::var_os("PATH"),
            inside_tmux: std::env::var_os("TMUX").is_some_and(|v| !v.is_empty()),
            trust: Some(trust_from_env()),
            ..Builder::default()
        }
    }

    /// The project root (where `.hydra/` lives).
    pub fn project(mut self, root: impl Into<PathBuf>) -> Self {
        self.project = Some(root.into());
        self
    }
    /// Use this multiplexer (its server is where new sessions go) instead of tmux.
    pub fn multiplexer(mut self, mux: Arc<dyn Multiplexer>) -> Self {
        self.mux = Some(mux);
        self
    }
    /// How to reach the servers of records made on another server than this builder's
    /// multiplexer (by default, a tmux adapter for that server when tmux is used, none for a
    /// custom multiplexer: such records are then not judged from their pane).
    pub fn multiplexer_factory(
        mut self,
        factory: impl Fn(&MuxServer) -> Option<Arc<dyn Multiplexer>> + Send + Sync + 'static,
    ) -> Self {
        self.mux_factory = Some(Arc::new(factory));
        self
    }
    /// Use the private tmux server `tmux -L name` for new sessions.
    pub fn tmux_socket(mut self, name: impl Into<String>) -> Self {
        self.tmux_socket = Some(name.into());
        self
    }
    /// Whether this process runs inside a tmux client (then `attach` switches the client).
    pub fn inside_tmux(mut self, yes: bool) -> Self {
        self.inside_tmux = yes;
        self
    }
    /// Whether this orchestrator serves a long-lived process that refreshes again and again
    /// (a monitor, a dashboard, an embedder's loop); off by default. Then the default adapters
    /// keep what makes a refresh cheaper: the tmux adapter one control-mode client (`tmux -C`,
    /// attached read-only to a live session of this project) for its snapshots (see
    /// [`TmuxConfig::control_tag`](crate::adapters::TmuxConfig::control_tag)), and the file
    /// store and loop runtime the records and reports they parsed, each beside its file's key
    /// (an unchanged file is then stat'ed, not read; see
    /// [`FsStore::with_read_cache`](crate::adapters::FsStore::with_read_cache)). Off, the
    /// file store and loop runtime read every record and report of a refresh through a pack
    /// of them kept across processes instead (`.hydra/orchestrator/records.pack` and
    /// `reports.pack`; see [`FsStore::with_pack`](crate::adapters::FsStore::with_pack)).
    /// Adapters passed in are as their maker configured them.
    pub fn long_lived(mut self, yes: bool) -> Self {
        self.long_lived = yes;
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
    pub fn worktrees(mut self, worktrees: Option<Arc<dyn Worktrees>>) -> Self {
        self.worktrees = Some(worktrees);
        self
    }
    /// Use this loop runtime instead of the project's `.hydra/ralph/` directories.
    pub fn runtime(mut self, runtime: Arc<dyn LoopRuntime>) -> Self {
        self.runtime = Some(runtime);
        self
    }
    /// Use this host (programs, directories, process signals) instead of the POSIX one.
    pub fn host(mut self, host: Arc<dyn Host>) -> Self {
        self.host = Some(host);
        self
    }
    /// Which project files that start programs (hydra-wt hooks, notification commands, agent
    /// profiles) the user trusts; by default none (`from_env`: the user's trust file).
    pub fn trust(mut self, trust: Arc<dyn Trust>) -> Self {
        self.trust = Some(trust);
        self
    }
    /// Where a watcher learns that status files and records changed (the system's file
    /// notifications by default).
    pub fn file_events(mut self, files: Arc<dyn FileEvents>) -> Self {
        self.files = Some(files);
        self
    }
    /// Use this clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }
    /// The health policy (default stuck threshold for records that carry none).
    pub fn policy(mut self, policy: HealthPolicy) -> Self {
        self.policy = policy;
        self
    }
    /// The `PATH` on which agents and bash are found (none: only paths with a `/`).
    pub fn path_var(mut self, path: Option<OsString>) -> Self {
        self.path_var = path;
        self
    }
    /// The directory that relative program paths are taken from (default: the project).
    pub fn cwd(mut self, cwd: impl Into<PathBuf>) -> Self {
        self.cwd = Some(cwd.into());
        self
    }
    /// How long an agent gets to end after SIGTERM before SIGKILL (default 1 s).
    pub fn kill_grace(mut self, grace: Duration) -> Self {
        self.kill_grace = Some(grace);
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
    /// Errors: `Project` when the project directory cannot be opened, `Builder` for
    /// settings that cannot be honoured together (a tmux socket with a custom multiplexer, a
    /// custom bus with `with_mail`).
    pub fn build(self) -> Result<Orchestrator> {
        if self.mux.is_some() && self.tmux_socket.is_some() {
            return Err(Error::Builder(
                "use a tmux socket with a custom multiplexer; configure the multiplexer itself".into(),
            ));
        }
        if self.bus.is_some() && self.mail {
            return Err(Error::Builder(
                "connect to hydra-mail with a custom bus; pass one or the other".into(),
            ));
        }
        let project = match self.project {
            Some(p) => p,
            None => std::env::current_dir().map_err(|source| Error::Project {
                path: PathBuf::from("."),
                source,
            })?,
        };
        let project = match &self.host {
            Some(host) => host.canonical_dir(&project)?,
            None => project
                .canonicalize()
                .map_err(|source| Error::Project { path: project, source })?,
        };
        let mut notices = VecDeque::new();
        let inside_tmux = self.inside_tmux;
        let (mux, factory): (Arc<dyn Multiplexer>, Option<MuxFactory>) = match self.mux {
            Some(m) => (m, self.mux_factory),
            None => {
                let server = match self.tmux_socket {
                    Some(name) => MuxServer::Name(name),
                    None => MuxServer::Default,
                };
                let make = move |server: &MuxServer, control_tag: Option<String>| -> Arc<dyn Multiplexer> {
                    let config = orch_tmux::TmuxConfig {
                        inside_tmux,
                        control_tag,
                        ..orch_tmux::TmuxConfig::for_server(server.clone())
                    };
                    Arc::new(orch_tmux::Tmux::new(config))
                };
                // The control client serves this project's own server only.
                let primary = make(&server, self.long_lived.then(|| orch_core::project_tag(&project)));
                let factory: MuxFactory = self
                    .mux_factory
                    .unwrap_or_else(|| Arc::new(move |s: &MuxServer| Some(make(s, None))));
                (primary, Some(factory))
            }
        };
        // Files whose status changed within this margin are read again each time.
        let settle = orch_fs::SETTLE_MARGIN;
        let long_lived = self.long_lived;
        let store = self.store.unwrap_or_else(|| {
            let store = orch_store_fs::FsStore::new(&project);
            Arc::new(if long_lived {
                store.with_read_cache(settle)
            } else {
                store.with_pack(settle)
            })
        });
        let bus: Arc<dyn EventBus> = match self.bus {
            Some(b) => b,
            None if self.mail => match orch_mail::discover(&project) {
                orch_mail::Discovery::Daemon(socket) => Arc::new(orch_mail::MailBus::new(socket)),
                orch_mail::Discovery::Down { why } => Arc::new(NoopBus::down(why)),
                orch_mail::Discovery::NotConfigured => Arc::new(NoopBus::new()),
            },
            None => Arc::new(NoopBus::new()),
        };
        if let Some(why) = bus.delivery_problem() {
            notices.push_back(Notice {
                kind: NoticeKind::EventsNotDelivered,
                message: why,
            });
        }
        let host: Arc<dyn Host> = match self.host {
            Some(h) => h,
            None => Arc::new(orch_host::PosixHost::new(
                self.path_var,
                Some(self.cwd.unwrap_or_else(|| project.clone())),
            )),
        };
        let trust = self.trust.unwrap_or_else(|| Arc::new(TrustNothing));
        let orch = Orchestrator {
            tag: orch_core::project_tag(&project),
            muxes: MuxSet::new(mux, factory),
            store,
            bus,
            worktrees: self.worktrees.unwrap_or_else(|| default_worktrees(Arc::clone(&trust))),
            trust,
            files: self.files.unwrap_or_else(|| Arc::new(orch_fswatch::NotifyEvents)),
            runtime: self.runtime.unwrap_or_else(|| {
                let runtime = orch_loop::FsLoopRuntime::new(&project);
                Arc::new(if long_lived {
                    runtime.with_read_cache(settle)
                } else {
                    runtime.with_pack(project.join(".hydra/orchestrator/reports.pack"), settle)
                })
            }),
            host,
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
            policy: self.policy,
            kill_grace: self.kill_grace.unwrap_or(Duration::from_secs(1)),
            project,
            shared: Mutex::new(Shared {
                notices,
                ..Shared::default()
            }),
        };
        if self.reconcile {
            if let Err(e) = orch.refresh() {
                orch.notice(NoticeKind::Other, format!("start-up reconcile failed: {e}"));
            }
        }
        Ok(orch)
    }
}

#[cfg(feature = "worktree")]
fn default_worktrees(trust: Arc<dyn Trust>) -> Option<Arc<dyn Worktrees>> {
    Some(Arc::new(orch_wt::GitWorktrees::new().with_trust(trust)))
}

#[cfg(not(feature = "worktree"))]
fn default_worktrees(_trust: Arc<dyn Trust>) -> Option<Arc<dyn Worktrees>> {
    None
}

/// The trust of this process's user: everything with `HYDRA_TRUST_ALL=1`, else the user's
/// trust file, else (no home to keep one in) nothing.
pub fn trust_from_env() -> Arc<dyn Trust> {
    if std::env::var_os("HYDRA_TRUST_ALL").is_some_and(|v| v == "1") {
        return Arc::new(TrustAll);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let state = std::env::var_os("XDG_STATE_HOME").map(PathBuf::from);
    match orch_trust::FileTrust::location(home.as_deref(), state.as_deref()) {
        Some(path) => Arc::new(orch_trust::FileTrust::at(path)),
        None => Arc::new(TrustNothing),
    }
}

/// The project root for `dir`: the nearest ancestor (or `dir` itself) holding `.hydra/`, else
/// `dir`.
pub fn find_project_root(dir: &Path) -> PathBuf {
    find_project(dir).unwrap_or_else(|| dir.to_path_buf())
}

/// The nearest ancestor of `dir` (or `dir` itself) holding a `.hydra/` directory, if any.
pub fn find_project(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .find(|d| d.join(".hydra").is_dir())
        .map(Path::to_path_buf)
}

impl Orchestrator {
    /// A standalone orchestrator (no hydra-mail) for the project around the current directory:
    /// the nearest directory holding `.hydra/`, else the current directory itself, where
    /// `.hydra/` is created by the first spawn. It finds agents on this process's `PATH`.
    ///
    /// Never fails: when the current directory cannot be used (deleted, unreadable), the
    /// orchestrator works on `.` without reconciling, and the problem is the first of its
    /// [`take_notices`](Self::take_notices); calls that need the broken part fail then.
    pub fn new() -> Self {
        match Builder::from_env().reconcile(true).build() {
            Ok(o) => o,
            Err(e) => {
                let fallback = Builder::from_env().project(".").reconcile(false).build();
                let o = fallback.unwrap_or_else(|_| Orchestrator::bare());
                o.notice(NoticeKind::Other, format!("could not open the project: {e}"));
                o
            }
        }
    }

    /// The last resort of [`new`](Self::new): the default adapters on `.` as given.
    fn bare() -> Self {
        let project = PathBuf::from(".");
        let make = |s: &MuxServer| -> Arc<dyn Multiplexer> {
            Arc::new(orch_tmux::Tmux::new(orch_tmux::TmuxConfig::for_server(s.clone())))
        };
        Orchestrator {
            tag: orch_core::project_tag(&project),
            muxes: MuxSet::new(
                make(&MuxServer::Default),
                Some(Arc::new(move |s: &MuxServer| Some(make(s)))),
            ),
            store: Arc::new(orch_store_fs::FsStore::new(&project)),
            bus: Arc::new(NoopBus::new()),
            worktrees: default_worktrees(trust_from_env()),
            trust: trust_from_env(),
            files: Arc::new(orch_fswatch::NotifyEvents),
            runtime: Arc::new(orch_loop::FsLoopRuntime::new(&project)),
            host: Arc::new(orch_host::PosixHost::new(std::env::var_os("PATH"), None)),
            clock: Arc::new(SystemClock),
            policy: HealthPolicy::default(),
            kill_grace: Duration::from_secs(1),
            project,
            shared: Mutex::new(Shared::default()),
        }
    }

    /// An orchestrator for `project` that publishes lifecycle events to the project's
    /// hydra-mail daemon (standalone when the project has none; when one is configured but not
    /// running, that is the first of its [`take_notices`](Self::take_notices)). It finds agents
    /// on this process's `PATH`.
    ///
    /// Errors: `Project` when `project` cannot be opened.
    pub fn with_mail(project: &Path) -> Result<Self> {
        Builder::from_env().project(project).with_mail().reconcile(true).build()
    }

    /// A builder to swap adapters and the clock.
    pub fn builder() -> Builder {
        Builder::default()
    }

    pub(crate) fn shared(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn notice(&self, kind: NoticeKind, message: String) {
        let mut shared = self.shared();
        // The same words twice in a row tell nothing new.
        if shared.notices.back().is_some_and(|n| n.message == message) {
            return;
        }
        if shared.notices.len() == MAX_NOTICES {
            shared.notices.pop_front();
        }
        shared.notices.push_back(Notice { kind, message });
    }

    /// Tells `message` once in this orchestrator's life (a standing condition, like a
    /// read-only store, found again by every refresh).
    pub(crate) fn notice_once(&self, kind: NoticeKind, message: String) {
        {
            let mut shared = self.shared();
            if shared.said.contains(&message) {
                return;
            }
            shared.said.push(message.clone());
        }
        self.notice(kind, message);
    }

    pub(crate) fn load_problems(&self, problems: Vec<LoadProblem>, newer: Vec<LoadProblem>) {
        for p in problems {
            let moved = p
                .quarantined
                .as_ref()
                .map(|q| format!(", moved to {}", q.display()))
                .unwrap_or_default();
            self.notice(
                NoticeKind::UnreadableRecord,
                format!("unreadable record {}{moved}: {}", p.path.display(), p.reason),
            );
        }
        for p in newer {
            self.notice_once(
                NoticeKind::NewerRecord,
                format!("record {}: {}", p.path.display(), p.reason),
            );
        }
    }

    /// The notices gathered since the last call, oldest first (at most the last 100): things
    /// worth telling a person that were not errors (events not delivered, an unreadable
    /// record moved aside, a read-only project, a clean-up that left something behind).
    pub fn take_notices(&self) -> Vec<Notice> {
        self.shared().notices.drain(..).collect()
    }

    /// Whether this orchestrator's user trusts `contents` of the project file `file` (one that
    /// can make hydra start programs).
    pub fn trusts(&self, file: &Path, contents: &[u8]) -> bool {
        self.trust.is_trusted(file, contents)
    }

    /// The project root.
    pub fn project(&self) -> &Path {
        &self.project
    }

    /// The tag that marks this project's tmux sessions.
    pub fn project_tag(&self) -> &str {
        &self.tag
    }

    /// The tmux server new sessions go to.
    pub fn server(&self) -> MuxServer {
        self.muxes.primary_server().clone()
    }

    /// Leftovers found by the last refresh: this project's tmux sessions without a record,
    /// and untagged `hydralph-*` sessions of other tools.
    pub fn last_orphans(&self) -> Orphans {
        self.shared().orphans.clone()
    }

    /// The layout of `id`'s runtime directory (`.hydra/ralph/<id>/`): where its log, status
    /// and inbox are.
    pub fn runtime_layout(&self, id: &SessionId) -> orch_core::RuntimeLayout {
        orch_core::RuntimeLayout::new(&self.project, id)
    }

    /// The stored record of `id`, as it is (no refresh).
    ///
    /// Errors: `Id` for an invalid id, `NotFound`, `Store`.
    pub fn record(&self, id: &SessionId) -> Result<SessionRecord> {
        id.validate()?;
        self.store.load(id)?.ok_or_else(|| Error::NotFound(id.to_string()))
    }

    /// How long this process has held the store's lock (as the store measures it).
    pub fn lock_stats(&self) -> orch_core::LockStats {
        self.store.lock_stats()
    }

    /// Waits at most `timeout` for published events to reach the bus.
    ///
    /// Errors: `Bus(FlushTimeout)` with the number of events still queued.
    pub fn flush_events(&self, timeout: Duration) -> Result<()> {
        self.bus.flush(timeout).map_err(Error::from)
    }

    /// Why events are not reaching hydra-mail right now, if they are not.
    pub fn delivery_problem(&self) -> Option<String> {
        self.bus.delivery_problem()
    }

    /// Subscribes to hydra-mail channels (e.g. `ralph:complete`). Must be called from within a
    /// tokio runtime.
    ///
    /// Errors: `Bus(Standalone)` without a daemon, `Bus(NoRuntime)` outside a tokio runtime.
    pub fn subscribe(&self, channels: &[&str]) -> Result<Box<dyn orch_core::Subscription>> {
        self.bus.subscribe(channels).map_err(Error::from)
    }

    pub(crate) fn publish(&self, events: Vec<LifecycleEvent>) {
        for ev in events {
            if let Err(e) = self.bus.publish(&ev) {
                self.notice(
                    NoticeKind::EventsNotDelivered,
                    format!("event {} not published: {e}", ev.channel),
                );
            }
        }
    }
}

impl Default for Orchestrator {
    fn default() -> Self {
        Self::new()
    }
}
