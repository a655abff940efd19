//! The run state machine driven synchronously: a real temp-file SQLite
//! store, the [`ManualClock`] (every wait recorded, none lived through), a
//! fake in-process [`Generator`] answering from a script, and workers called
//! through [`Worker::run_once`] instead of threads. The watcher is driven by
//! calling `Shared::watch_once`.

mod accounting;
mod lifecycle;
mod pieces;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::{EngineSettings, Shared, Worker};
use crate::app::{App, AppSettings};
use crate::clock::ManualClock;
use crate::generator::{Completion, GenError, Generator, RawCompletion, Task, TaskKind};
use crate::run::{EventKind, WorkerId};
use crate::store::{NewStory, Run, RunId, RunScope, Store, Story};

type Answer = Box<dyn FnOnce(&Task<'_>) -> Result<Completion, GenError> + Send>;

/// One call the fake generator received.
#[derive(Debug, Clone)]
struct Call {
    kind: &'static str,
    /// The story's title: which story the call was for.
    title: String,
    prompt: String,
}

/// Answers from a script first, then by default: a whole outline of the
/// chapters asked, a 60-word chapter or continuation, a one-line summary.
#[derive(Default)]
struct FakeGenerator {
    script: Mutex<VecDeque<Answer>>,
    calls: Mutex<Vec<Call>>,
    reports_truncation: bool,
}

impl FakeGenerator {
    fn then(
        &self,
        answer: impl FnOnce(&Task<'_>) -> Result<Completion, GenError> + Send + 'static,
    ) {
        self.script.lock().unwrap().push_back(Box::new(answer));
    }

    fn then_text(&self, text: &str, truncated: bool) {
        let text = text.to_string();
        self.then(move |_| {
            Ok(if truncated {
                Completion::cut(text)
            } else {
                Completion::finished(text)
            })
        });
    }

    fn then_error(&self, error: GenError) {
        self.then(move |_| Err(error));
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
}

fn words(n: usize, word: &str) -> String {
    vec![word; n].join(" ") + "."
}

fn outline(count: u32) -> String {
    (1..=count)
        .map(|n| format!("## Chapter {n}: Part {n}\nThings happen in part {n}.\n"))
        .collect()
}

impl Generator for FakeGenerator {
    fn name(&self) -> &'static str {
        "fake"
    }

    fn reports_truncation(&self) -> bool {
        self.reports_truncation
    }

    /// Answers as a backend does: raw, so every answer of these tests goes
    /// through the one cleaning path as in production.
    fn generate(&self, task: &Task<'_>) -> Result<RawCompletion, GenError> {
        self.scripted_or_default(task).map(|completion| {
            RawCompletion::text(completion.text)
                .with_finish_reason(completion.truncated.then_some("length"))
                .with_usage(completion.call.usage)
        })
    }
}

impl FakeGenerator {
    fn scripted_or_default(&self, task: &Task<'_>) -> Result<Completion, GenError> {
        self.calls.lock().unwrap().push(Call {
            kind: task.kind.name(),
            title: task.story.title.clone(),
            prompt: task.prompt.user.clone(),
        });
        // Taken out first: an answer may run another worker, which calls back.
        let scripted = self.script.lock().unwrap().pop_front();
        if let Some(answer) = scripted {
            return answer(task);
        }
        Ok(Completion::finished(match task.kind {
            TaskKind::Outline { chapters } => outline(chapters),
            TaskKind::Chapter(_) | TaskKind::Continue { .. } => words(60, "tide"),
            TaskKind::Summary { chapter, .. } => format!("Summary of {}.", chapter.number),
        }))
    }
}

struct Harness {
    clock: Arc<ManualClock>,
    generator: Arc<FakeGenerator>,
    shared: Arc<Shared>,
    _dir: tempfile::TempDir,
}

/// A real SQLite file, on tmpfs when there is one: these tests are about the
/// state machine, and a busy disk's fsyncs at open would cost more than all
/// of them together.
fn memory_backed_store() -> (Store, tempfile::TempDir) {
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap_or_else(|_| tempfile::tempdir().unwrap())
    } else {
        tempfile::tempdir().unwrap()
    };
    let store = Store::open(&dir.path().join("engine.db"), 4).unwrap();
    (store, dir)
}

fn settings() -> EngineSettings {
    EngineSettings {
        workers: 0,
        lease: Duration::from_secs(30),
        max_attempts: 3,
        retries: 4,
        retry_base: Duration::from_millis(500),
        retry_max: Duration::from_secs(120),
        max_continuations: 3,
        min_chapter_words: 50,
        ..EngineSettings::default()
    }
}

impl Harness {
    fn new() -> Harness {
        Harness::with(FakeGenerator::default(), settings())
    }

    fn with(generator: FakeGenerator, settings: EngineSettings) -> Harness {
        let clock = Arc::new(ManualClock::new(
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        ));
        let (store, dir) = memory_backed_store();
        let store = store.with_clock(clock.clone());
        let app = Arc::new(App::new(store, AppSettings::default()));
        let generator = Arc::new(generator);
        let source =
            crate::settings::GeneratorSource::fixed(generator.clone(), settings.prompts.clone());
        let shared = Arc::new(Shared::new(app, Arc::new(source), settings));
        Harness {
            clock,
            generator,
            shared,
            _dir: dir,
        }
    }

    fn worker(&self, name: &str) -> Worker {
        Worker::new(self.shared.clone(), WorkerId::named(name))
    }

    fn app(&self) -> &App {
        &self.shared.app
    }

    /// A story (with a given outline, or none) and a queued run for it.
    fn story_with_run(&self, title: &str, outline: &str, count: u32) -> (Story, RunId) {
        let story = self
            .app()
            .store
            .create_story(&NewStory {
                title: title.into(),
                premise: "A courier crosses the salt flats.".into(),
                outline: outline.into(),
                chapter_count: Some(count),
                ..Default::default()
            })
            .unwrap();
        let run = self.app().start_run(&story.id, RunScope::Book).unwrap();
        (story, run.id)
    }

    fn run(&self, id: &RunId) -> Run {
        self.app().store.run(id).unwrap()
    }

    fn events(&self, id: &RunId) -> Vec<(EventKind, String)> {
        self.app()
            .store
            .events(id)
            .unwrap()
            .into_iter()
            .map(|e| (e.kind, e.message))
            .collect()
    }

    fn has_event(&self, id: &RunId, kind: EventKind, containing: &str) -> bool {
        self.events(id)
            .iter()
            .any(|(k, message)| *k == kind && message.contains(containing))
    }
}
