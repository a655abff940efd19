//! Keeping the database honest: diagnostics, the health check and its
//! repair, the orphan clean-up, and the background sweep on a timer, one
//! module each.
//!
//! Non-destructive by default: diagnostics only read, a dry run changes
//! nothing, and each destructive fix is one transaction that reports what it
//! removed. The sweep never deletes: it marks active orphans failed
//! (`ORPHANED_RUN`), re-queues or fails stuck runs, and drops expired cache
//! entries. Reports are typed structs, serialised only where they are
//! printed or sent.

mod diagnostics;
mod health;
mod orphans;
mod sweeper;

use std::time::Duration;

use serde::Serialize;

pub use diagnostics::{
    ChapterLine, DatabaseReport, RunReport, RunsByStatus, StoryReport, diagnose_all, diagnose_run,
    diagnose_story,
};
pub use health::{HealthOptions, HealthReport, Problem, health_check};
pub use orphans::{FixOrphansReport, fix_orphans};
pub use sweeper::{
    INTEGRITY_INTERVAL, IntegrityMemo, SweepChanges, SweepFindings, SweepReport, Sweeper, sweep,
};

use crate::app::App;
use crate::clock::timestamp;
use crate::error::Result;
use crate::progress::parse_outline;
use crate::run::{StoryId, Timestamp};

/// Runs held by external workers (no lease) count as stuck after this long
/// without a report.
pub const EXTERNAL_IDLE_LIMIT: Duration = Duration::from_secs(10 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub code: &'static str,
    pub message: String,
}

pub(crate) fn finding(
    severity: Severity,
    code: &'static str,
    message: impl Into<String>,
) -> Finding {
    Finding {
        severity,
        code,
        message: message.into(),
    }
}

/// A report of findings and what to do about them; "problems" are findings
/// of warning or error severity.
pub trait Report {
    fn findings(&self) -> &[Finding];

    fn has_problems(&self) -> bool {
        self.findings()
            .iter()
            .any(|f| f.severity >= Severity::Warning)
    }
}

/// Running runs that have not reported since this time count as stuck (for
/// external workers, which hold no lease).
pub(crate) fn idle_since(app: &App) -> Timestamp {
    timestamp(app.store.clock().now() - EXTERNAL_IDLE_LIMIT)
}

/// Stories with no explicit count whose outline names no chapter either, so
/// that the default applies.
fn stories_with_default_count(app: &App) -> Result<Vec<StoryId>> {
    Ok(app
        .store
        .stories_without_explicit_count()?
        .into_iter()
        .filter(|(_, outline)| parse_outline(outline).is_empty())
        .map(|(id, _)| id)
        .collect())
}
