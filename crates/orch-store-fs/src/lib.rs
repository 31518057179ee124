//! `orch-store-fs` implements `orch_core`'s [`Store`](orch_core::Store) on the file system:
//! one pretty-printed JSON file per session in `<project>/.hydra/orchestrator/sessions/`,
//! written atomically (temp file, fsync, rename, fsync of the directory) so a crash at any
//! moment leaves either the old or the new record, never a torn one. A `flock` on
//! `.hydra/orchestrator/lock` serialises read-modify-write across processes. A file that does
//! not load is moved aside to `<name>.corrupt-<timestamp>` and reported; it never hides the
//! others. Paths are only ever built from validated [`SessionId`](orch_core::SessionId)s.

mod fs_store;

pub use fs_store::FsStore;
