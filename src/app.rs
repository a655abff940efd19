//! The shared state of a running storyflow: what every request handler,
//! worker and sweep can reach. Built once by `serve` (or by a command that
//! needs it) and handed around as `Arc<App>`.

use std::sync::Arc;
use std::time::Instant;

use crate::backup::{BackupPolicy, BackupReason, Backups};
use crate::config::ServeConfig;
use crate::error::Result;
use crate::metrics::Metrics;
use crate::progress::{ChapterCounts, ProgressTracker};
use crate::settings::LiveSettings;
use crate::store::{Prices, Run, RunScope, Store, StoryId};

/// The settings the app was built with; one type with `serve`'s
/// configuration (the name is kept for the code that builds an app without
/// serving, such as tests and benchmarks).
pub type AppSettings = ServeConfig;

pub struct App {
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub counts: Arc<ChapterCounts>,
    pub tracker: ProgressTracker,
    pub config: ServeConfig,
    pub started: Instant,
    /// Wakes idle workers when a run is queued, so they need not poll fast.
    pub work_queued: crate::doorbell::Doorbell,
    /// Where backups go, how often, how many; and how the last one went.
    pub backup_policy: BackupPolicy,
    pub backups: Backups,
    /// The text of chapters being written, relayed to live viewers.
    pub live: crate::live::LiveHub,
    /// The writer's settings in force, and the generator they built.
    pub settings: LiveSettings,
}

impl App {
    pub fn new(store: Store, config: ServeConfig) -> App {
        // Chapters are measured when saved, by the store, against this list.
        let store = store.with_stock_phrases(config.stock_phrases.clone());
        let metrics = Arc::new(Metrics::default());
        let counts = Arc::new(ChapterCounts::new(
            store.clone(),
            metrics.clone(),
            config.default_chapter_count,
            config.cache_ttl,
            config.cache_capacity,
        ));
        let tracker = ProgressTracker::new(store.clone(), counts.clone(), metrics.clone());
        let backup_policy = BackupPolicy {
            dir: config
                .backup_dir
                .clone()
                .unwrap_or_else(|| BackupPolicy::default_dir(store.path())),
            interval: config.backup_interval,
            keep: config.backup_keep,
        };
        let backups = Backups::new(&backup_policy);
        let settings = LiveSettings::new(store.clone(), &config);
        App {
            store,
            metrics,
            counts,
            tracker,
            config,
            started: Instant::now(),
            work_queued: crate::doorbell::Doorbell::default(),
            backup_policy,
            backups,
            live: crate::live::LiveHub::default(),
            settings,
        }
    }

    /// What tokens cost, as the settings in force say.
    pub fn prices(&self) -> Prices {
        self.settings.prices()
    }

    /// Writes a backup before a change that deletes (a repair, a purge):
    /// the change goes ahead only when the backup is whole. Returns its path.
    pub fn backup_before(&self, reason: BackupReason) -> Result<String> {
        let file = self.backups.run(&self.store, &self.backup_policy, reason)?;
        Ok(file.path)
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
