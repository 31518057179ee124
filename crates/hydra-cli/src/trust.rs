//! `hydra trust`: the user says which content of the project's files that can start programs
//! (hydra-wt's `post_create` hooks in `.hydra/wt.toml`, the notification command and agent
//! profiles in `.hydra/hydra.toml`) hydra may run. The record is kept in the user's own state
//! directory, never in the repository.

use anyhow::{bail, Context, Result};
use hydra_orchestrator::adapters::{digest, FileTrust, WtConfig};
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

/// A project file and the programs it can make hydra start.
pub struct Runs {
    /// The file.
    pub file: PathBuf,
    /// Its content now.
    pub contents: Vec<u8>,
    /// What it would run, one line each (empty: it runs nothing).
    pub commands: Vec<String>,
}

/// The project's files that can start programs and exist, with what each would run.
pub fn files(root: &Path) -> Result<Vec<Runs>> {
    let mut out = Vec::new();
    let wt = WtConfig::path(root);
    if let Ok(contents) = std::fs::read(&wt) {
        let commands = match WtConfig::load(root) {
            Ok(cfg) => cfg
                .hooks
                .post_create
                .iter()
                .map(|h| format!("post_create hook: sh -c {h:?}"))
                .collect(),
            Err(e) => bail!("{e}"),
        };
        out.push(Runs {
            file: wt,
            contents,
            commands,
        });
    }
    let hydra = orch_config::Config::path(root);
    if let Ok(contents) = std::fs::read(&hydra) {
        let commands = orch_config::Config::parse(&hydra, &contents)
            .map(|c| c.commands())
            .with_context(|| format!("cannot read {}", hydra.display()))?;
        out.push(Runs {
            file: hydra,
            contents,
            commands,
        });
    }
    Ok(out)
}

/// The user's trust file, from the environment.
pub fn store() -> Result<FileTrust> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let state = std::env::var_os("XDG_STATE_HOME").map(PathBuf::from);
    FileTrust::location(home.as_deref(), state.as_deref())
        .map(FileTrust::at)
        .context("no HOME (or XDG_STATE_HOME) to keep the trust file in")
}

fn now_secs() -> u64 {
    crate::now().as_secs()
}

/// Records `runs`' current content as trusted.
pub fn record(store: &FileTrust, runs: &Runs) -> Result<()> {
    store
        .trust(&runs.file, &runs.contents, now_secs())
        .with_context(|| format!("cannot write the trust file {}", store.path().display()))
}

/// How a file stands: `trusted`, `not trusted`, `changed since trusted`, `runs nothing`.
pub fn standing(store: &FileTrust, runs: &Runs) -> &'static str {
    if runs.commands.is_empty() {
        return "runs nothing; needs no trust";
    }
    let listed = store.list().unwrap_or_default();
    match listed.iter().find(|(f, _)| *f == runs.file) {
        Some((_, t)) if t.sha256 == digest(&runs.contents) => "trusted",
        Some(_) => "changed since it was trusted: not trusted",
        None => "not trusted",
    }
}

/// `hydra trust [--revoke|--list] [--yes]`.
pub fn run(root: &Path, revoke: bool, list: bool, yes: bool) -> Result<i32> {
    let store = store()?;
    if list {
        let entries = store
            .list()
            .with_context(|| format!("cannot read {}", store.path().display()))?;
        if entries.is_empty() {
            println!("no file is trusted ({})", store.path().display());
        }
        for (file, t) in entries {
            let now = match std::fs::read(&file) {
                Ok(c) if digest(&c) == t.sha256 => "trusted",
                Ok(_) => "changed since trusted",
                Err(_) => "missing",
            };
            println!("{}  {now}", file.display());
        }
        return Ok(0);
    }
    let runs = files(root)?;
    if revoke {
        let mut any = false;
        for r in &runs {
            if store.revoke(&r.file)? {
                println!("{}: no longer trusted", r.file.display());
                any = true;
            }
        }
        if !any {
            println!("no file of this project was trusted");
        }
        return Ok(0);
    }
    let to_trust: Vec<&Runs> = runs.iter().filter(|r| !r.commands.is_empty()).collect();
    if to_trust.is_empty() {
        println!("no file of this project starts a program; nothing to trust");
        return Ok(0);
    }
    for r in &to_trust {
        println!("{} ({}) would run:", r.file.display(), standing(&store, r));
        for c in &r.commands {
            println!("  {c}");
        }
    }
    if !yes {
        if !std::io::stdin().is_terminal() {
            bail!("not trusting without a question: review the above, then run `hydra trust --yes`");
        }
        print!("trust this content? [y/N] ");
        std::io::stdout().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            println!("nothing trusted");
            return Ok(1);
        }
    }
    for r in &to_trust {
        record(&store, r)?;
        println!("trusted {} (recorded in {})", r.file.display(), store.path().display());
    }
    Ok(0)
}
