//! What every command starts from: the project (found by walking up to a `.hydra/`, as git
//! finds `.git`, and never made by a command other than `init`), its settings, and the
//! orchestrator, opened with this process's environment.

use crate::settings::Settings;
use crate::Global;
use anyhow::{bail, Context, Result};
use hydra_orchestrator::{Builder, HealthPolicy, NoticeKind, Orchestrator, SessionId};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The project root the command works on.
///
/// Errors: "not a hydra project" when neither `--project` nor the current directory (or one
/// above it) holds `.hydra/`; nothing is made.
pub fn project_root(g: &Global) -> Result<PathBuf> {
    match &g.project {
        Some(dir) => {
            let dir = dir
                .canonicalize()
                .with_context(|| format!("cannot open the project {}", dir.display()))?;
            if !dir.join(".hydra").is_dir() {
                bail!(
                    "not a hydra project (no .hydra/ in {}); run `hydra init` there",
                    dir.display()
                );
            }
            Ok(dir)
        }
        None => {
            let here = std::env::current_dir().context("cannot read the current directory")?;
            hydra_orchestrator::find_project(&here).ok_or_else(|| {
                anyhow::anyhow!(
                    "not a hydra project (no .hydra/ in {} or above); run `hydra init`",
                    here.display()
                )
            })
        }
    }
}

/// Whether to colour the output: `--color always|never`, or on a terminal without `NO_COLOR`.
pub fn use_color(g: &Global) -> bool {
    match g.color.as_str() {
        "always" => true,
        "never" => false,
        _ => std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal(),
    }
}

/// The project, its settings and its orchestrator.
pub struct Ctx {
    pub g: Global,
    pub root: PathBuf,
    pub settings: Settings,
    pub orch: Arc<Orchestrator>,
    pub color: bool,
}

impl Ctx {
    /// Opens the project of `g`.
    ///
    /// Errors: not a project, an invalid `hydra.toml`, an unusable project directory.
    pub fn open(g: &Global) -> Result<Ctx> {
        Ctx::open_with(g, false)
    }

    /// [`open`](Self::open) for a command that runs until stopped and looks again and again
    /// (`monitor`, `top`, `ls --watch`): its snapshots go through one control-mode tmux
    /// client instead of a tmux process each, and unchanged records and reports are not read
    /// again (see `Builder::long_lived`).
    pub fn open_long_lived(g: &Global) -> Result<Ctx> {
        Ctx::open_with(g, true)
    }

    fn open_with(g: &Global, long_lived: bool) -> Result<Ctx> {
        let root = project_root(g)?;
        let settings = Settings::load(&root)?;
        let mut b = Builder::from_env()
            .project(&root)
            .with_mail()
            .policy(HealthPolicy::default().with_stuck_after(settings.stuck_after(None).value))
            .reconcile(false)
            .long_lived(long_lived);
        if let Some(s) = &g.tmux_socket {
            b = b.tmux_socket(s.clone());
        }
        let orch = Arc::new(b.build().context("cannot open the project")?);
        Ok(Ctx {
            g: g.clone(),
            root,
            settings,
            orch,
            color: use_color(g),
        })
    }

    /// The session `text` names: an id, a name, or a unique prefix of an id.
    pub fn id(&self, text: &str) -> Result<SessionId> {
        Ok(self.orch.resolve(text)?)
    }

    /// Whether this process's user trusts the project's `hydra.toml` as it is.
    pub fn config_trusted(&self) -> bool {
        match &self.settings.path {
            Some(p) => self.orch.trusts(p, &self.settings.bytes),
            None => true,
        }
    }

    /// Prints what the library noticed (a record moved aside, a read-only project); with
    /// `events`, also that events did not reach a configured hydra-mail.
    pub fn notices(&self, events: bool) {
        for n in self.orch.take_notices() {
            if n.kind == NoticeKind::EventsNotDelivered && !events {
                continue;
            }
            eprintln!("hydra: {n}");
        }
    }

    /// Ends a command that changed something: its events are delivered (never waiting long
    /// for a daemon) and what the library noticed is told.
    pub fn finish(&self) {
        let _ = self.orch.flush_events(Duration::from_secs(1));
        self.notices(true);
    }

    /// Ends a command whose answer is `text`: on stdout when it went as asked (`ok`, exit
    /// 0), else on stderr (exit 1); then [`finish`](Self::finish). The exit code.
    pub fn outcome(&self, text: &str, ok: bool) -> i32 {
        if ok {
            print!("{text}");
        } else {
            eprint!("{text}");
        }
        self.finish();
        if ok {
            0
        } else {
            1
        }
    }
}
