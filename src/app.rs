//! The shared state of a running storyflow: what every request handler,
//! worker and sweep can reach. Built once by `serve` (or by a command that
//! needs it) and handed around as `Arc<App>`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::metrics::Metrics;
use crate::progress::{
    ChapterCounts, DEFAULT_CACHE_CAPACITY, DEFAULT_CHAPTER_COUNT, DEFAULT_TTL, ProgressTracker,
};
use crate::store::{Run, RunScope, Store, StoryId};

/// Settings that shape the shared state.
#[derive(Debug, Clone)]
pub struct AppSettings {
    pub default_chapter_count: u32,
    pub cache_ttl: Duration,
    pub cache_capacity: usize,
    /// The generator's name, shown by `/api/health`.
    pub generator: String,
    pub workers: usize,
    /// Claims of one run (crash recoveries) before it fails `STUCK_TIMEOUT`.
    pub max_attempts: u32,
}

impl Default for AppSettings {
    fn default() -> Self {
        AppSettings {
            default_chapter_count: DEFAULT_CHAPTER_COUNT,
            cache_ttl: DEFAULT_TTL,
            cache_capacity: DEFAULT_CACHE_CAPACITY,
            generator: "builtin".into(),
            workers: 0,
            max_attempts: 5,
        }
    }
}

pub struct App {
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub counts: Arc<ChapterCounts>,
    pub tracker: ProgressTracker,
    pub settings: AppSettings,
    pub started: Instant,
    /// Wakes idle workers when a run is queued, so they need not poll fast.
    pub work_queued: crate::doorbell::Doorbell,
}

impl App {
    pub fn new(store: Store, settings: AppSettings) -> App {
        let metrics = Arc::new(Metrics::default());
        let counts = Arc::new(ChapterCounts::new(
            store.clone(),
            metrics.clone(),
            settings.default_chapter_count,
            settings.cache_ttl,
            settings.cache_capacity,
        ));
        let tracker = ProgressTracker::new(store.clone(), counts.clone(), metrics.clone());
        App {
            store,
            metrics,
            counts,
            tracker,
            settings,
            started: Instant::now(),
            work_queued: crate::doorbell::Doorbell::default(),
        }
    }

    /// Queues a run for a story, sized by its current chapter count.
    pub fn start_run(&self, story: &StoryId, scope: RunScope) -> Result<Run> {
        let count = self.counts.get(story)?.count;
        match scope {
            RunScope::Until(n) | RunScope::Rewrite(n) if n == 0 || n > count => {
                let field = if matches!(scope, RunScope::Until(_)) {
                    "until_chapter"
                } else {
                    "number"
                };
                return Err(crate::error::Error::validation(
                    field,
                    format!("must be from 1 to {count}, the story's chapter count; got {n}"),
                ));
            }
            _ => {}
        }
        let run = self.store.create_run(story, count, scope)?;
        self.work_queued.ring();
        Ok(run)
    }

    pub fn retry_run(&self, run: &crate::store::RunId) -> Result<Run> {
        let run = self.store.retry_run(run)?;
        self.work_queued.ring();
        Ok(run)
    }
}
