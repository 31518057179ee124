//! [`FsLoopRuntime`]: the runtime directories under `<project>/.hydra/ralph/`.

use orch_core::{
    LogDisposal, LoopReading, LoopReport, LoopRuntime, ReadAsk, RuntimeError, RuntimeLayout, RuntimeRequest, SessionId,
    Timestamp,
};
use std::fs::{self, DirBuilder};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The loop script written into every runtime directory.
pub const LOOP_SCRIPT: &str = include_str!("hydralph.sh");
/// How a user's own loop script (`--loop-script`) is run: `bash -c WRAPPER NAME SCRIPT`, the
/// script path an argument, never part of the command text. What the script prints goes to
/// the pane as before and is appended to `HYDRALPH_LOG`, so `hydra logs` shows it (the script
/// itself knows nothing of that log); the script's exit status is the pane's.
pub const EXTERNAL_LOOP_WRAPPER: &str = r#"log=$HYDRALPH_LOG
unset HYDRALPH_LOG
set -o pipefail
bash "$1" 2>&1 | tee -a -- "$log"
"#;
/// The largest PRD accepted, in bytes.
pub const MAX_PRD_BYTES: u64 = 10 * 1024 * 1024;
/// The largest operator message accepted, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 2 * 1024 * 1024;

/// A loop's report as read: the report (absent when unreadable) and when it last changed.
type Reading = (Option<LoopReport>, Option<Timestamp>);

/// The runtime directories of one project.
#[derive(Debug, Clone)]
pub struct FsLoopRuntime {
    project: PathBuf,
    /// Reports as parsed, beside their files' keys (a long-lived process's choice).
    cache: Option<std::sync::Arc<orch_fs::ReadCache<Reading>>>,
    /// The pack every live loop's report is read through, and its settle margin (a
    /// short-lived process's choice).
    pack: Option<(PathBuf, std::time::Duration)>,
    /// How many reads the pack saved.
    pack_hits: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> RuntimeError + 'a {
    move |source| RuntimeError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

fn millis(t: std::time::SystemTime) -> Option<Timestamp> {
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    Some(Timestamp(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)))
}

/// The `status.json` at `rel` in `dir` (through `pack` when there is one), when it last
/// changed, and the version read (one open serves all; this runs per session per refresh);
/// what cannot be read is absent.
fn read_report(
    dir: &orch_fs::Dir,
    pack: Option<&mut orch_fs::PackPass>,
    rel: &str,
    buf: &mut Vec<u8>,
) -> (Reading, Option<orch_fs::FileKey>) {
    // A reason cut inside a multi-byte character must not hide the whole report.
    let parse = |buf: &[u8]| LoopReport::parse(String::from_utf8_lossy(buf).as_bytes()).ok();
    let (read, report) = match pack {
        Some(pack) => match pack.read(dir, rel, buf) {
            Ok(Some(r)) => match parse(buf) {
                Some(report) => (Ok(Some(r)), Some(report)),
                // A copy that does not parse is judged by the file itself.
                None => {
                    let again = pack.read_file(dir, rel, buf);
                    let report = again.as_ref().ok().and_then(|r| r.as_ref()).and_then(|_| parse(buf));
                    (again, report)
                }
            },
            other => (other, None),
        },
        None => {
            let read = dir.read(rel, buf);
            let report = read.as_ref().ok().and_then(|r| r.as_ref()).and_then(|_| parse(buf));
            (read, report)
        }
    };
    match read {
        Ok(Some(r)) => ((report, millis(r.key.modified())), Some(r.key)),
        _ => ((None, None), None),
    }
}

impl FsLoopRuntime {
    /// The runtime of the project at `project` (nothing is created until a session is).
    pub fn new(project: impl Into<PathBuf>) -> Self {
        FsLoopRuntime {
            project: project.into(),
            cache: None,
            pack: None,
            pack_hits: Default::default(),
        }
    }

    /// This runtime, reading every live loop's report for a refresh through a pack at `path`
    /// (one file holding a copy of each report whose status changed at least `margin` before
    /// it was read, beside its file's key; see [`orch_fs::PackPass`]): the next process stats
    /// an unchanged `status.json` instead of opening and reading it. For short-lived processes
    /// that refresh every session (a CLI's `ls`); a runtime
    /// [`with_read_cache`](Self::with_read_cache) does not use it.
    pub fn with_pack(mut self, path: impl Into<PathBuf>, margin: std::time::Duration) -> Self {
        self.pack = Some((path.into(), margin));
        self
    }

    /// This runtime, keeping each loop report it parses for a refresh beside its file's key,
    /// so that a later refresh stats an unchanged `status.json` instead of opening and parsing
    /// it (and does not wake watchers of the directory); reports that changed less than
    /// `margin` before they were read are read again each time, and on a file system whose
    /// stat may be stale every report is (see [`orch_fs::ReadCache`]). For long-lived
    /// processes.
    pub fn with_read_cache(mut self, margin: std::time::Duration) -> Self {
        self.cache = Some(std::sync::Arc::new(orch_fs::ReadCache::new(margin)));
        self
    }

    /// How many reads of a report the report cache or the pack saved (0 without either).
    pub fn cache_hits(&self) -> u64 {
        let packed = self.pack_hits.load(std::sync::atomic::Ordering::Relaxed);
        self.cache.as_ref().map_or(0, |c| c.hits()) + packed
    }

    /// The layout of session `id`'s directory.
    pub fn layout(&self, id: &SessionId) -> RuntimeLayout {
        RuntimeLayout::new(&self.project, id)
    }

    /// The readings of the loops asked for; with `every_live`, through the cache (one pass,
    /// over every live loop: what it does not read is forgotten). An inbox is counted only
    /// where its ask says it may hold messages.
    fn read_ids(&self, asks: &[ReadAsk<'_>], every_live: bool) -> Vec<LoopReading> {
        // Every session's files by name relative to the one directory of directories.
        let root = RuntimeLayout::root(&self.project);
        let Ok(Some(dir)) = orch_fs::Dir::open(&root) else {
            return vec![LoopReading::default(); asks.len()];
        };
        let pass = self.cache.as_ref().filter(|_| every_live).and_then(|c| c.pass_in(&dir));
        let cached = pass.as_ref();
        let mut pack = match (&self.pack, every_live && self.cache.is_none()) {
            (Some((path, margin)), true) => orch_fs::PackPass::open(&dir, path, *margin),
            _ => None,
        };
        let mut buf = Vec::with_capacity(4096);
        let readings = asks
            .iter()
            .map(|&ReadAsk { id, inbox }| {
                if id.validate().is_err() {
                    return LoopReading::default();
                }
                let rel = format!("{id}/{}", RuntimeLayout::REPORT_FILE);
                let kept = cached.and_then(|pass| pass.fresh(&rel, dir.key(&rel).ok().flatten()));
                let (report, changed) = match kept {
                    Some(reading) => reading,
                    None => {
                        let (reading, key) = read_report(&dir, pack.as_mut(), &rel, &mut buf);
                        if let (Some(pass), Some(key)) = (cached, key) {
                            pass.keep(&rel, key, &reading);
                        }
                        reading
                    }
                };
                let queued = if inbox {
                    dir.count(&format!("{id}/{}", RuntimeLayout::INBOX), is_message_name)
                        .ok()
                        .flatten()
                        .unwrap_or(0)
                } else {
                    0
                };
                LoopReading::new(report, changed, queued)
            })
            .collect();
        if let Some(pack) = pack {
            let hits = pack.hits() as u64;
            self.pack_hits.fetch_add(hits, std::sync::atomic::Ordering::Relaxed);
            pack.finish(&dir);
        }
        readings
    }

    /// The existing directory of `id`, or `Missing`.
    fn existing(&self, id: &SessionId) -> Result<RuntimeLayout, RuntimeError> {
        id.validate().map_err(|e| RuntimeError::Prd {
            path: PathBuf::from(id.as_str()),
            why: e.to_string(),
        })?;
        let layout = self.layout(id);
        if layout.dir().is_dir() {
            Ok(layout)
        } else {
            Err(RuntimeError::Missing {
                id: id.clone(),
                path: layout.dir().to_path_buf(),
            })
        }
    }

    /// `<project>/.hydra/archive/<id>/`, where a pruned session's logs are kept.
    pub fn archive_dir(&self, id: &SessionId) -> PathBuf {
        self.project.join(".hydra").join("archive").join(id.as_str())
    }

    /// Copies what a person may want after the session is gone (the agent log and its rotated
    /// part, the progress notes, the last report, the PRD copy) into the archive.
    fn archive(&self, layout: &RuntimeLayout, id: &SessionId) -> Result<(), RuntimeError> {
        let target = self.archive_dir(id);
        orch_fs::mkdir_private_all(&target).map_err(io("create directory", &target))?;
        let log1 = layout.dir().join("agent.log.1");
        let progress_log = layout.dir().join("progress.txt.log");
        for file in [
            layout.log(),
            log1,
            layout.progress(),
            progress_log,
            layout.report_file(),
            layout.prd(),
        ] {
            let Some(name) = file.file_name() else { continue };
            match fs::copy(&file, target.join(name)) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io("archive", &file)(e)),
            }
        }
        Ok(())
    }

    fn populate(&self, layout: &RuntimeLayout, req: &RuntimeRequest<'_>) -> Result<(), RuntimeError> {
        // The inbox is made by the first message: a refresh finds "no inbox" (an empty queue)
        // with one failed lookup instead of opening and listing a directory per session.
        let script = req.external_loop.unwrap_or(LOOP_SCRIPT.as_bytes());
        // The directory is new and the loop starts only after these are written; a crash in
        // between leaves a session that recovery removes, files and all. So no fsync: it cost
        // a third of a spawn.
        let write = |path: PathBuf, bytes: &[u8], mode: u32| {
            orch_fs::write_fresh(&path, bytes, mode).map_err(|source| RuntimeError::Io {
                op: "write",
                path,
                source,
            })
        };
        write(layout.script(), script, 0o700)?;
        write(layout.prd(), req.prd, 0o600)?;
        write(layout.progress(), b"", 0o600)?;
        let prompt = prompt(req.id, &layout.prd(), &layout.progress(), req.agent_dir);
        write(layout.prompt(), prompt.as_bytes(), 0o600)
    }
}

impl LoopRuntime for FsLoopRuntime {
    fn read_input(&self, path: &Path) -> Result<Vec<u8>, RuntimeError> {
        let bad = |why: String| RuntimeError::Prd {
            path: path.to_path_buf(),
            why,
        };
        let meta = fs::metadata(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
        if !meta.is_file() {
            return Err(bad("it is not a regular file".into()));
        }
        if meta.len() > MAX_PRD_BYTES {
            return Err(bad(format!(
                "it is {} bytes; an input file may be at most {MAX_PRD_BYTES}",
                meta.len()
            )));
        }
        fs::read(path).map_err(|e| bad(format!("cannot read it: {e}")))
    }

    fn retry_now(&self, id: &SessionId) -> Result<(), RuntimeError> {
        let marker = self.existing(id)?.retry_marker();
        orch_fs::write_atomic(&marker, b"retry now\n", 0o600).map_err(io("write", &marker))
    }

    fn replace_input(&self, path: &Path, bytes: &[u8]) -> Result<(), RuntimeError> {
        use std::os::unix::fs::PermissionsExt;
        let meta = fs::metadata(path).map_err(|e| RuntimeError::Prd {
            path: path.to_path_buf(),
            why: format!("cannot read it: {e}"),
        })?;
        if !meta.is_file() {
            return Err(RuntimeError::Prd {
                path: path.to_path_buf(),
                why: "it is not a regular file".into(),
            });
        }
        orch_fs::write_atomic(path, bytes, meta.permissions().mode() & 0o7777).map_err(io("write", path))
    }

    fn read_prd_copy(&self, id: &SessionId) -> Result<Vec<u8>, RuntimeError> {
        self.read_input(&self.existing(id)?.prd())
    }

    fn create(&self, req: &RuntimeRequest<'_>) -> Result<(), RuntimeError> {
        let layout = self.layout(req.id);
        let hydra = self.project.join(".hydra");
        let root = RuntimeLayout::root(&self.project);
        for d in [&hydra, &root] {
            orch_fs::mkdir_private(d).map_err(io("create directory", d))?;
        }
        match DirBuilder::new().mode(0o700).create(layout.dir()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(RuntimeError::Exists {
                    path: layout.dir().to_path_buf(),
                })
            }
            Err(e) => return Err(io("create runtime directory", layout.dir())(e)),
        }
        orch_fs::mkdir_private(layout.dir()).map_err(io("chmod", layout.dir()))?;
        self.populate(&layout, req).inspect_err(|_| {
            // Nothing half-made: the directory is new and ours.
            let _ = orch_fs::remove_dir_all_if_exists(layout.dir());
        })
    }

    fn read(&self, id: &SessionId) -> LoopReading {
        // Read anew (a loop seen ended), and not a pass over every report.
        self.read_ids(&[ReadAsk::new(id)], false).pop().unwrap_or_default()
    }

    fn read_many(&self, asks: &[ReadAsk<'_>]) -> Vec<LoopReading> {
        // A refresh reads every live loop's report.
        self.read_ids(asks, true)
    }
    fn read_foreign(&self, agent_dir: &Path) -> LoopReading {
        let layout = RuntimeLayout::shared(agent_dir);
        let Ok(Some(dir)) = orch_fs::Dir::open(layout.dir()) else {
            return LoopReading::default();
        };
        let ((report, changed), _) = read_report(&dir, None, RuntimeLayout::REPORT_FILE, &mut Vec::new());
        let paused = layout.pause_marker().exists();
        LoopReading::new(report, changed, 0).with_paused(Some(paused))
    }

    fn set_foreign_paused(&self, agent_dir: &Path, paused: bool) -> Result<(), RuntimeError> {
        let layout = RuntimeLayout::shared(agent_dir);
        let marker = layout.pause_marker();
        if !layout.dir().is_dir() {
            return Err(io("write", &marker)(std::io::Error::from(std::io::ErrorKind::NotFound)));
        }
        if paused {
            // What the original tool writes; its loop only tests that the file exists.
            orch_fs::write_atomic(&marker, b"1", 0o644).map_err(io("write", &marker))
        } else {
            orch_fs::remove_file_if_exists(&marker).map_err(io("remove", &marker))
        }
    }

    fn set_paused(&self, id: &SessionId, paused: bool) -> Result<(), RuntimeError> {
        let layout = self.existing(id)?;
        let marker = layout.pause_marker();
        if paused {
            orch_fs::write_atomic(&marker, b"paused by hydra\n", 0o600).map_err(io("write", &marker))
        } else {
            orch_fs::remove_file_if_exists(&marker).map_err(io("remove", &marker))
        }
    }

    fn queue_message(&self, id: &SessionId, message: &str, now: Timestamp) -> Result<(), RuntimeError> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let inbox = self.existing(id)?.inbox();
        orch_fs::mkdir_private(&inbox).map_err(io("create directory", &inbox))?;
        // Names sort by time, so the loop takes messages oldest first.
        let name = format!(
            "{:013}-{}-{:06}.md",
            now.as_millis(),
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let path = inbox.join(name);
        orch_fs::write_atomic(&path, message.as_bytes(), 0o600).map_err(io("write", &path))
    }

    fn clear_report(&self, id: &SessionId) -> Result<(), RuntimeError> {
        let file = self.layout(id).report_file();
        orch_fs::remove_file_if_exists(&file).map_err(io("remove", &file))
    }

    fn remove(&self, id: &SessionId, logs: LogDisposal) -> Result<(), RuntimeError> {
        if id.validate().is_err() {
            return Ok(());
        }
        let layout = self.layout(id);
        if logs == LogDisposal::Archive && layout.dir().is_dir() {
            self.archive(&layout, id)?;
        }
        orch_fs::remove_dir_all_if_exists(layout.dir()).map_err(io("remove", layout.dir()))
    }

    fn list(&self) -> Result<Vec<SessionId>, RuntimeError> {
        let root = RuntimeLayout::root(&self.project);
        let entries = match fs::read_dir(&root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io("read directory", &root)(e)),
        };
        let mut ids: Vec<SessionId> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| SessionId::parse(e.file_name().to_str()?).ok())
            .collect();
        ids.sort();
        Ok(ids)
    }

    fn log_tail(&self, id: &SessionId, lines: usize) -> Result<Option<String>, RuntimeError> {
        let log = self.existing(id)?.log();
        let bytes = match fs::read(&log) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("read", &log)(e)),
        };
        if bytes.is_empty() {
            return Ok(None);
        }
        let text = String::from_utf8_lossy(&bytes);
        let all: Vec<&str> = text.lines().collect();
        Ok(Some(all[all.len().saturating_sub(lines)..].join("\n")))
    }

    /// The log's modification time (one stat): the loop appends the agent's output as it
    /// is printed.
    fn log_changed(&self, id: &SessionId) -> Option<Timestamp> {
        fs::metadata(self.layout(id).log())
            .ok()?
            .modified()
            .ok()
            .and_then(millis)
    }
}

/// Whether a file name in the inbox is a queued message (`<ms>-<pid>-<seq>.md`), not a temp file.
fn is_message_name(name: &str) -> bool {
    name.ends_with(".md") && !name.starts_with('.')
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
directory, check it against its acceptance criteria, commit it, set its `passes` to true in\n\
the PRD, and append a note to the progress log. An iteration that changes nothing counts\n\
against you: a few in a row stop the session.\n\n\
When every story passes, print the word COMPLETE wrapped in a promise tag (an opening tag\n\
named promise, the word, the closing tag, with no spaces). If you cannot continue without a\n\
person, explain why inside a reason tag (an opening tag named reason, your explanation, the\n\
closing tag), then print the word BLOCKED wrapped in a promise tag the same way.\n",
        prd = prd.display(),
        progress = progress.display(),
        dir = dir.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn rt() -> (tempfile::TempDir, FsLoopRuntime, SessionId) {
        let dir = tempfile::tempdir().expect("tmp");
        let rt = FsLoopRuntime::new(dir.path());
        (dir, rt, SessionId("ab12".into()))
    }

    fn create(rt: &FsLoopRuntime, id: &SessionId) {
        rt.create(&RuntimeRequest {
            id,
            prd: br#"{"userStories":[{"id":"1","title":"t","passes":false}]}"#,
            agent_dir: Path::new("/work"),
            external_loop: None,
        })
        .expect("create");
    }

    #[test]
    fn many_sessions_are_read_in_order_each_with_its_own_report_and_inbox() {
        let (_d, rt, _) = rt();
        let ids: Vec<SessionId> = (0..200).map(|i| SessionId(format!("s{i:04}"))).collect();
        for (i, id) in ids.iter().enumerate() {
            create(&rt, id);
            let report = format!(r#"{{"status":"running","iteration":{i},"max":1000}}"#);
            fs::write(rt.layout(id).report_file(), report).expect("status");
            for k in 0..i % 3 {
                rt.queue_message(id, &format!("m{k}"), Timestamp(1_000 + k as u64))
                    .expect("queue");
            }
        }
        let asks: Vec<ReadAsk> = ids.iter().map(ReadAsk::new).collect();
        let readings = rt.read_many(&asks);
        assert_eq!(readings.len(), ids.len());
        for (i, r) in readings.iter().enumerate() {
            let report = r.report.as_ref().expect("a report");
            assert_eq!(report.iteration as usize, i, "session {i}");
            assert_eq!(r.queued, i % 3, "session {i}");
        }
        // An inbox its ask says is empty is not looked at; the report is read all the same.
        let quiet: Vec<ReadAsk> = ids.iter().map(|id| ReadAsk { id, inbox: false }).collect();
        for (i, r) in rt.read_many(&quiet).iter().enumerate() {
            assert_eq!(
                r.report.as_ref().expect("a report").iteration as usize,
                i,
                "session {i}"
            );
            assert_eq!(r.queued, 0, "session {i}");
        }
    }

    #[test]
    fn create_writes_a_private_directory_and_refuses_a_second_time() {
        let (_d, rt, id) = rt();
        create(&rt, &id);
        let l = rt.layout(&id);
        for f in [l.script(), l.prd(), l.progress(), l.prompt()] {
            assert!(f.is_file(), "{}", f.display());
        }
        assert_eq!(fs::metadata(l.dir()).expect("dir").permissions().mode() & 0o777, 0o700);
        assert_eq!(fs::read_to_string(l.script()).expect("script"), LOOP_SCRIPT);
        assert!(matches!(
            rt.create(&RuntimeRequest {
                id: &id,
                prd: b"{}",
                agent_dir: Path::new("/"),
                external_loop: None
            }),
            Err(RuntimeError::Exists { .. })
        ));
        assert_eq!(rt.list().expect("list"), [id]);
    }

    #[test]
    fn reading_reports_messages_and_the_pause_marker() {
        let (_d, rt, id) = rt();
        assert_eq!(rt.read(&id), LoopReading::default(), "no directory: nothing to read");
        create(&rt, &id);
        let l = rt.layout(&id);
        fs::write(l.report_file(), r#"{"status":"running","iteration":2,"max":5,"run":1}"#).expect("status");
        rt.queue_message(&id, "first", Timestamp(1)).expect("queue");
        rt.queue_message(&id, "second", Timestamp(2)).expect("queue");
        let reading = rt.read(&id);
        assert_eq!(reading.report.expect("report").iteration, 2);
        assert!(reading.changed.is_some());
        assert_eq!(reading.queued, 2);
        rt.set_paused(&id, true).expect("pause");
        assert!(l.pause_marker().exists());
        rt.set_paused(&id, false).expect("resume");
        assert!(!l.pause_marker().exists());
        rt.clear_report(&id).expect("clear");
        assert!(rt.read(&id).report.is_none());
    }

    #[test]
    fn a_session_without_a_directory_is_missing_not_created() {
        let (_d, rt, id) = rt();
        assert!(matches!(rt.set_paused(&id, true), Err(RuntimeError::Missing { .. })));
        assert!(matches!(
            rt.queue_message(&id, "x", Timestamp(0)),
            Err(RuntimeError::Missing { .. })
        ));
        assert!(matches!(rt.retry_now(&id), Err(RuntimeError::Missing { .. })));
        assert!(matches!(rt.read_prd_copy(&id), Err(RuntimeError::Missing { .. })));
        assert!(!rt.layout(&id).dir().exists());
    }

    #[test]
    fn prd_reading_refuses_what_is_not_a_small_file() {
        let (d, rt, _) = rt();
        assert!(matches!(rt.read_input(d.path()), Err(RuntimeError::Prd { .. })));
        assert!(matches!(
            rt.read_input(&d.path().join("missing")),
            Err(RuntimeError::Prd { .. })
        ));
        let p = d.path().join("prd.json");
        fs::write(&p, "{}").expect("write");
        assert_eq!(rt.read_input(&p).expect("read"), b"{}");
    }

    #[test]
    fn log_tail_is_none_until_the_agent_prints() {
        let (_d, rt, id) = rt();
        create(&rt, &id);
        assert_eq!(rt.log_tail(&id, 10).expect("tail"), None);
        assert_eq!(rt.log_changed(&id), None, "no log yet");
        let before = millis(std::time::SystemTime::now()).expect("now");
        fs::write(rt.layout(&id).log(), "a\nb\nc\n").expect("log");
        assert_eq!(rt.log_tail(&id, 2).expect("tail").as_deref(), Some("b\nc"));
        let after = millis(std::time::SystemTime::now()).expect("now");
        let changed = rt.log_changed(&id).expect("the log's change time");
        // The write's time, within the file system's clock granularity (a second at worst).
        assert!(
            changed.plus(std::time::Duration::from_secs(1)) >= before && changed <= after,
            "{changed:?} not within {before:?}..{after:?}"
        );
        rt.remove(&id, LogDisposal::Archive).expect("remove");
        assert!(rt.list().expect("list").is_empty());
        assert_eq!(
            fs::read_to_string(rt.archive_dir(&id).join("agent.log")).expect("archived log"),
            "a\nb\nc\n"
        );
        create(&rt, &id);
        rt.remove(&id, LogDisposal::Delete).expect("remove");
        assert!(!rt.layout(&id).dir().exists());
    }
}
