//! The background sweep, and the timer thread that runs it: a sweep at
//! start, then one every `--sweep-interval-s`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use super::{RunsByStatus, idle_since};
use crate::app::App;
use crate::backup::BackupReason;
use crate::error::Result;
use crate::metrics::Metrics;
use crate::run::{RunId, Timestamp};

/// What one background sweep found and changed.
#[derive(Debug, Clone, Serialize)]
pub struct SweepReport {
    pub started_at: Timestamp,
    pub duration_ms: u64,
    pub findings: SweepFindings,
    pub changes: SweepChanges,
}

/// What a sweep found. Fields in the order of their names: the record in
/// `sweeps` (and `/api/health`'s `last_sweep`) has always listed them so.
#[derive(Debug, Clone, Serialize)]
pub struct SweepFindings {
    /// When the quick check last ran (empty before the first).
    pub integrity_checked_at: Timestamp,
    pub integrity_ok: bool,
    pub orphaned_chapters: u64,
    pub orphaned_events: u64,
    pub orphaned_runs: u64,
    pub runs_by_status: RunsByStatus,
}

/// What a sweep changed; fields in the order of their names, as above.
#[derive(Debug, Clone, Serialize)]
pub struct SweepChanges {
    pub cache_entries_expired: usize,
    pub orphans_marked_failed: Vec<RunId>,
    pub stuck_runs_failed: Vec<RunId>,
    pub stuck_runs_requeued: Vec<RunId>,
}

/// One sweep: cache expiry, orphan marking, stuck-run recovery, a quick
/// health check. Recorded in `sweeps` and counted.
pub fn sweep(app: &App, integrity: &mut IntegrityMemo) -> Result<SweepReport> {
    let started = Instant::now();
    let started_at = app.store.now();
    let expired = app.counts.sweep_expired();
    let marked = app.store.fail_active_orphans()?;
    for run in &marked {
        log::warn!(
            "run {run} is orphaned (its story does not exist); marked failed with ORPHANED_RUN"
        );
    }
    Metrics::add(&app.metrics.orphans_detected, marked.len() as u64);
    let (requeued, failed) = app
        .store
        .recover_stuck_runs(&idle_since(app), app.config.max_attempts)?;
    Metrics::add(&app.metrics.runs_recovered, requeued.len() as u64);
    if !requeued.is_empty() {
        app.work_queued.ring();
    }
    let orphans = app.store.orphan_counts()?;
    let (integrity_ok, integrity_checked_at) = integrity.check_if_due(app)?;
    let runs_by_status = app
        .store
        .run_counts_by_status()?
        .into_iter()
        .map(|(status, count)| (status.as_str(), count))
        .collect();
    let findings = SweepFindings {
        integrity_checked_at,
        integrity_ok,
        orphaned_chapters: orphans.chapters,
        orphaned_events: orphans.events,
        orphaned_runs: orphans.runs,
        runs_by_status,
    };
    let changes = SweepChanges {
        cache_entries_expired: expired,
        orphans_marked_failed: marked,
        stuck_runs_failed: failed,
        stuck_runs_requeued: requeued,
    };
    let duration_ms = started.elapsed().as_millis() as u64;
    let (found, changed) = (as_record(&findings)?, as_record(&changes)?);
    app.store
        .record_sweep(&started_at, duration_ms, &found, &changed)?;
    Metrics::inc(&app.metrics.sweeps);
    log::debug!("sweep done in {duration_ms} ms: {found}");
    Ok(SweepReport {
        started_at,
        duration_ms,
        findings,
        changes,
    })
}

/// A part of the sweep's record, as the `sweeps` table keeps it.
fn as_record(part: &impl Serialize) -> Result<Value> {
    serde_json::to_value(part)
        .map_err(|e| crate::error::Error::Internal(format!("sweep record: {e}")))
}

/// How often the sweep runs `PRAGMA quick_check`. The check reads the whole
/// file (seconds on a database of a million runs), while everything else in a
/// sweep is an indexed lookup; so it runs at start and then at this interval,
/// and sweeps in between report the last result.
pub const INTEGRITY_INTERVAL: Duration = Duration::from_secs(60 * 60);

/// The last quick check the sweeper ran: when, and whether it passed.
#[derive(Debug, Default)]
pub struct IntegrityMemo {
    last: Option<(Instant, bool, Timestamp)>,
}

impl IntegrityMemo {
    /// Runs the quick check when none ran in the last [`INTEGRITY_INTERVAL`];
    /// returns the latest result and its time.
    fn check_if_due(&mut self, app: &App) -> Result<(bool, Timestamp)> {
        let due = self
            .last
            .as_ref()
            .is_none_or(|(at, _, _)| at.elapsed() >= INTEGRITY_INTERVAL);
        if due {
            let ok = app.store.integrity_problems(false)?.is_empty();
            if !ok {
                log::error!(
                    "the database failed its quick integrity check; run `storyflow health-check --full` and restore a backup"
                );
            }
            self.last = Some((Instant::now(), ok, app.store.now()));
        }
        Ok(self
            .last
            .as_ref()
            .map(|(_, ok, at)| (*ok, at.clone()))
            .unwrap_or((true, Timestamp::default())))
    }
}

/// The timer's care of the writer's work: a backup when one is due, and
/// stories kept in the trash longer than `--trash-days` purged (after a
/// backup). Failures are logged and shown on `/api/backups`; serving goes on.
pub fn keep_safe(app: &App) {
    if app.backups.due(&app.store, &app.backup_policy) {
        let _ = app
            .backups
            .run(&app.store, &app.backup_policy, BackupReason::Scheduled);
    }
    if let Err(e) = purge_old_trash(app) {
        log::warn!(
            "could not purge old stories from the trash: {e}; trying again at the next sweep"
        );
    }
}

fn purge_old_trash(app: &App) -> Result<()> {
    let Some(cutoff) = app
        .store
        .clock()
        .now()
        .checked_sub(app.config.trash_retention)
    else {
        return Ok(());
    };
    let old = app.store.trash_older_than(&Timestamp::at(cutoff))?;
    if old.is_empty() {
        return Ok(());
    }
    let backup = app.backup_before(BackupReason::Purge)?;
    for id in old {
        let purged = app.store.purge_story(&id)?;
        app.counts.invalidate(&id);
        log::info!(
            "story {id} purged from the trash after {:?} ({} chapters, {} versions, {} runs); backup {backup}",
            app.config.trash_retention,
            purged.chapters,
            purged.versions,
            purged.runs
        );
    }
    Ok(())
}

/// The timer thread: a sweep at start, then every `interval`.
pub struct Sweeper {
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    first_sweep: std::sync::mpsc::Receiver<()>,
}

impl Sweeper {
    pub fn start(app: Arc<App>, interval: Duration) -> std::io::Result<Sweeper> {
        let stopping = Arc::new(AtomicBool::new(false));
        let stop = stopping.clone();
        let (first_done, first_sweep) = std::sync::mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("sweeper".into())
            .spawn(move || {
                let mut integrity = IntegrityMemo::default();
                loop {
                    if let Err(e) = sweep(&app, &mut integrity) {
                        log::warn!("background sweep failed: {e}; trying again in {interval:?}");
                    }
                    let _ = first_done.try_send(());
                    // After the start-up signal: workers need not wait for a copy.
                    keep_safe(&app);
                    // After the start-up signal too: a slow server must not
                    // hold up the workers.
                    app.settings.check_reachability();
                    let until = Instant::now() + interval;
                    while Instant::now() < until {
                        if stop.load(Ordering::SeqCst) {
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(100).min(interval));
                    }
                }
            })?;
        Ok(Sweeper {
            stopping,
            thread: Some(thread),
            first_sweep,
        })
    }

    /// Waits (at most `timeout`) for the start-up sweep, so that workers
    /// start on a database whose orphans are already marked `ORPHANED_RUN`
    /// and whose stuck runs are re-queued. The HTTP server does not wait.
    pub fn wait_for_first_sweep(&self, timeout: Duration) {
        if self.first_sweep.recv_timeout(timeout).is_err() {
            log::warn!(
                "the start-up sweep is taking longer than {timeout:?}; starting the workers anyway"
            );
        }
    }

    pub fn shutdown(mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
