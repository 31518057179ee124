//! `orch-mail` implements `orch_core`'s [`EventBus`](orch_core::EventBus) as a client of a
//! hydra-mail daemon (CONTRACTS.md): lifecycle events become TOON pulses, base64-encoded in
//! one-line JSON `emit` requests on the project's Unix socket.
//!
//! Publishing never waits on the daemon. `publish` on a [`MailBus`] encodes the pulse and pushes it
//! into a bounded queue; one background thread drains it over ONE persistent connection, reads
//! each reply with a timeout, reconnects with backoff when the daemon restarts, and drops the
//! oldest events (counting them) when the queue is full. That thread is a plain OS thread, not a
//! tokio task, so `publish` works the same from sync code and from inside a runtime.
//!
//! Subscriptions are async (tokio): a task per channel reads the multi-line stream, splits it at
//! lines that begin with `id: `, decodes each pulse (folded or nested `data`), skips what does
//! not decode, and resubscribes when the stream closes or goes silent, dropping replayed
//! duplicates by pulse id.
//!
//! The crate never prints: what a person may want to know (an event the daemon refused,
//! events dropped from a full queue) goes to `tracing`, and the application decides what to show.

mod bus;
mod discover;
mod frame;
mod pulse;
mod subscribe;
#[cfg(feature = "test-daemon")]
pub mod test_daemon;

pub use bus::{MailBus, MailOptions, MailStats};
pub use discover::{discover, Discovery};
pub use frame::Framer;
pub use pulse::{decode_pulse, encode_pulse};
