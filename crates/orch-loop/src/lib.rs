//! `orch-loop` implements `orch_core`'s [`LoopRuntime`](orch_core::LoopRuntime) on the file
//! system: each session gets its own directory, `<project>/.hydra/ralph/<id>/`, never shared,
//! so two sessions in one working directory cannot read each other's files. It holds the
//! embedded hydralph loop ([`LOOP_SCRIPT`]), the prompt, the session's copy of the PRD, the
//! progress file, the loop's `status.json`, the `.pause` marker, the `inject.d/` inbox (made
//! by the first message; one file per message, written atomically, so the loop never sees half
//! a message) and the agent log.

mod runtime;

pub use runtime::{FsLoopRuntime, EXTERNAL_LOOP_WRAPPER, LOOP_SCRIPT, MAX_MESSAGE_BYTES, MAX_PRD_BYTES};
