//! Human output: aligned tables and detail views, coloured when the user wants colour.

use hydra_orchestrator::{PruneReport, SessionState, SessionStatus, Timestamp};
use std::fmt::Write;

/// The ANSI colour of a state's word.
pub fn colour(state: &SessionState) -> &'static str {
    match state {
        SessionState::Running { .. } | SessionState::Starting => "\x1b[32m",
        SessionState::Paused { .. } => "\x1b[36m",
        SessionState::Stuck { .. } | SessionState::Blocked { .. } => "\x1b[33m",
        SessionState::Completed { .. } => "\x1b[1;32m",
        SessionState::MaxIterations { .. } | SessionState::Failed { .. } => "\x1b[31m",
    }
}

/// `word` in the colour of `state` when `color`.
pub fn painted(word: &str, state: &SessionState, color: bool) -> String {
    if color {
        format!("{}{word}\x1b[0m", colour(state))
    } else {
        word.to_owned()
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

/// How long ago `t` was, seen from `now`: `12s ago`.
pub fn ago(t: Timestamp, now: Timestamp) -> String {
    format!("{} ago", age(now.since(t).unwrap_or_default().as_secs()))
}

/// Aligns `rows` under `header`, leaving out columns that are empty in every row (but the
/// first `keep`), painting the STATE column.
pub fn align(header: &[&str], rows: &[(Vec<String>, Option<&SessionState>)], keep: usize, color: bool) -> String {
    let shown: Vec<usize> = (0..header.len())
        .filter(|&i| i < keep || rows.iter().any(|(r, _)| !r[i].is_empty()))
        .collect();
    let mut widths: Vec<usize> = shown.iter().map(|&i| header[i].len()).collect();
    for (r, _) in rows {
        for (w, &i) in widths.iter_mut().zip(&shown) {
            *w = (*w).max(r[i].chars().count());
        }
    }
    let state_col = header.iter().position(|h| *h == "STATE");
    let mut out = String::new();
    let mut line = |cells: &[String], state: Option<&SessionState>| {
        let mut text = String::new();
        for (k, (&i, w)) in shown.iter().zip(&widths).enumerate() {
            let c = &cells[i];
            let pad = w.saturating_sub(c.chars().count());
            let cell = match (Some(i) == state_col, state) {
                (true, Some(st)) => painted(c, st, color),
                _ => c.clone(),
            };
            let _ = write!(text, "{cell}{}", " ".repeat(pad));
            if k + 1 < shown.len() {
                text.push_str("  ");
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&header.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>(), None);
    for (r, st) in rows {
        line(r, *st);
    }
    out
}

/// The session table of `hydra ls`.
pub fn table(statuses: &[SessionStatus], now: Timestamp, color: bool) -> String {
    let header = [
        "ID", "NAME", "STATE", "ITER", "STORIES", "AGE", "ACTIVE", "BRANCH", "REASON",
    ];
    let rows: Vec<(Vec<String>, Option<&SessionState>)> = statuses
        .iter()
        .map(|s| {
            let branch = match (&s.branch, s.port) {
                (Some(b), Some(p)) => format!("{b} :{p}"),
                (Some(b), None) => b.clone(),
                _ => String::new(),
            };
            let active = if s.state.is_terminal() {
                "-".to_owned()
            } else {
                ago(s.last_activity, now)
            };
            (
                vec![
                    s.id.to_string(),
                    s.name.clone().unwrap_or_default(),
                    s.state_word().to_owned(),
                    s.iteration.to_string(),
                    s.stories.clone().unwrap_or_else(|| "-".into()),
                    age(s.duration.as_secs()),
                    active,
                    branch,
                    reason(s),
                ],
                Some(&s.state),
            )
        })
        .collect();
    align(&header, &rows, 7, color)
}

/// What the REASON column says: why it blocked or failed, until when it waits, and messages
/// it will never read unless resumed.
pub fn reason(s: &SessionStatus) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some((until, _)) = &s.waiting {
        parts.push(format!("usage limit until {}", clock(*until)));
    } else if let Some(r) = s.state.reason() {
        parts.push(r.chars().take(60).collect());
    }
    if s.undelivered() > 0 {
        parts.push(undelivered(s.undelivered()));
    }
    parts.join(" · ")
}

/// "1 queued message never delivered".
pub fn undelivered(n: usize) -> String {
    format!("{n} queued message{} never delivered", if n == 1 { "" } else { "s" })
}

/// A time as the local clock shows it (`15:00`), with the date when it is not today.
pub fn clock(t: Timestamp) -> String {
    let offset = local_offset();
    let local = i64::try_from(t.as_secs()).unwrap_or(i64::MAX).saturating_add(offset);
    let now_local = i64::try_from(crate::now().as_secs()).unwrap_or(0) + offset;
    let (day, tod) = (local.div_euclid(86_400), local.rem_euclid(86_400));
    let hm = format!("{:02}:{:02}", tod / 3600, tod % 3600 / 60);
    if day == now_local.div_euclid(86_400) {
        hm
    } else {
        let (y, mo, d) = orch_core::civil_from_days(day);
        format!("{y}-{mo:02}-{d:02} {hm}")
    }
}

/// The local zone's offset from UTC in seconds, asked of `date` (which knows the zone
/// database) once per process; UTC when it cannot say.
fn local_offset() -> i64 {
    static OFFSET: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *OFFSET.get_or_init(|| {
        std::process::Command::new("date")
            .arg("+%z")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .and_then(|z| {
                let sign = if z.starts_with('-') { -1 } else { 1 };
                let h: i64 = z.get(1..3)?.parse().ok()?;
                let m: i64 = z.get(3..5)?.parse().ok()?;
                Some(sign * (h * 3600 + m * 60))
            })
            .unwrap_or(0)
    })
}

/// USD from millionths (`$0.123`).
pub fn usd(micros: u64) -> String {
    format!("${:.3}", orch_core::usd_from_micros(micros))
}

/// The detail view of `hydra status`.
pub fn detail(s: &SessionStatus, runtime_dir: &std::path::Path, color: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "session      {}", s.id);
    if let Some(n) = &s.name {
        let _ = writeln!(out, "name         {n}");
    }
    let word = painted(s.state_word(), &s.state, color);
    // The state's details without its name again: "completed (3 iterations)" -> "(3 iterations)".
    let shown = s.state.to_string();
    let details = shown.strip_prefix(s.state.name()).unwrap_or(&shown).trim();
    let _ = writeln!(out, "state        {word} {details}");
    if s.frozen {
        let _ = writeln!(
            out,
            "frozen       its processes are stopped until `hydra resume {}`",
            s.id
        );
    }
    let _ = writeln!(out, "iteration    {}", s.iteration);
    if let Some(st) = &s.stories {
        let _ = writeln!(out, "stories      {st}");
    }
    if let Some((until, why)) = &s.waiting {
        let _ = writeln!(
            out,
            "waiting      usage limit until {} (`hydra resume {}` retries now): {}",
            clock(*until),
            s.id,
            why.chars().take(200).collect::<String>()
        );
    }
    match (s.cost_micros, s.max_cost_micros) {
        (Some(c), Some(m)) => {
            let _ = writeln!(out, "cost         {} of {} (as the agent reports it)", usd(c), usd(m));
        }
        (Some(c), None) => {
            let _ = writeln!(out, "cost         {} (as the agent reports it)", usd(c));
        }
        (None, Some(m)) => {
            let _ = writeln!(out, "cost         none reported yet (limit {})", usd(m));
        }
        (None, None) => {}
    }
    if let Some(t) = s.tokens {
        let _ = writeln!(out, "tokens       {t}");
    }
    if s.undelivered() > 0 {
        let _ = writeln!(
            out,
            "messages     {} (kept in its inbox; delivered if it is resumed)",
            undelivered(s.undelivered())
        );
    } else if s.queued > 0 {
        let _ = writeln!(out, "messages     {} queued for its next prompt", s.queued);
    }
    let _ = writeln!(out, "age          {}", age(s.duration.as_secs()));
    let _ = writeln!(out, "agent        {}", s.agent_cli);
    let _ = writeln!(out, "working dir  {}", s.working_dir.display());
    if let Some(b) = &s.branch {
        let _ = writeln!(out, "branch       {b}");
    }
    if let Some(p) = s.port {
        let _ = writeln!(out, "port         {p}");
    }
    if let Some((path, why)) = &s.worktree_kept {
        let _ = writeln!(out, "worktree     kept at {}: {}", path.display(), why.join("; "));
    }
    if s.state.is_terminal() {
        let _ = writeln!(out, "tmux         {} (ended)", s.tmux_session);
    } else {
        let _ = writeln!(out, "tmux         {} (hydra attach {})", s.tmux_session, s.id);
    }
    if s.foreign {
        let _ = writeln!(
            out,
            "loop files   {} (the original hydra tool's; it has no runtime dir of its own)",
            hydra_orchestrator::RuntimeLayout::root(&s.working_dir).display()
        );
    } else {
        let _ = writeln!(out, "runtime dir  {}", runtime_dir.display());
    }
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
        let kept_sessions: Vec<_> = r
            .kept
            .iter()
            .map(|k| serde_json::json!({"id": k.id.as_str(), "worktree": k.path, "reasons": k.reasons}))
            .collect();
        return format!(
            "{}\n",
            serde_json::json!({
                "dry_run": r.dry_run,
                "logs_dropped": r.logs_dropped,
                "sessions": r.removed_sessions.iter().map(|i| i.to_string()).collect::<Vec<_>>(),
                "kept_sessions": kept_sessions,
                "orphan_tmux_sessions": r.orphans.tmux_sessions,
                "untagged_tmux_sessions": r.orphans.untagged_sessions,
                "orphan_runtime_dirs": r.orphans.runtime_dirs.iter().map(|i| i.to_string()).collect::<Vec<_>>(),
                "orphan_worktrees": r.orphans.worktrees.iter().map(|(b, p)| serde_json::json!({"branch": b, "path": p})).collect::<Vec<_>>(),
                "kept_worktrees": kept,
            })
        );
    }
    let mut out = String::new();
    for id in &r.removed_sessions {
        if r.logs_dropped {
            let _ = writeln!(out, "{verb} ended session {id} and its logs");
        } else {
            let _ = writeln!(
                out,
                "{verb} ended session {id} (its logs are kept in .hydra/archive/{id}/)"
            );
        }
    }
    for n in &r.orphans.tmux_sessions {
        let _ = writeln!(out, "{verb} orphaned tmux session {n}");
    }
    for n in &r.orphans.untagged_sessions {
        if r.forced && !r.dry_run {
            let _ = writeln!(out, "ended untagged tmux session {n}");
        } else {
            let _ = writeln!(
                out,
                "left tmux session {n}: it is not tagged as this project's (another tool's?); `hydra prune --force` ends it"
            );
        }
    }
    for d in &r.orphans.runtime_dirs {
        let _ = writeln!(out, "{verb} orphaned runtime dir of {d}");
    }
    let kept_paths: Vec<&std::path::Path> = r.kept_worktrees.iter().map(|(p, _)| p.as_path()).collect();
    for (b, p) in &r.orphans.worktrees {
        if !kept_paths.contains(&p.as_path()) {
            let _ = writeln!(out, "{verb} orphaned worktree {} ({b})", p.display());
        }
    }
    for k in &r.kept {
        let _ = writeln!(
            out,
            "kept session {} and its worktree {}: {}; `hydra merge {}` brings the work home, then `hydra worktree rm {}` (or `--force` to drop it; the branch stays)",
            k.id,
            k.path.display(),
            k.reasons.join("; "),
            k.id,
            k.id
        );
    }
    for (p, why) in &r.kept_worktrees {
        let _ = writeln!(
            out,
            "kept orphaned worktree {}: {}; remove it yourself once its work is safe",
            p.display(),
            why.join("; ")
        );
    }
    if out.is_empty() {
        out.push_str("nothing to prune\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_shows_the_time_today_and_the_date_with_it_otherwise() {
        let today = clock(crate::now());
        let b = today.as_bytes();
        assert!(
            b.len() == 5 && b[2] == b':' && today.replace(':', "").bytes().all(|c| c.is_ascii_digit()),
            "{today}"
        );
        // The epoch is 1970-01-01 00:00 UTC: the day before west of Greenwich.
        let epoch = clock(Timestamp::from_secs(0));
        assert!(
            (epoch.starts_with("1970-01-01 ") || epoch.starts_with("1969-12-31 ")) && epoch.len() == 16,
            "{epoch}"
        );
    }
}
