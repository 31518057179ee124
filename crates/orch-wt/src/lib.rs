//! `orch-wt` implements `orch_core`'s [`Worktrees`](orch_core::Worktrees) with the git CLI, in
//! the formats of hydra-wt: `.hydra/wt.toml` for the port range, env template (rendered with
//! Tera, as hydra-wt does), worktree directory, artifacts and hooks, and `.hydra/wt-ports.json`,
//! the flat `{"branch": port}` registry — which this adapter, unlike hydra-wt, updates under an
//! exclusive lock with an atomic write, so concurrent creates never share a port.
//!
//! Removal never destroys work: a worktree with uncommitted changes or commits found on no
//! other branch or remote is kept (and the caller told why) unless forced, and removal never
//! deletes the branch; `delete_branch` (for undoing a spawn that made one) uses `git branch -d`,
//! which refuses a branch with commits its checkout lacks. Create is all-or-nothing: a failure at any step (an invalid branch, an
//! exhausted range, a failing `post_create` hook) undoes what was done.

mod config;
mod git;
mod porcelain;
mod port_registry;
mod template;
mod worktrees;

pub use config::WtConfig;
pub use porcelain::{parse_status_z, parse_worktree_list, GitWorktree, StatusEntry};
pub use port_registry::{PortRegistry, RegistryLock};
pub use worktrees::GitWorktrees;
