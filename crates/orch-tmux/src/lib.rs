//! `orch-tmux` implements `orch_core`'s [`Multiplexer`](orch_core::Multiplexer) on tmux: the
//! commands that only read, and a new session on a running server, go through this crate's
//! own client on the server's socket (tmux's client protocol, no tmux process; see
//! [`TmuxConfig::native_client`]); the rest, and anything that client cannot carry, run the
//! tmux CLI. Each agent session is a detached tmux session named `hydralph-<id>`
//! whose *own command* is the agent loop (argv, never a shell string), so no user-supplied text
//! is ever parsed by a shell, and the loop starts in milliseconds instead of waiting for a login
//! shell. Liveness and activity of every session come from ONE `list-panes -a` call, parsed by a
//! pure function; targets are always exact (`=name`), so `hydralph-ab` never hits
//! `hydralph-abc`. A [`TmuxConfig`] picks the server (`-L`/`-S`), so tests and embedders can
//! isolate one. Every session carries its project's tag in a user option read back in that
//! same call, so a project only ever sees its own sessions. A long-lived process can have its
//! snapshots go through one persistent control-mode client instead of a tmux process each
//! ([`TmuxConfig::control_tag`]).

mod command;
mod control;
mod exits;
mod native;
mod parse;
mod tmux;
mod watch;

pub use orch_core::MuxServer as Server;
pub use parse::{parse_snapshot, SNAPSHOT_FORMAT, TAG_OPTION};
pub use tmux::{Tmux, TmuxConfig};
pub use watch::{TmuxWatch, WATCH_CHANNEL};
