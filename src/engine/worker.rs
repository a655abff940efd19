//! A worker: the claim loop and a run's life in it. [`Worker::run_once`]
//! claims and processes one run synchronously, which is what the worker
//! thread loops on and what the unit tests drive on the manual clock.
//!
//! [`Job`] is one run in one worker's hands: its steps, its saves (lease
//! guarded, waiting out a full disk), its generator calls (retried with
//! backoff or `Retry-After`), its waits (on the run's cancel token) and how it
//! ends. The pieces it writes are in `pieces.rs`.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use super::Shared;
use super::pieces::remember;
use crate::cancel::CancelToken;
use crate::error::Error;
use crate::generator::{ChapterRequest, Completion, GenError, Task};
use crate::metrics::Metrics;
use crate::progress::parse_outline;
use crate::run::{EventKind, FailureCode, Step, WorkerId};
use crate::store::{Chapter, ChapterSave, NewChapter, Run, RunId, RunOutcome, RunStatus, Story};

/// How often a worker tries a write again while the disk is full. A failed
/// write costs little (SQLite rolls it back), and a short wait means a run
/// resumes soon after space is freed.
const DISK_FULL_RETRY: Duration = Duration::from_secs(1);

/// Why a worker stopped working on a run before finishing it.
pub(super) enum Stop {
    /// Someone else owns the run now (cancelled, deleted, taken over).
    Lost,
    /// This process is shutting down: hand the run back.
    Shutdown,
    /// The run failed with a code and message.
    Failed { code: FailureCode, message: String },
}

impl Stop {
    pub(super) fn from_generator(err: GenError) -> Stop {
        match err {
            GenError::Permanent { code, message } => Stop::Failed { code, message },
            GenError::BadAnswer { message } => Stop::Failed {
                code: FailureCode::GeneratorBadResponse,
                message,
            },
            GenError::Transient { message, .. } => Stop::Failed {
                code: FailureCode::GeneratorUnavailable,
                message,
            },
            GenError::Cancelled => Stop::Lost,
        }
    }
}

impl From<Error> for Stop {
    fn from(err: Error) -> Stop {
        match err {
            Error::StoryNotFound(id) => Stop::Failed {
                code: FailureCode::StoryNotFound,
                message: format!("story {id} no longer exists; the run cannot continue"),
            },
            Error::DatabaseFull => Stop::Failed {
                code: FailureCode::DatabaseFull,
                message: "the disk is full".into(),
            },
            Error::ChapterLocked { chapter, .. } => Stop::Failed {
                code: FailureCode::ChapterLocked,
                message: format!(
                    "chapter {chapter} was locked while the run rewrote it; the locked text is kept"
                ),
            },
            other => Stop::Failed {
                code: FailureCode::DatabaseError,
                message: other.to_string(),
            },
        }
    }
}

/// One worker: a name (the lease owner) and the engine's shared state.
pub(crate) struct Worker {
    shared: Arc<Shared>,
    owner: WorkerId,
}

impl Worker {
    pub(super) fn new(shared: Arc<Shared>, owner: WorkerId) -> Worker {
        Worker { shared, owner }
    }

    /// The worker thread: runs until shutdown, sleeping on the doorbell
    /// (through the clock) when there is nothing to claim.
    pub(super) fn work(&self) {
        loop {
            // Taken before looking, so a run queued meanwhile rings it.
            let bell = self.shared.app.work_queued.token();
            if self.shared.shutdown.is_cancelled() {
                return;
            }
            if self.run_once().is_none() {
                self.shared
                    .clock()
                    .sleep(self.shared.settings.poll_interval, &bell);
            }
        }
    }

    /// Claims the next run and takes it to its end (completed, failed,
    /// released or lost); `None` when there was nothing to claim.
    pub(crate) fn run_once(&self) -> Option<RunId> {
        let shared = &self.shared;
        let claimed = match shared.app.store.claim_next_run(
            &self.owner,
            &shared.lease_until(),
            shared.settings.max_attempts,
        ) {
            Ok(claimed) => claimed?,
            Err(e) => {
                log::warn!("could not claim a run: {e}; trying again shortly");
                return None;
            }
        };
        if claimed.recovered {
            Metrics::inc(&shared.app.metrics.runs_recovered);
            log::info!(
                "run {} recovered after its worker stopped; resuming",
                claimed.run.id
            );
        }
        let cancel = shared.hold(&claimed.run.id, &self.owner);
        let job = Job {
            shared,
            run: &claimed.run,
            owner: &self.owner,
            cancel,
            truncation_reported: AtomicBool::new(false),
        };
        shared.app.live.status(&claimed.run.id, RunStatus::Running);
        job.execute();
        shared.unhold(&claimed.run.id, &self.owner);
        // Viewers learn how it ended (or that it went back to the queue).
        match shared.app.store.find_run(&claimed.run.id) {
            Ok(Some(run)) => shared.app.live.status(&run.id, run.status),
            Ok(None) => shared
                .app
                .live
                .status(&claimed.run.id, RunStatus::Cancelled),
            Err(e) => log::warn!(
                "run {}: could not read its status for live viewers: {e}",
                claimed.run.id
            ),
        }
        Some(claimed.run.id)
    }
}

/// One run in one worker's hands.
pub(super) struct Job<'a> {
    pub(super) shared: &'a Shared,
    pub(super) run: &'a Run,
    pub(super) owner: &'a WorkerId,
    pub(super) cancel: CancelToken,
    /// Set once `prompt_truncated` is recorded (see `accounting.rs`).
    pub(super) truncation_reported: AtomicBool,
}

impl Job<'_> {
    fn execute(&self) {
        let store = &self.shared.app.store;
        let (run, owner) = (self.run, self.owner);
        let result = self.write_story().and_then(|()| {
            self.persist("the run's completion", || {
                store.finish_run(&run.id, owner, RunOutcome::Completed)
            })
            .map(|_| ())
        });
        let outcome = match result {
            Ok(()) => Ok(()),
            Err(Stop::Lost) => {
                log::info!(
                    "run {} was cancelled, deleted or taken over; worker {owner} stops",
                    run.id
                );
                self.record_lost();
                Ok(())
            }
            // When the release cannot be written (a full disk), the lease
            // runs out and the next worker takes the run over.
            Err(Stop::Shutdown) => store.release_run(&run.id, owner).map(|_| ()),
            // A failure met by a run that is no longer ours (its story went
            // to the trash between two checks, say) changes nothing: its new
            // owner decides its fate, and this worker stops as for a cancel.
            Err(Stop::Failed { code, message }) => store
                .finish_run(
                    &run.id,
                    owner,
                    RunOutcome::Failed {
                        code,
                        message: &message,
                    },
                )
                .map(|finished| {
                    if finished {
                        log::error!(
                            "Workflow error occurred: run {} story {}: {code}: {message}",
                            run.id,
                            run.story_id
                        );
                    } else {
                        log::info!(
                            "run {} left worker {owner} before it could fail ({code}); the worker stops",
                            run.id
                        );
                        self.record_lost();
                    }
                }),
        };
        if let Err(e) = outcome {
            log::error!(
                "Workflow error occurred: run {} story {}: could not record the outcome: {e}",
                run.id,
                run.story_id
            );
        }
    }

    /// Says in the run's events that this worker stopped and why, unless the
    /// run is gone (deleted with its events).
    fn record_lost(&self) {
        let store = &self.shared.app.store;
        let (id, owner) = (&self.run.id, self.owner);
        let why = match store.find_run(id) {
            Ok(None) => return,
            Ok(Some(run)) if run.status == RunStatus::Cancelled => "the run was cancelled".into(),
            Ok(Some(run)) => match run.lease_owner {
                Some(other) if &other != owner => format!("{other} holds the run now"),
                _ => format!("the run is {}", run.status),
            },
            Err(e) => format!("the run is no longer its own ({e})"),
        };
        let note = format!(
            "{owner} stopped: {why}; its generator call, if any, was abandoned and nothing more is sent for this run"
        );
        if let Err(e) = store.add_event(id, EventKind::Stopped, &note) {
            log::warn!("could not record that run {id} stopped: {e}");
        }
    }

    fn write_story(&self) -> Result<(), Stop> {
        let store = &self.shared.app.store;
        let run = self.run;
        let Some(mut story) = store.find_story(&run.story_id)? else {
            return Err(Error::StoryNotFound(run.story_id.clone()).into());
        };
        let mut chapters = store.chapters(&story.id)?;
        log::info!(
            "Story context loaded successfully: run {} story {} ({} chapters saved)",
            run.id,
            story.id,
            chapters.len()
        );
        if let Some(number) = run.regenerate_chapter {
            return self.rewrite_chapter(&story, &mut chapters, number);
        }
        if story.outline.trim().is_empty() {
            story = self.write_outline(story)?;
        }
        let count = self.shared.app.counts.get(&story.id)?.count;
        let last = run.until_chapter.map_or(count, |until| until.min(count));
        let titles = parse_outline(&story.outline);
        let mut done = chapters.iter().filter(|c| c.number <= last).count() as u32;
        for number in 1..=last {
            if chapters.iter().any(|c| c.number == number) {
                continue;
            }
            self.check_stop()?;
            self.enter_step(&Step::Chapter { number, last }, last)?;
            let title = titles
                .get(number as usize - 1)
                .map_or_else(|| format!("Chapter {number}"), |entry| entry.title.clone());
            let request = ChapterRequest {
                number,
                total: count,
                title,
            };
            let chapter = self.compose_chapter(&story, &mut chapters, &request)?;
            done += 1;
            self.save(&chapter, ChapterSave::New, (done, last))?;
            remember(&mut chapters, chapter, &run.id, store.now());
        }
        self.check_stop()?;
        self.enter_step(&Step::Finalize, last)?;
        Ok(())
    }

    /// A run that rewrites one chapter (and its summary) and nothing else.
    fn rewrite_chapter(
        &self,
        story: &Story,
        chapters: &mut [Chapter],
        number: u32,
    ) -> Result<(), Stop> {
        let count = self.shared.app.counts.get(&story.id)?.count.max(number);
        let Some(existing) = chapters.iter().find(|c| c.number == number) else {
            return Err(Stop::Failed {
                code: FailureCode::ChapterNotFound,
                message: format!("story {} has no chapter {number} to rewrite", story.id),
            });
        };
        let request = ChapterRequest {
            number,
            total: count,
            title: existing.title.clone(),
        };
        self.enter_step(&Step::Rewrite { number }, 1)?;
        let chapter = self.compose_chapter(story, chapters, &request)?;
        self.check_stop()?;
        self.save(&chapter, ChapterSave::Rewrite, (1, 1))?;
        self.enter_step(&Step::Finalize, 1)?;
        Ok(())
    }

    /// Runs one store write, waiting out a full disk: SQLite rolled the
    /// failed transaction back whole, so the same write, tried again once
    /// space is freed, saves exactly what it would have saved. Waits until
    /// it succeeds or the run is cancelled; other errors end the run.
    pub(super) fn persist<T>(
        &self,
        what: &str,
        mut write: impl FnMut() -> crate::error::Result<T>,
    ) -> Result<T, Stop> {
        let run = &self.run.id;
        let mut attempts = 0u64;
        loop {
            match write() {
                Err(Error::DatabaseFull) => {
                    attempts += 1;
                    if attempts == 1 {
                        Metrics::inc(&self.shared.app.metrics.disk_full_waits);
                        log::warn!(
                            "run {run}: the disk is full, so {what} was not saved; trying again every {DISK_FULL_RETRY:?} until space is freed"
                        );
                    }
                    self.wait(DISK_FULL_RETRY)?;
                }
                Ok(value) => {
                    if attempts > 0 {
                        log::info!(
                            "run {run}: saved {what} after {attempts} attempts on a full disk; continuing"
                        );
                    }
                    return Ok(value);
                }
                Err(other) => return Err(other.into()),
            }
        }
    }

    /// Records the step the run is on; `Lost` when the run is no longer ours.
    pub(super) fn enter_step(&self, step: &Step, total: u32) -> Result<(), Stop> {
        let store = &self.shared.app.store;
        let (run, owner) = (&self.run.id, self.owner);
        if self.persist("the step", || store.set_step(run, owner, step, total))? {
            Ok(())
        } else {
            Err(Stop::Lost)
        }
    }

    /// Saves a chapter with the run's progress (`done` of `total`) in one
    /// transaction; `Lost` when the run is no longer ours.
    fn save(
        &self,
        chapter: &NewChapter,
        kind: ChapterSave,
        (done, total): (u32, u32),
    ) -> Result<(), Stop> {
        let store = &self.shared.app.store;
        let (run, owner) = (self.run, self.owner);
        let saved = self.persist(&format!("chapter {}", chapter.number), || {
            store.save_chapter(&run.id, owner, &run.story_id, chapter, kind, done, total)
        })?;
        if !saved {
            return Err(Stop::Lost);
        }
        self.shared.app.live.saved(&run.id, chapter.number);
        Metrics::inc(&self.shared.app.metrics.chapters_written);
        Metrics::inc(&self.shared.app.metrics.progress_applied);
        Ok(())
    }

    /// Adds an event to the run's timeline.
    pub(super) fn record(&self, kind: EventKind, note: &str) -> Result<(), Stop> {
        self.persist(&format!("its {kind} event"), || {
            self.shared.app.store.add_event(&self.run.id, kind, note)
        })
    }

    /// Why the run's token was cancelled: shutdown or the run left our hands.
    fn interrupted(&self) -> Stop {
        if self.shared.shutdown.is_cancelled() {
            Stop::Shutdown
        } else {
            Stop::Lost
        }
    }

    pub(super) fn check_stop(&self) -> Result<(), Stop> {
        if self.cancel.is_cancelled() {
            Err(self.interrupted())
        } else {
            Ok(())
        }
    }

    /// Checked before every generator call: the token, and the run's row
    /// itself (one read by primary key), so no request goes out for a run
    /// cancelled since the watcher's last tick.
    fn ensure_held(&self) -> Result<(), Stop> {
        self.check_stop()?;
        match self.shared.app.store.find_run(&self.run.id) {
            Ok(Some(run))
                if run.status == RunStatus::Running
                    && run.lease_owner.as_ref() == Some(self.owner) =>
            {
                Ok(())
            }
            Ok(_) => {
                self.cancel.cancel();
                Err(self.interrupted())
            }
            // The lease-guarded writes still stop a worker that lost its run.
            Err(e) => {
                log::warn!(
                    "run {}: could not check the lease ({e}); going on",
                    self.run.id
                );
                Ok(())
            }
        }
    }

    /// Waits on the clock; `Err` when the run's token is cancelled meanwhile.
    pub(super) fn wait(&self, delay: Duration) -> Result<(), Stop> {
        if self.shared.clock().sleep(delay, &self.cancel) {
            Err(self.interrupted())
        } else {
            Ok(())
        }
    }

    /// Calls the generator, retrying transient failures and bad answers with
    /// exponential backoff and jitter (or the server's `Retry-After`).
    pub(super) fn generate(&self, task: &Task<'_>) -> Result<Completion, Stop> {
        let mut failures = 0;
        loop {
            self.ensure_held()?;
            // `ask` cleans every answer: an empty one is a `BadAnswer`.
            let started = Instant::now();
            let generator = self.shared.generator.current();
            let answer = crate::generator::ask(&*generator, task);
            self.account(task, &answer, started.elapsed());
            let error = match answer {
                Ok(completion) => return Ok(completion),
                Err(error) => error,
            };
            let (message, retry_after, final_code) = match error {
                GenError::Permanent { code, message } => {
                    return Err(Stop::Failed { code, message });
                }
                GenError::Cancelled if self.cancel.is_cancelled() => {
                    let stop = self.interrupted();
                    if matches!(stop, Stop::Shutdown) {
                        log::info!(
                            "run {}: generator call abandoned for shutdown; the run is released",
                            self.run.id
                        );
                    }
                    return Err(stop);
                }
                GenError::Cancelled => (
                    "the generator abandoned its call unasked".to_string(),
                    None,
                    FailureCode::GeneratorUnavailable,
                ),
                GenError::Transient {
                    message,
                    retry_after,
                } => (message, retry_after, FailureCode::GeneratorUnavailable),
                GenError::BadAnswer { message } => {
                    (message, None, FailureCode::GeneratorBadResponse)
                }
            };
            failures += 1;
            if failures > self.shared.settings.retries {
                return Err(Stop::Failed {
                    code: final_code,
                    message: format!("gave up after {failures} attempts: {message}"),
                });
            }
            let delay = retry_after
                .unwrap_or_else(|| self.backoff(failures))
                .min(self.shared.settings.retry_max);
            self.note_retry(failures, &message, delay);
            self.wait(delay)?;
        }
    }

    fn note_retry(&self, failures: u32, message: &str, delay: Duration) {
        let run = &self.run.id;
        Metrics::inc(&self.shared.app.metrics.generator_retries);
        log::warn!("run {run}: generator failed ({message}); retry {failures} in {delay:?}");
        let note = format!(
            "attempt {failures} failed: {message}; retrying in {} ms",
            delay.as_millis()
        );
        if let Err(e) = self
            .shared
            .app
            .store
            .add_event(run, EventKind::Retry, &note)
        {
            log::warn!("could not record a retry of run {run}: {e}");
        }
    }

    /// `base × 2^(n-1)`, with equal jitter: half fixed, half random.
    pub(super) fn backoff(&self, failures: u32) -> Duration {
        backoff(
            self.shared.settings.retry_base,
            self.shared.settings.retry_max,
            failures,
        )
    }
}

/// The delay before retry `failures` (1-based): `base × 2^(n-1)` capped at
/// `max`, of which half is fixed and half random (equal jitter), so workers
/// that failed together do not retry together.
pub(super) fn backoff(base: Duration, max: Duration, failures: u32) -> Duration {
    let exp = base.saturating_mul(1 << failures.saturating_sub(1).min(16));
    let capped = exp.min(max);
    capped / 2 + capped.mul_f64(fastrand::f64() / 2.0)
}
