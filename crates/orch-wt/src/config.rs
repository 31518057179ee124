//! `.hydra/wt.toml`, hydra-wt's configuration, of which this adapter honours ports, env,
//! worktree directory, artifacts and hooks.

use orch_core::WorktreeError;
use serde::Deserialize;
use std::path::{Component, Path, PathBuf};

/// The parsed `.hydra/wt.toml` (defaults when absent: ports 3001-3099, nothing else).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(default)]
pub struct WtConfig {
    /// `[ports]`.
    pub ports: Ports,
    /// `[env]`: a template rendered into each worktree.
    pub env: Option<EnvTemplate>,
    /// `[worktrees]`: where worktrees go.
    pub worktrees: Option<WorktreesDir>,
    /// `[artifacts]`: files linked or copied from the main checkout.
    pub artifacts: Artifacts,
    /// `[hooks]`.
    pub hooks: Hooks,
}

/// `[ports]`: the inclusive range ports are allocated from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Ports {
    /// First port.
    pub range_start: u16,
    /// Last port (inclusive).
    pub range_end: u16,
}

impl Default for Ports {
    fn default() -> Self {
        Ports {
            range_start: 3001,
            range_end: 3099,
        }
    }
}

/// `[env]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct EnvTemplate {
    /// Template file, relative to the repository root.
    pub template: PathBuf,
    /// Output file, relative to the worktree.
    pub output: PathBuf,
}

/// `[worktrees]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct WorktreesDir {
    /// The directory worktrees go in, one per branch at `<directory>/<branch>`: relative to
    /// the repository root (hydra-wt's default is `../`), or absolute.
    pub directory: PathBuf,
}

/// `[artifacts]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(default)]
pub struct Artifacts {
    /// Paths (relative to the root) symlinked into each worktree.
    pub symlink: Vec<PathBuf>,
    /// Paths (relative to the root) copied into each worktree.
    pub copy: Vec<PathBuf>,
}

/// `[hooks]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(default)]
pub struct Hooks {
    /// Commands run with `sh -c` in a new worktree; the first failure rolls the create back.
    pub post_create: Vec<String>,
}

impl WtConfig {
    /// `<root>/.hydra/wt.toml`.
    pub fn path(root: &Path) -> PathBuf {
        root.join(".hydra").join("wt.toml")
    }

    /// Reads `<root>/.hydra/wt.toml`; defaults when it does not exist.
    pub fn load(root: &Path) -> Result<Self, WorktreeError> {
        Self::load_with_bytes(root).map(|(cfg, _)| cfg)
    }

    /// Reads `<root>/.hydra/wt.toml` and returns it with the bytes it was parsed from (`None`
    /// when there is no file and the defaults apply), so a check of those bytes (trust)
    /// covers exactly what is used.
    pub fn load_with_bytes(root: &Path) -> Result<(Self, Option<Vec<u8>>), WorktreeError> {
        let path = Self::path(root);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((WtConfig::default(), None)),
            Err(e) => {
                return Err(WorktreeError::Io {
                    op: "read",
                    path,
                    source: e,
                })
            }
        };
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let cfg: WtConfig = toml::from_str(&text).map_err(|e| WorktreeError::Config {
            path: path.clone(),
            why: e.message().to_owned(),
        })?;
        if cfg.ports.range_start == 0 || cfg.ports.range_start > cfg.ports.range_end {
            return Err(WorktreeError::Config {
                path,
                why: format!(
                    "[ports] range {}-{} is empty; range_start must be 1..=range_end",
                    cfg.ports.range_start, cfg.ports.range_end
                ),
            });
        }
        let relative =
            |p: &PathBuf| !p.as_os_str().is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)));
        let env_paths = cfg.env.iter().flat_map(|e| [&e.template, &e.output]);
        if let Some(bad) = env_paths
            .chain(&cfg.artifacts.symlink)
            .chain(&cfg.artifacts.copy)
            .find(|p| !relative(p))
        {
            return Err(WorktreeError::Config {
                path,
                why: format!("{} must be a relative path inside the repository", bad.display()),
            });
        }
        Ok((cfg, Some(bytes)))
    }

    /// Where the worktree of `branch` goes when `[worktrees] directory` is set: hydra-wt's
    /// `<directory>/<branch>`, relative to `root` (with `..` resolved, as git records it).
    pub fn worktree_path(&self, root: &Path, branch: &str) -> Option<PathBuf> {
        let dir = &self.worktrees.as_ref()?.directory;
        Some(normalize(&root.join(dir).join(branch)))
    }

    /// Paths the adapter itself writes into a worktree (not the agent's work).
    pub fn own_files(&self) -> Vec<PathBuf> {
        let mut own: Vec<PathBuf> = self.env.iter().map(|e| e.output.clone()).collect();
        own.extend(self.artifacts.symlink.iter().cloned());
        own.extend(self.artifacts.copy.iter().cloned());
        own
    }
}

/// `path` with `.` and `..` resolved lexically (an absolute path stays absolute).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worktree_directory_is_relative_to_the_root() {
        let mut cfg = WtConfig::default();
        let root = Path::new("/src/app");
        assert_eq!(cfg.worktree_path(root, "feat"), None, "unset: the caller's default");
        cfg.worktrees = Some(WorktreesDir {
            directory: "../".into(),
        });
        assert_eq!(
            cfg.worktree_path(root, "hydralph/ab12"),
            Some(PathBuf::from("/src/hydralph/ab12"))
        );
        cfg.worktrees = Some(WorktreesDir {
            directory: "/wt/./x/..".into(),
        });
        assert_eq!(cfg.worktree_path(root, "b"), Some(PathBuf::from("/wt/b")));
    }

    #[test]
    fn hydra_wt_config_parses() {
        let cfg: WtConfig = toml::from_str(
            "[ports]\nrange_start = 3001\nrange_end = 3099\n[env]\ntemplate = \".env.template\"\noutput = \".env.local\"\n[worktrees]\ndirectory = \"../\"\n[artifacts]\nsymlink = []\ncopy = []\n[hooks]\npost_create = []\n",
        )
        .expect("parses");
        assert_eq!(cfg.ports.range_end, 3099);
        assert_eq!(cfg.env.expect("env").output, PathBuf::from(".env.local"));
        assert_eq!(cfg.worktrees.expect("worktrees").directory, PathBuf::from("../"));
    }
}
