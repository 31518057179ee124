//! The operations of the facade, one file per kind, as cargo splits `ops` from `core`: each
//! is a method of [`crate::Orchestrator`] built on the transaction of `txn.rs`.

pub(crate) mod claims;
pub(crate) mod cleanup;
pub(crate) mod control;
pub(crate) mod logs;
pub(crate) mod parallel;
pub(crate) mod prune;
pub(crate) mod pulse;
pub(crate) mod refresh;
pub(crate) mod review;
pub(crate) mod spawn;
