//! Process-wide counters: what `GET /api/metrics` and `GET /metrics` show.
//!
//! Plain relaxed atomics: every counter is independent and only ever grows,
//! so no ordering between them is promised or needed.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::Serialize;

/// SQL statements executed by every connection of this process, counted by
/// the SQLite trace hook that the store installs on each connection. A static
/// because the hook is a plain `fn` pointer with no room for context.
static SQL_STATEMENTS: AtomicU64 = AtomicU64::new(0);

pub fn count_sql_statement() {
    SQL_STATEMENTS.fetch_add(1, Relaxed);
}

pub fn sql_statements() -> u64 {
    SQL_STATEMENTS.load(Relaxed)
}

#[derive(Debug, Default)]
pub struct Metrics {
    pub cache_hits: AtomicU64,
    pub cache_misses: AtomicU64,
    pub cache_evictions: AtomicU64,
    pub cache_expired: AtomicU64,
    pub progress_applied: AtomicU64,
    pub progress_skipped_run_failed: AtomicU64,
    pub progress_skipped_run_finished: AtomicU64,
    pub progress_skipped_stale: AtomicU64,
    pub orphans_detected: AtomicU64,
    pub runs_recovered: AtomicU64,
    pub failed_runs_cleaned: AtomicU64,
    pub sweeps: AtomicU64,
    pub chapters_written: AtomicU64,
    pub generator_retries: AtomicU64,
    /// Writes by workers that met a full disk (each then waits for space).
    pub disk_full_waits: AtomicU64,
    pub http_requests: AtomicU64,
    pub http_errors: AtomicU64,
    /// Generator calls made, answered or failed.
    pub generator_calls: AtomicU64,
    /// Tokens of those calls: the server's figures, else the estimates.
    pub tokens_prompt: AtomicU64,
    pub tokens_completion: AtomicU64,
}

impl Metrics {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub fn snapshot(&self, cache_entries: usize) -> Snapshot {
        let hits = self.cache_hits.load(Relaxed);
        let misses = self.cache_misses.load(Relaxed);
        let lookups = hits + misses;
        Snapshot {
            chapter_count_cache: CacheSnapshot {
                hits,
                misses,
                hit_rate: if lookups == 0 {
                    0.0
                } else {
                    hits as f64 / lookups as f64
                },
                entries: cache_entries as u64,
                evictions: self.cache_evictions.load(Relaxed),
                expired: self.cache_expired.load(Relaxed),
            },
            progress_updates: ProgressSnapshot {
                applied: self.progress_applied.load(Relaxed),
                skipped: SkippedSnapshot {
                    run_failed: self.progress_skipped_run_failed.load(Relaxed),
                    run_finished: self.progress_skipped_run_finished.load(Relaxed),
                    stale: self.progress_skipped_stale.load(Relaxed),
                },
            },
            orphans_detected: self.orphans_detected.load(Relaxed),
            runs_recovered: self.runs_recovered.load(Relaxed),
            failed_runs_cleaned: self.failed_runs_cleaned.load(Relaxed),
            sweeps: self.sweeps.load(Relaxed),
            chapters_written: self.chapters_written.load(Relaxed),
            generator_retries: self.generator_retries.load(Relaxed),
            disk_full_waits: self.disk_full_waits.load(Relaxed),
            sql_statements: sql_statements(),
            http_requests: self.http_requests.load(Relaxed),
            http_errors: self.http_errors.load(Relaxed),
            generator_calls: self.generator_calls.load(Relaxed),
            tokens_prompt: self.tokens_prompt.load(Relaxed),
            tokens_completion: self.tokens_completion.load(Relaxed),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub chapter_count_cache: CacheSnapshot,
    pub progress_updates: ProgressSnapshot,
    pub orphans_detected: u64,
    pub runs_recovered: u64,
    pub failed_runs_cleaned: u64,
    pub sweeps: u64,
    pub chapters_written: u64,
    pub generator_retries: u64,
    pub disk_full_waits: u64,
    pub sql_statements: u64,
    pub http_requests: u64,
    pub http_errors: u64,
    pub generator_calls: u64,
    pub tokens_prompt: u64,
    pub tokens_completion: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CacheSnapshot {
    pub hits: u64,
    pub misses: u64,
    pub hit_rate: f64,
    pub entries: u64,
    pub evictions: u64,
    pub expired: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProgressSnapshot {
    pub applied: u64,
    pub skipped: SkippedSnapshot,
}

#[derive(Debug, Clone, Serialize)]
pub struct SkippedSnapshot {
    pub run_failed: u64,
    pub run_finished: u64,
    pub stale: u64,
}

impl Snapshot {
    /// The Prometheus text exposition format.
    pub fn prometheus(&self) -> String {
        let c = &self.chapter_count_cache;
        let p = &self.progress_updates;
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, f64)]| {
            out.push_str(&format!(
                "# HELP storyflow_{name} {help}\n# TYPE storyflow_{name} {kind}\n"
            ));
            for (labels, value) in samples {
                out.push_str(&format!("storyflow_{name}{labels} {value}\n"));
            }
        };
        // Tables, one metric a line (name, type, help, value), in the order
        // listed: kept unformatted so that they stay readable as tables.
        #[rustfmt::skip]
        let before_skipped = [
            ("chapter_count_cache_hits_total", "counter", "Chapter-count cache hits.", c.hits as f64),
            ("chapter_count_cache_misses_total", "counter", "Chapter-count cache misses.", c.misses as f64),
            ("chapter_count_cache_hit_rate", "gauge", "Hits over lookups since start.", c.hit_rate),
            ("chapter_count_cache_entries", "gauge", "Entries held in the cache.", c.entries as f64),
            ("chapter_count_cache_evictions_total", "counter", "Entries evicted for capacity.", c.evictions as f64),
            ("chapter_count_cache_expired_total", "counter", "Entries dropped after their TTL.", c.expired as f64),
            ("progress_updates_applied_total", "counter", "Progress updates written.", p.applied as f64),
        ];
        for (name, kind, help, value) in before_skipped {
            metric(name, kind, help, &[("", value)]);
        }
        metric(
            "progress_updates_skipped_total",
            "counter",
            "Progress updates not written, by reason.",
            &[
                ("{reason=\"run_failed\"}", p.skipped.run_failed as f64),
                ("{reason=\"run_finished\"}", p.skipped.run_finished as f64),
                ("{reason=\"stale\"}", p.skipped.stale as f64),
            ],
        );
        #[rustfmt::skip]
        let after_skipped = [
            ("orphans_detected_total", "counter", "Orphaned runs found by sweeps.", self.orphans_detected),
            ("runs_recovered_total", "counter", "Runs taken over after their worker died.", self.runs_recovered),
            ("failed_runs_cleaned_total", "counter", "Orphaned runs removed by clean-up.", self.failed_runs_cleaned),
            ("sweeps_total", "counter", "Background sweeps completed.", self.sweeps),
            ("chapters_written_total", "counter", "Chapters saved by workers.", self.chapters_written),
            ("generator_retries_total", "counter", "Transient generator failures retried.", self.generator_retries),
            ("disk_full_waits_total", "counter", "Worker writes that met a full disk and waited for space.", self.disk_full_waits),
            ("sql_statements_total", "counter", "SQL statements executed.", self.sql_statements),
            ("http_requests_total", "counter", "HTTP requests answered.", self.http_requests),
            ("http_errors_total", "counter", "HTTP requests answered with an error.", self.http_errors),
            ("generator_calls_total", "counter", "Generator calls made, answered or failed.", self.generator_calls),
            ("tokens_prompt_total", "counter", "Prompt tokens of generator calls (the server's count, else estimated).", self.tokens_prompt),
            ("tokens_completion_total", "counter", "Completion tokens of generator calls (the server's count, else estimated).", self.tokens_completion),
        ];
        for (name, kind, help, value) in after_skipped {
            metric(name, kind, help, &[("", value as f64)]);
        }
        out
    }
}
