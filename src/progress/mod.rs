//! Chapter counts and run progress: the two things the old system re-derived
//! from the database on every update.
//!
//! - [`ChapterCounts`] resolves how many chapters a story has (explicit count,
//!   else its outline, else the default) and keeps the answer in an LRU cache
//!   with timestamps. Entries live for the TTL, are dropped when the story
//!   changes, and are swept by the timer thread. The fallback-to-default
//!   warning is logged at most once per story per TTL.
//! - [`ProgressTracker`] applies progress reports: monotonic, never on a
//!   finished run, the highest of concurrent reports wins, and one SQL
//!   statement per applied report once the count is cached.

mod outline;

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use lru::LruCache;
use serde::Serialize;

pub use crate::store::SkipReason;
pub use outline::{
    ChapterHeading, OutlineEntry, chapter_headings, check_outline, outline_entries, parse_outline,
};

use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::run::Step;
use crate::store::{RunId, Store, Story, StoryId, explain_skipped_progress, write_progress};

pub const DEFAULT_CHAPTER_COUNT: u32 = 10;
pub const DEFAULT_TTL: Duration = Duration::from_secs(5 * 60);
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CountSource {
    Explicit,
    Outline,
    Default,
}

impl CountSource {
    pub fn as_str(self) -> &'static str {
        match self {
            CountSource::Explicit => "explicit",
            CountSource::Outline => "outline",
            CountSource::Default => "default",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ChapterCount {
    pub count: u32,
    pub source: CountSource,
}

/// Resolves a story's chapter count from its row alone; no cache, no I/O.
pub fn resolve_count(story: &Story, default: u32) -> ChapterCount {
    if let Some(count) = story.chapter_count {
        return ChapterCount {
            count,
            source: CountSource::Explicit,
        };
    }
    match parse_outline(&story.outline).len() {
        0 => ChapterCount {
            count: default,
            source: CountSource::Default,
        },
        found => ChapterCount {
            count: found as u32,
            source: CountSource::Outline,
        },
    }
}

#[derive(Debug, Clone, Copy)]
struct Cached {
    count: ChapterCount,
    at: SystemTime,
}

pub struct ChapterCounts {
    store: Store,
    metrics: Arc<Metrics>,
    default: u32,
    ttl: Duration,
    entries: Mutex<LruCache<StoryId, Cached>>,
    /// When each story's fallback warning was last logged.
    warned: Mutex<LruCache<StoryId, SystemTime>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves a cache that is still
    // consistent (every update is a single insert or remove), so keep going.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl ChapterCounts {
    pub fn new(
        store: Store,
        metrics: Arc<Metrics>,
        default: u32,
        ttl: Duration,
        capacity: usize,
    ) -> Self {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        ChapterCounts {
            store,
            metrics,
            default,
            ttl,
            entries: Mutex::new(LruCache::new(capacity)),
            warned: Mutex::new(LruCache::new(capacity)),
        }
    }

    pub fn default_count(&self) -> u32 {
        self.default
    }

    fn now(&self) -> SystemTime {
        self.store.clock().now()
    }

    fn fresh(&self, cached: &Cached, now: SystemTime) -> bool {
        now.duration_since(cached.at)
            .map_or(true, |age| age < self.ttl)
    }

    /// A cached count that is still fresh; counts the hit or the miss.
    fn lookup(&self, story: &StoryId) -> Option<ChapterCount> {
        let now = self.now();
        let mut entries = lock(&self.entries);
        let hit = match entries.get(story) {
            Some(cached) if self.fresh(cached, now) => Some(cached.count),
            Some(_) => {
                entries.pop(story);
                Metrics::inc(&self.metrics.cache_expired);
                None
            }
            None => None,
        };
        drop(entries);
        Metrics::inc(if hit.is_some() {
            &self.metrics.cache_hits
        } else {
            &self.metrics.cache_misses
        });
        hit
    }

    fn remember(&self, story: &StoryId, count: ChapterCount) {
        let evicted = lock(&self.entries).push(
            story.clone(),
            Cached {
                count,
                at: self.now(),
            },
        );
        if matches!(evicted, Some((key, _)) if &key != story) {
            Metrics::inc(&self.metrics.cache_evictions);
        }
    }

    /// The count for a story by id: from the cache, else one read.
    pub fn get(&self, story: &StoryId) -> Result<ChapterCount> {
        if let Some(count) = self.lookup(story) {
            return Ok(count);
        }
        let row = self
            .store
            .find_story(story)?
            .ok_or_else(|| Error::StoryNotFound(story.clone()))?;
        Ok(self.compute(&row))
    }

    /// The count for a story already read: from the cache, else parsed.
    pub fn for_story(&self, story: &Story) -> ChapterCount {
        self.lookup(&story.id)
            .unwrap_or_else(|| self.compute(story))
    }

    fn compute(&self, story: &Story) -> ChapterCount {
        let count = resolve_count(story, self.default);
        match count.source {
            CountSource::Outline => {
                log::debug!(
                    "Chapter count determined from outline: story {} has {} chapters",
                    story.id,
                    count.count
                )
            }
            CountSource::Default => self.warn_default_once(&story.id, count.count),
            CountSource::Explicit => {}
        }
        self.remember(&story.id, count);
        count
    }

    fn warn_default_once(&self, story: &StoryId, count: u32) {
        let now = self.now();
        let mut warned = lock(&self.warned);
        let recently = warned
            .get(story)
            .is_some_and(|at| now.duration_since(*at).map_or(true, |age| age < self.ttl));
        if !recently {
            warned.push(story.clone(), now);
            drop(warned);
            log::warn!(
                "story {story} has no chapter count and its outline names no chapters; using the default of {count} (set chapter_count or add an outline)"
            );
        }
    }

    /// Forgets a story's count; call whenever the story changes or goes.
    pub fn invalidate(&self, story: &StoryId) {
        lock(&self.entries).pop(story);
    }

    /// Drops expired entries; returns how many. Run by the timer thread.
    pub fn sweep_expired(&self) -> usize {
        let now = self.now();
        let mut entries = lock(&self.entries);
        let expired: Vec<StoryId> = entries
            .iter()
            .filter(|(_, cached)| !self.fresh(cached, now))
            .map(|(id, _)| id.clone())
            .collect();
        for id in &expired {
            entries.pop(id);
        }
        drop(entries);
        Metrics::add(&self.metrics.cache_expired, expired.len() as u64);
        expired.len()
    }

    pub fn len(&self) -> usize {
        lock(&self.entries).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The answer to one progress report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressOutcome {
    Applied,
    Skipped(SkipReason),
}

/// Reports being written right now, per run: the highest value in flight and
/// how many writers carry one.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    highest: u32,
    writers: u32,
}

pub struct ProgressTracker {
    store: Store,
    counts: Arc<ChapterCounts>,
    metrics: Arc<Metrics>,
    in_flight: Mutex<HashMap<RunId, InFlight>>,
    /// A run never changes story, so its story id is cached for good.
    run_stories: Mutex<LruCache<RunId, StoryId>>,
}

impl ProgressTracker {
    pub fn new(store: Store, counts: Arc<ChapterCounts>, metrics: Arc<Metrics>) -> Self {
        const RUN_STORY_CAPACITY: NonZeroUsize = NonZeroUsize::new(4096).expect("non-zero");
        ProgressTracker {
            store,
            counts,
            metrics,
            in_flight: Mutex::new(HashMap::new()),
            run_stories: Mutex::new(LruCache::new(RUN_STORY_CAPACITY)),
        }
    }

    fn story_of(&self, run: &RunId) -> Result<StoryId> {
        if let Some(story) = lock(&self.run_stories).get(run) {
            return Ok(story.clone());
        }
        let story = self.store.run(run)?.story_id;
        lock(&self.run_stories).put(run.clone(), story.clone());
        Ok(story)
    }

    /// Applies an external report of `chapters_done` (and optionally the
    /// step). Reaching the story's chapter count completes the run.
    pub fn report(
        &self,
        run: &RunId,
        chapters_done: u32,
        step: Option<&str>,
    ) -> Result<ProgressOutcome> {
        let story = self.story_of(run)?;
        let total = self.counts.get(&story)?.count;
        if chapters_done > total {
            return Err(Error::validation(
                "chapters_done",
                format!("is {chapters_done} but run {run} has {total} chapters"),
            ));
        }
        if !self.enter(run, chapters_done) {
            log::debug!(
                "Progress update already in progress, skipping: run {run} has {chapters_done} or more in flight"
            );
            return Ok(self.skipped(run, SkipReason::Stale));
        }
        let now = self.store.now();
        let step = step.map(Step::from_text);
        let written = self.store.write_one(|conn| {
            write_progress(conn, run, chapters_done, total, step.as_ref(), &now, true)
        });
        self.leave(run);
        if written? {
            Metrics::inc(&self.metrics.progress_applied);
            return Ok(ProgressOutcome::Applied);
        }
        let reason = explain_skipped_progress(&*self.store.conn()?, run)?;
        Ok(self.skipped(run, reason))
    }

    /// Registers a write of `value`; false when one as high is already in
    /// flight (it cannot be applied after that one: progress is monotonic).
    fn enter(&self, run: &RunId, value: u32) -> bool {
        let mut in_flight = lock(&self.in_flight);
        match in_flight.get_mut(run) {
            Some(slot) if slot.highest >= value => false,
            Some(slot) => {
                slot.highest = value;
                slot.writers += 1;
                true
            }
            None => {
                in_flight.insert(
                    run.clone(),
                    InFlight {
                        highest: value,
                        writers: 1,
                    },
                );
                true
            }
        }
    }

    fn leave(&self, run: &RunId) {
        let mut in_flight = lock(&self.in_flight);
        if let Some(slot) = in_flight.get_mut(run) {
            slot.writers -= 1;
            if slot.writers == 0 {
                in_flight.remove(run);
            }
        }
    }

    fn skipped(&self, run: &RunId, reason: SkipReason) -> ProgressOutcome {
        let counter = match reason {
            SkipReason::RunFailed => {
                log::warn!("Skipping progress update for failed run {run}");
                &self.metrics.progress_skipped_run_failed
            }
            SkipReason::RunFinished => {
                log::debug!("skipping progress update for finished run {run}");
                &self.metrics.progress_skipped_run_finished
            }
            SkipReason::Stale => &self.metrics.progress_skipped_stale,
        };
        Metrics::inc(counter);
        ProgressOutcome::Skipped(reason)
    }
}

#[cfg(test)]
mod tests;
