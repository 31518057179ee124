//! What a caller asks for when spawning a session, and the pure checks on it.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// The most iterations a session may be given.
pub const MAX_ITERATIONS_LIMIT: u32 = 100_000;
/// The highest cost limit a session may be given, in USD.
pub const MAX_COST_USD: f64 = 1_000_000.0;
/// The longest `max_duration` accepted: 30 days.
const MAX_DURATION_LIMIT: Duration = Duration::from_secs(30 * 24 * 3600);
/// The longest `agent_flags` string accepted, in bytes.
const MAX_FLAGS_LEN: usize = 64 * 1024;
/// The longest session name accepted, in characters.
pub const MAX_NAME_LEN: usize = 40;

/// How `pause` stops an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PauseMode {
    /// The loop finishes its current iteration and waits before the next one (the default).
    #[default]
    Checkpoint,
    /// The pane's process group is stopped at once with SIGSTOP and continued on resume.
    Freeze,
}

impl std::fmt::Display for PauseMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PauseMode::Checkpoint => "checkpoint",
            PauseMode::Freeze => "freeze",
        })
    }
}

impl std::str::FromStr for PauseMode {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "checkpoint" => Ok(PauseMode::Checkpoint),
            "freeze" => Ok(PauseMode::Freeze),
            _ => Err(ConfigError::new("pause_mode", "one of: checkpoint, freeze")),
        }
    }
}

/// Everything needed to start one agent session.
///
/// Build it with struct-update syntax over [`Default`], as the seed does:
/// `SessionConfig { agent_cli: "claude".into(), ..Default::default() }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionConfig {
    /// A name for the session, usable wherever its id is (`api-refactor`); unique among the
    /// project's live sessions.
    pub name: Option<String>,
    /// How many loop iterations the agent gets before the loop stops with `max-iterations`.
    pub max_iterations: u32,
    /// Wall-clock limit; `health_check` kills a session older than this.
    pub max_duration: Duration,
    /// The agent program, looked up on `PATH` (or a path to it).
    pub agent_cli: String,
    /// Extra arguments for the agent, split on whitespace and passed literally (never evaluated).
    pub agent_flags: String,
    /// The PRD (`prd.json`) the agent works through.
    pub prd_path: PathBuf,
    /// The directory (usually a git checkout) the agent works in.
    pub working_dir: PathBuf,
    /// Give the session its own git worktree and port.
    pub use_worktree: bool,
    /// Branch of the worktree; `hydralph/<id>` when `None`.
    pub branch_name: Option<String>,
    /// Base revision for a new worktree branch; `HEAD` when `None`.
    pub base_ref: Option<String>,
    /// A session with no activity for this long is reported stuck (default 15 minutes).
    pub stuck_after: Duration,
    /// How `pause` stops this session.
    pub pause_mode: PauseMode,
    /// An external `hydralph.sh` to run instead of the embedded loop.
    pub loop_script: Option<PathBuf>,
    /// Pause of the loop between iterations (hydralph's 2 s by default).
    pub loop_delay: Duration,
    /// The PRD stories this session works on (their ids). `None`: every story not done yet
    /// that no live session of the same PRD holds. A story a live session holds cannot be
    /// claimed again.
    #[serde(default)]
    pub stories: Option<Vec<String>>,
    /// Refuse the spawn when a live session already works in the same directory without a
    /// worktree of its own (otherwise that is only warned about).
    #[serde(default)]
    pub exclusive: bool,
    /// How to run the agent. `None`: the built-in profile named `agent_cli` when there is one
    /// (`claude`, `codex`, `gemini`, `aider`, `opencode`), else `agent_cli` as a plain program
    /// reading its prompt on stdin. `agent_flags` is appended either way.
    #[serde(default)]
    pub agent_profile: Option<crate::AgentProfile>,
    /// Iterations in a row without progress (no commit, no PRD change, no working-tree change)
    /// after which the loop blocks; 0 turns the breaker off.
    #[serde(default = "default_no_progress")]
    pub no_progress_limit: u32,
    /// Stop the loop (as max-iterations) once the cost the agent reports reaches this, in USD.
    #[serde(default)]
    pub max_cost_usd: Option<f64>,
}

fn default_no_progress() -> u32 {
    3
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            name: None,
            max_iterations: 10,
            max_duration: Duration::from_secs(4 * 3600),
            agent_cli: "claude".into(),
            agent_flags: String::new(),
            prd_path: PathBuf::from(".hydra/ralph/prd.json"),
            working_dir: PathBuf::from("."),
            use_worktree: false,
            branch_name: None,
            base_ref: None,
            stuck_after: Duration::from_secs(15 * 60),
            pause_mode: PauseMode::Checkpoint,
            loop_script: None,
            loop_delay: Duration::from_secs(2),
            stories: None,
            exclusive: false,
            agent_profile: None,
            no_progress_limit: 3,
            max_cost_usd: None,
        }
    }
}

/// A field of a [`SessionConfig`] (or another input) that is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {problem}")]
pub struct ConfigError {
    /// The field, by its `SessionConfig` name.
    pub field: &'static str,
    /// What is wrong and what is allowed.
    pub problem: String,
}

impl ConfigError {
    /// An error for `field` saying what is allowed.
    pub fn new(field: &'static str, problem: impl Into<String>) -> Self {
        ConfigError {
            field,
            problem: problem.into(),
        }
    }
}

impl SessionConfig {
    /// The checks that need no file system: limits, and strings that no tool could carry.
    ///
    /// The facade adds the checks that need the outside world (agent on `PATH`, PRD readable,
    /// working dir exists, branch valid for git).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_iterations == 0 || self.max_iterations > MAX_ITERATIONS_LIMIT {
            return Err(ConfigError::new(
                "max_iterations",
                format!(
                    "{} is out of range; allowed: 1 to {MAX_ITERATIONS_LIMIT}",
                    self.max_iterations
                ),
            ));
        }
        if self.max_duration < Duration::from_secs(1) || self.max_duration > MAX_DURATION_LIMIT {
            return Err(ConfigError::new(
                "max_duration",
                format!(
                    "{} is out of range; allowed: 1s to 30 days",
                    crate::format_duration(self.max_duration)
                ),
            ));
        }
        if self.stuck_after < Duration::from_secs(1) || self.stuck_after > MAX_DURATION_LIMIT {
            return Err(ConfigError::new(
                "stuck_after",
                format!(
                    "{} is out of range; allowed: 1s to 30 days",
                    crate::format_duration(self.stuck_after)
                ),
            ));
        }
        if self.loop_delay > Duration::from_secs(3600) {
            return Err(ConfigError::new(
                "loop_delay",
                format!(
                    "{} is out of range; allowed: 0s to 1h",
                    crate::format_duration(self.loop_delay)
                ),
            ));
        }
        if let Some(ids) = &self.stories {
            if ids.is_empty() {
                return Err(ConfigError::new(
                    "stories",
                    "the list is empty; give story ids (US-1,US-3), or none to take every free story",
                ));
            }
            if let Some(bad) = ids
                .iter()
                .find(|i| i.trim().is_empty() || i.chars().any(char::is_control))
            {
                return Err(ConfigError::new(
                    "stories",
                    format!("{bad:?} is not a story id; give the ids as the PRD writes them"),
                ));
            }
            if let Some((_, dup)) = ids.iter().enumerate().find(|(k, i)| ids[..*k].contains(i)) {
                return Err(ConfigError::new("stories", format!("{dup:?} is given twice")));
            }
        }
        if let Some(c) = self.max_cost_usd {
            if !(c.is_finite() && c > 0.0 && c <= MAX_COST_USD) {
                return Err(ConfigError::new(
                    "max_cost_usd",
                    format!("{c} is out of range; allowed: more than 0 up to {MAX_COST_USD} (USD)"),
                ));
            }
        }
        if self.no_progress_limit > MAX_ITERATIONS_LIMIT {
            return Err(ConfigError::new(
                "no_progress_limit",
                format!(
                    "{} is out of range; allowed: 0 (off) to {MAX_ITERATIONS_LIMIT}",
                    self.no_progress_limit
                ),
            ));
        }
        if let Some(p) = &self.agent_profile {
            if p.command.first().is_none_or(|c| c.trim().is_empty()) {
                return Err(ConfigError::new(
                    "agent_profile",
                    "its command is empty; give the program and its arguments",
                ));
            }
            if p.command
                .iter()
                .chain(p.env.iter().map(|(_, v)| v))
                .any(|a| a.contains('\0'))
            {
                return Err(ConfigError::new(
                    "agent_profile",
                    "an argument or value contains a NUL byte",
                ));
            }
            if let Some((k, _)) = p.env.iter().find(|(k, _)| {
                k.is_empty()
                    || k.starts_with("HYDRALPH_")
                    || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    || k.starts_with(|c: char| c.is_ascii_digit())
            }) {
                return Err(ConfigError::new(
                    "agent_profile",
                    format!("env name {k:?} is not allowed; use A-Z, a-z, 0-9 and '_' (not starting with a digit or HYDRALPH_)"),
                ));
            }
        }
        if self.agent_cli.trim().is_empty() {
            return Err(ConfigError::new(
                "agent_cli",
                "it is empty; give a program name or path",
            ));
        }
        if self.agent_cli.chars().any(|c| c.is_control()) {
            return Err(ConfigError::new(
                "agent_cli",
                "it contains control characters; give a program name or path",
            ));
        }
        if self.agent_flags.contains('\0') {
            return Err(ConfigError::new(
                "agent_flags",
                "it contains a NUL byte, which no program argument can carry",
            ));
        }
        if self.agent_flags.len() > MAX_FLAGS_LEN {
            return Err(ConfigError::new(
                "agent_flags",
                format!(
                    "it is {} bytes long; allowed: at most {MAX_FLAGS_LEN}",
                    self.agent_flags.len()
                ),
            ));
        }
        for (field, path) in [("prd_path", &self.prd_path), ("working_dir", &self.working_dir)] {
            if path.as_os_str().is_empty() {
                return Err(ConfigError::new(field, "it is empty; give a path"));
            }
        }
        if let Some(branch) = &self.branch_name {
            if branch.is_empty() || branch.starts_with('-') || branch.chars().any(|c| c.is_control()) {
                return Err(ConfigError::new(
                    "branch_name",
                    format!("{branch:?} is not a usable branch name; it must be non-empty, must not start with '-' and must hold no control characters"),
                ));
            }
        }
        if let Some(name) = &self.name {
            check_name(name)?;
        }
        if self.branch_name.is_some() && !self.use_worktree {
            return Err(ConfigError::new(
                "branch_name",
                "a branch is only used with use_worktree = true; set use_worktree or drop branch_name",
            ));
        }
        Ok(())
    }
}

/// Checks a session name: 1 to 40 characters of `a-z 0-9 . _ -`, starting with a letter or
/// digit (so it can never be read as an option or a path).
pub fn check_name(name: &str) -> Result<(), ConfigError> {
    let allowed = "1 to 40 characters of a-z, 0-9, '.', '_' and '-', starting with a letter or digit";
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-');
    let len = name.chars().count();
    if len == 0 || len > MAX_NAME_LEN {
        return Err(ConfigError::new(
            "name",
            format!("{name:?} has {len} characters; allowed: {allowed}"),
        ));
    }
    if let Some(c) = name.chars().find(|c| !ok_char(*c)) {
        return Err(ConfigError::new(
            "name",
            format!("{name:?} holds {c:?}; allowed: {allowed}"),
        ));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()) {
        return Err(ConfigError::new(
            "name",
            format!("{name:?} does not start with a letter or digit; allowed: {allowed}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check_field(cfg: SessionConfig, field: &str) {
        let err = cfg.validate().expect_err("should be refused");
        assert_eq!(err.field, field, "{err}");
        assert!(err.to_string().contains(field));
    }

    #[test]
    fn default_matches_the_seed() {
        let cfg = SessionConfig::default();
        assert_eq!(cfg.max_iterations, 10);
        assert_eq!(cfg.max_duration, Duration::from_secs(4 * 3600));
        assert_eq!(cfg.agent_cli, "claude");
        assert_eq!(cfg.stuck_after, Duration::from_secs(900));
        assert!(cfg.validate().is_ok());
    }

    #[test]
    fn bad_fields_are_named() {
        check_field(
            SessionConfig {
                max_iterations: 0,
                ..Default::default()
            },
            "max_iterations",
        );
        check_field(
            SessionConfig {
                max_duration: Duration::ZERO,
                ..Default::default()
            },
            "max_duration",
        );
        check_field(
            SessionConfig {
                max_duration: Duration::from_secs(99_999_999 * 3600),
                ..Default::default()
            },
            "max_duration",
        );
        check_field(
            SessionConfig {
                agent_cli: " ".into(),
                ..Default::default()
            },
            "agent_cli",
        );
        check_field(
            SessionConfig {
                agent_flags: "a\0b".into(),
                ..Default::default()
            },
            "agent_flags",
        );
        check_field(
            SessionConfig {
                prd_path: PathBuf::new(),
                ..Default::default()
            },
            "prd_path",
        );
        check_field(
            SessionConfig {
                use_worktree: true,
                branch_name: Some("-x".into()),
                ..Default::default()
            },
            "branch_name",
        );
        check_field(
            SessionConfig {
                stuck_after: Duration::ZERO,
                ..Default::default()
            },
            "stuck_after",
        );
        for cost in [0.0, -1.0, f64::NAN, f64::INFINITY, MAX_COST_USD * 2.0] {
            check_field(
                SessionConfig {
                    max_cost_usd: Some(cost),
                    ..Default::default()
                },
                "max_cost_usd",
            );
        }
        let within = SessionConfig {
            max_cost_usd: Some(MAX_COST_USD),
            ..Default::default()
        };
        assert!(within.validate().is_ok());
        check_field(
            SessionConfig {
                no_progress_limit: MAX_ITERATIONS_LIMIT + 1,
                ..Default::default()
            },
            "no_progress_limit",
        );
        for stories in [vec![], vec![" ".to_owned()], vec!["US-1".to_owned(), "US-1".to_owned()]] {
            check_field(
                SessionConfig {
                    stories: Some(stories),
                    ..Default::default()
                },
                "stories",
            );
        }
    }

    #[test]
    fn names_are_checked() {
        for good in ["api-refactor", "a", "v1.2_x", &"n".repeat(40)] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "-x", ".x", "a b", "a/b", "é", "Api", &"n".repeat(41)] {
            let err = check_name(bad).expect_err(bad);
            assert_eq!(err.field, "name");
        }
        check_field(
            SessionConfig {
                name: Some("../x".into()),
                ..Default::default()
            },
            "name",
        );
    }

    #[test]
    fn durations_in_messages_are_written_as_people_type_them() {
        let err = SessionConfig {
            max_duration: Duration::ZERO,
            ..Default::default()
        }
        .validate()
        .expect_err("zero");
        assert!(err.to_string().contains("0s is out of range"), "{err}");
    }

    #[test]
    fn pause_mode_parses() {
        assert_eq!("freeze".parse::<PauseMode>(), Ok(PauseMode::Freeze));
        assert!("stop".parse::<PauseMode>().is_err());
    }
}
