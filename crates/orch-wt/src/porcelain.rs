//! Parsing `git worktree list --porcelain`, kept pure and tested on captured output.

use std::path::PathBuf;

/// One worktree as git lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitWorktree {
    /// Its path.
    pub path: PathBuf,
    /// Checked-out commit.
    pub head: Option<String>,
    /// Checked-out branch (without `refs/heads/`), `None` when detached or bare.
    pub branch: Option<String>,
    /// git reports its directory missing.
    pub prunable: bool,
    /// Locked against pruning.
    pub locked: bool,
}

/// Parses porcelain output: blocks separated by blank lines, `worktree <path>` first.
pub fn parse_worktree_list(output: &str) -> Vec<GitWorktree> {
    let mut out = Vec::new();
    let mut cur: Option<GitWorktree> = None;
    for line in output.lines() {
        if let Some(path) = line.strip_prefix("worktree ") {
            out.extend(cur.take());
            cur = Some(GitWorktree {
                path: PathBuf::from(path),
                head: None,
                branch: None,
                prunable: false,
                locked: false,
            });
            continue;
        }
        let Some(w) = cur.as_mut() else { continue };
        if let Some(head) = line.strip_prefix("HEAD ") {
            w.head = Some(head.to_owned());
        } else if let Some(branch) = line.strip_prefix("branch ") {
            w.branch = Some(branch.strip_prefix("refs/heads/").unwrap_or(branch).to_owned());
        } else if line == "prunable" || line.starts_with("prunable ") {
            w.prunable = true;
        } else if line == "locked" || line.starts_with("locked ") {
            w.locked = true;
        }
    }
    out.extend(cur);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_captured_output() {
        let list = parse_worktree_list(include_str!("../tests/data/worktree-list.txt"));
        assert_eq!(list.len(), 4);
        assert_eq!(list[0].branch.as_deref(), Some("main"));
        assert_eq!(list[1].branch, None);
        assert!(list[1].locked);
        assert_eq!(list[2].branch.as_deref(), Some("gone"));
        assert!(list[2].prunable);
        assert_eq!(list[3].path, PathBuf::from("/work/projects/with space"));
        assert_eq!(list[3].branch.as_deref(), Some("feature/x"));
        assert_eq!(
            list[3].head.as_deref(),
            Some("53bcd9a68fb3541c3c676543826554594cf519d5")
        );
    }

    #[test]
    fn empty_output_is_no_worktrees() {
        assert!(parse_worktree_list("").is_empty());
    }
}
