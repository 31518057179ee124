//! Human output: an aligned table, colours only on a terminal.

use hydra_orchestrator::{Orchestrator, PruneReport, SessionState, SessionStatus};
use std::fmt::Write;
use std::io::IsTerminal;

fn colour(state: &SessionState) -> &'static str {
    match state {
        SessionState::Running { .. } | SessionState::Starting => "\x1b[32m",
        SessionState::Paused { .. } => "\x1b[36m",
        SessionState::Stuck { .. } | SessionState::Blocked { .. } => "\x1b[33m",
        SessionState::Completed { .. } => "\x1b[1;32m",
        SessionState::MaxIterations { .. } | SessionState::Failed { .. } => "\x1b[31m",
    }
}

/// A compact age: `45s`, `12m`, `3h05m`, `2d04h`.
pub fn age(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        s => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// The session table of `hydra ls`.
pub fn table(statuses: &[SessionStatus]) -> String {
    if statuses.is_empty() {
        return "no sessions; `hydra spawn` starts one\n".into();
    }
    let tty = std::io::stdout().is_terminal();
    let rows: Vec<[String; 6]> = statuses
        .iter()
        .map(|s| {
            [
                s.id.to_string(),
                s.state.name().to_owned(),
                s.state.iteration().to_string(),
                s.state.stories().unwrap_or("-").to_owned(),
                age(s.duration.as_secs()),
                match (&s.branch, s.port) {
                    (Some(b), Some(p)) => format!("{b} :{p}"),
                    (Some(b), None) => b.clone(),
                    _ => s
                        .state
                        .reason()
                        .map(|r| r.chars().take(60).collect())
                        .unwrap_or_default(),
                },
            ]
        })
        .collect();
    let header = ["ID", "STATE", "ITER", "STORIES", "AGE", "BRANCH / REASON"];
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &[String; 6], state: Option<&SessionState>| {
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            let pad = w.saturating_sub(c.chars().count());
            match (i, state, tty) {
                (1, Some(st), true) => {
                    let _ = write!(out, "{}{c}\x1b[0m{}", colour(st), " ".repeat(pad));
                }
                _ => {
                    let _ = write!(out, "{c}{}", " ".repeat(pad));
                }
            }
            out.push_str(if i + 1 < cells.len() { "  " } else { "" });
        }
        let trimmed = out.trim_end_matches(' ').len();
        out.truncate(trimmed);
        out.push('\n');
    };
    line(&mut out, &header.map(String::from), None);
    for (r, s) in rows.iter().zip(statuses) {
        line(&mut out, r, Some(&s.state));
    }
    out
}

/// The detail view of `hydra status`.
pub fn detail(s: &SessionStatus, orch: &Orchestrator) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "session      {}", s.id);
    let _ = writeln!(out, "state        {}", s.state);
    let _ = writeln!(out, "age          {}", age(s.duration.as_secs()));
    let _ = writeln!(out, "agent        {}", s.agent_cli);
    let _ = writeln!(out, "working dir  {}", s.working_dir.display());
    if let Some(b) = &s.branch {
        let _ = writeln!(out, "branch       {b}");
    }
    if let Some(p) = s.port {
        let _ = writeln!(out, "port         {p}");
    }
    let _ = writeln!(out, "tmux         {} (hydra attach {})", s.tmux_session, s.id);
    let _ = writeln!(out, "runtime dir  {}", orch.runtime_layout(&s.id).dir().display());
    out
}

/// The report of `hydra prune`.
pub fn prune(r: &PruneReport, json: bool) -> String {
    let verb = if r.dry_run { "would remove" } else { "removed" };
    if json {
        let kept: Vec<_> = r
            .kept_worktrees
            .iter()
            .map(|(p, why)| serde_json::json!({"path": p, "reasons": why}))
            .collect();
        return format!(
            "{}\n",
            serde_json::json!({
                "dry_run": r.dry_run,
                "sessions": r.removed_sessions.iter().map(|i| i.to_string()).collect::<Vec<_>>(),
                "orphan_tmux_sessions": r.orphans.tmux_sessions,
                "orphan_runtime_dirs": r.orphans.runtime_dirs,
                "orphan_worktrees": r.orphans.worktrees.iter().map(|(b, p)| serde_json::json!({"branch": b, "path": p})).collect::<Vec<_>>(),
                "kept_worktrees": kept,
            })
        );
    }
    let mut out = String::new();
    for id in &r.removed_sessions {
        let _ = writeln!(out, "{verb} ended session {id}");
    }
    for n in &r.orphans.tmux_sessions {
        let _ = writeln!(out, "{verb} orphaned tmux session {n}");
    }
    for d in &r.orphans.runtime_dirs {
        let _ = writeln!(out, "{verb} orphaned runtime dir of {d}");
    }
    for (b, p) in &r.orphans.worktrees {
        let _ = writeln!(
            out,
            "{verb} orphaned worktree {} ({b}) if it holds no work",
            p.display()
        );
    }
    for (p, why) in &r.kept_worktrees {
        let _ = writeln!(out, "kept worktree {}: {}", p.display(), why.join("; "));
    }
    if out.is_empty() {
        out.push_str("nothing to prune\n");
    }
    out
}
