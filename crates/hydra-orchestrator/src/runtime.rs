//! Each session's own runtime directory, `<project>/.hydra/ralph/<id>/`: the loop script, its
//! prompt, a copy of the PRD, progress, status, the pause marker, the inject queue and the
//! agent log. Never shared, so two sessions in one working dir cannot see each other's files.

use crate::error::{io, Error, Result};
use orch_core::{ConfigError, LoopStatus, SessionId, Timestamp};
use std::fs::{self, DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The loop script written into every runtime directory.
pub const LOOP_SCRIPT: &str = include_str!("hydralph.sh");
/// The largest PRD accepted, in bytes.
const MAX_PRD_BYTES: u64 = 10 * 1024 * 1024;
/// The largest message `inject` accepts, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 2 * 1024 * 1024;

/// The runtime directory of one session.
#[derive(Debug, Clone)]
pub struct RuntimeDir {
    dir: PathBuf,
}

/// `<project>/.hydra/ralph`.
pub(crate) fn ralph_dir(project: &Path) -> PathBuf {
    project.join(".hydra").join("ralph")
}

fn mkdir_private(dir: &Path) -> Result<()> {
    match DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io("chmod", dir)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io("create directory", dir)(e)),
    }
}

/// Writes `bytes` to `path` atomically (temp file in the same directory, fsync, rename), 0600.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp)?;
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io("write", path)(e)
    })
}

impl RuntimeDir {
    /// The runtime directory of `id` under `project` (nothing is created).
    pub fn new(project: &Path, id: &SessionId) -> Self {
        RuntimeDir {
            dir: ralph_dir(project).join(id.as_str()),
        }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
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
    /// The loop's `status.json`.
    pub fn status(&self) -> PathBuf {
        self.dir.join("status.json")
    }
    /// The checkpoint-pause marker.
    pub fn pause_marker(&self) -> PathBuf {
        self.dir.join(".pause")
    }
    /// The queue of operator messages (one file per message).
    pub fn inbox(&self) -> PathBuf {
        self.dir.join("inject.d")
    }
    /// The agent's output log.
    pub fn log(&self) -> PathBuf {
        self.dir.join("agent.log")
    }

    /// Creates the directory and writes the loop, prompt, PRD copy and progress file.
    /// `prd` is the validated PRD text; `external_loop` replaces the embedded script.
    pub fn create(
        &self,
        project: &Path,
        id: &SessionId,
        prd: &[u8],
        agent_dir: &Path,
        external_loop: Option<&Path>,
    ) -> Result<()> {
        let hydra = project.join(".hydra");
        for d in [hydra.clone(), ralph_dir(project)] {
            mkdir_private(&d)?;
        }
        match DirBuilder::new().mode(0o700).create(&self.dir) {
            Ok(()) => {
                fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700)).map_err(io("chmod", &self.dir))?
            }
            Err(e) => return Err(io("create runtime directory", &self.dir)(e)),
        }
        mkdir_private(&self.inbox())?;
        let script = match external_loop {
            Some(p) => fs::read(p).map_err(io("read loop script", p))?,
            None => LOOP_SCRIPT.as_bytes().to_vec(),
        };
        write_atomic(&self.script(), &script, 0o700)?;
        write_atomic(&self.prd(), prd, 0o600)?;
        write_atomic(&self.progress(), b"", 0o600)?;
        write_atomic(
            &self.prompt(),
            prompt(id, &self.prd(), &self.progress(), agent_dir).as_bytes(),
            0o600,
        )?;
        Ok(())
    }

    /// Removes the directory and everything in it.
    pub fn remove(&self) -> Result<()> {
        match fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("remove", &self.dir)(e)),
        }
    }

    /// The loop's current status and when it last changed, if readable.
    pub fn read_status(&self) -> (Option<LoopStatus>, Option<Timestamp>) {
        // One open serves both the bytes and the change time: this runs per session per refresh.
        use std::io::Read;
        let Ok(mut file) = fs::File::open(self.status()) else {
            return (None, None);
        };
        let changed = file
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| Timestamp(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)));
        let mut bytes = Vec::new();
        if file.read_to_end(&mut bytes).is_err() {
            return (None, changed);
        }
        (LoopStatus::parse(&bytes).ok(), changed)
    }

    /// Queues `message` for the agent's next prompt (one atomically written file per message,
    /// so the loop never sees half a message and never loses or repeats one).
    pub fn queue_message(&self, message: &str, now: Timestamp) -> Result<PathBuf> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let inbox = self.inbox();
        mkdir_private(&inbox)?;
        let name = format!(
            "{:013}-{}-{:06}.md",
            now.as_millis(),
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let path = inbox.join(name);
        write_atomic(&path, message.as_bytes(), 0o600)?;
        Ok(path)
    }

    /// Sets or clears the checkpoint-pause marker.
    pub fn set_paused(&self, paused: bool) -> Result<()> {
        let marker = self.pause_marker();
        if paused {
            write_atomic(&marker, b"paused by hydra\n", 0o600)
        } else {
            match fs::remove_file(&marker) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(io("remove", &marker)(e)),
            }
        }
    }

    /// Forgets the loop's last status (before restarting a blocked loop).
    pub fn clear_status(&self) -> Result<()> {
        match fs::remove_file(self.status()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("remove", &self.status())(e)),
        }
    }
}

/// The prompt template: tells the agent the absolute paths of its PRD, progress and messages.
fn prompt(id: &SessionId, prd: &Path, progress: &Path, dir: &Path) -> String {
    format!(
        "# hydralph session {id}\n\n\
You are an autonomous coding agent working through a PRD, one user story per iteration.\n\n\
- PRD (JSON, `userStories` with `passes` flags): {prd}\n\
- Progress log (append one short note per iteration): {progress}\n\
- Working directory: {dir}\n\
- Messages from your operator, when there are any, appear at the top of this prompt.\n\n\
Each iteration: take the first story whose `passes` is false, implement it in the working\n\
directory, check it against its acceptance criteria, set its `passes` to true in the PRD, and\n\
append a note to the progress log.\n\n\
When every story passes, print the word COMPLETE wrapped in a promise tag (an opening tag\n\
named promise, the word, the closing tag, with no spaces). If you cannot continue without a\n\
person, explain why and print the word BLOCKED wrapped the same way.\n",
        prd = prd.display(),
        progress = progress.display(),
        dir = dir.display()
    )
}

/// Reads and checks a PRD: a regular file of at most 10 MiB holding
/// `{"userStories": [{"id", "title", "passes": bool, ...}, ...]}`.
pub fn read_prd(path: &Path) -> Result<Vec<u8>> {
    let bad = |why: String| Error::Config(ConfigError::new("prd_path", why));
    let meta = fs::metadata(path).map_err(|e| {
        bad(format!(
            "cannot read {}: {e}; give the path of a prd.json",
            path.display()
        ))
    })?;
    if !meta.is_file() {
        return Err(bad(format!("{} is not a regular file", path.display())));
    }
    if meta.len() > MAX_PRD_BYTES {
        return Err(bad(format!(
            "{} is {} bytes; a PRD may be at most {MAX_PRD_BYTES}",
            path.display(),
            meta.len()
        )));
    }
    let bytes = fs::read(path).map_err(|e| bad(format!("cannot read {}: {e}", path.display())))?;
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("{} is not JSON: {e}", path.display())))?;
    let stories = value
        .get("userStories")
        .and_then(|s| s.as_array())
        .ok_or_else(|| bad(format!("{} has no \"userStories\" array", path.display())))?;
    for (i, s) in stories.iter().enumerate() {
        let ok = s.get("id").is_some_and(|v| v.is_string() || v.is_number())
            && s.get("title").is_some_and(|v| v.is_string())
            && s.get("passes").is_some_and(|v| v.is_boolean());
        if !ok {
            return Err(bad(format!(
                "{}: userStories[{i}] needs \"id\" (string), \"title\" (string) and \"passes\" (true/false)",
                path.display()
            )));
        }
    }
    Ok(bytes)
}

/// Finds `program` the way a shell would (a path with `/` as is, else on `PATH`), returning
/// the absolute path of an executable file.
pub fn resolve_program(program: &str, path_var: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    let is_exec = |p: &Path| fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    if program.contains('/') {
        let p = PathBuf::from(program);
        let p = if p.is_absolute() {
            p
        } else {
            std::env::current_dir().ok()?.join(p)
        };
        return is_exec(&p).then_some(p);
    }
    std::env::split_paths(path_var?)
        .map(|d| d.join(program))
        .find(|p| is_exec(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prd_checks_name_the_field() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("prd.json");
        for (text, needle) in [
            ("not json", "not JSON"),
            ("{}", "userStories"),
            (r#"{"userStories":[{"id":"1","title":"t"}]}"#, "passes"),
        ] {
            fs::write(&p, text).expect("write");
            let err = read_prd(&p).expect_err(text).to_string();
            assert!(err.contains("prd_path") && err.contains(needle), "{err}");
        }
        fs::write(
            &p,
            r#"{"title":"x","userStories":[{"id":"1","title":"t","passes":false}]}"#,
        )
        .expect("write");
        assert!(read_prd(&p).is_ok());
        assert!(read_prd(dir.path()).is_err(), "a directory is refused");
    }

    #[test]
    fn programs_resolve_on_path() {
        let path = std::env::var_os("PATH");
        assert!(resolve_program("sh", path.as_deref()).is_some());
        assert!(resolve_program("no-such-program-hydra", path.as_deref()).is_none());
        assert!(resolve_program("/bin/sh", None).is_some());
    }
}
