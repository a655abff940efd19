//! The generation engine: worker threads that claim pending runs and write
//! their stories chapter by chapter through a [`Generator`].
//!
//! A run's life in a worker: claim it (a lease: owner and expiry, renewed by
//! the heartbeat thread), load the story, write an outline when the story has
//! none, then for each chapter not yet saved: record the step, generate (with
//! retries for transient failures), and save the chapter together with the
//! run's progress in one transaction. Then `finalize` and complete.
//!
//! Invariants:
//! - a run is held by one worker at a time: claims are single transactions,
//!   and every worker write checks it still holds the lease;
//! - a chapter is written once: it is saved in the same transaction as the
//!   progress, and a resumed run starts after the last saved chapter;
//! - cancel, delete and shutdown take effect at the next step boundary;
//! - a full disk pauses a run instead of failing it: the failed write was
//!   rolled back whole, and the worker tries the same write again until it
//!   succeeds (see [`Shared::persist`]);
//! - a run whose story is gone fails at once with `STORY_NOT_FOUND` (at
//!   context loading, or at its next save if the story vanishes mid-run) and
//!   is never retried. Workers start after the start-up sweep, which marks
//!   the orphans it finds `ORPHANED_RUN` first.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::app::App;
use crate::clock::timestamp;
use crate::error::Error;
use crate::generator::{
    ChapterGist, ChapterRequest, Completion, GenError, Generator, PromptBuilder, StoryContext,
    Task, TaskKind, Templates, codes,
};
use crate::metrics::Metrics;
use crate::progress::parse_outline;
use crate::store::{Chapter, ChapterSave, NewChapter, Run, RunId, RunOutcome, Story};

/// How often a worker tries a write again while the disk is full. A failed
/// write costs little (SQLite rolls it back), and a short wait means a run
/// resumes soon after space is freed.
const DISK_FULL_RETRY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub workers: usize,
    /// How long a claim lasts without a heartbeat.
    pub lease: Duration,
    /// Claims of one run (crash recoveries) before it fails `STUCK_TIMEOUT`.
    pub max_attempts: u32,
    /// Retries of a transient generator failure, per step.
    pub retries: u32,
    /// The first retry's delay; doubled each time, with jitter.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// How often idle workers look for runs queued by other processes.
    pub poll_interval: Duration,
    /// Renders prompts within the context budget.
    pub prompts: Arc<PromptBuilder>,
    /// Follow-up requests for a chapter that was cut off.
    pub max_continuations: u32,
    /// For generators that cannot say they were cut off: fewer words than
    /// this means the chapter was.
    pub min_chapter_words: u32,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            workers: 2,
            lease: Duration::from_secs(30),
            max_attempts: 5,
            retries: 4,
            retry_base: Duration::from_millis(500),
            retry_max: Duration::from_secs(120),
            poll_interval: Duration::from_millis(500),
            // The built-in templates are part of this build and tested.
            prompts: Arc::new(PromptBuilder::new(
                Templates::load(None).expect("the built-in prompt templates parse"),
                8192,
            )),
            max_continuations: 3,
            min_chapter_words: 50,
        }
    }
}

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

/// Why a worker stopped working on a run before finishing it.
enum Stop {
    /// Someone else owns the run now (cancelled, deleted, taken over).
    Lost,
    /// This process is shutting down: hand the run back.
    Shutdown,
    /// The run failed with a code and message.
    Failed { code: &'static str, message: String },
}

impl Stop {
    fn from_generator(err: GenError) -> Stop {
        match err {
            GenError::Permanent { code, message } => Stop::Failed { code, message },
            GenError::Transient { message, .. } => Stop::Failed {
                code: codes::UNAVAILABLE,
                message,
            },
        }
    }
}

impl From<Error> for Stop {
    fn from(err: Error) -> Stop {
        match err {
            Error::StoryNotFound(id) => Stop::Failed {
                code: "STORY_NOT_FOUND",
                message: format!("story {id} no longer exists; the run cannot continue"),
            },
            Error::DatabaseFull => Stop::Failed {
                code: "DATABASE_FULL",
                message: "the disk is full".into(),
            },
            other => Stop::Failed {
                code: "DATABASE_ERROR",
                message: other.to_string(),
            },
        }
    }
}

pub struct Engine {
    stopping: Arc<AtomicBool>,
    app: Arc<App>,
    threads: Vec<JoinHandle<()>>,
    held: HeldRuns,
}

/// Runs held by this process's workers, with their owner names.
type HeldRuns = Arc<Mutex<HashMap<RunId, String>>>;

/// What the workers share.
struct Shared {
    app: Arc<App>,
    generator: Arc<dyn Generator>,
    settings: EngineSettings,
    stopping: Arc<AtomicBool>,
    /// For the heartbeat, and for a shutdown that cannot wait.
    held: HeldRuns,
}

impl Engine {
    /// Starts the workers and the heartbeat thread. With zero workers nothing
    /// starts: runs are left to external workers.
    pub fn start(
        app: Arc<App>,
        generator: Arc<dyn Generator>,
        settings: EngineSettings,
    ) -> std::io::Result<Engine> {
        let stopping = Arc::new(AtomicBool::new(false));
        let held = HeldRuns::default();
        let mut threads = Vec::new();
        if settings.workers > 0 {
            let shared = Arc::new(Shared {
                app: app.clone(),
                generator,
                settings: settings.clone(),
                stopping: stopping.clone(),
                held: held.clone(),
            });
            let process = format!(
                "{}-{}",
                std::process::id(),
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            );
            for n in 0..settings.workers {
                let shared = shared.clone();
                let owner = format!("worker-{n}@{process}");
                threads.push(
                    std::thread::Builder::new()
                        .name(format!("worker-{n}"))
                        .spawn(move || shared.work(&owner))?,
                );
            }
            let shared = shared.clone();
            threads.push(
                std::thread::Builder::new()
                    .name("heartbeat".into())
                    .spawn(move || shared.heartbeat())?,
            );
        }
        Ok(Engine {
            stopping,
            app,
            threads,
            held,
        })
    }

    /// Stops the workers: each finishes its current step, then releases its
    /// run back to the queue. A worker still inside a generator call after
    /// `grace` (an LLM request may take minutes) is not waited for: its run
    /// is released here, so its worker's later writes change nothing (they
    /// check the lease), and the run resumes after its last saved chapter
    /// when storyflow starts again.
    pub fn shutdown(self, grace: Duration) {
        self.stopping.store(true, Ordering::SeqCst);
        self.app.work_queued.ring();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline && self.threads.iter().any(|t| !t.is_finished()) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let (finished, busy): (Vec<_>, Vec<_>) =
            self.threads.into_iter().partition(JoinHandle::is_finished);
        for thread in finished {
            let _ = thread.join();
        }
        if busy.is_empty() {
            return;
        }
        let held = std::mem::take(&mut *self.held.lock().unwrap_or_else(|e| e.into_inner()));
        for (run, owner) in held {
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
}

impl Shared {
    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    fn lease_until(&self) -> String {
        timestamp(self.app.store.clock().now() + self.settings.lease)
    }

    fn work(&self, owner: &str) {
        while !self.stopping() {
            match self.app.store.claim_next_run(
                owner,
                &self.lease_until(),
                self.settings.max_attempts,
            ) {
                Ok(Some(claimed)) => {
                    if claimed.recovered {
                        Metrics::inc(&self.app.metrics.runs_recovered);
                        log::info!(
                            "run {} recovered after its worker stopped; resuming",
                            claimed.run.id
                        );
                    }
                    self.hold(&claimed.run.id, owner);
                    self.process(&claimed.run, owner);
                    self.unhold(&claimed.run.id);
                }
                Ok(None) => self.app.work_queued.wait(self.settings.poll_interval),
                Err(e) => {
                    log::warn!("could not claim a run: {e}; trying again shortly");
                    self.app.work_queued.wait(self.settings.poll_interval);
                }
            }
        }
    }

    fn hold(&self, run: &RunId, owner: &str) {
        self.held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(run.clone(), owner.to_string());
    }

    fn unhold(&self, run: &RunId) {
        self.held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(run);
    }

    /// Renews the leases of held runs at a third of the lease time, so one
    /// missed beat does not lose a run.
    fn heartbeat(&self) {
        let interval = (self.settings.lease / 3).max(Duration::from_millis(50));
        let mut next = Instant::now() + interval;
        while !self.stopping() {
            std::thread::sleep(Duration::from_millis(50).min(interval));
            if Instant::now() < next {
                continue;
            }
            next = Instant::now() + interval;
            let held: Vec<(RunId, String)> = self
                .held
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .map(|(r, o)| (r.clone(), o.clone()))
                .collect();
            for (run, owner) in held {
                match self.app.store.heartbeat(&run, &owner, &self.lease_until()) {
                    Ok(true) => {}
                    Ok(false) => log::debug!("run {run} is no longer held by {owner}"),
                    Err(e) => log::warn!("heartbeat for run {run} failed: {e}"),
                }
            }
        }
    }

    fn process(&self, run: &Run, owner: &str) {
        let store = &self.app.store;
        let result = self.write_story(run, owner).and_then(|()| {
            self.persist(&run.id, "the run's completion", || {
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
                Ok(())
            }
            // When the release cannot be written (a full disk), the lease
            // runs out and the next worker takes the run over.
            Err(Stop::Shutdown) => store.release_run(&run.id, owner).map(|_| ()),
            Err(Stop::Failed { code, message }) => {
                log::error!(
                    "Workflow error occurred: run {} story {}: {code}: {message}",
                    run.id,
                    run.story_id
                );
                // Nothing changes when the run is no longer ours (cancelled,
                // deleted, taken over): its new owner decides its fate.
                store
                    .finish_run(
                        &run.id,
                        owner,
                        RunOutcome::Failed {
                            code,
                            message: &message,
                        },
                    )
                    .map(|_| ())
            }
        };
        if let Err(e) = outcome {
            log::error!(
                "Workflow error occurred: run {} story {}: could not record the outcome: {e}",
                run.id,
                run.story_id
            );
        }
    }

    fn write_story(&self, run: &Run, owner: &str) -> Result<(), Stop> {
        let store = &self.app.store;
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
            return self.rewrite_chapter(run, owner, &story, &mut chapters, number);
        }
        if story.outline.trim().is_empty() {
            story = self.write_outline(run, owner, story)?;
        }
        let count = self.app.counts.get(&story.id)?.count;
        let last = run.until_chapter.map_or(count, |until| until.min(count));
        let titles = parse_outline(&story.outline);
        let mut done = chapters.iter().filter(|c| c.number <= last).count() as u32;
        for number in 1..=last {
            if chapters.iter().any(|c| c.number == number) {
                continue;
            }
            self.check_stop()?;
            self.enter_step(&run.id, owner, &format!("chapter {number}/{last}"), last)?;
            let title = titles
                .get(number as usize - 1)
                .map_or_else(|| format!("Chapter {number}"), |entry| entry.title.clone());
            let request = ChapterRequest {
                number,
                total: count,
                title,
            };
            let chapter = self.compose_chapter(run, &story, &mut chapters, &request)?;
            done += 1;
            self.save(run, owner, &chapter, ChapterSave::New, (done, last))?;
            remember(&mut chapters, chapter, &run.id);
        }
        self.check_stop()?;
        self.enter_step(&run.id, owner, "finalize", last)?;
        Ok(())
    }

    /// A run that rewrites one chapter (and its summary) and nothing else.
    fn rewrite_chapter(
        &self,
        run: &Run,
        owner: &str,
        story: &Story,
        chapters: &mut [Chapter],
        number: u32,
    ) -> Result<(), Stop> {
        let count = self.app.counts.get(&story.id)?.count.max(number);
        let Some(existing) = chapters.iter().find(|c| c.number == number) else {
            return Err(Stop::Failed {
                code: "CHAPTER_NOT_FOUND",
                message: format!("story {} has no chapter {number} to rewrite", story.id),
            });
        };
        let request = ChapterRequest {
            number,
            total: count,
            title: existing.title.clone(),
        };
        self.enter_step(&run.id, owner, &format!("chapter {number} (rewrite)"), 1)?;
        let chapter = self.compose_chapter(run, story, chapters, &request)?;
        self.check_stop()?;
        self.save(run, owner, &chapter, ChapterSave::Rewrite, (1, 1))?;
        self.enter_step(&run.id, owner, "finalize", 1)?;
        Ok(())
    }

    /// Writes one chapter: its text (continued while it is cut off) and its
    /// summary, after making sure every earlier chapter has a summary.
    fn compose_chapter(
        &self,
        run: &Run,
        story: &Story,
        chapters: &mut [Chapter],
        request: &ChapterRequest,
    ) -> Result<NewChapter, Stop> {
        self.summarize_earlier(run, story, chapters, request.number, request.total)?;
        let context = context_of(story, chapters, request.number);
        let content = self.chapter_text(run, &context, request)?;
        let summary = self.summarize(run, &context, request, &content)?;
        Ok(NewChapter {
            number: request.number,
            title: request.title.clone(),
            content,
            summary,
        })
    }

    /// Earlier chapters without a summary (edited by the writer, or written
    /// before summaries existed) get one, so the story so far stays whole.
    fn summarize_earlier(
        &self,
        run: &Run,
        story: &Story,
        chapters: &mut [Chapter],
        before: u32,
        total: u32,
    ) -> Result<(), Stop> {
        for index in 0..chapters.len() {
            let chapter = &chapters[index];
            if chapter.number >= before || !chapter.summary.trim().is_empty() {
                continue;
            }
            let request = ChapterRequest {
                number: chapter.number,
                total,
                title: chapter.title.clone(),
            };
            let context = context_of(story, chapters, chapter.number);
            let summary = self.summarize(run, &context, &request, &chapters[index].content)?;
            let store = &self.app.store;
            self.persist(&run.id, "a summary", || {
                store.set_chapter_summary(&story.id, request.number, &summary)
            })?;
            let note = format!("chapter {} had no summary; wrote one", request.number);
            self.record(&run.id, "summary", &note)?;
            chapters[index].summary = summary;
        }
        Ok(())
    }

    fn summarize(
        &self,
        run: &Run,
        context: &StoryContext,
        request: &ChapterRequest,
        text: &str,
    ) -> Result<String, Stop> {
        const MAX_SUMMARY_CHARS: usize = 1_000;
        let task = self.task(
            run,
            context,
            TaskKind::Summary {
                chapter: request,
                text,
            },
            None,
        )?;
        let summary = self.generate(run, &task)?.text;
        Ok(summary.trim().chars().take(MAX_SUMMARY_CHARS).collect())
    }

    /// The chapter's text, continued with follow-up requests while the
    /// generator says it was cut off (or, for generators that cannot say, it
    /// is shorter than the minimum). Never saved cut off: a chapter still cut
    /// off after the last continuation fails the step `CHAPTER_TRUNCATED`.
    fn chapter_text(
        &self,
        run: &Run,
        context: &StoryContext,
        request: &ChapterRequest,
    ) -> Result<String, Stop> {
        let label = format!("chapter {}", request.number);
        let task = self.task(run, context, TaskKind::Chapter(request), Some(&label))?;
        let first = self.generate(run, &task)?;
        let mut cut = self.is_cut_off(&first, &first.text);
        let mut text = first.text;
        let mut continuations = 0;
        while cut {
            if continuations == self.settings.max_continuations {
                return Err(Stop::Failed {
                    code: codes::CHAPTER_TRUNCATED,
                    message: format!(
                        "chapter {} was still cut off after {continuations} continuations ({} words); raise --llm-context-tokens or --max-continuations",
                        request.number,
                        crate::store::word_count(&text)
                    ),
                });
            }
            continuations += 1;
            let note = format!(
                "chapter {} was cut off at {} words; asking for the rest ({continuations} of at most {})",
                request.number,
                crate::store::word_count(&text),
                self.settings.max_continuations
            );
            self.record(&run.id, "continued", &note)?;
            let task = self.task(
                run,
                context,
                TaskKind::Continue {
                    chapter: request,
                    so_far: &text,
                },
                None,
            )?;
            let more = self.generate(run, &task)?;
            text = join_continuation(&text, &more.text);
            cut = self.is_cut_off(&more, &text);
        }
        Ok(text)
    }

    fn is_cut_off(&self, completion: &Completion, text_so_far: &str) -> bool {
        if self.generator.reports_truncation() {
            completion.truncated
        } else {
            crate::store::word_count(text_so_far) < self.settings.min_chapter_words
        }
    }

    /// A task with its prompt rendered within the context budget (for
    /// generators that read prompts). With `label`, the estimate and any
    /// trimming are recorded in the run's events; without, only trimming.
    fn task<'a>(
        &self,
        run: &Run,
        story: &'a StoryContext,
        kind: TaskKind<'a>,
        label: Option<&str>,
    ) -> Result<Task<'a>, Stop> {
        let builder = &self.settings.prompts;
        let mut task = Task {
            story,
            kind,
            prompt: Default::default(),
            max_tokens: builder.completion_tokens(),
        };
        if !self.generator.reads_prompts() {
            return Ok(task);
        }
        let built = match kind {
            TaskKind::Outline { chapters } => builder.outline(story, chapters),
            TaskKind::Chapter(chapter) => builder.chapter(story, chapter),
            TaskKind::Continue { chapter, so_far } => builder.continuation(story, chapter, so_far),
            TaskKind::Summary { chapter, text } => builder.summary(story, chapter, text),
        }
        .map_err(Stop::from_generator)?;
        if label.is_some() || !built.trimmed.is_empty() {
            let what = label.map_or_else(|| kind.name().to_string(), str::to_string);
            self.record(&run.id, "prompt", &built.describe(&what))?;
        }
        task.prompt = built.prompt;
        Ok(task)
    }

    fn write_outline(&self, run: &Run, owner: &str, story: Story) -> Result<Story, Stop> {
        let store = &self.app.store;
        let count = story
            .chapter_count
            .unwrap_or(self.app.counts.default_count());
        self.enter_step(&run.id, owner, "outline", count)?;
        let context = context_of(&story, &[], 1);
        let task = self.task(
            run,
            &context,
            TaskKind::Outline { chapters: count },
            Some("outline"),
        )?;
        let outline = self.generate(run, &task)?.text;
        let chapters = parse_outline(&outline).len();
        if chapters == 0 {
            return Err(Stop::Failed {
                code: codes::BAD_RESPONSE,
                message: "the generated outline names no chapters".into(),
            });
        }
        self.persist(&run.id, "the outline", || {
            store.set_generated_outline(&story.id, &outline)
        })?;
        self.app.counts.invalidate(&story.id);
        self.record(
            &run.id,
            "outline",
            &format!("outline written: {chapters} chapters"),
        )?;
        Ok(store
            .find_story(&story.id)?
            .ok_or_else(|| Error::StoryNotFound(story.id.clone()))?)
    }

    /// Runs one store write, waiting out a full disk: SQLite rolled the
    /// failed transaction back whole, so the same write, tried again once
    /// space is freed, saves exactly what it would have saved. Waits until
    /// it succeeds or the process stops; other errors end the run as before.
    fn persist<T>(
        &self,
        run: &RunId,
        what: &str,
        mut write: impl FnMut() -> crate::error::Result<T>,
    ) -> Result<T, Stop> {
        let mut attempts = 0u64;
        loop {
            match write() {
                Err(Error::DatabaseFull) => {
                    attempts += 1;
                    if attempts == 1 {
                        Metrics::inc(&self.app.metrics.disk_full_waits);
                        log::warn!(
                            "run {run}: the disk is full, so {what} was not saved; trying again every {DISK_FULL_RETRY:?} until space is freed"
                        );
                    }
                    self.sleep_unless_stopping(DISK_FULL_RETRY)?;
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
    fn enter_step(&self, run: &RunId, owner: &str, step: &str, total: u32) -> Result<(), Stop> {
        let store = &self.app.store;
        if self.persist(run, "the step", || store.set_step(run, owner, step, total))? {
            Ok(())
        } else {
            Err(Stop::Lost)
        }
    }

    /// Saves a chapter with the run's progress (`done` of `total`) in one
    /// transaction; `Lost` when the run is no longer ours.
    fn save(
        &self,
        run: &Run,
        owner: &str,
        chapter: &NewChapter,
        kind: ChapterSave,
        (done, total): (u32, u32),
    ) -> Result<(), Stop> {
        let store = &self.app.store;
        let saved = self.persist(&run.id, &format!("chapter {}", chapter.number), || {
            store.save_chapter(&run.id, owner, &run.story_id, chapter, kind, done, total)
        })?;
        if !saved {
            return Err(Stop::Lost);
        }
        Metrics::inc(&self.app.metrics.chapters_written);
        Metrics::inc(&self.app.metrics.progress_applied);
        Ok(())
    }

    /// Adds an event to the run's timeline.
    fn record(&self, run: &RunId, kind: &str, note: &str) -> Result<(), Stop> {
        self.persist(run, &format!("its {kind} event"), || {
            self.app.store.add_event(run, kind, note)
        })
    }

    fn check_stop(&self) -> Result<(), Stop> {
        if self.stopping() {
            Err(Stop::Shutdown)
        } else {
            Ok(())
        }
    }

    /// Calls the generator, retrying transient failures with exponential
    /// backoff and jitter (or the server's `Retry-After`).
    fn generate(&self, run: &Run, task: &Task<'_>) -> Result<Completion, Stop> {
        let mut failures = 0;
        loop {
            match self.generator.generate(task) {
                Ok(completion) if !completion.text.trim().is_empty() => return Ok(completion),
                Ok(_) => {
                    return Err(Stop::Failed {
                        code: codes::BAD_RESPONSE,
                        message: format!(
                            "the generator returned no text for the {}",
                            task.kind.name()
                        ),
                    });
                }
                Err(GenError::Permanent { code, message }) => {
                    return Err(Stop::Failed { code, message });
                }
                Err(GenError::Transient {
                    message,
                    retry_after,
                }) => {
                    failures += 1;
                    if failures > self.settings.retries {
                        return Err(Stop::Failed {
                            code: codes::UNAVAILABLE,
                            message: format!("gave up after {failures} attempts: {message}"),
                        });
                    }
                    let delay = retry_after
                        .unwrap_or_else(|| self.backoff(failures))
                        .min(self.settings.retry_max);
                    Metrics::inc(&self.app.metrics.generator_retries);
                    log::warn!(
                        "run {}: generator failed ({message}); retry {failures} in {delay:?}",
                        run.id
                    );
                    let note = format!(
                        "attempt {failures} failed: {message}; retrying in {} ms",
                        delay.as_millis()
                    );
                    if let Err(e) = self.app.store.add_event(&run.id, "retry", &note) {
                        log::warn!("could not record a retry of run {}: {e}", run.id);
                    }
                    self.sleep_unless_stopping(delay)?;
                }
            }
        }
    }

    /// `base × 2^(n-1)`, with equal jitter: half fixed, half random.
    fn backoff(&self, failures: u32) -> Duration {
        let exp = self
            .settings
            .retry_base
            .saturating_mul(1 << (failures - 1).min(16));
        let capped = exp.min(self.settings.retry_max);
        capped / 2 + capped.mul_f64(fastrand::f64() / 2.0)
    }

    fn sleep_unless_stopping(&self, delay: Duration) -> Result<(), Stop> {
        let until = Instant::now() + delay;
        while Instant::now() < until {
            self.check_stop()?;
            std::thread::sleep((until - Instant::now()).min(Duration::from_millis(50)));
        }
        Ok(())
    }
}

/// The story as a generator sees it before writing chapter `number`: the
/// summaries of the chapters before it and the end of the one just before.
fn context_of(story: &Story, chapters: &[Chapter], number: u32) -> StoryContext {
    const TAIL_CHARS: usize = 4_000;
    let previous_tail = chapters
        .iter()
        .find(|c| c.number + 1 == number)
        .map(|c| {
            let count = c.content.chars().count();
            c.content
                .chars()
                .skip(count.saturating_sub(TAIL_CHARS))
                .collect()
        })
        .unwrap_or_default();
    StoryContext {
        story_id: story.id.clone(),
        title: story.title.clone(),
        premise: story.premise.clone(),
        outline: story.outline.clone(),
        previous: chapters
            .iter()
            .filter(|c| c.number < number)
            .map(|c| ChapterGist {
                number: c.number,
                title: c.title.clone(),
                summary: c.summary.clone(),
            })
            .collect(),
        previous_tail,
    }
}

/// Keeps a chapter just saved in the worker's view of the story.
fn remember(chapters: &mut Vec<Chapter>, chapter: NewChapter, run: &RunId) {
    chapters.push(Chapter {
        number: chapter.number,
        title: chapter.title,
        word_count: crate::store::word_count(&chapter.content),
        content: chapter.content,
        summary: chapter.summary,
        run_id: Some(run.to_string()),
        created_at: String::new(),
        updated_at: None,
        locked: false,
    });
    chapters.sort_by_key(|c| c.number);
}

/// Appends a continuation where the text stopped: a space between words,
/// none before punctuation, the paragraph breaks the model gave.
fn join_continuation(text: &str, more: &str) -> String {
    let more = more.trim_end();
    if more.trim().is_empty() {
        return text.to_string();
    }
    let starts_inside = more.starts_with([',', '.', ';', ':', '!', '?', ')', '\'', '"', '’', '”']);
    if text.ends_with(char::is_whitespace) || more.starts_with(char::is_whitespace) || starts_inside
    {
        format!("{text}{more}")
    } else {
        format!("{text} {more}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuations_join_where_the_text_stopped() {
        assert_eq!(
            join_continuation("She opened the", "door."),
            "She opened the door."
        );
        assert_eq!(
            join_continuation("She said", ", quietly."),
            "She said, quietly."
        );
        assert_eq!(
            join_continuation("End.\n\n", "New paragraph."),
            "End.\n\nNew paragraph."
        );
        assert_eq!(join_continuation("Same", "   "), "Same");
    }
}
