//! A helper process for the worktree adapter's integration tests (not a tool): it creates the
//! worktree of session `ID` (branch `hydralph/ID`) in the repository `ROOT`, in a process of its
//! own, so the tests can run several creates at once across processes.

use orch_core::{SessionId, WorktreeRequest, Worktrees};
use orch_wt::GitWorktrees;
use std::path::PathBuf;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(root), Some(id)) = (args.next(), args.next()) else {
        eprintln!("usage: orch-wt-child ROOT ID");
        std::process::exit(2);
    };
    let req = WorktreeRequest {
        repo: PathBuf::from(root),
        branch: format!("hydralph/{id}"),
        base: None,
        path: None,
        session: SessionId(id),
        reserved_ports: Vec::new(),
    };
    if let Err(e) = GitWorktrees::new().create(&req) {
        eprintln!("orch-wt-child: {e}");
        std::process::exit(1);
    }
}
