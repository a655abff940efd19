//! Time, behind a trait so that leases, cache TTLs, sweeps and the engine's
//! waits can be tested by moving a hand-held clock instead of sleeping.
//!
//! Every wait of an engine worker (backoff, `Retry-After`, a full disk, the
//! idle poll) is a [`Clock::sleep`] on a [`CancelToken`], so it ends early on
//! cancel or shutdown, and on the [`ManualClock`] it takes no real time.
//!
//! Timestamps are stored as fixed-width RFC 3339 text with milliseconds, so
//! SQLite compares them correctly as strings (`lease_expires_at < ?now`).

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::cancel::CancelToken;
use crate::run::Timestamp;

pub trait Clock: Send + Sync {
    fn now(&self) -> SystemTime;

    /// Waits `duration`, or less when `cancel` is cancelled first; true when
    /// it was cancelled (before or during the wait).
    fn sleep(&self, duration: Duration, cancel: &CancelToken) -> bool;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn sleep(&self, duration: Duration, cancel: &CancelToken) -> bool {
        cancel.wait(duration)
    }
}

/// Runs on every [`ManualClock::sleep`], after the clock moved: a test's way
/// to act "during" a wait (cancel the run, take it over).
pub type SleepHook = Box<dyn Fn(Duration) + Send + Sync>;

/// A clock that only moves when told to; for tests. A sleep moves it at once
/// by the time asked and is recorded, so a test reads the schedule of waits
/// instead of living through it.
pub struct ManualClock {
    now: Mutex<SystemTime>,
    sleeps: Mutex<Vec<Duration>>,
    hook: Mutex<Option<std::sync::Arc<SleepHook>>>,
}

impl std::fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManualClock")
            .field("now", &self.now())
            .field("sleeps", &self.sleeps())
            .finish_non_exhaustive()
    }
}

impl ManualClock {
    pub fn new(start: SystemTime) -> Self {
        ManualClock {
            now: Mutex::new(start),
            ..ManualClock::default()
        }
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }

    /// Every sleep so far, in order, as asked (also those cut short).
    pub fn sleeps(&self) -> Vec<Duration> {
        self.sleeps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Sets the hook run on each later sleep.
    pub fn on_sleep(&self, hook: impl Fn(Duration) + Send + Sync + 'static) {
        let hook: SleepHook = Box::new(hook);
        *self.hook.lock().unwrap_or_else(|e| e.into_inner()) = Some(std::sync::Arc::new(hook));
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock {
            now: Mutex::new(SystemTime::UNIX_EPOCH),
            sleeps: Mutex::default(),
            hook: Mutex::default(),
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A cancelled token makes no time pass; otherwise the clock moves by
    /// `duration`, the hook runs (its lock released first, so it may sleep
    /// or read the clock), and the answer is whether the token is cancelled
    /// now.
    fn sleep(&self, duration: Duration, cancel: &CancelToken) -> bool {
        self.sleeps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(duration);
        if cancel.is_cancelled() {
            return true;
        }
        self.advance(duration);
        let hook = self.hook.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(hook) = hook {
            hook(duration);
        }
        cancel.is_cancelled()
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

    #[test]
    fn manual_sleeps_move_the_clock_at_once_and_are_recorded() {
        let clock = std::sync::Arc::new(ManualClock::new(SystemTime::UNIX_EPOCH));
        let token = CancelToken::new();
        let cancel_on_second = token.clone();
        let calls = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let seen = calls.clone();
        clock.on_sleep(move |_| {
            if seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 1 {
                cancel_on_second.cancel();
            }
        });
        let start = std::time::Instant::now();
        assert!(!clock.sleep(Duration::from_secs(40), &token));
        assert!(
            clock.sleep(Duration::from_secs(2), &token),
            "the hook cancelled it"
        );
        assert!(
            clock.sleep(Duration::from_secs(7), &token),
            "already cancelled"
        );
        assert!(start.elapsed() < Duration::from_secs(1));
        assert_eq!(clock.sleeps(), [40, 2, 7].map(Duration::from_secs).to_vec());
        // The cancelled third sleep took no time.
        assert_eq!(
            clock.now(),
            SystemTime::UNIX_EPOCH + Duration::from_secs(42)
        );
    }
}
