//! The [`Doorbell`]: how a request that queues a run wakes the idle workers
//! of this process at once, so that they need not poll fast. Its own module
//! because both sides use it: `app` rings it, `engine` waits on it.

use crate::cancel::CancelToken;
use std::sync::Mutex;

/// Wakes idle workers when work is queued in this process (and at shutdown).
/// A worker takes the current [`Doorbell::token`] before it looks for work
/// and sleeps on it; a ring cancels that token and puts a fresh one up, so a
/// ring between the look and the sleep is not missed.
#[derive(Debug, Default)]
pub struct Doorbell {
    current: Mutex<CancelToken>,
}

impl Doorbell {
    pub fn ring(&self) {
        let rung = std::mem::take(&mut *self.current.lock().unwrap_or_else(|e| e.into_inner()));
        rung.cancel();
    }

    /// The token the next ring cancels.
    pub fn token(&self) -> CancelToken {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}
