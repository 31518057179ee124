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
    use std::cell::RefCell;

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

    #[test]
    fn a_committed_saga_undoes_nothing_and_a_dropped_one_undoes_everything() {
        let undone = RefCell::new(0);
        let mut saga = Saga::new();
        saga.on_undo("a", || {
            *undone.borrow_mut() += 1;
            Ok(())
        });
        saga.commit();
        assert_eq!(*undone.borrow(), 0);
        let mut saga = Saga::new();
        saga.on_undo("a", || {
            *undone.borrow_mut() += 1;
            Ok(())
        });
        drop(saga);
        assert_eq!(*undone.borrow(), 1);
    }
}
