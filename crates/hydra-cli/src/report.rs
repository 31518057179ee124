//! How errors reach a person: the message, each cause once (a cause whose text is already in
//! the line above is not repeated), and a hint of what to type next. The library describes;
//! this module advises.

use hydra_orchestrator::{Error, TransitionError};
use orch_core::{MuxError, WorktreeError};
use std::fmt::Write;

/// The text printed on stderr for `err`: `hydra: error: ...`, then `  because: ...` per cause,
/// then `  hint: ...` when there is something to do.
pub fn render(err: &anyhow::Error) -> String {
    let mut out = String::new();
    let mut shown: Vec<String> = Vec::new();
    for (i, cause) in err.chain().enumerate() {
        let text = cause.to_string();
        if text.is_empty() || shown.iter().any(|s| s.contains(&text)) {
            continue;
        }
        if i == 0 {
            let _ = writeln!(out, "hydra: error: {text}");
        } else {
            let _ = writeln!(out, "  because: {text}");
        }
        shown.push(text);
    }
    if let Some(hint) = err.chain().find_map(hint) {
        let _ = writeln!(out, "  hint: {hint}");
    }
    out
}

/// What to do about one cause, when there is something.
fn hint(cause: &(dyn std::error::Error + 'static)) -> Option<String> {
    if let Some(e) = cause.downcast_ref::<Error>() {
        return match e {
            Error::NotFound(_) => Some("`hydra ls --all` lists this project's sessions".into()),
            Error::Ambiguous { .. } => Some("give more characters of the id, or the session's name".into()),
            Error::Transition { source, .. } => match source {
                TransitionError::Terminal { .. } => {
                    Some("the session has ended; `hydra status ID` shows how, `hydra prune` removes it".into())
                }
                _ => Some("`hydra status ID` shows what state the session is in".into()),
            },
            Error::LoopNeeds { program } => Some(format!("install {program} (e.g. `apt-get install {program}`)")),
            Error::ReadOnly { .. } => Some("run from a writable checkout, or fix the permissions of .hydra/".into()),
            Error::NoFreeId => Some("try again; prune ended sessions with `hydra prune`".into()),
            // Transparent wrappers do not show their inner error in the chain: look inside.
            Error::Mux(e) => mux_hint(e),
            Error::Worktree(e) => worktree_hint(e),
            _ => None,
        };
    }
    if let Some(e) = cause.downcast_ref::<MuxError>() {
        return mux_hint(e);
    }
    if let Some(e) = cause.downcast_ref::<WorktreeError>() {
        return worktree_hint(e);
    }
    None
}

fn mux_hint(e: &MuxError) -> Option<String> {
    {
        match e {
            MuxError::NotInstalled => Some("install tmux: `apt-get install tmux` or `brew install tmux`".into()),
            MuxError::NotFound { .. } => Some("`hydra ls` shows which sessions are alive".into()),
            _ => None,
        }
    }
}

fn worktree_hint(e: &WorktreeError) -> Option<String> {
    {
        match e {
            WorktreeError::GitMissing => Some("install git: `apt-get install git`".into()),
            WorktreeError::NotARepo { .. } => Some("run `git init` there, or pick another --dir".into()),
            WorktreeError::NoCommit { .. } => Some("commit once (`git commit --allow-empty -m init`) first".into()),
            WorktreeError::RangeExhausted { .. } => {
                Some("free a port with `hydra prune`, or widen [ports] in .hydra/wt.toml".into())
            }
            WorktreeError::BranchTaken { .. } | WorktreeError::InvalidBranch { .. } => {
                Some("pick another --branch".into())
            }
            WorktreeError::PathExists { .. } => Some("remove that directory, or `hydra prune` ended sessions".into()),
            WorktreeError::Untrusted { .. } => Some(
                "review what it would run, then `hydra trust` (HYDRA_TRUST_ALL=1 trusts every file, for CI)".into(),
            ),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hydra_orchestrator::SessionId;

    #[test]
    fn each_cause_is_printed_once_with_a_hint() {
        let err = anyhow::Error::new(Error::Transition {
            id: SessionId("ab12".into()),
            source: TransitionError::Terminal { state: "completed" },
        });
        let text = render(&err);
        assert_eq!(
            text.matches("session already ended (completed); nothing can change it")
                .count(),
            1,
            "{text}"
        );
        assert!(text.starts_with("hydra: error: session ab12\n"), "{text}");
        assert!(text.contains("hint: the session has ended"), "{text}");
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let err = anyhow::anyhow!("cannot resume a session that is starting")
            .context("cannot resume a session that is starting");
        assert_eq!(render(&err), "hydra: error: cannot resume a session that is starting\n");
    }
}
