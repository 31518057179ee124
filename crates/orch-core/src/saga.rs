//! A rollback journal for multi-step operations such as spawn: each step that succeeded
//! registers its undo, and unless the whole operation commits, the undos run in reverse order.

/// The undo of one step.
type Undo<'a> = Box<dyn FnOnce() -> Result<(), String> + 'a>;

/// Undo actions of the steps done so far. Dropping an uncommitted saga rolls it back.
#[must_use = "a saga rolls back when dropped unless committed"]
pub struct Saga<'a> {
    undo: Vec<(&'static str, Undo<'a>)>,
    done: bool,
}

impl<'a> Saga<'a> {
    /// An empty journal.
    pub fn new() -> Self {
        Saga {
            undo: Vec::new(),
            done: false,
        }
    }

    /// Records how to undo a step that has just succeeded.
    pub fn on_undo(&mut self, step: &'static str, undo: impl FnOnce() -> Result<(), String> + 'a) {
        self.undo.push((step, Box::new(undo)));
    }

    /// The operation succeeded: forget the undos.
    pub fn commit(mut self) {
        self.done = true;
        self.undo.clear();
    }

    /// Runs every undo, newest first, and returns the steps whose undo failed with why.
    pub fn rollback(mut self) -> Vec<(&'static str, String)> {
        self.run()
    }

    fn run(&mut self) -> Vec<(&'static str, String)> {
        self.done = true;
        let mut failures = Vec::new();
        while let Some((step, undo)) = self.undo.pop() {
            if let Err(e) = undo() {
                failures.push((step, e));
            }
        }
        failures
    }
}

impl Default for Saga<'_> {
    fn default() -> Self {
        Saga::new()
    }
}

impl Drop for Saga<'_> {
    fn drop(&mut self) {
        if !self.done {
            // Failures of an implicit rollback have no caller to go to; explicit
            // `rollback()` reports them.
            let _ = self.run();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{Multiplexer, MuxError, RemoveOutcome, SpawnSpec, Worktree, WorktreeInfo, WorktreeRequest};
    use crate::{AttachCommand, MuxSnapshot, SessionId, WorktreeError};
    use std::cell::RefCell;
    use std::path::{Path, PathBuf};

    mockall::mock! {
        Mux {}
        impl Multiplexer for Mux {
            fn create(&self, spec: &SpawnSpec) -> Result<(), MuxError>;
            fn snapshot(&self) -> Result<MuxSnapshot, MuxError>;
            fn send_text(&self, name: &str, text: &str, enter: bool) -> Result<(), MuxError>;
            fn capture(&self, name: &str, lines: u32) -> Result<String, MuxError>;
            fn kill(&self, name: &str) -> Result<(), MuxError>;
            fn attach_command(&self, name: &str) -> Result<AttachCommand, MuxError>;
        }
    }
    mockall::mock! {
        Wt {}
        impl Worktree for Wt {
            fn create(&self, req: &WorktreeRequest) -> Result<WorktreeInfo, WorktreeError>;
            fn remove(&self, repo: &Path, branch: &str, force: bool) -> Result<RemoveOutcome, WorktreeError>;
            fn list(&self, repo: &Path) -> Result<Vec<WorktreeInfo>, WorktreeError>;
        }
    }

    /// A spawn-shaped operation: worktree, then tmux session; the tmux failure must undo the
    /// worktree exactly once and never touch tmux's kill.
    fn spawn_like(wt: &MockWt, mux: &MockMux) -> Result<(), String> {
        let mut saga = Saga::new();
        let req = WorktreeRequest {
            repo: PathBuf::from("/repo"),
            branch: "hydralph/ab".into(),
            base: None,
            path: None,
            session: SessionId("ab".into()),
        };
        let info = wt.create(&req).map_err(|e| e.to_string())?;
        saga.on_undo("worktree", move || {
            wt.remove(Path::new("/repo"), &info.branch, true)
                .map(|_| ())
                .map_err(|e| e.to_string())
        });
        let spec = SpawnSpec {
            name: "hydralph-ab".into(),
            argv: vec!["loop".into()],
            env: vec![],
            cwd: PathBuf::from("/repo"),
        };
        mux.create(&spec).map_err(|e| e.to_string())?;
        saga.on_undo("tmux", move || mux.kill("hydralph-ab").map_err(|e| e.to_string()));
        saga.commit();
        Ok(())
    }

    fn info() -> WorktreeInfo {
        WorktreeInfo {
            branch: "hydralph/ab".into(),
            path: PathBuf::from("/repo/.hydra/worktrees/hydralph-ab"),
            port: Some(3001),
            exists: true,
        }
    }

    #[test]
    fn failed_mux_create_undoes_worktree_once_and_kills_nothing() {
        let mut wt = MockWt::new();
        wt.expect_create().times(1).returning(|_| Ok(info()));
        wt.expect_remove()
            .withf(|repo, branch, force| repo == Path::new("/repo") && branch == "hydralph/ab" && *force)
            .times(1)
            .returning(|_, _, _| Ok(RemoveOutcome::Removed));
        let mut mux = MockMux::new();
        mux.expect_create().times(1).returning(|spec| {
            Err(MuxError::NameTaken {
                name: spec.name.clone(),
            })
        });
        mux.expect_kill().times(0);
        assert!(spawn_like(&wt, &mux).is_err());
    }

    #[test]
    fn committed_saga_undoes_nothing() {
        let mut wt = MockWt::new();
        wt.expect_create().times(1).returning(|_| Ok(info()));
        wt.expect_remove().times(0);
        let mut mux = MockMux::new();
        mux.expect_create().times(1).returning(|_| Ok(()));
        mux.expect_kill().times(0);
        assert!(spawn_like(&wt, &mux).is_ok());
    }

    #[test]
    fn rollback_runs_newest_first_and_reports_failures() {
        let order = RefCell::new(Vec::new());
        let mut saga = Saga::new();
        saga.on_undo("a", || {
            order.borrow_mut().push("a");
            Ok(())
        });
        saga.on_undo("b", || {
            order.borrow_mut().push("b");
            Err("disk gone".into())
        });
        let failures = saga.rollback();
        assert_eq!(*order.borrow(), vec!["b", "a"]);
        assert_eq!(failures, vec![("b", "disk gone".to_string())]);
    }
}
