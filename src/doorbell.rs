//! The [`Doorbell`]: how a request that queues a run wakes the idle workers
//! of this process at once, so that they need not poll fast. Its own module
//! because both sides use it: `app` rings it, `engine` waits on it.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Wakes idle workers when work is queued in this process.
#[derive(Debug, Default)]
pub struct Doorbell {
    rung: Mutex<u64>,
    signal: Condvar,
}

impl Doorbell {
    pub fn ring(&self) {
        let mut rung = self.rung.lock().unwrap_or_else(|e| e.into_inner());
        *rung = rung.wrapping_add(1);
        self.signal.notify_all();
    }

    /// Waits for a ring or the timeout, whichever comes first.
    pub fn wait(&self, timeout: Duration) {
        let rung = self.rung.lock().unwrap_or_else(|e| e.into_inner());
        let seen = *rung;
        let _ = self
            .signal
            .wait_timeout_while(rung, timeout, |now| *now == seen);
    }
}
