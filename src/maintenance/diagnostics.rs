//! Diagnostics: what is wrong with a run, a story or the whole database,
//! and what to do about it. Read only.

use serde::Serialize;
use std::collections::BTreeMap;

use super::{Finding, Report, Severity, finding, idle_since, stories_with_default_count};
use crate::app::App;
use crate::error::Result;
use crate::progress::{CountSource, resolve_count};
use crate::run::{FailureCode, RunId, RunStatus, StoryId, WorkerId};
use crate::store::{OrphanRun, Run, RunEvent};

/// Runs counted by status, keyed by the status's text (so that they list in
/// the order of the text, as the reports always have).
pub type RunsByStatus = BTreeMap<&'static str, u64>;

/// A chapter as the verbose run report lists it.
#[derive(Debug, Clone, Serialize)]
pub struct ChapterLine {
    pub number: u32,
    pub title: String,
    pub word_count: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub run_id: RunId,
    pub exists: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<Run>,
    pub story_exists: Option<bool>,
    pub lease_owner: Option<WorkerId>,
    /// Seconds until the lease expires (negative: expired that long ago).
    pub lease_remaining_s: Option<i64>,
    pub heartbeat_age_s: Option<i64>,
    pub last_events: Vec<RunEvent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chapters: Option<Vec<ChapterLine>>,
    pub findings: Vec<Finding>,
    pub recommendations: Vec<String>,
}

impl Report for RunReport {
    fn findings(&self) -> &[Finding] {
        &self.findings
    }
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
        .as_ref()
        .and_then(|t| t.age_seconds(now))
        .map(|age| -age);
    let heartbeat_age_s = run.heartbeat_at.as_ref().and_then(|t| t.age_seconds(now));
    let mut findings = Vec::new();
    let mut recommendations = Vec::new();
    let code = run.error_code.map_or("", FailureCode::as_str);
    let retriable = run.error_code.is_some_and(FailureCode::is_retriable);
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
            FailureCode::OrphanedRun.as_str(),
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
        RunStatus::Failed if story_exists && retriable => {
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
            let code = run.error_code.unwrap_or(FailureCode::Unknown);
            recommendations.push(code.advice(id));
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
                .map(|c| ChapterLine {
                    number: c.number,
                    title: c.title.clone(),
                    word_count: c.word_count,
                })
                .collect(),
        )
    } else {
        None
    };
    Ok(RunReport {
        run_id: id.clone(),
        exists: true,
        story_exists: Some(story_exists),
        lease_owner: run.lease_owner.clone(),
        lease_remaining_s,
        heartbeat_age_s,
        last_events: events,
        chapters,
        findings,
        recommendations,
        run: Some(run),
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

#[derive(Debug, Clone, Serialize)]
pub struct StoryReport {
    pub story_id: StoryId,
    pub exists: bool,
    pub title: Option<String>,
    pub chapter_count: Option<u32>,
    pub chapter_count_source: Option<CountSource>,
    pub chapters_saved: usize,
    pub outline_warnings: Vec<String>,
    pub runs_by_status: RunsByStatus,
    pub runs: Vec<Run>,
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
    let by_status: RunsByStatus = RunStatus::ALL
        .iter()
        .map(|&status| {
            let count = runs.iter().filter(|r| r.status == status).count();
            (status.as_str(), count as u64)
        })
        .collect();
    let mut findings = Vec::new();
    let mut recommendations = Vec::new();
    let Some(story) = story else {
        if runs.is_empty() {
            findings.push(finding(
                Severity::Error,
                FailureCode::StoryNotFound.as_str(),
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
            runs_by_status: by_status,
            runs,
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
                run.error_code
                    .map_or("an unknown error", FailureCode::as_str)
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
        runs_by_status: by_status,
        runs,
        findings,
        recommendations,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct DatabaseReport {
    pub runs_by_status: RunsByStatus,
    pub orphaned_runs: Vec<OrphanRun>,
    pub stuck_runs: Vec<Run>,
    /// Failed runs by their failure code's text.
    pub failed_by_code: BTreeMap<String, u64>,
    pub stories_with_default_count: Vec<StoryId>,
    pub findings: Vec<Finding>,
    pub recommendations: Vec<String>,
}

impl Report for DatabaseReport {
    fn findings(&self) -> &[Finding] {
        &self.findings
    }
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
        let severity = if code.is_retriable() {
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
    if failed.iter().any(|(code, _)| code.is_retriable()) {
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
    let by_status: RunsByStatus = store
        .run_counts_by_status()?
        .into_iter()
        .map(|(status, count)| (status.as_str(), count))
        .collect();
    Ok(DatabaseReport {
        runs_by_status: by_status,
        orphaned_runs: orphaned,
        stuck_runs: stuck,
        failed_by_code: failed
            .into_iter()
            .map(|(code, n)| (code.to_string(), n))
            .collect(),
        stories_with_default_count: defaults,
        findings,
        recommendations,
    })
}
