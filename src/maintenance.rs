//! Keeping the database honest: diagnostics, the health check and its
//! auto-fix, the orphan clean-up, and the background sweep on a timer.
//!
//! Non-destructive by default: diagnostics only read, a dry run changes
//! nothing, and each destructive fix is one transaction that reports what it
//! removed. The sweep never deletes: it marks active orphans failed
//! (`ORPHANED_RUN`), re-queues or fails stuck runs, and drops expired cache
//! entries.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};

use crate::app::App;
use crate::clock::{age_seconds, timestamp};
use crate::error::Result;
use crate::metrics::Metrics;
use crate::progress::{CountSource, parse_outline, resolve_count};
use crate::store::{OrphanCounts, OrphanRun, Run, RunEvent, RunId, RunStatus, StoryId};

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

fn finding(severity: Severity, code: &'static str, message: impl Into<String>) -> Finding {
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

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub run_id: RunId,
    pub exists: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<Value>,
    pub story_exists: Option<bool>,
    pub lease_owner: Option<String>,
    /// Seconds until the lease expires (negative: expired that long ago).
    pub lease_remaining_s: Option<i64>,
    pub heartbeat_age_s: Option<i64>,
    pub last_events: Vec<RunEvent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chapters: Option<Vec<Value>>,
    pub findings: Vec<Finding>,
    pub recommendations: Vec<String>,
}

impl Report for RunReport {
    fn findings(&self) -> &[Finding] {
        &self.findings
    }
}

/// Errors that a retry may well cure.
fn retriable_code(code: &str) -> bool {
    matches!(
        code,
        "GENERATOR_UNAVAILABLE"
            | "STUCK_TIMEOUT"
            | "DATABASE_ERROR"
            | "DATABASE_FULL"
            | "CHAPTER_TRUNCATED"
    )
}

pub fn diagnose_run(app: &App, id: &RunId, verbose: bool) -> Result<RunReport> {
    let store = &app.store;
    let now = store.clock().now();
    let Some(run) = store.find_run(id)? else {
        return Ok(RunReport {
            run_id: id.clone(),
            exists: false,
            run: None,
            story_exists: None,
            lease_owner: None,
            lease_remaining_s: None,
            heartbeat_age_s: None,
            last_events: Vec::new(),
            chapters: None,
            findings: vec![finding(
                Severity::Error,
                "RUN_NOT_FOUND",
                format!("run {id} does not exist"),
            )],
            recommendations: vec![
                "list runs with `storyflow diagnose --all` or GET /api/runs".into(),
            ],
        });
    };
    let story_exists = store.find_story(&run.story_id)?.is_some();
    let mut events = store.events(id)?;
    if !verbose {
        let keep = events.len().saturating_sub(10);
        events.drain(..keep);
    }
    let lease_remaining_s = run
        .lease_expires_at
        .as_deref()
        .and_then(|t| age_seconds(now, t))
        .map(|age| -age);
    let heartbeat_age_s = run
        .heartbeat_at
        .as_deref()
        .and_then(|t| age_seconds(now, t));
    let mut findings = Vec::new();
    let mut recommendations = Vec::new();
    let code = run.error_code.clone().unwrap_or_default();
    let message = run.error_message.clone().unwrap_or_default();
    let wrong_total = if story_exists && !run.status.is_active() {
        store
            .runs_with_wrong_totals_of(Some(&run.story_id))?
            .into_iter()
            .find(|(wrong, _, _)| wrong == id)
    } else {
        None
    };
    if !story_exists {
        findings.push(finding(
            Severity::Error,
            "ORPHANED_RUN",
            format!(
                "run {id} points at story {}, which does not exist",
                run.story_id
            ),
        ));
        recommendations.push("storyflow fix-orphans --dry-run".into());
        recommendations.push("storyflow fix-orphans".into());
    }
    match run.status {
        RunStatus::Running if lease_remaining_s.is_some_and(|s| s < 0) => {
            findings.push(finding(
                Severity::Warning,
                "STUCK_RUN",
                format!(
                    "run {id} is running but its lease expired {}s ago; its worker has stopped",
                    -lease_remaining_s.unwrap_or(0)
                ),
            ));
            recommendations.push("start `storyflow serve` (its sweep resumes the run) or `storyflow health-check --fix`".into());
        }
        RunStatus::Failed if story_exists && retriable_code(&code) => {
            findings.push(finding(
                Severity::Warning,
                "FAILED_RETRIABLE",
                format!("run {id} failed with {code}: {message}"),
            ));
            recommendations.push(format!("storyflow run retry {id}"));
        }
        RunStatus::Failed if story_exists => {
            findings.push(finding(
                Severity::Error,
                "FAILED_PERMANENTLY",
                format!("run {id} failed with {code}: {message}"),
            ));
            recommendations.push(permanent_failure_advice(&code, id));
        }
        RunStatus::Cancelled if story_exists => {
            findings.push(finding(
                Severity::Info,
                "CANCELLED",
                format!(
                    "run {id} was cancelled after {} chapters",
                    run.chapters_done
                ),
            ));
            recommendations.push(format!("storyflow run retry {id} to resume it"));
        }
        _ if story_exists && wrong_total.is_none() => findings.push(finding(
            Severity::Info,
            "HEALTHY",
            format!(
                "run {id} is {} at {}% ({}/{} chapters)",
                run.status,
                run.progress(),
                run.chapters_done,
                run.chapters_total
            ),
        )),
        _ => {}
    }
    if let Some((_, done, saved)) = wrong_total {
        findings.push(wrong_total_finding(id, done, saved));
        recommendations.push(WRONG_TOTALS_ADVICE.into());
    }
    let chapters = if verbose && story_exists {
        Some(
            store
                .chapters(&run.story_id)?
                .iter()
                .map(|c| json!({"number": c.number, "title": c.title, "word_count": c.word_count}))
                .collect(),
        )
    } else {
        None
    };
    Ok(RunReport {
        run_id: id.clone(),
        exists: true,
        run: Some(run.to_json()),
        story_exists: Some(story_exists),
        lease_owner: run.lease_owner.clone(),
        lease_remaining_s,
        heartbeat_age_s,
        last_events: events,
        chapters,
        findings,
        recommendations,
    })
}

const WRONG_TOTALS_ADVICE: &str =
    "storyflow health-check --fix recomputes chapters_done from the saved chapters";

fn wrong_total_finding(id: &RunId, done: u32, saved: u32) -> Finding {
    finding(
        Severity::Warning,
        "WRONG_TOTALS",
        format!("run {id} reports {done} chapters done, but {saved} of its chapters are saved"),
    )
}

fn permanent_failure_advice(code: &str, id: &RunId) -> String {
    match code {
        "GENERATOR_AUTH" => {
            "check STORYFLOW_LLM_API_KEY, then `storyflow run retry ID`".replace("ID", id.as_str())
        }
        "GENERATOR_NOT_FOUND" => "check --llm-url and --llm-model, then `storyflow run retry ID`"
            .replace("ID", id.as_str()),
        "STORY_NOT_FOUND" | "ORPHANED_RUN" => "storyflow fix-orphans --dry-run".into(),
        _ => format!(
            "read the run's events with `storyflow diagnose --run {id} --verbose`, fix the cause, then `storyflow run retry {id}`"
        ),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StoryReport {
    pub story_id: StoryId,
    pub exists: bool,
    pub title: Option<String>,
    pub chapter_count: Option<u32>,
    pub chapter_count_source: Option<CountSource>,
    pub chapters_saved: usize,
    pub outline_warnings: Vec<String>,
    pub runs_by_status: Value,
    pub runs: Vec<Value>,
    pub findings: Vec<Finding>,
    pub recommendations: Vec<String>,
}

impl Report for StoryReport {
    fn findings(&self) -> &[Finding] {
        &self.findings
    }
}

pub fn diagnose_story(app: &App, id: &StoryId) -> Result<StoryReport> {
    let store = &app.store;
    let story = store.find_story(id)?;
    let runs = store.runs_of_story(id)?;
    let mut by_status = serde_json::Map::new();
    for status in RunStatus::ALL {
        by_status.insert(
            status.as_str().into(),
            json!(runs.iter().filter(|r| r.status == status).count()),
        );
    }
    let mut findings = Vec::new();
    let mut recommendations = Vec::new();
    let Some(story) = story else {
        if runs.is_empty() {
            findings.push(finding(
                Severity::Error,
                "STORY_NOT_FOUND",
                format!("story {id} does not exist and no run points at it"),
            ));
            recommendations.push("list stories with `storyflow story list`".into());
        } else {
            findings.push(finding(
                Severity::Error,
                "ORPHANED_RUNS",
                format!(
                    "story {id} does not exist, but {} runs point at it: they are orphans",
                    runs.len()
                ),
            ));
            recommendations.push("storyflow fix-orphans --dry-run".into());
            recommendations.push("storyflow fix-orphans".into());
        }
        return Ok(StoryReport {
            story_id: id.clone(),
            exists: false,
            title: None,
            chapter_count: None,
            chapter_count_source: None,
            chapters_saved: 0,
            outline_warnings: Vec::new(),
            runs_by_status: Value::Object(by_status),
            runs: runs.iter().map(|r| r.to_json()).collect(),
            findings,
            recommendations,
        });
    };
    let count = resolve_count(&story, app.counts.default_count());
    let chapters_saved = store.chapters(id)?.len();
    let outline_warnings = crate::progress::check_outline(&story.outline, story.chapter_count);
    if count.source == CountSource::Default {
        findings.push(finding(
            Severity::Warning,
            "DEFAULT_CHAPTER_COUNT",
            format!("story {id} has no chapter count and its outline names no chapters; the default of {} applies", count.count),
        ));
        recommendations.push(format!("set one: storyflow story add … --chapters N, or PATCH /api/stories/{id} {{\"chapter_count\": N}}"));
    }
    for warning in &outline_warnings {
        findings.push(finding(
            Severity::Warning,
            "OUTLINE_PROBLEM",
            warning.clone(),
        ));
    }
    for run in store
        .stuck_runs(&idle_since(app))?
        .iter()
        .filter(|r| r.story_id == *id)
    {
        findings.push(finding(
            Severity::Warning,
            "STUCK_RUN",
            format!(
                "run {} is running, but its worker has stopped responding",
                run.id
            ),
        ));
        recommendations.push(format!("storyflow diagnose --run {}", run.id));
    }
    for (run, done, saved) in store.runs_with_wrong_totals_of(Some(id))? {
        findings.push(wrong_total_finding(&run, done, saved));
        recommendations.push(WRONG_TOTALS_ADVICE.into());
    }
    for run in runs.iter().filter(|r| r.status == RunStatus::Failed) {
        findings.push(finding(
            Severity::Warning,
            "FAILED_RUN",
            format!(
                "run {} failed with {}",
                run.id,
                run.error_code.as_deref().unwrap_or("an unknown error")
            ),
        ));
        recommendations.push(format!("storyflow diagnose --run {}", run.id));
    }
    if findings.is_empty() {
        findings.push(finding(
            Severity::Info,
            "HEALTHY",
            format!(
                "story {id} has {} of {} chapters ({})",
                chapters_saved,
                count.count,
                count.source.as_str()
            ),
        ));
    }
    Ok(StoryReport {
        story_id: id.clone(),
        exists: true,
        title: Some(story.title),
        chapter_count: Some(count.count),
        chapter_count_source: Some(count.source),
        chapters_saved,
        outline_warnings,
        runs_by_status: Value::Object(by_status),
        runs: runs.iter().map(|r| r.to_json()).collect(),
        findings,
        recommendations,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct DatabaseReport {
    pub runs_by_status: Value,
    pub orphaned_runs: Vec<OrphanRun>,
    pub stuck_runs: Vec<Value>,
    pub failed_by_code: Value,
    pub stories_with_default_count: Vec<StoryId>,
    pub findings: Vec<Finding>,
    pub recommendations: Vec<String>,
}

impl Report for DatabaseReport {
    fn findings(&self) -> &[Finding] {
        &self.findings
    }
}

fn idle_since(app: &App) -> String {
    timestamp(app.store.clock().now() - EXTERNAL_IDLE_LIMIT)
}

fn stories_with_default_count(app: &App) -> Result<Vec<StoryId>> {
    Ok(app
        .store
        .stories_without_explicit_count()?
        .into_iter()
        .filter(|(_, outline)| parse_outline(outline).is_empty())
        .map(|(id, _)| id)
        .collect())
}

pub fn diagnose_all(app: &App) -> Result<DatabaseReport> {
    let store = &app.store;
    let orphaned = store.orphaned_runs()?;
    let stuck = store.stuck_runs(&idle_since(app))?;
    let failed = store.failed_runs_by_code()?;
    let defaults = stories_with_default_count(app)?;
    let mut findings = Vec::new();
    let mut recommendations = Vec::new();
    if !orphaned.is_empty() {
        findings.push(finding(
            Severity::Error,
            "ORPHANED_RUNS",
            format!("{} runs point at stories that do not exist", orphaned.len()),
        ));
        recommendations.push("storyflow fix-orphans --dry-run".into());
    }
    if !stuck.is_empty() {
        findings.push(finding(
            Severity::Warning,
            "STUCK_RUNS",
            format!("{} runs are running with no live worker", stuck.len()),
        ));
        recommendations.push("storyflow health-check --fix".into());
    }
    for (code, count) in &failed {
        let severity = if retriable_code(code) {
            Severity::Warning
        } else {
            Severity::Info
        };
        findings.push(finding(
            severity,
            "FAILED_RUNS",
            format!("{count} runs failed with {code}"),
        ));
    }
    if failed.iter().any(|(code, _)| retriable_code(code)) {
        recommendations
            .push("retry runs that failed for a passing cause: storyflow run retry ID".into());
    }
    if !defaults.is_empty() {
        findings.push(finding(
            Severity::Warning,
            "DEFAULT_CHAPTER_COUNT",
            format!(
                "{} stories have no usable chapter count and fall back to the default",
                defaults.len()
            ),
        ));
        recommendations.push("storyflow health-check --fix sets an explicit count on them".into());
    }
    let wrong_totals = store.runs_with_wrong_totals()?;
    if !wrong_totals.is_empty() {
        findings.push(finding(
            Severity::Warning,
            "WRONG_TOTALS",
            format!(
                "{} finished runs report a chapter count that disagrees with the chapters saved",
                wrong_totals.len()
            ),
        ));
        recommendations.push(WRONG_TOTALS_ADVICE.into());
    }
    let mut by_status = serde_json::Map::new();
    for (status, count) in store.run_counts_by_status()? {
        by_status.insert(status.as_str().into(), json!(count));
    }
    Ok(DatabaseReport {
        runs_by_status: Value::Object(by_status),
        orphaned_runs: orphaned,
        stuck_runs: stuck.iter().map(|r| r.to_json()).collect(),
        failed_by_code: Value::Object(failed.into_iter().map(|(c, n)| (c, json!(n))).collect()),
        stories_with_default_count: defaults,
        findings,
        recommendations,
    })
}

#[derive(Debug, Clone, Copy, Default)]
pub struct HealthOptions {
    pub fix: bool,
    /// `integrity_check` instead of `quick_check`.
    pub full: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub code: &'static str,
    pub message: String,
    pub count: u64,
    pub fixable: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    /// True when no problem is left (after fixing, when asked to fix).
    pub healthy: bool,
    pub schema_version: i64,
    pub integrity_ok: bool,
    pub problems: Vec<Problem>,
    /// What `--fix` changed; empty without `--fix`.
    pub fixed: Vec<String>,
    /// Problems still present after the fix (all of them without `--fix`).
    pub remaining: Vec<Problem>,
}

/// What the health check learns from indexes (and the schema), apart from
/// the integrity check.
struct IndexedFindings {
    orphans: OrphanCounts,
    foreign_keys: Vec<String>,
    stuck: Vec<Run>,
    defaults: Vec<StoryId>,
    wrong_totals: Vec<(RunId, u32, u32)>,
}

/// The first `n` lines of a finding, for a one-line problem message.
fn first_few(lines: &[String], n: usize) -> String {
    lines
        .iter()
        .take(n)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join("; ")
}

fn indexed_findings(app: &App) -> Result<IndexedFindings> {
    let store = &app.store;
    Ok(IndexedFindings {
        orphans: store.orphan_counts()?,
        foreign_keys: store.uncounted_foreign_key_violations()?,
        stuck: store.stuck_runs(&idle_since(app))?,
        defaults: stories_with_default_count(app)?,
        wrong_totals: store.runs_with_wrong_totals()?,
    })
}

pub fn health_check(app: &App, options: HealthOptions) -> Result<HealthReport> {
    let store = &app.store;
    // The integrity check reads the whole file and takes longer than all the
    // indexed checks together, so they run beside it on a second read
    // connection. Their result waits for its verdict: nothing is reported
    // from, or fixed in, a damaged file (where they may well fail).
    let (integrity, indexed) = if store.concurrent_reads() {
        std::thread::scope(|scope| {
            let integrity = scope.spawn(|| store.integrity_problems(options.full));
            let indexed = indexed_findings(app);
            let integrity = integrity
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (integrity, Some(indexed))
        })
    } else {
        // With one reader they would only queue for its connection.
        (store.integrity_problems(options.full), None)
    };
    let integrity = integrity?;
    let schema_version = store.schema_version()?;
    let mut problems = Vec::new();
    if !integrity.is_empty() {
        problems.push(Problem {
            code: "INTEGRITY",
            message: format!("the database file is damaged: {}", first_few(&integrity, 5)),
            count: integrity.len() as u64,
            fixable: false,
        });
        // Never touch a damaged file: report and stop.
        return Ok(HealthReport {
            healthy: false,
            schema_version,
            integrity_ok: false,
            remaining: problems.clone(),
            problems,
            fixed: vec!["nothing: the integrity check failed, so the database was left untouched; restore a backup".into()],
        });
    }
    let IndexedFindings {
        orphans,
        foreign_keys,
        stuck,
        defaults,
        wrong_totals,
    } = match indexed {
        Some(found) => found?,
        None => indexed_findings(app)?,
    };
    if schema_version != crate::store::SCHEMA_VERSION {
        problems.push(Problem {
            code: "SCHEMA_VERSION",
            message: format!(
                "schema version {schema_version}, expected {}",
                crate::store::SCHEMA_VERSION
            ),
            count: 1,
            fixable: false,
        });
    }
    if !foreign_keys.is_empty() {
        problems.push(Problem {
            code: "FOREIGN_KEYS",
            message: format!(
                "{} rows break a foreign key: {}",
                foreign_keys.len(),
                first_few(&foreign_keys, 3)
            ),
            count: foreign_keys.len() as u64,
            fixable: false,
        });
    }
    push_orphan_problems(&mut problems, &orphans);
    if !stuck.is_empty() {
        problems.push(Problem {
            code: "STUCK_RUNS",
            message: format!("{} runs are running with an expired lease", stuck.len()),
            count: stuck.len() as u64,
            fixable: true,
        });
    }
    if !defaults.is_empty() {
        problems.push(Problem {
            code: "DEFAULT_CHAPTER_COUNT",
            message: format!(
                "{} stories have no usable chapter count and fall back to the default",
                defaults.len()
            ),
            count: defaults.len() as u64,
            fixable: true,
        });
    }
    if !wrong_totals.is_empty() {
        problems.push(Problem {
            code: "WRONG_TOTALS",
            message: format!(
                "{} finished runs report a chapter count that disagrees with the chapters saved",
                wrong_totals.len()
            ),
            count: wrong_totals.len() as u64,
            fixable: true,
        });
    }
    let mut fixed = Vec::new();
    if options.fix && problems.iter().any(|p| p.fixable) {
        if orphans.total() > 0 {
            let removed = store.remove_orphans()?;
            Metrics::add(&app.metrics.failed_runs_cleaned, removed.runs);
            fixed.push(format!(
                "removed {} orphaned runs, {} orphaned chapters and {} orphaned events",
                removed.runs, removed.chapters, removed.events
            ));
        }
        if !stuck.is_empty() {
            let (requeued, failed) =
                store.recover_stuck_runs(&idle_since(app), app.settings.max_attempts)?;
            Metrics::add(&app.metrics.runs_recovered, requeued.len() as u64);
            fixed.push(format!(
                "re-queued {} stuck runs; failed {} that had used up their attempts",
                requeued.len(),
                failed.len()
            ));
        }
        if !defaults.is_empty() {
            let set = store.set_default_chapter_counts(&defaults, app.counts.default_count())?;
            defaults.iter().for_each(|id| app.counts.invalidate(id));
            fixed.push(format!(
                "set an explicit chapter count of {} on {set} stories",
                app.counts.default_count()
            ));
        }
        if !wrong_totals.is_empty() {
            let ids: Vec<RunId> = wrong_totals.iter().map(|(id, _, _)| id.clone()).collect();
            let changed = store.recompute_totals(&ids)?;
            fixed.push(format!(
                "recomputed chapters_done of {changed} runs from their saved chapters"
            ));
        }
    }
    let remaining: Vec<Problem> = if options.fix {
        problems.iter().filter(|p| !p.fixable).cloned().collect()
    } else {
        problems.clone()
    };
    Ok(HealthReport {
        healthy: remaining.is_empty(),
        schema_version,
        integrity_ok: true,
        problems,
        fixed,
        remaining,
    })
}

fn push_orphan_problems(problems: &mut Vec<Problem>, orphans: &OrphanCounts) {
    for (code, count, what) in [
        (
            "ORPHANED_RUNS",
            orphans.runs,
            "runs point at stories that do not exist",
        ),
        (
            "ORPHANED_CHAPTERS",
            orphans.chapters,
            "chapters belong to stories that do not exist",
        ),
        (
            "ORPHANED_VERSIONS",
            orphans.versions,
            "chapter versions belong to stories that do not exist",
        ),
        (
            "ORPHANED_EVENTS",
            orphans.events,
            "events belong to orphaned or missing runs",
        ),
    ] {
        if count > 0 {
            problems.push(Problem {
                code,
                message: format!("{count} {what}"),
                count,
                fixable: true,
            });
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct FixOrphansReport {
    pub dry_run: bool,
    pub orphaned_runs: Vec<OrphanRun>,
    /// Found (dry run) or removed.
    pub counts: OrphanCounts,
    pub stories_given_default_count: usize,
    pub summary: String,
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
        });
    }
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
    })
}

/// What one background sweep found and changed.
#[derive(Debug, Clone, Serialize)]
pub struct SweepReport {
    pub started_at: String,
    pub duration_ms: u64,
    pub findings: Value,
    pub changes: Value,
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
        .recover_stuck_runs(&idle_since(app), app.settings.max_attempts)?;
    Metrics::add(&app.metrics.runs_recovered, requeued.len() as u64);
    if !requeued.is_empty() {
        app.work_queued.ring();
    }
    let orphans = app.store.orphan_counts()?;
    let (integrity_ok, integrity_checked_at) = integrity.check_if_due(app)?;
    let mut runs_by_status = serde_json::Map::new();
    for (status, count) in app.store.run_counts_by_status()? {
        runs_by_status.insert(status.as_str().into(), json!(count));
    }
    let findings = json!({
        "runs_by_status": runs_by_status,
        "orphaned_runs": orphans.runs,
        "orphaned_chapters": orphans.chapters,
        "orphaned_events": orphans.events,
        "integrity_ok": integrity_ok,
        "integrity_checked_at": integrity_checked_at,
    });
    let changes = json!({
        "cache_entries_expired": expired,
        "orphans_marked_failed": marked,
        "stuck_runs_requeued": requeued,
        "stuck_runs_failed": failed,
    });
    let duration_ms = started.elapsed().as_millis() as u64;
    app.store
        .record_sweep(&started_at, duration_ms, &findings, &changes)?;
    Metrics::inc(&app.metrics.sweeps);
    log::debug!("sweep done in {duration_ms} ms: {findings}");
    Ok(SweepReport {
        started_at,
        duration_ms,
        findings,
        changes,
    })
}

/// How often the sweep runs `PRAGMA quick_check`. The check reads the whole
/// file (seconds on a database of a million runs), while everything else in a
/// sweep is an indexed lookup; so it runs at start and then at this interval,
/// and sweeps in between report the last result.
pub const INTEGRITY_INTERVAL: Duration = Duration::from_secs(60 * 60);

/// The last quick check the sweeper ran: when, and whether it passed.
#[derive(Debug, Default)]
pub struct IntegrityMemo {
    last: Option<(Instant, bool, String)>,
}

impl IntegrityMemo {
    /// Runs the quick check when none ran in the last [`INTEGRITY_INTERVAL`];
    /// returns the latest result and its time.
    fn check_if_due(&mut self, app: &App) -> Result<(bool, String)> {
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
            .unwrap_or((true, String::new())))
    }
}

/// Problems the last sweep left, for `/api/health`.
fn sweep_problems(findings: &Value) -> bool {
    ["orphaned_runs", "orphaned_chapters", "orphaned_events"]
        .iter()
        .any(|k| findings[k].as_u64().unwrap_or(0) > 0)
        || findings["integrity_ok"] == json!(false)
}

/// `GET /api/health`.
///
/// Polled by the status page, so it reads only what indexes answer at once:
/// live counts of active and stuck runs, and the rest from the last sweep
/// (the finished-run totals are as of that sweep).
pub fn health_summary(app: &App) -> Result<Value> {
    let last = app.store.last_sweep()?;
    let stuck = app.store.stuck_runs(&idle_since(app))?.len();
    let disk_full_since = app.store.disk_full_since();
    let degraded = stuck > 0
        || disk_full_since.is_some()
        || last.as_ref().is_some_and(|s| sweep_problems(&s.findings));
    let mut runs = match last.as_ref().map(|s| &s.findings["runs_by_status"]) {
        Some(Value::Object(counts)) => counts.clone(),
        _ => serde_json::Map::new(),
    };
    let (pending, running) = app.store.active_run_counts()?;
    runs.insert("pending".into(), json!(pending));
    runs.insert("running".into(), json!(running));
    Ok(json!({
        "status": if degraded { "degraded" } else { "ok" },
        "stuck_runs": stuck,
        "orphaned_runs": last.as_ref().map_or(json!(null), |s| s.findings["orphaned_runs"].clone()),
        "disk_full_since": disk_full_since,
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": app.started.elapsed().as_secs(),
        "database": {
            "path": app.store.path().display().to_string(),
            "size_bytes": app.store.size_bytes()?,
            "schema_version": crate::store::SCHEMA_VERSION,
            "sqlite_version": rusqlite::version(),
        },
        "generator": app.settings.generator,
        "workers": app.settings.workers,
        "runs": runs,
        "last_sweep": last,
    }))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::AppSettings;
    use crate::store::Store;

    /// A database with an orphaned run and a broken foreign key that the
    /// orphan counts do not cover, written with foreign keys off.
    fn damaged_keys(path: &std::path::Path) {
        drop(Store::open(path, 1).expect("create"));
        let conn = rusqlite::Connection::open(path).expect("open");
        conn.execute_batch(
            "PRAGMA foreign_keys = OFF;
             CREATE TABLE notes (id INTEGER PRIMARY KEY, story_id TEXT REFERENCES stories (id));
             INSERT INTO notes (id, story_id) VALUES (1, '00000000-0000-4000-8000-000000000009');
             INSERT INTO workflow_runs (id, story_id, status, created_at, updated_at)
                 VALUES ('10000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000009',
                         'failed', 't', 't');",
        )
        .expect("damage");
    }

    #[test]
    fn the_health_check_finds_the_same_with_one_reader_as_with_two() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("test.db");
        damaged_keys(&path);
        for readers in [1, 2] {
            let app = App::new(
                Store::open(&path, readers).expect("open"),
                AppSettings::default(),
            );
            let report = health_check(&app, HealthOptions::default()).expect("health");
            assert!(report.integrity_ok);
            let problems: Vec<(&str, u64)> =
                report.problems.iter().map(|p| (p.code, p.count)).collect();
            assert_eq!(
                problems,
                [("FOREIGN_KEYS", 1), ("ORPHANED_RUNS", 1)],
                "{readers} readers: {:?}",
                report.problems
            );
            assert_eq!(
                report.problems[0].message,
                "1 rows break a foreign key: notes row 1 -> stories"
            );
        }
    }
}
