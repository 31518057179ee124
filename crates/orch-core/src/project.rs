//! Project identity and paths: the tag that marks which project owns a tmux session, and the
//! layout of a session's runtime directory. Pure path arithmetic; nothing here touches disk.

use crate::id::SessionId;
use std::path::{Path, PathBuf};

/// The tag that marks a tmux session as owned by the project at `root` (its canonical path):
/// 16 hex digits of the 64-bit FNV-1a hash of the path's bytes. Stored on every session the
/// orchestrator creates and read back in the same single snapshot call, so a project sees,
/// reports and cleans only its own sessions.
pub fn project_tag(root: &Path) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let hash = root
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(OFFSET, |h, b| (h ^ u64::from(*b)).wrapping_mul(PRIME));
    format!("{hash:016x}")
}

/// Where one session's runtime files live: `<project>/.hydra/ralph/<id>/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeLayout {
    dir: PathBuf,
}

impl RuntimeLayout {
    /// The name of the loop's report in a session's directory.
    pub const REPORT_FILE: &'static str = "status.json";
    /// The name of the message queue in a session's directory.
    pub const INBOX: &'static str = "inject.d";

    /// The layout of session `id` under `project`.
    pub fn new(project: &Path, id: &SessionId) -> Self {
        RuntimeLayout {
            dir: Self::root(project).join(id.as_str()),
        }
    }

    /// The original hydra tool's loop directory for its sessions working in `agent_dir`:
    /// `<agent_dir>/.hydra/ralph/` itself, shared by all of them, with the same file names
    /// (where ours give each session a directory of its own below it).
    pub fn shared(agent_dir: &Path) -> Self {
        RuntimeLayout {
            dir: Self::root(agent_dir),
        }
    }

    /// `<project>/.hydra/ralph`, the directory of every session's directory.
    pub fn root(project: &Path) -> PathBuf {
        project.join(".hydra").join("ralph")
    }

    /// The session's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// The loop script.
    pub fn script(&self) -> PathBuf {
        self.dir.join("hydralph.sh")
    }
    /// The session's copy of the PRD.
    pub fn prd(&self) -> PathBuf {
        self.dir.join("prd.json")
    }
    /// The progress file.
    pub fn progress(&self) -> PathBuf {
        self.dir.join("progress.txt")
    }
    /// The prompt template.
    pub fn prompt(&self) -> PathBuf {
        self.dir.join("prompt.md")
    }
    /// The loop's report, hydralph's `status.json`.
    pub fn report_file(&self) -> PathBuf {
        self.dir.join(Self::REPORT_FILE)
    }
    /// The checkpoint-pause marker.
    pub fn pause_marker(&self) -> PathBuf {
        self.dir.join(".pause")
    }
    /// The marker that makes a usage-limit wait end now.
    pub fn retry_marker(&self) -> PathBuf {
        self.dir.join(".retry")
    }
    /// The queue of operator messages (one file per message).
    pub fn inbox(&self) -> PathBuf {
        self.dir.join(Self::INBOX)
    }
    /// The agent's output log.
    pub fn log(&self) -> PathBuf {
        self.dir.join("agent.log")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_stable_distinct_and_hex() {
        let a = project_tag(Path::new("/work/a"));
        assert_eq!(a, project_tag(Path::new("/work/a")));
        assert_ne!(a, project_tag(Path::new("/work/b")));
        assert_eq!(a.len(), 16);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        // FNV-1a of the empty input is its offset basis.
        assert_eq!(project_tag(Path::new("")), "cbf29ce484222325");
    }

    #[test]
    fn layout_paths() {
        let l = RuntimeLayout::new(Path::new("/p"), &SessionId("ab".into()));
        assert_eq!(l.dir(), Path::new("/p/.hydra/ralph/ab"));
        assert_eq!(l.report_file(), Path::new("/p/.hydra/ralph/ab/status.json"));
        assert_eq!(l.inbox(), Path::new("/p/.hydra/ralph/ab/inject.d"));
        assert_eq!(l.retry_marker(), Path::new("/p/.hydra/ralph/ab/.retry"));
        // The original tool's directory is shared by its sessions in one working directory.
        let shared = RuntimeLayout::shared(Path::new("/w"));
        assert_eq!(shared.pause_marker(), Path::new("/w/.hydra/ralph/.pause"));
        assert_eq!(shared.report_file(), Path::new("/w/.hydra/ralph/status.json"));
        assert_eq!(shared.prompt(), Path::new("/w/.hydra/ralph/prompt.md"));
    }
}
