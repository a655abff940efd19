//! The route handlers: each a plain function from the request and the shared
//! state to a reply. Parsing and validation happen here, at the edge; the
//! work happens in the store, the progress tracker and maintenance.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Reply, Req};
use crate::app::App;
use crate::error::{Error, Result};
use crate::maintenance;
use crate::progress::{CountSource, ProgressOutcome, check_outline, parse_outline};
use crate::quality::Quality;
use crate::store::{
    Chapter, ChapterEdit, NewStory, RunFilter, RunId, RunScope, RunStatus, Story, StoryId,
    StoryPatch,
};

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;

pub(super) fn story_id(text: &str) -> Result<StoryId> {
    Ok(StoryId::parse(text)?)
}

fn run_id(text: &str) -> Result<RunId> {
    Ok(RunId::parse(text)?)
}

/// `?limit=&offset=`, bounded.
fn paging(req: &Req) -> Result<(u32, u32)> {
    let limit = page_limit(req, DEFAULT_LIMIT, MAX_LIMIT)?;
    Ok((limit, query_number(req, "offset", 0, u32::MAX)?))
}

/// `?limit=`: from 1 to `max`, `default` when absent.
pub(super) fn page_limit(req: &Req, default: u32, max: u32) -> Result<u32> {
    match query_number(req, "limit", default, max)? {
        0 => Err(Error::validation(
            "limit",
            format!("must be from 1 to {max}"),
        )),
        limit => Ok(limit),
    }
}

/// The whole number in query parameter `name`, at most `max`; `default`
/// when absent or empty.
fn query_number(req: &Req, name: &str, default: u32, max: u32) -> Result<u32> {
    match req.query_param(name) {
        None | Some("") => Ok(default),
        Some(text) => match text.parse::<u32>() {
            Ok(n) if n <= max => Ok(n),
            _ => Err(Error::validation(
                name,
                format!(
                    "must be a whole number from 0 to {max}, got `{}`",
                    shorten(text)
                ),
            )),
        },
    }
}

fn shorten(text: &str) -> String {
    text.chars().take(64).collect()
}

/// A story as the API shows it: with its resolved chapter count and source,
/// and its usage.
fn story_json(app: &App, story: &Story) -> Value {
    let count = app.counts.for_story(story);
    let mut body = json!({
        "id": story.id,
        "title": story.title,
        "premise": story.premise,
        "outline": story.outline,
        "chapter_count": count.count,
        "chapter_count_source": count.source,
        "author": story.author,
        "language": story.language,
        "pov": story.pov,
        "tense": story.tense,
        "style": story.style,
        "target_words": story.target_words,
        "created_at": story.created_at,
        "updated_at": story.updated_at,
    });
    body["usage"] = story_usage_json(app, &story.id);
    body
}

/// The story's usage totals (one read by primary key), null when they
/// cannot be read: no figure rather than a wrong one.
fn story_usage_json(app: &App, id: &StoryId) -> Value {
    match app.store.story_usage(id) {
        Ok(Some(usage)) => usage.to_json(&app.prices()),
        Ok(None) => Value::Null,
        Err(e) => {
            log::warn!("could not read the usage of story {id}: {e}");
            Value::Null
        }
    }
}

/// A saved story plus the outline problems the writer should know now,
/// not halfway through a run.
pub(super) fn saved_story_json(app: &App, story: &Story) -> Value {
    let mut body = story_json(app, story);
    body["warnings"] = json!(check_outline(&story.outline, story.chapter_count));
    body
}

pub fn health(app: &App) -> Result<Reply> {
    let report = super::health::health_summary(app)?;
    Ok(Reply::ok(&report))
}

pub fn metrics_json(app: &App) -> Result<Reply> {
    Ok(Reply::ok(&json!(app.metrics.snapshot(app.counts.len()))))
}

pub fn metrics_prometheus(app: &App) -> Result<Reply> {
    Ok(Reply::bytes(
        "text/plain; version=0.0.4",
        app.metrics.snapshot(app.counts.len()).prometheus(),
    ))
}

pub fn list_stories(req: &Req, app: &App) -> Result<Reply> {
    let (limit, offset) = paging(req)?;
    let stories = app.store.list_stories(limit, offset)?;
    let items: Vec<Value> = stories.iter().map(|s| story_json(app, s)).collect();
    Ok(Reply::ok(
        &json!({ "stories": items, "limit": limit, "offset": offset }),
    ))
}

pub fn create_story(req: &Req, app: &App) -> Result<Reply> {
    let new: NewStory = req.json()?;
    let story = app.store.create_story(&new)?;
    Ok(Reply::json(201, &saved_story_json(app, &story))
        .with_header("Location", format!("/api/stories/{}", story.id)))
}

pub fn get_story(app: &App, id: &str) -> Result<Reply> {
    let story = app.store.story(&story_id(id)?)?;
    Ok(Reply::ok(&story_json(app, &story)))
}

/// `POST /api/outline/preview`: the chapters an outline names, the chapter
/// count a story with it would get, and the warnings a save would answer.
/// Reads and stores nothing, so the page can call it on every pause in typing.
pub fn preview_outline(req: &Req, app: &App) -> Result<Reply> {
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Preview {
        outline: String,
        #[serde(default)]
        chapter_count: Option<u32>,
    }
    let preview: Preview = req.json()?;
    // Checked as a save would check them: a preview never accepts an outline
    // or a count that saving would then refuse.
    StoryPatch {
        outline: Some(preview.outline.clone()),
        chapter_count: Some(preview.chapter_count),
        ..StoryPatch::default()
    }
    .validate()?;
    let chapters = parse_outline(&preview.outline);
    let (count, source) = match (preview.chapter_count, chapters.len()) {
        (Some(explicit), _) => (explicit, CountSource::Explicit),
        (None, 0) => (app.counts.default_count(), CountSource::Default),
        (None, found) => (
            u32::try_from(found).unwrap_or(u32::MAX),
            CountSource::Outline,
        ),
    };
    let listed: Vec<Value> = chapters
        .iter()
        .map(|chapter| json!({ "number": chapter.number, "title": chapter.title }))
        .collect();
    Ok(Reply::ok(&json!({
        "chapters": listed,
        "chapter_count": count,
        "chapter_count_source": source,
        "warnings": check_outline(&preview.outline, preview.chapter_count),
    })))
}

pub fn update_story(req: &Req, app: &App, id: &str) -> Result<Reply> {
    let id = story_id(id)?;
    let patch: StoryPatch = req.json()?;
    let story = app.store.update_story(&id, &patch)?;
    app.counts.invalidate(&id);
    Ok(Reply::ok(&saved_story_json(app, &story)))
}

/// Moves a story to the trash; with `?purge=true`, deletes a story that is
/// in the trash for good, after a backup.
pub fn delete_story(req: &Req, app: &App, id: &str) -> Result<Reply> {
    let id = story_id(id)?;
    if flag(req, "purge")? {
        return super::history::purge(app, &id);
    }
    let cancelled = app.store.trash_story(&id)?;
    app.counts.invalidate(&id);
    log::info!("story {id} deleted with its runs and chapters ({cancelled} active runs cancelled)");
    Ok(Reply::no_content())
}

pub fn list_chapters(app: &App, id: &str) -> Result<Reply> {
    let id = story_id(id)?;
    app.store.story(&id)?;
    let qualities = app.store.chapter_qualities(&id)?;
    let chapters: Vec<Value> = app
        .store
        .chapters(&id)?
        .iter()
        .map(|chapter| chapter_json(chapter, qualities.get(&chapter.number)))
        .collect();
    Ok(Reply::ok(&json!({ "story_id": id, "chapters": chapters })))
}

/// A chapter as the API shows it: with the quality signals stored with its
/// current version (measured when it was saved).
fn chapter_json(chapter: &Chapter, quality: Option<&Quality>) -> Value {
    let mut body = json!(chapter);
    body["quality"] = json!(quality);
    body
}

pub fn export_story(req: &Req, app: &App, id: &str) -> Result<Reply> {
    let id = story_id(id)?;
    let format = match req.query_param("format") {
        None | Some("" | "markdown" | "md") => ExportFormat::Markdown,
        Some("epub") => ExportFormat::Epub,
        Some(other) => {
            return Err(Error::validation(
                "format",
                format!("must be markdown or epub, got `{}`", shorten(other)),
            ));
        }
    };
    let story = app.store.story(&id)?;
    let chapters = app.store.chapters(&id)?;
    let stem = crate::export::file_stem(&story.title);
    Ok(match format {
        ExportFormat::Markdown => {
            Reply::bytes("text/markdown", crate::export::markdown(&story, &chapters)).with_header(
                "Content-Disposition",
                format!("inline; filename=\"{stem}.md\""),
            )
        }
        ExportFormat::Epub => Reply::bytes(
            "application/epub+zip",
            crate::export::epub(&story, &chapters)?,
        )
        .with_header(
            "Content-Disposition",
            format!("attachment; filename=\"{stem}.epub\""),
        ),
    })
}

enum ExportFormat {
    Markdown,
    Epub,
}

pub(super) fn chapter_number(text: &str) -> Result<u32> {
    match text.parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(Error::BadRequest(format!(
            "`{}` is not a chapter number (1, 2, 3, …)",
            shorten(text)
        ))),
    }
}

pub fn get_chapter(app: &App, id: &str, number: &str) -> Result<Reply> {
    let (id, number) = (story_id(id)?, chapter_number(number)?);
    let chapter = app.store.chapter(&id, number)?;
    let quality = app.store.chapter_quality(&id, number)?;
    let mut body = chapter_json(&chapter, Some(&quality));
    body["usage"] = app.store.chapter_usage(&id, number)?.to_json(&app.prices());
    Ok(Reply::ok(&body))
}

pub fn edit_chapter(req: &Req, app: &App, id: &str, number: &str) -> Result<Reply> {
    let (id, number) = (story_id(id)?, chapter_number(number)?);
    let edit: ChapterEdit = req.json()?;
    let chapter = app.store.update_chapter(&id, number, &edit)?;
    // The signals were measured with the save: the writer sees them at once.
    let quality = app.store.chapter_quality(&id, number)?;
    Ok(Reply::ok(&chapter_json(&chapter, Some(&quality))))
}

pub fn regenerate_chapter(req: &Req, app: &App, id: &str, number: &str) -> Result<Reply> {
    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Regenerate {}
    let (id, number) = (story_id(id)?, chapter_number(number)?);
    let _: Regenerate = req.json_or_default()?;
    let run = app.start_run(&id, RunScope::Rewrite(number))?;
    Ok(Reply::json(202, &run.to_json(&app.prices()))
        .with_header("Location", format!("/api/runs/{}", run.id)))
}

pub fn list_story_runs(req: &Req, app: &App, id: &str) -> Result<Reply> {
    let id = story_id(id)?;
    app.store.story(&id)?;
    let (limit, offset) = paging(req)?;
    let runs = app.store.list_runs(&RunFilter {
        story_id: Some(id),
        status: None,
        limit,
        offset,
    })?;
    Ok(Reply::ok(
        &json!({ "runs": runs.iter().map(|r| r.to_json(&app.prices())).collect::<Vec<_>>() }),
    ))
}

pub fn start_run(req: &Req, app: &App, id: &str) -> Result<Reply> {
    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct StartRun {
        /// Stop after this chapter; a later run continues from there.
        until_chapter: Option<u32>,
    }
    let id = story_id(id)?;
    let body: StartRun = req.json_or_default()?;
    let scope = body.until_chapter.map_or(RunScope::Book, RunScope::Until);
    let run = app.start_run(&id, scope)?;
    Ok(Reply::json(202, &run.to_json(&app.prices()))
        .with_header("Location", format!("/api/runs/{}", run.id)))
}

pub fn list_runs(req: &Req, app: &App) -> Result<Reply> {
    let (limit, offset) = paging(req)?;
    let status = match req.query_param("status") {
        None | Some("") => None,
        Some(text) => Some(
            text.parse::<RunStatus>()
                .map_err(|e| Error::validation("status", shorten(&e)))?,
        ),
    };
    let story_id = match req.query_param("story_id") {
        None | Some("") => None,
        Some(text) => {
            Some(StoryId::parse(text).map_err(|e| Error::validation("story_id", e.to_string()))?)
        }
    };
    let runs = app.store.list_runs(&RunFilter {
        status,
        story_id,
        limit,
        offset,
    })?;
    Ok(Reply::ok(&json!({
        "runs": runs.iter().map(|r| r.to_json(&app.prices())).collect::<Vec<_>>(),
        "limit": limit,
        "offset": offset,
    })))
}

pub fn get_run(app: &App, id: &str) -> Result<Reply> {
    Ok(Reply::ok(
        &app.store.run(&run_id(id)?)?.to_json(&app.prices()),
    ))
}

pub fn run_events(app: &App, id: &str) -> Result<Reply> {
    let id = run_id(id)?;
    app.store.run(&id)?;
    Ok(Reply::ok(
        &json!({ "run_id": id, "events": app.store.events(&id)? }),
    ))
}

pub fn cancel_run(app: &App, id: &str) -> Result<Reply> {
    Ok(Reply::ok(
        &app.store.cancel_run(&run_id(id)?)?.to_json(&app.prices()),
    ))
}

pub fn retry_run(app: &App, id: &str) -> Result<Reply> {
    Ok(Reply::json(
        202,
        &app.retry_run(&run_id(id)?)?.to_json(&app.prices()),
    ))
}

pub fn report_progress(req: &Req, app: &App, id: &str) -> Result<Reply> {
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Progress {
        chapters_done: u32,
        #[serde(default)]
        step: Option<String>,
    }
    let id = run_id(id)?;
    let progress: Progress = req.json()?;
    if let Some(step) = &progress.step
        && step.chars().count() > 200
    {
        return Err(Error::validation(
            "step",
            "is longer than the limit of 200 characters",
        ));
    }
    let body = match app
        .tracker
        .report(&id, progress.chapters_done, progress.step.as_deref())?
    {
        ProgressOutcome::Applied => json!({ "applied": true }),
        ProgressOutcome::Skipped(reason) => json!({ "applied": false, "reason": reason }),
    };
    Ok(Reply::ok(&body))
}

pub fn diagnose_run(app: &App, id: &str) -> Result<Reply> {
    let report = maintenance::diagnose_run(app, &run_id(id)?, true)?;
    Ok(Reply::ok(&json!(report)))
}

pub fn diagnose_story(app: &App, id: &str) -> Result<Reply> {
    let report = maintenance::diagnose_story(app, &story_id(id)?)?;
    Ok(Reply::ok(&json!(report)))
}

pub fn orphans(app: &App) -> Result<Reply> {
    let orphans = app.store.orphaned_runs()?;
    Ok(Reply::ok(
        &json!({ "count": orphans.len(), "runs": orphans }),
    ))
}

fn flag(req: &Req, name: &str) -> Result<bool> {
    match req.query_param(name) {
        None => Ok(false),
        Some("" | "true" | "1" | "yes") => Ok(true),
        Some("false" | "0" | "no") => Ok(false),
        Some(other) => Err(Error::validation(
            name,
            format!("must be true or false, got `{}`", shorten(other)),
        )),
    }
}

pub fn health_check(req: &Req, app: &App, may_fix: bool) -> Result<Reply> {
    let fix = flag(req, "fix")?;
    if fix && !may_fix {
        return Err(Error::BadRequest(
            "fixing changes the database: use POST /api/maintenance/health?fix=true".into(),
        ));
    }
    let full = flag(req, "full")?;
    let report = maintenance::health_check(app, maintenance::HealthOptions { fix, full })?;
    Ok(Reply::ok(&json!(report)))
}

pub fn fix_orphans(req: &Req, app: &App) -> Result<Reply> {
    let dry_run = flag(req, "dry_run")?;
    let report = maintenance::fix_orphans(app, dry_run)?;
    Ok(Reply::ok(&json!(report)))
}
