//! `hydra completions SHELL` and `hydra man`, from clap's own generators and the same command
//! definition the parser uses, so they never disagree with it. In bash and fish, the session
//! arguments complete from the project's sessions (`hydra ls --all --quiet`).

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;

/// The subcommands whose first argument is a session.
const TAKES_ID: &[&str] = &[
    "status", "attach", "pause", "resume", "inject", "kill", "logs", "diff", "merge",
];

/// `hydra completions SHELL`.
pub fn run(shell: &str) -> Result<i32> {
    let which = match shell {
        "bash" => Shell::Bash,
        "zsh" => Shell::Zsh,
        _ => Shell::Fish,
    };
    let mut cmd = crate::Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(which, &mut cmd, "hydra", &mut out);
    let mut text = String::from_utf8(out).context("completion script")?;
    match which {
        Shell::Bash => text.push_str(&bash_ids()),
        Shell::Fish => text.push_str(&fish_ids()),
        _ => {}
    }
    print!("{text}");
    Ok(0)
}

/// Wraps clap's bash function: a session argument completes from the project's sessions.
fn bash_ids() -> String {
    format!(
        r#"
# Session ids and names from the project (hydra ls --all --quiet).
_hydra_with_ids() {{
    local cur prev
    cur="${{COMP_WORDS[COMP_CWORD]}}"
    prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    case "$prev" in
        {}) COMPREPLY=($(compgen -W "$(hydra ls --all --quiet 2>/dev/null)" -- "$cur")); return 0 ;;
    esac
    _hydra "$@"
}}
complete -F _hydra_with_ids -o bashdefault -o default hydra
"#,
        TAKES_ID.join("|")
    )
}

fn fish_ids() -> String {
    format!(
        "\n# Session ids and names from the project (hydra ls --all --quiet).\ncomplete -c hydra -n '__fish_seen_subcommand_from {}' -f -a '(hydra ls --all --quiet 2>/dev/null)'\n",
        TAKES_ID.join(" ")
    )
}

/// `hydra man`.
pub fn man() -> Result<i32> {
    let cmd = crate::Cli::command();
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut out)
        .context("render the manual page")?;
    use std::io::Write;
    std::io::stdout().write_all(&out)?;
    Ok(0)
}
