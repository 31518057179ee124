//! Agent profiles: how each agent CLI runs headless — its argv, how it takes the prompt, the
//! words of its usage-limit messages, and where it reports cost. Pure data; the loop gets the
//! resolved argv as separate arguments, never as a string for a shell.

use serde::{Deserialize, Serialize};

/// How the agent receives the prompt of an iteration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PromptMode {
    /// On standard input.
    #[default]
    Stdin,
    /// As the last argument.
    Arg,
    /// As the path of a file holding it, the last argument.
    File,
}

impl PromptMode {
    /// Its name in `hydra.toml` and the loop's environment.
    pub fn as_str(self) -> &'static str {
        match self {
            PromptMode::Stdin => "stdin",
            PromptMode::Arg => "arg",
            PromptMode::File => "file",
        }
    }
}

/// One agent CLI as the loop runs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentProfile {
    /// The name `--agent` takes (`claude`).
    pub name: String,
    /// The program and the arguments of a headless run, before `--flags` and the prompt.
    pub command: Vec<String>,
    /// How the prompt is passed.
    #[serde(default)]
    pub prompt: PromptMode,
    /// Environment for the agent.
    #[serde(default)]
    pub env: Vec<(String, String)>,
    /// Text of its usage-limit messages (matched case-insensitively, as written).
    #[serde(default)]
    pub usage_limit: Vec<String>,
    /// A regular expression (bash ERE) whose first group is the cost of a run in USD.
    #[serde(default)]
    pub cost: Option<String>,
    /// A regular expression (bash ERE) whose first group is the tokens of a run.
    #[serde(default)]
    pub tokens: Option<String>,
    /// It reads its pane as a terminal (typing into it reaches it): `inject --live` types.
    #[serde(default)]
    pub interactive: bool,
    /// Where its headless use is documented.
    #[serde(default)]
    pub docs: String,
}

impl AgentProfile {
    /// A plain program: its name, the prompt on stdin, nothing else known.
    pub fn program(program: &str) -> Self {
        AgentProfile {
            name: program.to_owned(),
            command: vec![program.to_owned()],
            prompt: PromptMode::Stdin,
            env: Vec::new(),
            usage_limit: Vec::new(),
            cost: None,
            tokens: None,
            interactive: false,
            docs: String::new(),
        }
    }

    /// The program (the first word of `command`).
    pub fn program_name(&self) -> &str {
        self.command.first().map_or("", String::as_str)
    }
}

fn words(w: &[&str]) -> Vec<String> {
    w.iter().map(|s| (*s).to_owned()).collect()
}

/// The profiles hydra knows. Each runs its CLI headless in a loop that may edit, run and
/// commit in the session's own checkout.
pub fn builtin_profiles() -> Vec<AgentProfile> {
    vec![
        // Claude Code: `-p`/`--print` runs once without the interactive UI and reads the prompt
        // from stdin; `--output-format stream-json` (which needs `--verbose` with -p) prints as
        // it works and ends with a result object holding
        // `total_cost_usd`; permission prompts would wait for a person, so they are skipped.
        // https://docs.claude.com/en/docs/claude-code/headless
        // Limit messages as printed: "Claude AI usage limit reached|<epoch>", "You've hit your
        // session limit · resets 5:10pm (Europe/Paris)" (anthropics/claude-code#2087, #79765).
        AgentProfile {
            command: words(&[
                "claude",
                "-p",
                "--output-format",
                "stream-json",
                "--verbose",
                "--dangerously-skip-permissions",
            ]),
            usage_limit: words(&[
                "usage limit reached",
                "hit your session limit",
                "hit your limit",
                "hit your weekly limit",
            ]),
            cost: Some(r#""total_cost_usd"[[:space:]]*:[[:space:]]*([0-9]+(\.[0-9]+)?)"#.into()),
            docs: "https://docs.claude.com/en/docs/claude-code/headless".into(),
            ..AgentProfile::program("claude")
        },
        // Codex CLI: `codex exec PROMPT` runs non-interactively (a prompt argument; piped stdin
        // is only extra context); `--sandbox workspace-write` lets it edit (the replacement of
        // the deprecated --full-auto).
        // https://developers.openai.com/codex/noninteractive
        // Limit message: "You've hit your usage limit. ... try again in 4 days 20 hours 9
        // minutes." (openai/codex#3257).
        AgentProfile {
            command: words(&["codex", "exec", "--sandbox", "workspace-write"]),
            prompt: PromptMode::Arg,
            usage_limit: words(&["hit your usage limit", "usage_limit_reached"]),
            docs: "https://developers.openai.com/codex/noninteractive".into(),
            ..AgentProfile::program("codex")
        },
        // Gemini CLI: `-p`/`--prompt` runs headless with the given prompt; `--yolo` accepts
        // every action; `--output-format json` adds token statistics.
        // https://geminicli.com/docs/cli/headless/
        AgentProfile {
            command: words(&["gemini", "--yolo", "--output-format", "json", "-p"]),
            prompt: PromptMode::Arg,
            usage_limit: words(&["quota exceeded", "RESOURCE_EXHAUSTED"]),
            tokens: Some(r#""totalTokens"[[:space:]]*:[[:space:]]*([0-9]+)"#.into()),
            docs: "https://geminicli.com/docs/cli/headless/".into(),
            ..AgentProfile::program("gemini")
        },
        // aider: `--message-file FILE` sends the file's message, applies the edits and exits;
        // `--yes-always` answers every confirmation; it commits its own edits.
        // https://aider.chat/docs/scripting.html
        AgentProfile {
            command: words(&["aider", "--yes-always", "--no-pretty", "--no-stream", "--message-file"]),
            prompt: PromptMode::File,
            usage_limit: words(&["RateLimitError", "rate limit exceeded"]),
            docs: "https://aider.chat/docs/scripting.html".into(),
            ..AgentProfile::program("aider")
        },
        // opencode: `opencode run [message..]` runs without the TUI, for scripts.
        // https://opencode.ai/docs/cli/
        AgentProfile {
            command: words(&["opencode", "run"]),
            prompt: PromptMode::Arg,
            usage_limit: words(&["rate limit", "usage limit"]),
            docs: "https://opencode.ai/docs/cli/".into(),
            ..AgentProfile::program("opencode")
        },
    ]
}

/// The built-in profile named `name`.
pub fn builtin_profile(name: &str) -> Option<AgentProfile> {
    builtin_profiles().into_iter().find(|p| p.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_builtins_each_with_its_program_and_docs() {
        let all = builtin_profiles();
        let names: Vec<&str> = all.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["claude", "codex", "gemini", "aider", "opencode"]);
        for p in &all {
            assert_eq!(p.program_name(), p.name);
            assert!(p.docs.starts_with("https://"), "{}", p.name);
            assert!(!p.usage_limit.is_empty(), "{}", p.name);
        }
        assert_eq!(builtin_profile("codex").map(|p| p.prompt), Some(PromptMode::Arg));
        assert_eq!(builtin_profile("nope"), None);
    }
}
