//! Time, behind a trait so that leases, cache TTLs and sweeps can be tested
//! by moving a hand-held clock instead of sleeping.
//!
//! Timestamps are stored as fixed-width RFC 3339 text with milliseconds, so
//! SQLite compares them correctly as strings (`lease_expires_at < ?now`).

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::run::Timestamp;

pub trait Clock: Send + Sync {
    fn now(&self) -> SystemTime;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that only moves when told to; for tests.
#[derive(Debug)]
pub struct ManualClock(Mutex<SystemTime>);

impl ManualClock {
    pub fn new(start: SystemTime) -> Self {
        ManualClock(Mutex::new(start))
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `2026-11-29T19:08:16.123Z`: the one timestamp format of the database and the API.
pub fn timestamp(at: SystemTime) -> Timestamp {
    Timestamp::at(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(SystemTime::UNIX_EPOCH);
        assert_eq!(clock.now(), SystemTime::UNIX_EPOCH);
        clock.advance(Duration::from_secs(5));
        assert_eq!(
            timestamp(SystemTime::UNIX_EPOCH).age_seconds(clock.now()),
            Some(5)
        );
    }
}
