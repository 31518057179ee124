//! The [`Clock`] port: where "now" comes from.

use crate::time::Timestamp;

/// The source of "now". The facade uses the system clock; tests use a manual one, so no test
/// sleeps to wait for "15 minutes".
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> Timestamp;
}
