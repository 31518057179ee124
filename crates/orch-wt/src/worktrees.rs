//! [`GitWorktrees`]: create, remove and list per-session worktrees through the git CLI.

use crate::config::WtConfig;
use crate::git::io;
use crate::git::{git, git_ok};
use crate::porcelain::{parse_status_z, parse_worktree_list, GitWorktree, StatusEntry};
use crate::port_registry::PortRegistry;
use crate::template::{render, TemplateVars};
use orch_core::{
    BranchChanges, MergeOutcome, PortHold, PortRepair, RemoveOutcome, Saga, Trust, TrustNothing, WorktreeError,
    WorktreeInfo, WorktreeRequest, Worktrees,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

/// The git worktree adapter.
#[derive(Clone)]
pub struct GitWorktrees {
    git: PathBuf,
    trust: Arc<dyn Trust>,
}

impl std::fmt::Debug for GitWorktrees {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitWorktrees")
            .field("git", &self.git)
            .finish_non_exhaustive()
    }
}

impl Default for GitWorktrees {
    fn default() -> Self {
        GitWorktrees {
            git: PathBuf::from("git"),
            trust: Arc::new(TrustNothing),
        }
    }
}

impl GitWorktrees {
    /// An adapter running `git` from `PATH` that runs no `post_create` hook (it trusts no
    /// `wt.toml`; see [`with_trust`](Self::with_trust)).
    pub fn new() -> Self {
        Self::default()
    }

    /// An adapter running the given git program.
    pub fn with_git(program: impl Into<PathBuf>) -> Self {
        GitWorktrees {
            git: program.into(),
            ..Self::default()
        }
    }

    /// This adapter, running the `post_create` hooks of a `wt.toml` only when `trust` trusts
    /// its content; otherwise `create` refuses before making anything.
    pub fn with_trust(mut self, trust: Arc<dyn Trust>) -> Self {
        self.trust = trust;
        self
    }

    /// The root of the main working tree of the repository containing `dir`.
    pub fn repo_root(&self, dir: &Path) -> Result<PathBuf, WorktreeError> {
        let out = git(
            &self.git,
            dir,
            &["rev-parse", "--path-format=absolute", "--git-common-dir"],
        )?;
        if !out.status.success() {
            return Err(WorktreeError::NotARepo {
                path: dir.to_path_buf(),
            });
        }
        let common = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        // The main worktree is the parent of the common `.git` directory.
        match common.file_name() {
            Some(n) if n == ".git" => Ok(common.parent().map(Path::to_path_buf).unwrap_or(common)),
            _ => Err(WorktreeError::NotARepo {
                path: dir.to_path_buf(),
            }),
        }
    }

    /// Checks `branch` as git does (`git check-ref-format --branch`), before anything is made.
    pub fn validate_branch(&self, root: &Path, branch: &str) -> Result<(), WorktreeError> {
        let invalid = |why: &str| WorktreeError::InvalidBranch {
            branch: branch.to_owned(),
            why: why.to_owned(),
        };
        if branch.is_empty() || branch.starts_with('-') {
            return Err(invalid("a branch name must be non-empty and must not start with '-'"));
        }
        if branch.starts_with('@') || branch.contains(char::is_whitespace) {
            return Err(invalid("a branch name must not start with '@' or contain whitespace"));
        }
        let out = git(&self.git, root, &["check-ref-format", "--branch", branch])?;
        if !out.status.success() {
            return Err(invalid("git check-ref-format refuses it (no '..', '~', '^', ':', '?', '*', '[', '\\\\', no leading '-' or trailing '/' or '.lock')"));
        }
        Ok(())
    }

    fn worktrees(&self, root: &Path) -> Result<Vec<GitWorktree>, WorktreeError> {
        Ok(parse_worktree_list(&git_ok(
            &self.git,
            root,
            &["worktree", "list", "--porcelain"],
        )?))
    }

    fn branch_exists(&self, root: &Path, branch: &str) -> Result<bool, WorktreeError> {
        let refname = format!("refs/heads/{branch}");
        Ok(git(&self.git, root, &["rev-parse", "--verify", "--quiet", &refname])?
            .status
            .success())
    }

    /// Adds `.hydra/` to `.git/info/exclude`, so the main checkout never shows our files.
    fn exclude_hydra(&self, root: &Path) -> Result<(), WorktreeError> {
        let common = git_ok(
            &self.git,
            root,
            &["rev-parse", "--path-format=absolute", "--git-common-dir"],
        )?;
        let git_dir = PathBuf::from(common.trim());
        orch_fs::add_git_exclude(&git_dir, orch_fs::HYDRA_EXCLUDE)
            .map(|_| ())
            .map_err(io("write", &git_dir.join("info/exclude")))
    }

    /// Why removing `wt` would lose work (empty when it would not).
    fn work_at_risk(
        &self,
        root: &Path,
        wt: &GitWorktree,
        branch: &str,
        own: &[PathBuf],
    ) -> Result<Vec<String>, WorktreeError> {
        let mut reasons = Vec::new();
        let status = git_ok(
            &self.git,
            &wt.path,
            &["status", "--porcelain", "-z", "--untracked-files=all"],
        )?;
        let dirty: Vec<StatusEntry> = parse_status_z(&status)
            .into_iter()
            .filter(|e| {
                // Untracked files under `.hydra/` are the hydra tools' own state (the original
                // loop's prd.json, status.json and prompt in the worktree), not the agent's work.
                let tool_state = e.untracked() && e.path.starts_with(".hydra");
                !tool_state && !own.iter().any(|o| e.path.starts_with(o))
            })
            .collect();
        if !dirty.is_empty() {
            let sample: Vec<String> = dirty.iter().take(3).map(|e| e.path.display().to_string()).collect();
            reasons.push(format!(
                "{} uncommitted change(s) ({}{})",
                dirty.len(),
                sample.join(", "),
                if dirty.len() > 3 { ", ..." } else { "" }
            ));
        }
        // --exclude patterns for --branches are relative to refs/heads/.
        let own_ref = format!("--exclude={branch}");
        let head = wt.head.clone().unwrap_or_else(|| format!("refs/heads/{branch}"));
        let unmerged = git_ok(
            &self.git,
            root,
            &[
                "rev-list",
                "--count",
                &head,
                "--not",
                &own_ref,
                "--branches",
                "--remotes",
            ],
        )?;
        let n: u64 = unmerged.trim().parse().unwrap_or(0);
        if n > 0 {
            reasons.push(format!(
                "{n} commit(s) on {branch} that are on no other branch or remote"
            ));
        }
        Ok(reasons)
    }

    /// Links and copies the artifacts, renders the env template and runs the hooks into the
    /// new worktree at `path`; returns what was skipped (an env template that does not
    /// exist: hydra-wt warns and goes on too).
    fn populate(
        &self,
        root: &Path,
        path: &Path,
        branch: &str,
        port: u16,
        cfg: &WtConfig,
    ) -> Result<Vec<String>, WorktreeError> {
        let mut warnings = Vec::new();
        for rel in &cfg.artifacts.symlink {
            let (src, dst) = (root.join(rel), path.join(rel));
            if src.exists() {
                if let Some(parent) = dst.parent() {
                    orch_fs::mkdir_private_all(parent).map_err(io("create directory", parent))?;
                }
                std::os::unix::fs::symlink(&src, &dst).map_err(io("symlink", &dst))?;
            }
        }
        for rel in &cfg.artifacts.copy {
            let (src, dst) = (root.join(rel), path.join(rel));
            if src.exists() {
                copy_recursive(&src, &dst)?;
            }
        }
        if let Some(env) = &cfg.env {
            let tpl_path = root.join(&env.template);
            match std::fs::read_to_string(&tpl_path) {
                Ok(template) => {
                    let vars = TemplateVars {
                        port,
                        worktree: branch.to_owned(),
                        project_uuid: project_uuid(root),
                        repo_root: root.display().to_string(),
                    };
                    let text = render(&tpl_path, &template, &vars)?;
                    let out = path.join(&env.output);
                    if let Some(parent) = out.parent() {
                        orch_fs::mkdir_private_all(parent).map_err(io("create directory", parent))?;
                    }
                    std::fs::write(&out, text).map_err(io("write", &out))?;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => warnings.push(format!(
                    "env template {} does not exist (wt.toml [env] names it); no {} was written",
                    tpl_path.display(),
                    env.output.display()
                )),
                Err(e) => return Err(io("read env template", &tpl_path)(e)),
            }
        }
        for hook in &cfg.hooks.post_create {
            // Hooks are the repository owner's own commands from wt.toml, run as hydra-wt runs
            // them; no value from a session is interpolated into them (they get env instead).
            let out = Command::new("sh")
                .arg("-c")
                .arg(hook)
                .current_dir(path)
                .env("HYDRA_WT_PORT", port.to_string())
                .env("HYDRA_WT_BRANCH", branch)
                .env("HYDRA_WT_REPO_ROOT", root)
                .stdin(std::process::Stdio::null())
                .output()
                .map_err(io("run hook in", path))?;
            if !out.status.success() {
                let mut output = String::from_utf8_lossy(&out.stderr).trim().to_owned();
                if output.is_empty() {
                    output = format!("exit status {}", out.status);
                }
                return Err(WorktreeError::Hook {
                    hook: hook.clone(),
                    output,
                });
            }
        }
        Ok(warnings)
    }
}

fn project_uuid(root: &Path) -> String {
    #[derive(serde::Deserialize)]
    struct C {
        project_uuid: String,
    }
    std::fs::read_to_string(root.join(".hydra/config.toml"))
        .ok()
        .and_then(|t| toml::from_str::<C>(&t).ok())
        .map(|c| c.project_uuid)
        .unwrap_or_else(|| "unknown".to_owned())
}

fn copy_recursive(src: &Path, dst: &Path) -> Result<(), WorktreeError> {
    if src.is_dir() {
        orch_fs::mkdir_private_all(dst).map_err(io("create directory", dst))?;
        for entry in std::fs::read_dir(src).map_err(io("read directory", src))? {
            let entry = entry.map_err(io("read directory", src))?;
            copy_recursive(&entry.path(), &dst.join(entry.file_name()))?;
        }
        Ok(())
    } else {
        if let Some(parent) = dst.parent() {
            orch_fs::mkdir_private_all(parent).map_err(io("create directory", parent))?;
        }
        std::fs::copy(src, dst).map(|_| ()).map_err(io("copy", dst))
    }
}

impl Worktrees for GitWorktrees {
    fn path_for(&self, repo: &Path, branch: &str) -> Result<Option<PathBuf>, WorktreeError> {
        let root = self.repo_root(repo)?;
        self.validate_branch(&root, branch)?;
        Ok(WtConfig::load(&root)?.worktree_path(&root, branch))
    }

    fn reconcile_ports(&self, repo: &Path, holds: &[PortHold], repair: bool) -> Result<Vec<PortRepair>, WorktreeError> {
        if holds.is_empty() {
            return Ok(Vec::new());
        }
        let root = self.repo_root(repo)?;
        let registry = PortRegistry::new(&root);
        let lock = registry.lock()?;
        let mut map = registry.read(&lock)?;
        let mut repairs = Vec::new();
        let mut restored = false;
        for hold in holds {
            match map.get(&hold.branch) {
                Some(p) if *p == hold.port => {}
                Some(p) => repairs.push(PortRepair::Moved {
                    branch: hold.branch.clone(),
                    port: hold.port,
                    registry_port: *p,
                }),
                None => match map.iter().find(|(_, p)| **p == hold.port) {
                    Some((by, _)) => repairs.push(PortRepair::Taken {
                        branch: hold.branch.clone(),
                        port: hold.port,
                        by: by.clone(),
                    }),
                    None => {
                        if repair {
                            map.insert(hold.branch.clone(), hold.port);
                            restored = true;
                        }
                        repairs.push(PortRepair::Restored {
                            branch: hold.branch.clone(),
                            port: hold.port,
                        });
                    }
                },
            }
        }
        if restored {
            registry.write(&lock, &map)?;
        }
        Ok(repairs)
    }

    fn create(&self, req: &WorktreeRequest) -> Result<WorktreeInfo, WorktreeError> {
        req.session.validate()?;
        let root = self.repo_root(&req.repo)?;
        self.validate_branch(&root, &req.branch)?;
        let base = req.base.as_deref().unwrap_or("HEAD");
        let spec = format!("{base}^{{commit}}");
        if base.starts_with('-')
            || !git(&self.git, &root, &["rev-parse", "--verify", "--quiet", &spec])?
                .status
                .success()
        {
            return Err(match &req.base {
                None => WorktreeError::NoCommit { repo: root.clone() },
                Some(b) => WorktreeError::BadBase { base: b.clone() },
            });
        }
        let (cfg, bytes) = WtConfig::load_with_bytes(&root)?;
        if !cfg.hooks.post_create.is_empty() {
            let file = WtConfig::path(&root);
            let bytes = bytes.unwrap_or_default();
            if !self.trust.is_trusted(&file, &bytes) {
                return Err(WorktreeError::Untrusted {
                    file,
                    commands: cfg.hooks.post_create.clone(),
                });
            }
        }
        let path = req
            .path
            .clone()
            .or_else(|| cfg.worktree_path(&root, &req.branch))
            .unwrap_or_else(|| root.join(".hydra/worktrees").join(req.session.tmux_name()));
        if path.exists() {
            return Err(WorktreeError::PathExists { path });
        }
        // One worktree operation at a time per repository, across processes: git itself
        // fails ("failed to read .git/worktrees/X/commondir") when one process lists worktrees
        // while another is adding one (found by the 4-process reliability scenario).
        let registry = PortRegistry::new(&root);
        let lock = registry.lock()?;
        if let Some(w) = self
            .worktrees(&root)?
            .into_iter()
            .find(|w| w.branch.as_deref() == Some(req.branch.as_str()))
        {
            return Err(WorktreeError::BranchTaken {
                branch: req.branch.clone(),
                path: w.path,
            });
        }
        self.exclude_hydra(&root)?;

        let mut saga = Saga::new();
        let had_port = registry.read(&lock)?.contains_key(&req.branch);
        let port = registry.allocate(
            &lock,
            &req.branch,
            cfg.ports.range_start,
            cfg.ports.range_end,
            &req.reserved_ports,
        )?;
        if !had_port {
            saga.on_undo("port", || {
                registry.free(&lock, &req.branch).map(|_| ()).map_err(|e| e.to_string())
            });
        }
        if let Some(parent) = path.parent() {
            orch_fs::mkdir_private_all(parent).map_err(io("create directory", parent))?;
        }
        let path_str = path.to_string_lossy().into_owned();
        let existed = self.branch_exists(&root, &req.branch)?;
        let base = req.base.clone().unwrap_or_else(|| "HEAD".to_owned());
        let base_commit = git_ok(
            &self.git,
            &root,
            &["rev-parse", "--verify", &format!("{base}^{{commit}}")],
        )
        .ok();
        if existed {
            git_ok(&self.git, &root, &["worktree", "add", "--", &path_str, &req.branch])?;
        } else {
            git_ok(
                &self.git,
                &root,
                &["worktree", "add", "-b", &req.branch, "--", &path_str, &base],
            )?;
        }
        let root2 = root.clone();
        let start = base_commit.clone();
        saga.on_undo("worktree", move || {
            git_ok(&self.git, &root2, &["worktree", "remove", "--force", "--", &path_str])
                .map(|_| ())
                .map_err(|e| e.to_string())?;
            // A branch this very call created, still at its base, holds nothing: remove it so a
            // failed create leaves nothing behind. Existing branches are never touched.
            if !existed {
                let tip = git_ok(
                    &self.git,
                    &root2,
                    &["rev-parse", "--verify", &format!("refs/heads/{}", req.branch)],
                )
                .ok();
                if tip.is_some() && tip == start {
                    git_ok(&self.git, &root2, &["branch", "-D", "--", &req.branch]).map_err(|e| e.to_string())?;
                }
            }
            Ok(())
        });
        let warnings = self.populate(&root, &path, &req.branch, port, &cfg)?;
        saga.commit();
        drop(lock);
        let mut info = WorktreeInfo::new(req.branch.clone(), path, Some(port));
        info.warnings = warnings;
        info.base_commit = base_commit.map(|c| c.trim().to_owned());
        info.created_branch = !existed;
        info.base_branch = match &req.base {
            // The branch the main checkout is on.
            None => git_ok(&self.git, &root, &["symbolic-ref", "--quiet", "--short", "HEAD"])
                .ok()
                .map(|b| b.trim().to_owned())
                .filter(|b| !b.is_empty()),
            Some(b) if self.branch_exists(&root, b)? => Some(b.clone()),
            Some(_) => None,
        };
        Ok(info)
    }

    fn remove(&self, repo: &Path, branch: &str, force: bool) -> Result<RemoveOutcome, WorktreeError> {
        let root = self.repo_root(repo)?;
        let cfg = WtConfig::load(&root)?;
        let registry = PortRegistry::new(&root);
        let lock = registry.lock()?;
        let wt = self
            .worktrees(&root)?
            .into_iter()
            .find(|w| w.branch.as_deref() == Some(branch) && w.path != root);
        let Some(wt) = wt else {
            registry.free(&lock, branch)?;
            return Ok(RemoveOutcome::NotFound);
        };
        if wt.path.exists() && !force {
            let reasons = self.work_at_risk(&root, &wt, branch, &cfg.own_files())?;
            if !reasons.is_empty() {
                return Ok(RemoveOutcome::Kept { path: wt.path, reasons });
            }
        }
        // Worktree first, port second: a failure in between leaves a held port, never a port
        // handed out while its worktree still exists.
        if wt.path.exists() {
            let p = wt.path.to_string_lossy().into_owned();
            git_ok(&self.git, &root, &["worktree", "remove", "--force", "--", &p])?;
        } else {
            git_ok(&self.git, &root, &["worktree", "prune"])?;
        }
        registry.free(&lock, branch)?;
        Ok(RemoveOutcome::Removed)
    }

    fn delete_branch(&self, repo: &Path, branch: &str) -> Result<bool, WorktreeError> {
        let root = self.repo_root(repo)?;
        if branch.starts_with('-') || !self.branch_exists(&root, branch)? {
            return Ok(false);
        }
        // `-d` (not `-D`): git itself refuses a branch with commits its checkout lacks.
        Ok(git(&self.git, &root, &["branch", "-d", "--", branch])?.status.success())
    }

    fn changes(&self, repo: &Path, from: &str, branch: &str, patch: bool) -> Result<BranchChanges, WorktreeError> {
        let root = self.repo_root(repo)?;
        let from_spec = format!("{from}^{{commit}}");
        if from.starts_with('-')
            || !git(&self.git, &root, &["rev-parse", "--verify", "--quiet", &from_spec])?
                .status
                .success()
        {
            return Err(WorktreeError::BadBase { base: from.to_owned() });
        }
        self.validate_branch(&root, branch)?;
        let tip = format!("refs/heads/{branch}");
        let range = format!("{from}..{tip}");
        let log = git_ok(&self.git, &root, &["log", "--format=%H%x09%s", &range, "--"])?;
        let commits = log
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(h, s)| (h.to_owned(), s.to_owned()))
            .collect();
        let stat = git_ok(&self.git, &root, &["diff", "--stat", from, &tip, "--"])?;
        let patch = if patch {
            Some(git_ok(&self.git, &root, &["diff", from, &tip, "--"])?)
        } else {
            None
        };
        let mut out = BranchChanges::default();
        out.commits = commits;
        out.stat = stat.trim_end().to_owned();
        out.patch = patch;
        Ok(out)
    }

    fn merge(
        &self,
        repo: &Path,
        branch: &str,
        into: &str,
        squash: bool,
        message: &str,
    ) -> Result<MergeOutcome, WorktreeError> {
        let root = self.repo_root(repo)?;
        self.validate_branch(&root, branch)?;
        self.validate_branch(&root, into)?;
        let Some(checkout) = self
            .worktrees(&root)?
            .into_iter()
            .find(|w| w.branch.as_deref() == Some(into))
            .map(|w| w.path)
        else {
            return Ok(MergeOutcome::NotCheckedOut);
        };
        let dirty: Vec<String> = parse_status_z(&git_ok(
            &self.git,
            &checkout,
            &["status", "--porcelain", "-z", "--untracked-files=no"],
        )?)
        .into_iter()
        .map(|e| e.path.display().to_string())
        .collect();
        if !dirty.is_empty() {
            return Ok(MergeOutcome::Dirty { checkout, files: dirty });
        }
        let tip = format!("refs/heads/{branch}");
        if git(&self.git, &checkout, &["merge-base", "--is-ancestor", &tip, "HEAD"])?
            .status
            .success()
        {
            return Ok(MergeOutcome::UpToDate);
        }
        let merged = if squash {
            git(&self.git, &checkout, &["merge", "--squash", "--", &tip])?
        } else {
            git(
                &self.git,
                &checkout,
                &["merge", "--no-ff", "--no-edit", "-m", message, "--", &tip],
            )?
        };
        if !merged.status.success() {
            let files: Vec<String> = git_ok(&self.git, &checkout, &["diff", "--name-only", "-z", "--diff-filter=U"])
                .unwrap_or_default()
                .split('\0')
                .filter(|f| !f.is_empty())
                .map(str::to_owned)
                .collect();
            // Undo: the checkout was clean, so going back to HEAD loses nothing of the user's.
            if !git(&self.git, &checkout, &["merge", "--abort"])?.status.success() {
                git_ok(&self.git, &checkout, &["reset", "--hard", "--quiet", "HEAD"])?;
            }
            if files.is_empty() {
                return Err(WorktreeError::Git {
                    op: "merge".into(),
                    stderr: String::from_utf8_lossy(&merged.stderr).trim().to_owned(),
                });
            }
            return Ok(MergeOutcome::Conflict { files });
        }
        if squash {
            // A branch squashed in before brings nothing new.
            if git(&self.git, &checkout, &["diff", "--cached", "--quiet"])?
                .status
                .success()
            {
                return Ok(MergeOutcome::UpToDate);
            }
            let commit = git(&self.git, &checkout, &["commit", "--quiet", "-m", message])?;
            if !commit.status.success() {
                let stderr = String::from_utf8_lossy(&commit.stderr).trim().to_owned();
                git_ok(&self.git, &checkout, &["reset", "--hard", "--quiet", "HEAD"])?;
                return Err(WorktreeError::Git {
                    op: "commit".into(),
                    stderr,
                });
            }
        }
        let commit = git_ok(&self.git, &checkout, &["rev-parse", "HEAD"])?.trim().to_owned();
        Ok(MergeOutcome::Merged { commit })
    }

    fn list(&self, repo: &Path) -> Result<Vec<WorktreeInfo>, WorktreeError> {
        let root = self.repo_root(repo)?;
        let registry = PortRegistry::new(&root);
        let lock = registry.lock()?;
        let ports = registry.read(&lock)?;
        let worktrees = self.worktrees(&root)?;
        drop(lock);
        let managed_dir = root.join(".hydra/worktrees");
        // A wt.toml that does not parse only hides worktrees in its configured directory.
        let cfg = WtConfig::load(&root).unwrap_or_default();
        let mut out: Vec<WorktreeInfo> = Vec::new();
        for w in worktrees {
            let Some(branch) = w.branch.clone() else { continue };
            let port = ports.get(&branch).copied();
            let configured = cfg.worktree_path(&root, &branch).is_some_and(|p| p == w.path);
            if w.path.starts_with(&managed_dir) || configured || port.is_some() {
                let mut info = WorktreeInfo::new(branch, w.path.clone(), port);
                info.exists = w.path.exists();
                out.push(info);
            }
        }
        for (branch, port) in &ports {
            if !out.iter().any(|w| &w.branch == branch) {
                let mut info = WorktreeInfo::new(branch.clone(), PathBuf::new(), Some(*port));
                info.exists = false;
                out.push(info);
            }
        }
        Ok(out)
    }
}
