//! `orch-config` reads `.hydra/hydra.toml`, hydra-orchestrator's own project configuration
//! (hydra-mail keeps `.hydra/config.toml`, hydra-wt `.hydra/wt.toml`): spawn defaults, health
//! thresholds, the monitor, notifications and custom agent profiles. Parsing is strict: an
//! unknown key or a bad value is refused, naming the file, the key and what is allowed. A
//! missing file is the defaults. What in it can start a program (the notification command,
//! agent profiles) is listed by [`Config::commands`], so a caller can ask the user's trust
//! before running any of it.

pub use orch_core::{format_duration, parse_duration};

use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A duration written as `4h`, `30m`, `1h30m`, `90s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_duration(&text).map(Dur).map_err(serde::de::Error::custom)
    }
}

/// `[spawn]`: what `hydra spawn` uses when a flag is not given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpawnSection {
    /// Agent: a profile name (built-in or `[agents.NAME]`) or a program.
    pub agent: Option<String>,
    /// Extra arguments appended to the agent's command.
    pub flags: Option<String>,
    /// Iteration limit.
    pub max_iterations: Option<u32>,
    /// Wall-clock limit.
    pub max_duration: Option<Dur>,
    /// Give each session its own worktree.
    pub worktree: Option<bool>,
    /// Refuse a second live session in one working directory (without a worktree).
    pub exclusive: Option<bool>,
}

/// `[health]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSection {
    /// Silence after which a session is stuck.
    pub stuck_after: Option<Dur>,
    /// Iterations without progress (no commit, no PRD change, no change of the tree) after
    /// which a session is blocked; 0 turns the breaker off.
    pub no_progress_limit: Option<u32>,
}

/// `[monitor]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorSection {
    /// Start the monitor in the background when a session is spawned.
    pub auto: Option<bool>,
    /// How often the monitor looks at the clock-based rules (stuck, duration) when nothing
    /// else happens.
    pub tick: Option<Dur>,
}

/// `[notify]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifySection {
    /// The states that notify (default: blocked, stuck, completed, failed, max-iterations).
    pub on: Option<Vec<String>>,
    /// A command run per notification, as an argv list; the event comes as JSON on its stdin
    /// and as `HYDRA_EVENT`, `HYDRA_SESSION`, `HYDRA_STATE`, `HYDRA_REASON` in its environment.
    pub command: Option<Vec<String>>,
    /// How long the command may run before it is ended.
    pub timeout: Option<Dur>,
    /// A desktop notification.
    pub desktop: Option<bool>,
    /// A message in the status line of the user's tmux.
    pub tmux: Option<bool>,
    /// A terminal bell.
    pub bell: Option<bool>,
    /// Transitions of one session within this time are told as one.
    pub coalesce: Option<Dur>,
}

pub use orch_core::PromptMode;

/// `[agents.NAME]`: how an agent CLI runs headless.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSection {
    /// The program and its arguments (argv; never a shell string).
    pub command: Vec<String>,
    /// How the prompt is passed (default stdin).
    pub prompt: Option<PromptMode>,
    /// Environment set for the agent.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Text of the agent's usage-limit messages (any of them found in an iteration's output
    /// means the limit was hit).
    #[serde(default)]
    pub usage_limit: Vec<String>,
    /// The agent reads what is typed into its pane (live messages are typed to it).
    #[serde(default)]
    pub interactive: bool,
    /// A regular expression whose first group is the cost of a run in USD.
    pub cost: Option<String>,
    /// A regular expression whose first group is the tokens of a run.
    pub tokens: Option<String>,
}

impl AgentSection {
    /// The profile `name` this section describes.
    pub fn profile(&self, name: &str) -> orch_core::AgentProfile {
        orch_core::AgentProfile {
            name: name.to_owned(),
            command: self.command.clone(),
            prompt: self.prompt.unwrap_or_default(),
            env: self.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            usage_limit: self.usage_limit.clone(),
            cost: self.cost.clone(),
            tokens: self.tokens.clone(),
            interactive: self.interactive,
            docs: String::new(),
        }
    }
}

/// `.hydra/hydra.toml`, as written (absent keys are `None`: the caller's default applies).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[spawn]`.
    #[serde(default)]
    pub spawn: SpawnSection,
    /// `[health]`.
    #[serde(default)]
    pub health: HealthSection,
    /// `[monitor]`.
    #[serde(default)]
    pub monitor: MonitorSection,
    /// `[notify]`.
    #[serde(default)]
    pub notify: NotifySection,
    /// `[agents.NAME]`.
    #[serde(default)]
    pub agents: BTreeMap<String, AgentSection>,
}

/// A `hydra.toml` that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {path}: {message}")]
#[non_exhaustive]
pub struct ConfigFileError {
    /// The file.
    pub path: PathBuf,
    /// The key at fault, when known (`notify.on`).
    pub key: Option<String>,
    /// What is wrong and what is allowed.
    pub message: String,
}

/// The states a notification may be asked for.
pub const NOTIFY_STATES: &[&str] = &[
    "running",
    "paused",
    "stuck",
    "blocked",
    "waiting",
    "completed",
    "max-iterations",
    "failed",
    "killed",
];

/// The states that notify when `[notify] on` is not given.
pub const DEFAULT_NOTIFY_ON: &[&str] = &["blocked", "stuck", "completed", "failed", "max-iterations"];

/// The commented example `hydra init` writes.
pub const EXAMPLE: &str = r#"# hydra-orchestrator's configuration for this project (see `hydra config`).
# Every key is optional; a key this version does not know is an error, not ignored.
# Settings that start programs ([notify] command, [agents.*]) run nothing until you trust
# this file's content with `hydra trust` (again after every edit).

[spawn]
# agent = "claude"          # a profile (`hydra agents` lists them) or a program
# flags = ""                # appended to the agent's command
# max_iterations = 10
# max_duration = "4h"
# worktree = false          # each session in its own git worktree, with its own port
# exclusive = false         # refuse a second live session in one working directory

[health]
# stuck_after = "15m"       # silence after which a session is reported stuck
# no_progress_limit = 3     # iterations without a commit, PRD or tree change before it blocks

[monitor]
# auto = true               # start `hydra monitor --detach` on spawn (HYDRA_NO_MONITOR=1: never)
# tick = "30s"              # how often the clock-based rules are checked when nothing happens

[notify]
# on = ["blocked", "stuck", "completed", "failed", "max-iterations"]
# command = ["notify-send", "hydra"]   # argv; the event as JSON on stdin, HYDRA_* in its env
# timeout = "10s"
# desktop = true
# tmux = true               # a message in your tmux status line
# bell = false
# coalesce = "10s"          # one session's transitions within this time are told as one

# [agents.mine]             # a custom agent profile
# command = ["my-agent", "--headless"]
# prompt = "stdin"          # stdin | arg | file
# env = { MY_AGENT_MODE = "batch" }
# usage_limit = ["rate limit reached"]
"#;

impl Config {
    /// `<root>/.hydra/hydra.toml`.
    pub fn path(root: &Path) -> PathBuf {
        root.join(".hydra").join("hydra.toml")
    }

    /// Parses and checks the text of `path`.
    ///
    /// Errors: a [`ConfigFileError`] naming the key and what is allowed.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Config, ConfigFileError> {
        let fail = |key: Option<&str>, message: String| ConfigFileError {
            path: path.to_path_buf(),
            key: key.map(str::to_owned),
            message,
        };
        let text = std::str::from_utf8(bytes).map_err(|e| fail(None, format!("it is not UTF-8: {e}")))?;
        let cfg: Config = toml::from_str(text).map_err(|e| {
            let quoted = e.message().split('`').nth(1);
            let (key, at) = match e.span() {
                Some(span) => {
                    let start = span.start.min(text.len());
                    let line = text[..start].matches('\n').count() + 1;
                    (key_at(text, start, quoted), format!(" (line {line})"))
                }
                None => (quoted.map(str::to_owned), String::new()),
            };
            let message = e.message().trim_end();
            let header = e.span().is_some_and(|sp| {
                let start = sp.start.min(text.len());
                let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
                text[line_start..].trim_start().starts_with('[')
            });
            if message == "duplicate key" && header {
                if let Some(k) = &key {
                    return fail(
                        Some(k),
                        format!("the table [{k}] appears twice{at}; keep one [{k}] and put its keys there"),
                    );
                }
            }
            let message = match &key {
                Some(k) if !message.contains(k.as_str()) => format!("{k}: {message}{at}"),
                _ => format!("{message}{at}"),
            };
            fail(key.as_deref(), message)
        })?;
        if let Some(on) = &cfg.notify.on {
            if let Some(bad) = on.iter().find(|s| !NOTIFY_STATES.contains(&s.as_str())) {
                return Err(fail(
                    Some("notify.on"),
                    format!("notify.on holds {bad:?}; allowed: {}", NOTIFY_STATES.join(", ")),
                ));
            }
        }
        if cfg
            .notify
            .command
            .as_ref()
            .is_some_and(|c| c.is_empty() || c[0].is_empty())
        {
            return Err(fail(
                Some("notify.command"),
                "notify.command is empty; give the program and its arguments as a list".into(),
            ));
        }
        if cfg.spawn.max_iterations == Some(0) {
            return Err(fail(
                Some("spawn.max_iterations"),
                "spawn.max_iterations is 0; allowed: 1 or more".into(),
            ));
        }
        for (name, agent) in &cfg.agents {
            let ok_name = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
            if !ok_name {
                return Err(fail(
                    Some("agents"),
                    format!("agent profile name {name:?} is not allowed; use a-z, 0-9, '-' and '_'"),
                ));
            }
            if agent.command.first().is_none_or(|p| p.is_empty()) {
                return Err(fail(
                    Some("agents.command"),
                    format!("agents.{name}.command is empty; give the program and its arguments as a list"),
                ));
            }
            if let Some(bad) = agent.env.keys().find(|k| !is_env_name(k)) {
                return Err(fail(
                    Some("agents.env"),
                    format!(
                        "agents.{name}.env has the name {bad:?}; use A-Z, a-z, 0-9 and '_', not starting with a digit"
                    ),
                ));
            }
        }
        Ok(cfg)
    }

    /// The project's configuration and the file's bytes, or `None` when it has no file.
    ///
    /// Errors: the file cannot be read, or does not parse.
    pub fn load(root: &Path) -> Result<Option<(Config, Vec<u8>)>, ConfigFileError> {
        let path = Self::path(root);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some((Self::parse(&path, &bytes)?, bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ConfigFileError {
                path,
                key: None,
                message: format!("it cannot be read: {e}"),
            }),
        }
    }

    /// What this configuration can make hydra start, one line each: the notification command
    /// and each agent profile's command.
    pub fn commands(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(c) = &self.notify.command {
            out.push(format!("[notify] command: {}", shown(c)));
        }
        for (name, agent) in &self.agents {
            out.push(format!("[agents.{name}] command: {}", shown(&agent.command)));
        }
        out
    }
}

/// An argv as a person reads it, each argument quoted when it needs to be.
pub fn shown(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:@%+".contains(c)) {
                a.clone()
            } else {
                format!("{a:?}")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The dotted key (`spawn.max_duration`) of the line holding `offset`: its table and the name
/// before `=`, or the name an error message quoted.
fn key_at(text: &str, offset: usize, quoted: Option<&str>) -> Option<String> {
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    let line = text[line_start..line_end].trim();
    let table = text[..line_start].lines().rev().find_map(|l| {
        let t = l.trim();
        t.strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .map(|t| t.trim().replace('"', ""))
    });
    if let Some(header) = line.strip_prefix('[') {
        // A table header: the table itself is the key.
        let t = header.trim_start_matches('[').split(']').next().unwrap_or("").trim();
        return (!t.is_empty()).then(|| t.replace('"', ""));
    }
    let name = match line.split_once('=') {
        Some((name, _)) => name.trim().trim_matches('"').to_owned(),
        None => quoted?.to_owned(),
    };
    Some(match table {
        Some(t) if !line.starts_with('[') => format!("{t}.{name}"),
        _ => name,
    })
}

fn is_env_name(k: &str) -> bool {
    !k.is_empty()
        && !k.starts_with(|c: char| c.is_ascii_digit())
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn parse(text: &str) -> Result<Config, ConfigFileError> {
        Config::parse(Path::new("/p/.hydra/hydra.toml"), text.as_bytes())
    }

    #[track_caller]
    fn check_err(text: &str, key: &str, needle: &str) {
        let err = parse(text).expect_err(text);
        assert_eq!(err.key.as_deref(), Some(key), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("/p/.hydra/hydra.toml") && msg.contains(needle), "{msg}");
    }

    #[test]
    fn a_table_given_twice_is_named() {
        check_err(
            "[notify]\n# bell = false\n\n[notify]\ncommand = [\"tee\"]\n",
            "notify",
            "the table [notify] appears twice (line 4); keep one [notify]",
        );
    }

    #[test]
    fn the_example_parses_to_the_defaults() {
        assert_eq!(parse(EXAMPLE).expect("example"), Config::default());
        assert_eq!(parse("").expect("empty"), Config::default());
    }

    #[test]
    fn a_full_file_parses() {
        let cfg = parse(
            r#"
[spawn]
agent = "codex"
max_iterations = 20
max_duration = "2h"
worktree = true
[health]
stuck_after = "10m"
no_progress_limit = 4
[monitor]
auto = true
[notify]
on = ["blocked", "failed"]
command = ["notify-send", "hydra"]
timeout = "5s"
[agents.mine]
command = ["my-agent", "--headless"]
prompt = "arg"
env = { MODE = "batch" }
usage_limit = ["rate limit"]
"#,
        )
        .expect("parses");
        assert_eq!(cfg.spawn.max_duration, Some(Dur(Duration::from_secs(7200))));
        assert_eq!(cfg.health.no_progress_limit, Some(4));
        assert_eq!(cfg.agents["mine"].prompt, Some(PromptMode::Arg));
        assert_eq!(
            cfg.commands(),
            [
                "[notify] command: notify-send hydra",
                "[agents.mine] command: my-agent --headless"
            ]
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        check_err("[spawn]\nagnet = \"x\"\n", "spawn.agnet", "unknown field");
        check_err("[spawn]\nagnet = \"x\"\n", "spawn.agnet", "line 2");
        check_err("[bogus]\n", "bogus", "expected one of");
        check_err("[spawn]\nmax_duration = \"4 hours\"\n", "spawn.max_duration", "units");
        check_err("[spawn]\nmax_iterations = 0\n", "spawn.max_iterations", "1 or more");
        check_err("[notify]\non = [\"sleepy\"]\n", "notify.on", "allowed: running");
        check_err("[notify]\ncommand = []\n", "notify.command", "empty");
        check_err("[agents.x]\ncommand = []\n", "agents.command", "empty");
        check_err("[agents.\"a b\"]\ncommand = [\"x\"]\n", "agents", "not allowed");
        check_err(
            "[agents.x]\ncommand = [\"x\"]\nprompt = \"carrier-pigeon\"\n",
            "agents.x.prompt",
            "stdin",
        );
        check_err(
            "[agents.x]\ncommand = [\"x\"]\nenv = { \"A B\" = \"1\" }\n",
            "agents.env",
            "A B",
        );
    }

    #[test]
    fn a_missing_file_is_none() {
        let dir = tempfile::tempdir().expect("tmp");
        assert_eq!(Config::load(dir.path()).expect("load"), None);
        std::fs::create_dir(dir.path().join(".hydra")).expect("mkdir");
        std::fs::write(Config::path(dir.path()), "[spawn]\nworktree = true\n").expect("write");
        let (cfg, bytes) = Config::load(dir.path()).expect("load").expect("some");
        assert_eq!(cfg.spawn.worktree, Some(true));
        assert!(!bytes.is_empty());
    }

    #[test]
    fn argv_is_shown_quoted_where_needed() {
        assert_eq!(shown(&["a".into(), "b c".into(), "$(x)".into()]), r#"a "b c" "$(x)""#);
    }
}
