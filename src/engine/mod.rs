//! The generation engine: worker threads that claim pending runs and write
//! their stories piece by piece through a [`Generator`], and one watcher
//! thread that keeps their leases and stops them when a run is taken away.
//!
//! - `mod.rs` (here): the settings, the doorbell, [`Engine`] start and
//!   shutdown, and the watcher (`Shared::heartbeat`).
//! - `worker.rs`: the claim loop and a run's life (steps, saves, retries,
//!   waits, how a run ends).
//! - `pieces.rs`: the pieces a run writes (outline, chapter, continuation,
//!   summary), each saved only when whole.
//! - the generator is the app's [`GeneratorSource`]: each call takes the
//!   one in force then, so a settings change needs no restart;
//! - `accounting.rs`: what each generator call cost (the `generations`
//!   rows and totals) and whether the server read the whole prompt.
//!
//! A run's life in a worker: claim it (a lease: owner and expiry), load the
//! story, write an outline when the story has none, then for each chapter not
//! yet saved: record the step, generate (with retries), and save the chapter
//! with its summary and the run's progress in one transaction. Then
//! `finalize` and complete.
//!
//! Invariants:
//! - a run is held by one worker at a time: claims are single transactions,
//!   and every worker write checks it still holds the lease;
//! - a chapter is written once: it is saved in the same transaction as the
//!   progress, and a resumed run starts after the last saved chapter;
//! - cancel, delete, takeover and shutdown interrupt: each held run has a
//!   [`CancelToken`]; the watcher cancels it within a tick (250 ms) of the run
//!   leaving this worker's hands, shutdown cancels them all; every wait is a
//!   [`Clock::sleep`](crate::clock::Clock::sleep) on that token and every
//!   generator call carries it, so a worker stops within the tick and sends
//!   no request for a run that is no longer its own;
//! - only whole pieces are saved: a piece cut by the length limit is
//!   continued, a short chapter too, a short outline completed (see
//!   `pieces.rs`); what cannot be made whole fails the run and is not saved;
//! - a full disk pauses a run instead of failing it: the failed write was
//!   rolled back whole, and the worker tries the same write again until it
//!   succeeds;
//! - a run whose story is gone fails at once with `STORY_NOT_FOUND` and is
//!   never retried. Workers start after the start-up sweep, which marks the
//!   orphans it finds `ORPHANED_RUN` first.

mod accounting;
mod pieces;
#[cfg(test)]
mod tests;
mod worker;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::app::App;
use crate::cancel::CancelToken;
use crate::clock::{Clock, timestamp};
use crate::config::ServeConfig;
use crate::generator::PromptBuilder;
use crate::run::{Timestamp, WorkerId};
use crate::settings::GeneratorSource;
use crate::store::{RunId, RunStatus};

pub(crate) use worker::Worker;

#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub workers: usize,
    /// How long a claim lasts without a heartbeat.
    pub lease: Duration,
    /// Claims of one run (crash recoveries) before it fails `STUCK_TIMEOUT`.
    pub max_attempts: u32,
    /// Retries of a failed generator call (transient or a bad answer), per call.
    pub retries: u32,
    /// The first retry's delay; doubled each time, with jitter.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// How often idle workers look for runs queued by other processes.
    pub poll_interval: Duration,
    /// How often the watcher checks that this process still holds its runs.
    /// It bounds how long a cancelled run's worker goes on.
    pub watch_interval: Duration,
    /// Renders prompts within the context budget.
    pub prompts: Arc<PromptBuilder>,
    /// Follow-up requests for a piece that was cut off or came out short.
    pub max_continuations: u32,
    /// A chapter with fewer words than this is continued, whatever the
    /// generator says about it.
    pub min_chapter_words: u32,
    /// A chapter whose repetition share is above this is written once more;
    /// `None`, off (`serve --rewrite-repetitive`).
    pub rewrite_repetitive: Option<f64>,
}

/// How often the watcher checks that this process still holds its runs: it
/// bounds how long a cancelled run's worker goes on (the contract gives a
/// cancel 2 seconds).
const WATCH_INTERVAL: Duration = Duration::from_millis(250);

impl EngineSettings {
    /// The engine's part of `serve`'s configuration.
    pub fn from_config(config: &ServeConfig) -> EngineSettings {
        EngineSettings {
            workers: config.workers,
            lease: config.lease,
            max_attempts: config.max_attempts,
            retries: config.retries,
            retry_base: config.retry_base,
            retry_max: config.retry_max,
            poll_interval: config.poll_interval,
            watch_interval: WATCH_INTERVAL,
            prompts: config.prompts.clone(),
            max_continuations: config.max_continuations,
            min_chapter_words: config.min_chapter_words,
            rewrite_repetitive: config.rewrite_repetitive,
        }
    }
}

impl Default for EngineSettings {
    /// The settings of `serve` with no flags.
    fn default() -> Self {
        EngineSettings::from_config(&ServeConfig::default())
    }
}

pub struct Engine {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

/// The runs this process's workers hold, by run and owner (two workers of
/// one process hold the same run when one stalled past its lease and the
/// other took it over), each with the token cancelled when the run leaves
/// that worker's hands or at shutdown.
type Held = HashMap<(RunId, WorkerId), CancelToken>;

/// What the workers and the watcher share.
struct Shared {
    app: Arc<App>,
    /// Read before every generator call: a settings change applies to the
    /// next call.
    generator: Arc<GeneratorSource>,
    settings: EngineSettings,
    shutdown: CancelToken,
    held: Mutex<Held>,
}

impl Engine {
    /// Starts the workers and the watcher thread. With zero workers nothing
    /// starts: runs are left to external workers.
    pub fn start(
        app: Arc<App>,
        generator: Arc<GeneratorSource>,
        settings: EngineSettings,
    ) -> std::io::Result<Engine> {
        let workers = settings.workers;
        let shared = Arc::new(Shared::new(app, generator, settings));
        let mut threads = Vec::new();
        if workers > 0 {
            let process = format!(
                "{}-{}",
                std::process::id(),
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            );
            for n in 0..workers {
                let worker = Worker::new(shared.clone(), WorkerId::new(n, &process));
                threads.push(
                    std::thread::Builder::new()
                        .name(format!("worker-{n}"))
                        .spawn(move || worker.work())?,
                );
            }
            let shared = shared.clone();
            threads.push(
                std::thread::Builder::new()
                    .name("heartbeat".into())
                    .spawn(move || shared.heartbeat())?,
            );
        }
        Ok(Engine { shared, threads })
    }

    /// Stops the workers: every held run's token is cancelled, so a worker
    /// waiting or inside an abandonable generator call stops at once and
    /// releases its run back to the queue. A worker still busy after `grace`
    /// (a generator that cannot abandon its call) is not waited for: its run
    /// is released here, so its worker's later writes change nothing (they
    /// check the lease), and the run resumes after its last saved chapter
    /// when storyflow starts again.
    pub fn shutdown(self, grace: Duration) {
        self.shared.begin_shutdown();
        // The process's own exit path, not a worker's wait: real time.
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline && self.threads.iter().any(|t| !t.is_finished()) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let (finished, busy): (Vec<_>, Vec<_>) =
            self.threads.into_iter().partition(JoinHandle::is_finished);
        for thread in finished {
            let _ = thread.join();
        }
        if !busy.is_empty() {
            self.shared.release_all(grace);
        }
    }
}

impl Shared {
    fn new(app: Arc<App>, generator: Arc<GeneratorSource>, settings: EngineSettings) -> Shared {
        Shared {
            app,
            generator,
            settings,
            shutdown: CancelToken::new(),
            held: Mutex::default(),
        }
    }

    fn clock(&self) -> &dyn Clock {
        self.app.store.clock().as_ref()
    }

    fn lease_until(&self) -> Timestamp {
        timestamp(self.clock().now() + self.settings.lease)
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a run a worker just claimed; its token is born cancelled
    /// when shutdown has begun (checked under the same lock shutdown takes).
    fn hold(&self, run: &RunId, owner: &WorkerId) -> CancelToken {
        let cancel = CancelToken::new();
        let mut held = self.held();
        if self.shutdown.is_cancelled() {
            cancel.cancel();
        }
        held.insert((run.clone(), owner.clone()), cancel.clone());
        cancel
    }

    fn unhold(&self, run: &RunId, owner: &WorkerId) {
        self.held().remove(&(run.clone(), owner.clone()));
    }

    fn begin_shutdown(&self) {
        let held = self.held();
        self.shutdown.cancel();
        for cancel in held.values() {
            cancel.cancel();
        }
        drop(held);
        self.app.work_queued.ring();
    }

    /// Hands back the runs of workers that did not stop within `grace`.
    fn release_all(&self, grace: Duration) {
        let held = std::mem::take(&mut *self.held());
        for (run, owner) in held.into_keys() {
            match self.app.store.release_run(&run, &owner) {
                Ok(true) => log::warn!(
                    "run {run} released while its generator call was still going after {grace:?}; it resumes from its last saved chapter when storyflow starts again"
                ),
                Ok(false) => {}
                Err(e) => log::warn!(
                    "run {run} could not be released ({e}); its lease runs out and the next start takes it over"
                ),
            }
        }
    }

    /// The watcher: every `watch_interval` it checks each held run, and it
    /// renews their leases at a third of the lease time, so one missed beat
    /// does not lose a run.
    fn heartbeat(&self) {
        let renew_every = (self.settings.lease / 3).max(Duration::from_millis(50));
        let tick = self.settings.watch_interval.min(renew_every);
        let mut next_renewal = self.clock().now() + renew_every;
        while !self.clock().sleep(tick, &self.shutdown) {
            self.watch_once();
            if self.clock().now() >= next_renewal {
                next_renewal = self.clock().now() + renew_every;
                self.renew_leases();
            }
        }
    }

    /// Cancels the token of every held run this process no longer holds
    /// (cancelled, deleted, taken over; by this process or another): one
    /// read by primary key per run. Returns how many it cancelled.
    fn watch_once(&self) -> usize {
        let runs: Vec<(RunId, WorkerId, CancelToken)> = self
            .held()
            .iter()
            .filter(|(_, cancel)| !cancel.is_cancelled())
            .map(|((run, owner), cancel)| (run.clone(), owner.clone(), cancel.clone()))
            .collect();
        let mut cancelled = 0;
        for (run, owner, cancel) in runs {
            let still_ours = match self.app.store.find_run(&run) {
                Ok(found) => found.is_some_and(|r| {
                    r.status == RunStatus::Running && r.lease_owner.as_ref() == Some(&owner)
                }),
                Err(e) => {
                    log::warn!("could not check run {run}: {e}; checking again next tick");
                    true
                }
            };
            if !still_ours {
                log::info!(
                    "run {run} left {owner}'s hands (cancelled, deleted or taken over); stopping its work"
                );
                cancel.cancel();
                cancelled += 1;
            }
        }
        cancelled
    }

    fn renew_leases(&self) {
        let held: Vec<(RunId, WorkerId)> = self.held().keys().cloned().collect();
        for (run, owner) in held {
            match self.app.store.heartbeat(&run, &owner, &self.lease_until()) {
                Ok(true) => {}
                Ok(false) => log::debug!("run {run} is no longer held by {owner}"),
                Err(e) => log::warn!("heartbeat for run {run} failed: {e}"),
            }
        }
    }
}
