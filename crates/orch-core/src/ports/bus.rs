//! The [`EventBus`] port: a pub/sub bus (hydra-mail) for lifecycle events.

use crate::events::{LifecycleEvent, Pulse};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// Errors of an [`EventBus`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BusError {
    /// There is no daemon for this project; events are not delivered.
    #[error("no hydra-mail daemon for this project ({why})")]
    Standalone {
        /// Why the daemon is considered absent.
        why: String,
    },
    /// The daemon answered with an error.
    #[error("hydra-mail refused the message: {msg}")]
    Daemon {
        /// The daemon's message.
        msg: String,
    },
    /// The event could not be encoded.
    #[error("failed to encode an event for hydra-mail: {0}")]
    Encode(String),
    /// Subscribing needs a tokio runtime and was called outside one.
    #[error("subscribing to hydra-mail needs a tokio runtime; call it from within one")]
    NoRuntime,
    /// A socket operation failed.
    #[error("failed to {op} the hydra-mail socket")]
    Io {
        /// What was attempted.
        op: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Pending events could not all be delivered in time.
    #[error("{pending} event(s) not delivered to hydra-mail within {waited:?}")]
    FlushTimeout {
        /// Events still queued.
        pending: usize,
        /// How long we waited.
        waited: Duration,
    },
}

/// A stream of decoded pulses from subscribed channels.
pub trait Subscription: Send {
    /// The next pulse, or `None` when the subscription has ended for good.
    fn next(&mut self) -> Pin<Box<dyn Future<Output = Option<Pulse>> + Send + '_>>;
}

/// A pub/sub bus (hydra-mail) for lifecycle events.
pub trait EventBus: Send + Sync {
    /// Queues `event` for delivery and returns at once; never waits on the daemon.
    ///
    /// Errors: none for a slow or absent daemon (those are counted and reported by the
    /// adapter); `Encode` when the event cannot be encoded.
    fn publish(&self, event: &LifecycleEvent) -> Result<(), BusError>;

    /// Waits at most `timeout` for queued events to be delivered.
    ///
    /// Errors: `FlushTimeout` with the number still pending.
    fn flush(&self, timeout: Duration) -> Result<(), BusError>;

    /// Subscribes to `channels`. Socket buses must be called from within a tokio runtime.
    ///
    /// Errors: `Standalone` when there is no daemon, `NoRuntime` outside a runtime.
    fn subscribe(&self, channels: &[&str]) -> Result<Box<dyn Subscription>, BusError>;

    /// Why events are not being delivered right now, when the bus knows (a configured daemon
    /// that is down, say); `None` when all is well or nothing is configured.
    fn delivery_problem(&self) -> Option<String> {
        None
    }
}
