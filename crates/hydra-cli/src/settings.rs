//! The effective configuration of a command: each value from its flag (or, for the monitor, the
//! environment), else `.hydra/hydra.toml`, else the built-in default, and where it came from
//! (`hydra config` prints both).

use anyhow::{bail, Result};
use orch_config::{Config, Dur};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where a value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The built-in default.
    Default,
    /// `.hydra/hydra.toml`.
    File,
    /// A flag of this command.
    Flag,
    /// The environment (`HYDRA_NO_MONITOR`).
    Env,
}

impl Source {
    pub fn word(self) -> &'static str {
        match self {
            Source::Default => "default",
            Source::File => ".hydra/hydra.toml",
            Source::Flag => "flag",
            Source::Env => "environment",
        }
    }
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Set<T> {
    pub value: T,
    pub source: Source,
}

/// The flag, else the file, else the default.
pub fn pick<T>(flag: Option<T>, file: Option<T>, default: T) -> Set<T> {
    match (flag, file) {
        (Some(value), _) => Set {
            value,
            source: Source::Flag,
        },
        (None, Some(value)) => Set {
            value,
            source: Source::File,
        },
        (None, None) => Set {
            value: default,
            source: Source::Default,
        },
    }
}

/// Whether `HYDRA_NO_MONITOR` is set (not empty): commands then neither ask the project's
/// monitor to look (`ls` looks itself) nor start one (`spawn`).
pub fn no_monitor() -> bool {
    std::env::var_os("HYDRA_NO_MONITOR").is_some_and(|v| !v.is_empty())
}

/// The project's `hydra.toml` as loaded (defaults when there is none).
pub struct Settings {
    /// The file, when there is one.
    pub path: Option<PathBuf>,
    /// Its bytes (what trust is checked on).
    pub bytes: Vec<u8>,
    /// What it says.
    pub config: Config,
}

/// The notification settings, resolved.
#[derive(Debug, Clone)]
pub struct Notify {
    pub on: Set<Vec<String>>,
    pub command: Set<Option<Vec<String>>>,
    pub timeout: Set<Duration>,
    pub desktop: Set<bool>,
    pub tmux: Set<bool>,
    pub bell: Set<bool>,
    pub coalesce: Set<Duration>,
}

fn dur(d: Option<Dur>) -> Option<Duration> {
    d.map(|d| d.0)
}

impl Settings {
    /// Loads `<root>/.hydra/hydra.toml`.
    ///
    /// Errors: the file does not parse (the message names the key and what is allowed).
    pub fn load(root: &Path) -> Result<Settings> {
        Ok(match Config::load(root)? {
            Some((config, bytes)) => Settings {
                path: Some(Config::path(root)),
                bytes,
                config,
            },
            None => Settings {
                path: None,
                bytes: Vec::new(),
                config: Config::default(),
            },
        })
    }

    pub fn stuck_after(&self, flag: Option<Duration>) -> Set<Duration> {
        pick(flag, dur(self.config.health.stuck_after), Duration::from_secs(15 * 60))
    }

    pub fn no_progress_limit(&self, flag: Option<u32>) -> Set<u32> {
        pick(flag, self.config.health.no_progress_limit, 3)
    }

    /// Whether `spawn` starts the project's monitor in the background when none runs: on
    /// unless `[monitor] auto = false`, and never with `HYDRA_NO_MONITOR` set (see
    /// [`no_monitor`]).
    pub fn monitor_auto(&self) -> Set<bool> {
        if no_monitor() {
            return Set {
                value: false,
                source: Source::Env,
            };
        }
        pick(None, self.config.monitor.auto, true)
    }

    pub fn monitor_tick(&self) -> Set<Duration> {
        pick(None, dur(self.config.monitor.tick), Duration::from_secs(30))
    }

    pub fn notify(&self) -> Notify {
        let n = &self.config.notify;
        Notify {
            on: pick(
                None,
                n.on.clone(),
                orch_config::DEFAULT_NOTIFY_ON.iter().map(|s| (*s).to_owned()).collect(),
            ),
            command: pick(None, n.command.clone().map(Some), None),
            timeout: pick(None, dur(n.timeout), Duration::from_secs(10)),
            desktop: pick(None, n.desktop, cfg!(feature = "desktop-notify")),
            tmux: pick(None, n.tmux, true),
            bell: pick(None, n.bell, false),
            coalesce: pick(None, dur(n.coalesce), Duration::from_secs(10)),
        }
    }

    /// Refuses to go on when the file starts programs and `trusted` says its content is not
    /// trusted: says which file, what it would run, and `hydra trust`.
    pub fn require_trust(&self, what: &str, commands: &[String], trusted: bool) -> Result<()> {
        if commands.is_empty() || trusted {
            return Ok(());
        }
        let file = self.path.as_deref().unwrap_or(Path::new(".hydra/hydra.toml"));
        bail!(
            "{} would run {} for {what}, and this content of it is not trusted; review it, then `hydra trust`",
            file.display(),
            commands.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flag_beats_the_file_which_beats_the_default() {
        assert_eq!(pick(Some(1), Some(2), 3).source, Source::Flag);
        assert_eq!(
            pick(None, Some(2), 3),
            Set {
                value: 2,
                source: Source::File
            }
        );
        assert_eq!(pick(None::<u8>, None, 3).source, Source::Default);
    }

    #[test]
    fn untrusted_commands_are_refused_with_what_they_would_run() {
        let s = Settings {
            path: Some(PathBuf::from("/p/.hydra/hydra.toml")),
            bytes: Vec::new(),
            config: Config::default(),
        };
        let err = s
            .require_trust("notifications", &["[notify] command: touch x".into()], false)
            .expect_err("untrusted");
        let msg = err.to_string();
        assert!(
            msg.contains("/p/.hydra/hydra.toml") && msg.contains("touch x") && msg.contains("hydra trust"),
            "{msg}"
        );
        s.require_trust("notifications", &[], false).expect("nothing to run");
    }
}
