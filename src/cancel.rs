//! Cancellation that wakes whoever waits: a [`CancelToken`] is shared by the
//! code that decides to stop (a run's cancel, shutdown) and the code that
//! waits (a backoff, a generator call in flight).
//!
//! Built on a `Mutex<bool>` and a `Condvar` rather than an `AtomicBool`, so a
//! wait ends the moment the token is cancelled instead of at its next poll.
//!
//! Invariant: once cancelled, a token stays cancelled; every clone sees it.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// A cancel flag that waiters can sleep on. Cheap to clone: clones share
/// one flag.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    cancelled: Mutex<bool>,
    signal: Condvar,
}

impl CancelToken {
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    /// Cancels the token and wakes every waiter. Cancelling twice is harmless.
    pub fn cancel(&self) {
        let mut cancelled = self.0.cancelled.lock().unwrap_or_else(|e| e.into_inner());
        *cancelled = true;
        self.0.signal.notify_all();
    }

    pub fn is_cancelled(&self) -> bool {
        *self.0.cancelled.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sleeps for `timeout` or until the token is cancelled, whichever comes
    /// first; true when it was cancelled (also when it already was).
    pub fn wait(&self, timeout: Duration) -> bool {
        // A timeout too large for an `Instant` is as good as forever.
        let deadline = Instant::now().checked_add(timeout);
        let mut cancelled = self.0.cancelled.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if *cancelled {
                return true;
            }
            let left = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                None => Duration::from_secs(3600),
            };
            if left.is_zero() {
                return false;
            }
            // Spurious wake-ups loop back and wait for what is left.
            cancelled = self
                .0
                .signal
                .wait_timeout(cancelled, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_runs_its_full_time_when_nobody_cancels() {
        let token = CancelToken::new();
        let started = Instant::now();
        assert!(!token.wait(Duration::from_millis(60)));
        assert!(started.elapsed() >= Duration::from_millis(60));
        assert!(!token.is_cancelled());
    }

    #[test]
    fn cancel_wakes_a_waiter_at_once_and_stays_cancelled() {
        let token = CancelToken::new();
        let waiter = {
            let token = token.clone();
            std::thread::spawn(move || {
                let started = Instant::now();
                (token.wait(Duration::from_secs(30)), started.elapsed())
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        token.cancel();
        let (cancelled, waited) = waiter.join().unwrap();
        assert!(cancelled);
        assert!(waited < Duration::from_secs(5), "{waited:?}");
        assert!(token.is_cancelled());
        // Later waits return at once.
        let started = Instant::now();
        assert!(token.wait(Duration::from_secs(30)));
        assert!(started.elapsed() < Duration::from_secs(1));
        token.cancel();
        assert!(token.is_cancelled());
    }

    #[test]
    fn an_endless_timeout_does_not_overflow() {
        let token = CancelToken::new();
        token.cancel();
        assert!(token.wait(Duration::MAX));
    }
}
