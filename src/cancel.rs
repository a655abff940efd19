//! A cancel signal shared between the thread that decides a piece of work
//! must stop (the engine's watcher, shutdown) and the threads doing it (a
//! worker waiting out a backoff, a generator call in flight).
//!
//! A [`CancelToken`] is cheap to clone (an `Arc` inside); every clone sees the
//! same signal. Once cancelled it stays cancelled. Waiting uses a `Condvar`,
//! so a waiter wakes as soon as the token is cancelled, not at its next poll.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Default)]
pub struct CancelToken {
    inner: Arc<Signal>,
}

#[derive(Debug, Default)]
struct Signal {
    cancelled: Mutex<bool>,
    changed: Condvar,
}

impl CancelToken {
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    /// Cancels the token and wakes every waiter. Cancelling twice is harmless.
    pub fn cancel(&self) {
        let mut cancelled = self
            .inner
            .cancelled
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *cancelled = true;
        self.inner.changed.notify_all();
    }

    pub fn is_cancelled(&self) -> bool {
        *self
            .inner
            .cancelled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Waits `duration` or until the token is cancelled, whichever comes
    /// first; true when it was cancelled (also when it already was).
    pub fn wait(&self, duration: Duration) -> bool {
        let deadline = Instant::now().checked_add(duration);
        let mut cancelled = self
            .inner
            .cancelled
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        while !*cancelled {
            // A duration too long to add to `now` is as good as forever.
            let left = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                None => Duration::from_secs(3600),
            };
            if left.is_zero() {
                return false;
            }
            cancelled = self
                .inner
                .changed
                .wait_timeout(cancelled, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_runs_its_time_when_nobody_cancels() {
        let token = CancelToken::new();
        let start = Instant::now();
        assert!(!token.wait(Duration::from_millis(30)));
        assert!(start.elapsed() >= Duration::from_millis(30));
        assert!(!token.is_cancelled());
    }

    #[test]
    fn a_cancel_from_another_thread_ends_a_wait_early_and_stays() {
        let token = CancelToken::new();
        let canceller = token.clone();
        let start = Instant::now();
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            canceller.cancel();
        });
        assert!(token.wait(Duration::from_secs(30)));
        assert!(start.elapsed() < Duration::from_secs(5));
        thread.join().unwrap();
        assert!(token.is_cancelled());
        assert!(
            token.wait(Duration::from_secs(30)),
            "a cancelled token waits no more"
        );
    }
}
