//! `spawn`: validate everything first, book a `Starting` record under the lock (with a lease
//! saying this process is still creating it), create the worktree, runtime directory and tmux
//! session outside the lock, then finalize in a second short transaction. A failure at any
//! step undoes the steps already done and removes the record; a spawn killed midway leaves a
//! record that the next refresh turns `Failed("spawn interrupted")` and cleans up.

use crate::error::{Error, Result};
use crate::ops::claims;
use crate::orchestrator::Orchestrator;
use crate::txn::Scope;
use orch_core::{
    AgentProfile, Channel, ConfigError, Lease, LifecycleEvent, Prd, RuntimeLayout, RuntimeRequest, Saga, SessionConfig,
    SessionId, SessionRecord, SpawnSpec, WorktreeRequest,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The validated, resolved parts of a spawn request.
pub(crate) struct Checked {
    pub(crate) working_dir: PathBuf,
    pub(crate) profile: AgentProfile,
    pub(crate) agent: PathBuf,
    pub(crate) bash: PathBuf,
    pub(crate) prd: Vec<u8>,
    pub(crate) parsed: Prd,
    pub(crate) prd_path: PathBuf,
    pub(crate) loop_script: Option<Vec<u8>>,
}

fn bad(field: &'static str, why: String) -> Error {
    Error::Config(ConfigError::new(field, why))
}

impl Orchestrator {
    /// Checks a spawn request against the world without changing anything: each failure
    /// names the field and what is allowed.
    pub(crate) fn check(&self, config: &SessionConfig) -> Result<Checked> {
        config.validate()?;
        let wd = orch_fs::absolute(&self.project, &config.working_dir);
        let working_dir = self.host.canonical_dir(&wd).map_err(|e| {
            let cause = std::error::Error::source(&e)
                .map(ToString::to_string)
                .unwrap_or_default();
            bad(
                "working_dir",
                format!("{} is not usable ({cause}); give an existing directory", wd.display()),
            )
        })?;
        if !working_dir.starts_with(&self.project) {
            return Err(bad(
                "working_dir",
                format!(
                    "{} is outside the project {}; give a directory inside it",
                    working_dir.display(),
                    self.project.display()
                ),
            ));
        }
        let profile = resolve_profile(config);
        let agent = self.host.find_program(profile.program_name()).ok_or_else(|| {
            bad(
                "agent_cli",
                format!(
                    "{:?} is not an executable on PATH; install it or give its path",
                    profile.program_name()
                ),
            )
        })?;
        let prd_path = orch_fs::absolute(&self.project, &config.prd_path);
        let prd = self.runtime.read_input(&prd_path)?;
        let parsed = Prd::parse(&prd).map_err(|why| bad("prd_path", format!("{}: {why}", prd_path.display())))?;
        let bash = self
            .host
            .find_program("bash")
            .ok_or(Error::LoopNeeds { program: "bash" })?;
        let loop_script = match &config.loop_script {
            Some(p) => {
                let path = orch_fs::absolute(&self.project, p);
                Some(
                    self.runtime
                        .read_input(&path)
                        .map_err(|e| bad("loop_script", e.to_string()))?,
                )
            }
            None => None,
        };
        if config.use_worktree && self.worktrees.is_none() {
            return Err(bad(
                "use_worktree",
                "worktree support is not enabled; build with the \"worktree\" feature".into(),
            ));
        }
        Ok(Checked {
            working_dir,
            profile,
            agent,
            bash,
            prd,
            parsed,
            prd_path,
            loop_script,
        })
    }

    /// A fresh random id with no record.
    fn new_id(&self) -> Result<SessionId> {
        for _ in 0..64 {
            let bytes = uuid::Uuid::new_v4().into_bytes();
            let id = SessionId::from_random([bytes[0], bytes[1], bytes[2], bytes[3]]);
            if self.store.load(&id)?.is_none() {
                return Ok(id);
            }
        }
        Err(Error::NoFreeId)
    }

    /// The tmux session that runs `rec`'s loop, starting at `start_iteration`.
    pub(crate) fn loop_spec(&self, rec: &SessionRecord, bash: &Path, agent: &Path, start_iteration: u32) -> SpawnSpec {
        let rt = RuntimeLayout::new(&self.project, &rec.id);
        let s = |p: &Path| p.to_string_lossy().into_owned();
        let delay = Duration::from_millis(rec.loop_delay_ms);
        let mut env = vec![
            ("HYDRALPH_SESSION_ID".to_owned(), rec.id.0.clone()),
            ("HYDRALPH_AGENT".to_owned(), s(agent)),
            ("HYDRALPH_FLAGS".to_owned(), rec.agent_flags.clone()),
            ("HYDRALPH_MAX_ITERATIONS".to_owned(), rec.max_iterations.to_string()),
            ("HYDRALPH_PRD".to_owned(), s(&rt.prd())),
            ("HYDRALPH_PROGRESS".to_owned(), s(&rt.progress())),
            ("HYDRALPH_PROMPT".to_owned(), s(&rt.prompt())),
            ("HYDRALPH_STATUS".to_owned(), s(&rt.report_file())),
            ("HYDRALPH_LOG".to_owned(), s(&rt.log())),
            (
                "HYDRALPH_START_ITERATION".to_owned(),
                start_iteration.max(1).to_string(),
            ),
            ("HYDRALPH_DELAY".to_owned(), format!("{:.3}", delay.as_secs_f64())),
            ("HYDRALPH_RUN".to_owned(), rec.run.to_string()),
        ];
        if let Some(port) = rec.allocated_port {
            env.push(("PORT".to_owned(), port.to_string()));
            env.push(("HYDRA_PORT".to_owned(), port.to_string()));
        }
        // The profile: its arguments one variable each (never a string to split), how the
        // prompt goes in, what its limit messages say, where it reports cost.
        if let Some(p) = &rec.profile {
            let args = p.command.get(1..).unwrap_or_default();
            env.push(("HYDRALPH_ARGC".to_owned(), args.len().to_string()));
            for (k, a) in args.iter().enumerate() {
                env.push((format!("HYDRALPH_ARG_{}", k + 1), a.clone()));
            }
            env.push(("HYDRALPH_PROMPT_MODE".to_owned(), p.prompt.as_str().to_owned()));
            if !p.usage_limit.is_empty() {
                env.push(("HYDRALPH_LIMIT_PATTERNS".to_owned(), p.usage_limit.join("\n")));
            }
            if let Some(c) = &p.cost {
                env.push(("HYDRALPH_COST_PATTERN".to_owned(), c.clone()));
            }
            if let Some(t) = &p.tokens {
                env.push(("HYDRALPH_TOKENS_PATTERN".to_owned(), t.clone()));
            }
            for (k, v) in &p.env {
                env.push((k.clone(), v.clone()));
            }
        }
        env.push((
            "HYDRALPH_NO_PROGRESS_LIMIT".to_owned(),
            rec.no_progress_limit.to_string(),
        ));
        if let Some(m) = rec.max_cost_micros {
            env.push(("HYDRALPH_MAX_COST".to_owned(), orch_core::usd_text(m)));
        }
        // A restarted loop goes on counting from what was reported.
        if let Some(c) = rec.cost_micros {
            env.push(("HYDRALPH_COST_START".to_owned(), orch_core::usd_text(c)));
        }
        if let Some(t) = rec.tokens {
            env.push(("HYDRALPH_TOKENS_START".to_owned(), t.to_string()));
        }
        // A user's own loop script runs under a wrapper that also keeps its output in the log.
        let argv = if rec.loop_script.is_some() {
            vec![
                s(bash),
                "-c".to_owned(),
                orch_loop::EXTERNAL_LOOP_WRAPPER.to_owned(),
                "hydralph-external".to_owned(),
                s(&rt.script()),
            ]
        } else {
            vec![s(bash), s(&rt.script())]
        };
        SpawnSpec {
            name: rec.tmux_session.clone(),
            argv,
            env,
            cwd: rec.agent_dir().to_path_buf(),
            tag: Some(self.tag.clone()),
        }
    }

    /// Starts a session: validates everything first (each failure names the field), books its
    /// record, then creates the worktree, runtime directory and tmux session; a failure at any
    /// step undoes the earlier ones. Returns the new session's id.
    ///
    /// Errors: `Config` naming the bad field, `LoopNeeds` (bash), `ReadOnly`, `Worktree`,
    /// `Runtime`, `Mux`, `Store`, `SpawnAborted` when another command ended the session while
    /// it was starting, `Rollback` when undoing left something behind.
    pub fn spawn(&self, config: SessionConfig) -> Result<SessionId> {
        self.spawn_held(config, false)
    }

    /// [`spawn`](Self::spawn); with `hold`, the loop starts paused before its first
    /// iteration (no agent runs) until its pause marker is cleared (as `spawn_parallel` does
    /// once every session exists).
    pub(crate) fn spawn_held(&self, config: SessionConfig, hold: bool) -> Result<SessionId> {
        let checked = self.check(&config)?;
        let mut cfg = config;
        cfg.working_dir = checked.working_dir.clone();
        cfg.prd_path = checked.prd_path.clone();
        cfg.agent_profile = Some(checked.profile.clone());
        let mut shared = None;
        let mut reserved: Vec<u16> = Vec::new();
        let planned = self.transact(Scope::Lock, |txn| {
            let id = self.new_id()?;
            let records = self.store.load_all()?.records;
            if let Some(name) = &cfg.name {
                check_name_free(&records, name, &id)?;
            }
            let claimed = claims::claim(&cfg, &checked.parsed, &records)?;
            if !cfg.use_worktree {
                if let Some(other) = claims::sharing(&records, &checked.working_dir) {
                    if cfg.exclusive {
                        return Err(bad(
                            "working_dir",
                            format!(
                                "live session {} already works in {} without a worktree; give this one a worktree, or do not ask for exclusive",
                                other.id,
                                checked.working_dir.display()
                            ),
                        ));
                    }
                    shared = Some(claims::sharing_note(&id, &checked.working_dir, other));
                }
            }
            let mut rec = SessionRecord::new(id.clone(), &cfg, txn.now);
            rec.claimed = Some(claimed);
            rec.runtime_dir = Some(RuntimeLayout::new(&self.project, &id).dir().to_path_buf());
            rec.tmux_server = Some(self.server());
            rec.project_tag = Some(self.tag.clone());
            if cfg.use_worktree {
                let branch = cfg.branch_name.clone().unwrap_or_else(|| id.default_branch());
                // Where a wt.toml's `[worktrees] directory` puts it (so hydra-wt finds it),
                // else the seed's place.
                let configured = match &self.worktrees {
                    Some(wt) => wt.path_for(&checked.working_dir, &branch)?,
                    None => None,
                };
                rec.worktree_path = Some(
                    configured.unwrap_or_else(|| self.project.join(".hydra").join("worktrees").join(id.tmux_name())),
                );
                rec.branch_name = Some(branch);
                // Ports that records hold, even where the registry lost them.
                reserved = records.iter().filter_map(|r| r.allocated_port).collect();
            }
            rec.spawning = Some(Lease::new(txn.me, txn.now));
            // Neither of a spawn's records waits for the disk (half of a spawn's time here):
            // a power failure ends the session anyway, and a booking lost with it leaves at
            // most a fresh worktree, which prune finds as an orphan.
            txn.save_unsynced(&mut rec)?;
            Ok(rec)
        })?;
        let id = planned.id.clone();
        let mut saga = Saga::new();
        let made = self.make_parts(&planned, &checked, hold, &reserved, &mut saga);
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
        let made = match made {
            Ok(m) => m,
            Err(e) => {
                let err = fail(e, saga);
                // The record goes too; if this fails, the lease (this process) marks it as a
                // spawn that a later refresh fails and cleans up.
                let _ = self.transact(Scope::Lock, |txn| {
                    if self
                        .store
                        .load(&id)?
                        .is_some_and(|r| r.spawning.is_some_and(|l| l.pid == txn.me))
                    {
                        txn.remove(&id)?;
                    }
                    Ok(())
                });
                return Err(err);
            }
        };
        let finished = self.transact(Scope::Lock, |txn| {
            let Some(mut rec) = self.store.load(&id)? else {
                return Ok(false);
            };
            if rec.state.is_terminal() || rec.spawning.is_none_or(|l| l.pid != txn.me) {
                return Ok(false);
            }
            rec.spawning = None;
            rec.worktree_path = made.worktree_path.clone().or(rec.worktree_path);
            rec.allocated_port = made.port;
            rec.base_commit = made.base_commit.clone();
            rec.base_branch = made.base_branch.clone();
            txn.save_unsynced(&mut rec)?;
            let mut ev = LifecycleEvent::new(Channel::Spawned, &id, txn.now)
                .with("state", rec.state.name())
                .with("agent", rec.agent_cli.clone())
                .with("working_dir", rec.agent_dir().to_string_lossy().into_owned());
            if let Some(b) = &rec.branch_name {
                ev = ev.with("branch", b.clone());
            }
            if let Some(p) = rec.allocated_port {
                ev = ev.with("port", p);
            }
            if let Some(n) = &rec.name {
                ev = ev.with("name", n.clone());
            }
            txn.emit(ev);
            if let (Some(branch), Some(port), Some(path)) = (&rec.branch_name, rec.allocated_port, &rec.worktree_path) {
                txn.emit(LifecycleEvent::worktree_created(&id, branch, port, path, txn.now));
            }
            Ok(true)
        });
        match finished {
            Ok(true) => {
                saga.commit();
                for w in &made.warnings {
                    self.notice(crate::NoticeKind::Worktree, format!("{id}'s worktree: {w}"));
                }
                if let Some(note) = shared {
                    self.notice(crate::NoticeKind::SharedCheckout, note);
                }
                Ok(id)
            }
            Ok(false) => Err(fail(Error::SpawnAborted { id }, saga)),
            Err(e) => Err(fail(e, saga)),
        }
    }

    /// Creates the session's parts, registering each undo in `saga`.
    fn make_parts<'s>(
        &'s self,
        rec: &SessionRecord,
        checked: &Checked,
        hold: bool,
        reserved: &[u16],
        saga: &mut Saga<'s>,
    ) -> Result<Made> {
        let mut made = Made::default();
        if let (true, Some(wt), Some(branch)) = (rec.use_worktree, self.worktrees.as_ref(), rec.branch_name.clone()) {
            let req = WorktreeRequest {
                repo: checked.working_dir.clone(),
                branch: branch.clone(),
                base: rec.base_ref.clone(),
                path: rec.worktree_path.clone(),
                session: rec.id.clone(),
                reserved_ports: reserved.to_vec(),
            };
            let info = wt.create(&req)?;
            made.warnings = info.warnings.clone();
            let repo = checked.working_dir.clone();
            let created = info.created_branch;
            saga.on_undo("worktree", move || {
                wt.remove(&repo, &branch, true).map_err(|e| e.to_string())?;
                // A branch this spawn made holds nothing yet: it goes too.
                if created {
                    wt.delete_branch(&repo, &branch).map_err(|e| e.to_string())?;
                }
                Ok(())
            });
            made.worktree_path = Some(info.path);
            made.port = info.port;
            made.base_commit = info.base_commit;
            made.base_branch = info.base_branch;
        }
        let mut launched = rec.clone();
        launched.worktree_path = made.worktree_path.clone().or(launched.worktree_path);
        launched.allocated_port = made.port;
        // The session's copy holds only the stories it claimed, so its loop counts those.
        let copy = match (&rec.claimed, std::str::from_utf8(&checked.prd)) {
            (Some(claimed), Ok(text)) => orch_core::prd::scoped(text, claimed)
                .map_err(|why| bad("prd_path", format!("{}: {why}", checked.prd_path.display())))?
                .into_bytes(),
            _ => checked.prd.clone(),
        };
        self.runtime.create(&RuntimeRequest {
            id: &rec.id,
            prd: &copy,
            agent_dir: launched.agent_dir(),
            external_loop: checked.loop_script.as_deref(),
        })?;
        let id = rec.id.clone();
        saga.on_undo("runtime dir", move || {
            self.runtime
                .remove(&id, orch_core::LogDisposal::Delete)
                .map_err(|e| e.to_string())
        });
        if hold {
            // The loop waits on this marker before its first iteration.
            self.runtime.set_paused(&rec.id, true)?;
        }
        let spec = self.loop_spec(&launched, &checked.bash, &checked.agent, 1);
        self.muxes.primary().create(&spec)?;
        let name = rec.tmux_session.clone();
        saga.on_undo("tmux session", move || {
            self.muxes.primary().kill(&name).map_err(|e| e.to_string())
        });
        Ok(made)
    }
}

/// Refuses `name` when a live session of the project already has it (or an id equals it).
fn check_name_free(records: &[SessionRecord], name: &str, id: &SessionId) -> Result<()> {
    match records
        .iter()
        .find(|r| r.id != *id && !r.state.is_terminal() && (r.name.as_deref() == Some(name) || r.id.as_str() == name))
    {
        Some(holder) => Err(bad(
            "name",
            format!("{name:?} is taken by live session {}; pick another name", holder.id),
        )),
        None => Ok(()),
    }
}

/// How `config` runs its agent: its own profile, else the built-in profile named by
/// `agent_cli`, else `agent_cli` as a plain program reading its prompt on stdin.
pub(crate) fn resolve_profile(config: &SessionConfig) -> AgentProfile {
    config
        .agent_profile
        .clone()
        .or_else(|| orch_core::builtin_profile(&config.agent_cli))
        .unwrap_or_else(|| AgentProfile::program(&config.agent_cli))
}

/// What `make_parts` created.
#[derive(Debug, Default)]
struct Made {
    worktree_path: Option<PathBuf>,
    port: Option<u16>,
    base_commit: Option<String>,
    base_branch: Option<String>,
    /// What the worktree adapter skipped (a missing env template).
    warnings: Vec<String>,
}
