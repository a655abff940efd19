//! `fix-orphans`: runs, chapters and events whose story (or run) is gone,
//! listed, and removed in one transaction unless it is a dry run.

use crate::backup::BackupReason;
use serde::Serialize;

use super::stories_with_default_count;
use crate::app::App;
use crate::error::Result;
use crate::metrics::Metrics;
use crate::store::{OrphanCounts, OrphanRun};

#[derive(Debug, Clone, Serialize)]
pub struct FixOrphansReport {
    pub dry_run: bool,
    pub orphaned_runs: Vec<OrphanRun>,
    /// Found (dry run) or removed.
    pub counts: OrphanCounts,
    pub stories_given_default_count: usize,
    pub summary: String,
    /// The backup written before anything was removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
}

pub fn fix_orphans(app: &App, dry_run: bool) -> Result<FixOrphansReport> {
    let store = &app.store;
    let orphaned_runs = store.orphaned_runs()?;
    let defaults = stories_with_default_count(app)?;
    if dry_run {
        let counts = store.orphan_counts()?;
        let summary = format!(
            "would remove {} orphaned runs, {} chapters and {} events, and set a chapter count on {} stories (dry run: nothing changed)",
            counts.runs,
            counts.chapters,
            counts.events,
            defaults.len()
        );
        return Ok(FixOrphansReport {
            dry_run,
            orphaned_runs,
            counts,
            stories_given_default_count: 0,
            summary,
            backup: None,
        });
    }
    let backup = app.backup_before(BackupReason::FixOrphans)?;
    let counts = store.remove_orphans()?;
    Metrics::add(&app.metrics.failed_runs_cleaned, counts.runs);
    let set = store.set_default_chapter_counts(&defaults, app.counts.default_count())?;
    defaults.iter().for_each(|id| app.counts.invalidate(id));
    let summary = format!(
        "removed {} orphaned runs, {} chapters and {} events; set a chapter count of {} on {set} stories",
        counts.runs,
        counts.chapters,
        counts.events,
        app.counts.default_count()
    );
    log::info!("fix-orphans: {summary}");
    Ok(FixOrphansReport {
        dry_run,
        orphaned_runs,
        counts,
        stories_given_default_count: set,
        summary,
        backup: Some(backup),
    })
}
