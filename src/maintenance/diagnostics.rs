//! Diagnostics: what is wrong with a run, a story or the whole database,
//! and what to do about it. Read only.

use serde::Serialize;
use std::collections::BTreeMap;

use super::{Finding, Report, Severity, finding, idle_since, stories_with_default_count};
use crate::app::App;
use crate::error::Result;
use crate::progress::{CountSource, resolve_count};
use crate::run::{EventKind, FailureCode, RunId, RunStatus, StoryId, WorkerId};
use crate::store::{OrphanRun, Run, RunEvent, Store, Story, StoryPlace};

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

/// Findings and the recommendations that go with them, gathered as a report
/// is built.
#[derive(Default)]
struct Advice {
    findings: Vec<Finding>,
    recommendations: Vec<String>,
}

impl Advice {
    fn add(&mut self, severity: Severity, code: &'static str, message: String) {
        self.findings.push(finding(severity, code, message));
    }

    fn recommend(&mut self, what: impl Into<String>) {
        self.recommendations.push(what.into());
    }
}

pub fn diagnose_run(app: &App, id: &RunId, verbose: bool) -> Result<RunReport> {
    let store = &app.store;
    let now = store.clock().now();
    let Some(run) = store.find_run(id)? else {
        return Ok(missing_run(id));
    };
    let story_exists = store.story_place(&run.story_id)? != StoryPlace::Missing;
    let mut events = store.events(id)?;
    let truncated = events
        .iter()
        .rfind(|e| e.kind == EventKind::PromptTruncated)
        .map(|e| e.message.clone());
    if !verbose {
        let keep = events.len().saturating_sub(10);
        events.drain(..keep);
    }
    let lease_remaining_s = run
        .lease_expires_at
        .as_ref()
        .and_then(|t| t.age_seconds(now))
        .map(|age| -age);
    let mut advice = Advice::default();
    if !story_exists {
        advice.add(
            Severity::Error,
            FailureCode::OrphanedRun.as_str(),
            format!(
                "run {id} points at story {}, which does not exist",
                run.story_id
            ),
        );
        advice.recommend("storyflow fix-orphans --dry-run");
        advice.recommend("storyflow fix-orphans");
    }
    let wrong_total = if story_exists && !run.status.is_active() {
        store
            .runs_with_wrong_totals_of(Some(&run.story_id))?
            .into_iter()
            .find(|(wrong, _, _)| wrong == id)
    } else {
        None
    };
    if story_exists {
        judge_run_status(&mut advice, &run, lease_remaining_s, wrong_total.is_none());
    }
    if let Some((_, done, saved)) = wrong_total {
        advice.findings.push(wrong_total_finding(id, done, saved));
        advice.recommend(WRONG_TOTALS_ADVICE);
    }
    if let Some(message) = truncated {
        advice.add(
            Severity::Warning,
            "PROMPT_TRUNCATED",
            format!("the model server read less of a prompt than was sent: {message}"),
        );
        advice.recommend(
            "give the model a larger context: serve --llm-extra-body '{\"options\": {\"num_ctx\": 16384}}' for Ollama, or a larger num_ctx in its Modelfile",
        );
    }
    let chapters = if verbose && story_exists {
        Some(chapter_lines(app, &run.story_id)?)
    } else {
        None
    };
    Ok(RunReport {
        run_id: id.clone(),
        exists: true,
        story_exists: Some(story_exists),
        lease_owner: run.lease_owner.clone(),
        lease_remaining_s,
        heartbeat_age_s: run.heartbeat_at.as_ref().and_then(|t| t.age_seconds(now)),
        last_events: events,
        chapters,
        findings: advice.findings,
        recommendations: advice.recommendations,
        run: Some(run),
    })
}

fn missing_run(id: &RunId) -> RunReport {
    RunReport {
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
        recommendations: vec!["list runs with `storyflow diagnose --all` or GET /api/runs".into()],
    }
}

/// What the status of a run whose story exists says. `totals_agree`: no
/// wrong-totals finding will speak for a finished run instead.
fn judge_run_status(
    advice: &mut Advice,
    run: &Run,
    lease_remaining_s: Option<i64>,
    totals_agree: bool,
) {
    let id = &run.id;
    let code = run.error_code.map_or("", FailureCode::as_str);
    let message = run.error_message.clone().unwrap_or_default();
    match run.status {
        RunStatus::Running if lease_remaining_s.is_some_and(|s| s < 0) => {
            advice.add(
                Severity::Warning,
                "STUCK_RUN",
                format!(
                    "run {id} is running but its lease expired {}s ago; its worker has stopped",
                    -lease_remaining_s.unwrap_or(0)
                ),
            );
            advice.recommend("start `storyflow serve` (its sweep resumes the run) or `storyflow health-check --fix`");
        }
        RunStatus::Failed if run.error_code.is_some_and(FailureCode::is_retriable) => {
            advice.add(
                Severity::Warning,
                "FAILED_RETRIABLE",
                format!("run {id} failed with {code}: {message}"),
            );
            advice.recommend(format!("storyflow run retry {id}"));
        }
        RunStatus::Failed => {
            advice.add(
                Severity::Error,
                "FAILED_PERMANENTLY",
                format!("run {id} failed with {code}: {message}"),
            );
            advice.recommend(run.error_code.unwrap_or(FailureCode::Unknown).advice(id));
        }
        RunStatus::Cancelled => {
            advice.add(
                Severity::Info,
                "CANCELLED",
                format!(
                    "run {id} was cancelled after {} chapters",
                    run.chapters_done
                ),
            );
            advice.recommend(format!("storyflow run retry {id} to resume it"));
        }
        _ if totals_agree => advice.add(
            Severity::Info,
            "HEALTHY",
            format!(
                "run {id} is {} at {}% ({}/{} chapters)",
                run.status,
                run.progress(),
                run.chapters_done,
                run.chapters_total
            ),
        ),
        _ => {}
    }
}

fn chapter_lines(app: &App, story: &StoryId) -> Result<Vec<ChapterLine>> {
    Ok(app
        .store
        .chapters(story)?
        .iter()
        .map(|c| ChapterLine {
            number: c.number,
            title: c.title.clone(),
            word_count: c.word_count,
        })
        .collect())
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
    let runs = store.runs_of_story(id)?;
    let by_status: RunsByStatus = RunStatus::ALL
        .iter()
        .map(|&status| {
            let count = runs.iter().filter(|r| r.status == status).count();
            (status.as_str(), count as u64)
        })
        .collect();
    let mut advice = Advice::default();
    let story = match store.find_story(id)? {
        Some(story) => story,
        None => match store.trashed_story(id)? {
            Some(story) => {
                advice.add(
                    Severity::Info,
                    "IN_TRASH",
                    format!("story {id} is in the trash; its runs are not orphans"),
                );
                advice.recommend(format!(
                    "restore it with POST /api/trash/{id}/restore, or leave it to be purged after --trash-days"
                ));
                story
            }
            None => return Ok(missing_story(id, runs, by_status)),
        },
    };
    let count = resolve_count(&story, app.counts.default_count());
    let chapters = store.chapters(id)?;
    let outline_warnings = crate::progress::check_outline(&story.outline, story.chapter_count);
    if count.source == CountSource::Default {
        advice.add(
            Severity::Warning,
            "DEFAULT_CHAPTER_COUNT",
            format!("story {id} has no chapter count and its outline names no chapters; the default of {} applies", count.count),
        );
        advice.recommend(format!("set one: storyflow story add … --chapters N, or PATCH /api/stories/{id} {{\"chapter_count\": N}}"));
    }
    for warning in &outline_warnings {
        advice.add(Severity::Warning, "OUTLINE_PROBLEM", warning.clone());
    }
    judge_story_runs(app, &mut advice, id, &runs)?;
    advice
        .findings
        .extend(quality_findings(store, &story, &chapters)?);
    if advice.findings.is_empty() {
        advice.add(
            Severity::Info,
            "HEALTHY",
            format!(
                "story {id} has {} of {} chapters ({})",
                chapters.len(),
                count.count,
                count.source.as_str()
            ),
        );
    }
    Ok(StoryReport {
        story_id: id.clone(),
        exists: true,
        title: Some(story.title),
        chapter_count: Some(count.count),
        chapter_count_source: Some(count.source),
        chapters_saved: chapters.len(),
        outline_warnings,
        runs_by_status: by_status,
        runs,
        findings: advice.findings,
        recommendations: advice.recommendations,
    })
}

fn missing_story(id: &StoryId, runs: Vec<Run>, by_status: RunsByStatus) -> StoryReport {
    let mut advice = Advice::default();
    if runs.is_empty() {
        advice.add(
            Severity::Error,
            FailureCode::StoryNotFound.as_str(),
            format!("story {id} does not exist and no run points at it"),
        );
        advice.recommend("list stories with `storyflow story list`");
    } else {
        advice.add(
            Severity::Error,
            "ORPHANED_RUNS",
            format!(
                "story {id} does not exist, but {} runs point at it: they are orphans",
                runs.len()
            ),
        );
        advice.recommend("storyflow fix-orphans --dry-run");
        advice.recommend("storyflow fix-orphans");
    }
    StoryReport {
        story_id: id.clone(),
        exists: false,
        title: None,
        chapter_count: None,
        chapter_count_source: None,
        chapters_saved: 0,
        outline_warnings: Vec::new(),
        runs_by_status: by_status,
        runs,
        findings: advice.findings,
        recommendations: advice.recommendations,
    }
}

/// Stuck, miscounted and failed runs of a story.
fn judge_story_runs(app: &App, advice: &mut Advice, id: &StoryId, runs: &[Run]) -> Result<()> {
    let store = &app.store;
    for run in store
        .stuck_runs(&idle_since(app))?
        .iter()
        .filter(|r| r.story_id == *id)
    {
        advice.add(
            Severity::Warning,
            "STUCK_RUN",
            format!(
                "run {} is running, but its worker has stopped responding",
                run.id
            ),
        );
        advice.recommend(format!("storyflow diagnose --run {}", run.id));
    }
    for (run, done, saved) in store.runs_with_wrong_totals_of(Some(id))? {
        advice.findings.push(wrong_total_finding(&run, done, saved));
        advice.recommend(WRONG_TOTALS_ADVICE);
    }
    for run in runs.iter().filter(|r| r.status == RunStatus::Failed) {
        advice.add(
            Severity::Warning,
            "FAILED_RUN",
            format!(
                "run {} failed with {}",
                run.id,
                run.error_code
                    .map_or("an unknown error", FailureCode::as_str)
            ),
        );
        advice.recommend(format!("storyflow diagnose --run {}", run.id));
    }
    Ok(())
}

/// Chapters that fall short of the quality thresholds (length, repetition,
/// repeated sentences, stock phrases, name variants), as stored with each
/// chapter's current version.
fn quality_findings(
    store: &Store,
    story: &Story,
    chapters: &[crate::store::Chapter],
) -> Result<Vec<Finding>> {
    let thresholds = crate::quality::Thresholds::default();
    let qualities = store.chapter_qualities(&story.id)?;
    Ok(chapters
        .iter()
        .filter_map(|c| Some((c, qualities.get(&c.number)?)))
        .flat_map(|(c, quality)| thresholds.findings(c.number, c.word_count, quality))
        .collect())
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
    judge_failed_runs(&mut findings, &mut recommendations, &failed);
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

/// Failed runs by code: a warning for codes a retry may cure, with that advice.
fn judge_failed_runs(
    findings: &mut Vec<Finding>,
    recommendations: &mut Vec<String>,
    failed: &[(FailureCode, u64)],
) {
    for (code, count) in failed {
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
}
