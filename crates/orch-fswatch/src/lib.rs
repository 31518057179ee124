//! `orch-fswatch` implements `orch_core`'s [`FileEvents`] port with the `notify` crate: the
//! kernel tells us about file changes (inotify on Linux, FSEvents on macOS), so a watcher of
//! N sessions sleeps until a loop writes its status or a record changes, and never reads a
//! file to find out whether it changed.

use notify::event::{AccessKind, AccessMode, MetadataKind, ModifyKind};
use notify::{EventKind, RecursiveMode, Watcher};
use orch_core::{FileEvents, FileEventsError, OnChange};
use std::path::PathBuf;

/// The system's file notifications.
#[derive(Debug, Default, Clone, Copy)]
pub struct NotifyEvents;

impl FileEvents for NotifyEvents {
    fn watch(&self, dirs: &[PathBuf], on_change: OnChange) -> Result<Box<dyn Send>, FileEventsError> {
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            // An error of the notification backend (an overflowed queue, say) may have lost
            // changes: report it as a change of nothing in particular, so the watcher looks.
            match res {
                Ok(event) if is_change(&event.kind) => event.paths.iter().for_each(|p| on_change(p)),
                Ok(_) => {}
                Err(_) => on_change(std::path::Path::new("")),
            }
        })
        .map_err(|e| FileEventsError::Watch {
            path: dirs.first().cloned().unwrap_or_default(),
            why: e.to_string(),
        })?;
        for dir in dirs {
            // The project's own directories: made (private) when they do not exist yet.
            orch_fs::mkdir_private_all(dir).map_err(|e| FileEventsError::Watch {
                path: dir.clone(),
                why: e.to_string(),
            })?;
            watcher
                .watch(dir, RecursiveMode::Recursive)
                .map_err(|e| FileEventsError::Watch {
                    path: dir.clone(),
                    why: e.to_string(),
                })?;
        }
        Ok(Box::new(watcher))
    }
}

/// Whether an event is a change of content, a name or a mode: opening and reading a file is
/// not (a watcher that reads the files it watches would otherwise wake itself for ever), nor
/// is a new access time.
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime)) => false,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::sync::Arc;
    use std::time::Duration;

    /// A watch of `dir` whose told paths arrive on the returned channel.
    fn watched(dir: &std::path::Path) -> (Box<dyn Send>, mpsc::Receiver<PathBuf>) {
        let (tx, rx) = mpsc::channel();
        let tx = std::sync::Mutex::new(tx);
        let guard = NotifyEvents
            .watch(
                &[dir.to_path_buf()],
                Arc::new(move |p: &std::path::Path| {
                    let _ = tx.lock().expect("tx").send(p.to_path_buf());
                }),
            )
            .expect("watch");
        (guard, rx)
    }

    #[test]
    fn changes_in_a_watched_tree_are_told_with_their_path() {
        let dir = tempfile::tempdir().expect("tmp");
        let (_guard, rx) = watched(dir.path());
        // A directory made after the watch began is watched too, from the moment the backend
        // has seen it made: the file is written again until its change is told.
        std::fs::create_dir(dir.path().join("s1")).expect("mkdir");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        'told: loop {
            assert!(std::time::Instant::now() < deadline, "no event for s1/status.json");
            std::fs::write(dir.path().join("s1/status.json"), "{}").expect("write");
            while let Ok(p) = rx.recv_timeout(Duration::from_millis(20)) {
                if p.ends_with("s1/status.json") {
                    break 'told;
                }
            }
        }
    }

    /// Regression: every open and read was told as a change, so `hydra monitor`, which reads
    /// the files it watches, woke itself in a loop (a core at 100% with nothing happening).
    #[test]
    fn reading_a_file_is_not_a_change() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("status.json");
        std::fs::write(&file, "{}").expect("write");
        let (_guard, rx) = watched(dir.path());
        for _ in 0..5 {
            assert_eq!(std::fs::read(&file).expect("read"), b"{}");
        }
        // A write after the reads: once it is told, everything before it has been too.
        std::fs::write(dir.path().join("marker"), "").expect("marker");
        let mut told = Vec::new();
        loop {
            let p = rx.recv_timeout(Duration::from_secs(10)).expect("the marker is told");
            if p.ends_with("marker") {
                break;
            }
            told.push(p);
        }
        assert!(told.is_empty(), "reads were told as changes: {told:?}");
    }

    #[test]
    fn a_missing_directory_is_made_and_an_impossible_one_is_an_error() {
        let dir = tempfile::tempdir().expect("tmp");
        let deep = dir.path().join("a/b");
        let _g = NotifyEvents
            .watch(std::slice::from_ref(&deep), Arc::new(|_: &std::path::Path| {}))
            .expect("made and watched");
        assert!(deep.is_dir());
        let file = dir.path().join("f");
        std::fs::write(&file, "").expect("file");
        let err = NotifyEvents
            .watch(&[file.join("x")], Arc::new(|_: &std::path::Path| {}))
            .err()
            .expect("under a file");
        assert!(err.to_string().contains("failed to watch"), "{err}");
    }
}
