//! The one place that runs git, and maps its failures to [`WorktreeError`].

use orch_core::WorktreeError;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Runs `git -C dir args...` with prompts disabled and messages in English.
pub(crate) fn git(program: &Path, dir: &Path, args: &[&str]) -> Result<Output, WorktreeError> {
    Command::new(program)
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                WorktreeError::GitMissing
            } else {
                WorktreeError::Io {
                    op: "run git in",
                    path: dir.to_path_buf(),
                    source: e,
                }
            }
        })
}

/// Runs git and returns its stdout, or `Git { op, stderr }` when it fails.
pub(crate) fn git_ok(program: &Path, dir: &Path, args: &[&str]) -> Result<String, WorktreeError> {
    let out = git(program, dir, args)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(WorktreeError::Git {
            op: args.first().copied().unwrap_or("").to_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// Maps an I/O error on `path` to `WorktreeError::Io`.
pub(crate) fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> WorktreeError + 'a {
    move |source| WorktreeError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}
