//! Time as a value: milliseconds since the Unix epoch, handed to the core by a [`crate::Clock`].

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A point in time, in milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// A timestamp from whole seconds since the epoch.
    pub fn from_secs(secs: u64) -> Self {
        Timestamp(secs.saturating_mul(1000))
    }

    /// Whole seconds since the epoch.
    pub fn as_secs(self) -> u64 {
        self.0 / 1000
    }

    /// Milliseconds since the epoch.
    pub fn as_millis(self) -> u64 {
        self.0
    }

    /// `self + d`, saturating.
    pub fn plus(self, d: Duration) -> Self {
        Timestamp(self.0.saturating_add(duration_ms(d)))
    }

    /// The time from `earlier` to `self`, or `None` when `earlier` is later (time went back).
    pub fn since(self, earlier: Timestamp) -> Option<Duration> {
        self.0.checked_sub(earlier.0).map(Duration::from_millis)
    }
}

/// A duration in whole milliseconds, saturating at `u64::MAX`.
pub(crate) fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_is_none_when_time_goes_back() {
        assert_eq!(Timestamp(5).since(Timestamp(7)), None);
        assert_eq!(Timestamp(7).since(Timestamp(5)), Some(Duration::from_millis(2)));
        assert_eq!(Timestamp::from_secs(3).as_secs(), 3);
        assert_eq!(Timestamp(u64::MAX).plus(Duration::from_secs(1)), Timestamp(u64::MAX));
    }
}
