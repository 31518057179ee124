//! Parsing `git worktree list --porcelain` and `git status --porcelain -z`, kept pure and
//! tested on captured output.

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

/// One changed path as `git status --porcelain -z` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusEntry {
    /// The two-letter status (`" M"`, `"??"`, `"R "`, ...).
    pub code: String,
    /// The path, relative to the checkout's root, as it is (never quoted with `-z`).
    pub path: PathBuf,
}

impl StatusEntry {
    /// A file git does not track.
    pub fn untracked(&self) -> bool {
        self.code == "??"
    }
}

/// Parses `git status --porcelain -z`: `XY path` entries, each ended by a NUL; a rename or
/// copy is followed by its source path, which is not an entry of its own.
pub fn parse_status_z(output: &str) -> Vec<StatusEntry> {
    let mut out = Vec::new();
    let mut fields = output.split('\0');
    while let Some(field) = fields.next() {
        let (Some(code), Some(path)) = (field.get(..2), field.get(3..)) else {
            continue;
        };
        if code.contains(['R', 'C']) {
            fields.next();
        }
        out.push(StatusEntry {
            code: code.to_owned(),
            path: PathBuf::from(path),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_entries_keep_odd_names_whole_and_skip_rename_sources() {
        let out = " M src/a.rs\0?? with space \"q\".txt\0R  new name.rs\0old name.rs\0A  caf\u{e9}.md\0";
        let entries = parse_status_z(out);
        let paths: Vec<_> = entries.iter().map(|e| e.path.to_string_lossy().into_owned()).collect();
        assert_eq!(
            paths,
            ["src/a.rs", "with space \"q\".txt", "new name.rs", "caf\u{e9}.md"]
        );
        assert!(entries[1].untracked() && !entries[0].untracked());
        assert_eq!(entries[2].code, "R ");
        assert!(parse_status_z("").is_empty());
    }

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
