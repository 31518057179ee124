//! The words of `hydra diff`, `hydra merge` and `hydra worktree rm`.

use hydra_orchestrator::{MergeOutcome, MergeReport, RemoveOutcome, SessionDiff, SessionId};
use std::fmt::Write;

/// `hydra diff`: the branch, where it started, its commits (oldest last) and diffstat.
pub fn diff(id: &SessionId, d: &SessionDiff, json: bool) -> String {
    if json {
        let commits: Vec<_> = d
            .changes
            .commits
            .iter()
            .map(|(h, s)| serde_json::json!({"commit": h, "subject": s}))
            .collect();
        return format!(
            "{}\n",
            serde_json::json!({
                "id": id.as_str(), "branch": d.branch, "base_commit": d.base_commit,
                "base_branch": d.base_branch, "commits": commits, "stat": d.changes.stat,
                "patch": d.changes.patch,
            })
        );
    }
    let mut out = String::new();
    let from = match &d.base_branch {
        Some(b) => format!("{b} at {}", short(&d.base_commit)),
        None => short(&d.base_commit).to_owned(),
    };
    let n = d.changes.commits.len();
    let _ = writeln!(
        out,
        "{id}: branch {} — {n} commit{} since {from}",
        d.branch,
        if n == 1 { "" } else { "s" }
    );
    for (h, s) in &d.changes.commits {
        let _ = writeln!(out, "  {}  {s}", short(h));
    }
    if d.changes.stat.is_empty() {
        let _ = writeln!(out, "no file changed");
    } else {
        let _ = writeln!(out, "{}", d.changes.stat);
    }
    if let Some(p) = &d.changes.patch {
        out.push('\n');
        out.push_str(p);
    }
    out
}

fn short(h: &str) -> &str {
    h.get(..10).unwrap_or(h)
}

/// `hydra merge`: what happened, and whether it merged (or had nothing to merge).
pub fn merge(id: &SessionId, r: &MergeReport, json: bool) -> (String, bool) {
    let ok = matches!(r.outcome, MergeOutcome::Merged { .. } | MergeOutcome::UpToDate);
    if json {
        let (what, detail) = match &r.outcome {
            MergeOutcome::Merged { commit } => ("merged", serde_json::json!({"commit": commit})),
            MergeOutcome::UpToDate => ("up-to-date", serde_json::json!({})),
            MergeOutcome::Conflict { files } => ("conflict", serde_json::json!({"files": files})),
            MergeOutcome::Dirty { checkout, files } => {
                ("dirty", serde_json::json!({"checkout": checkout, "files": files}))
            }
            MergeOutcome::NotCheckedOut => ("not-checked-out", serde_json::json!({})),
            _ => ("other", serde_json::json!({})),
        };
        let v = serde_json::json!({"id": id.as_str(), "branch": r.branch, "into": r.into, "outcome": what, "detail": detail});
        return (format!("{v}\n"), ok);
    }
    let text = match &r.outcome {
        MergeOutcome::Merged { commit } => format!(
            "merged {} into {} ({}); `hydra worktree rm {id}` removes its worktree now\n",
            r.branch,
            r.into,
            short(commit)
        ),
        MergeOutcome::UpToDate => format!("{} already holds everything of {}; nothing to merge\n", r.into, r.branch),
        MergeOutcome::Conflict { files } => format!(
            "hydra: not merged: {} conflicts with {} in {}; the merge was undone and {} is as it was — resolve it by hand (git merge {}) or merge the other sessions first\n",
            r.branch,
            r.into,
            files.join(", "),
            r.into,
            r.branch
        ),
        MergeOutcome::Dirty { checkout, files } => format!(
            "hydra: not merged: {} has uncommitted changes in {} ({}); commit or stash them first\n",
            r.into,
            checkout.display(),
            files.join(", ")
        ),
        MergeOutcome::NotCheckedOut => format!(
            "hydra: not merged: {} is not checked out anywhere; check it out, or give --into\n",
            r.into
        ),
        _ => "hydra: not merged\n".to_owned(),
    };
    (text, ok)
}

/// `hydra worktree rm`: what happened, and whether the worktree is gone.
pub fn worktree_rm(id: &SessionId, outcome: &RemoveOutcome) -> (String, bool) {
    match outcome {
        RemoveOutcome::Removed => (format!("removed the worktree of {id} (its branch stays; its port is free)\n"), true),
        RemoveOutcome::NotFound => (format!("{id} has no worktree left (its port is free)\n"), true),
        RemoveOutcome::Kept { path, reasons } => (
            format!(
                "hydra: kept {}: {}; `hydra merge {id}` brings its work home, or `hydra worktree rm {id} --force` drops it (the branch stays)\n",
                path.display(),
                reasons.join("; ")
            ),
            false,
        ),
        _ => (format!("hydra: the worktree of {id} was not removed\n"), false),
    }
}
