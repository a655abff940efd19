//! Handlers for what keeps the writer's work safe: chapter versions, diffs,
//! restore, roll-back, the trash and manuscript import.

use serde::Deserialize;
use serde_json::json;

use super::handlers::{chapter_number, story_id};
use super::{Reply, Req};
use crate::app::App;
use crate::backup::BackupReason;
use crate::error::{Error, Result};
use crate::run::StoryId;
use crate::store::StoryPlace;

pub fn chapter_versions(app: &App, id: &str, number: &str) -> Result<Reply> {
    let versions = app
        .store
        .chapter_versions(&story_id(id)?, chapter_number(number)?)?;
    Ok(Reply::ok(&json!({ "versions": versions })))
}

fn version_number(text: &str) -> Result<u32> {
    match text.parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(Error::BadRequest(format!(
            "`{}` is not a version number (1, 2, 3, …)",
            text.chars().take(64).collect::<String>()
        ))),
    }
}

pub fn chapter_version(app: &App, id: &str, number: &str, version: &str) -> Result<Reply> {
    let version = app.store.chapter_version(
        &story_id(id)?,
        chapter_number(number)?,
        version_number(version)?,
    )?;
    Ok(Reply::ok(&json!(version)))
}

/// `?against=W`: the diff from version W to version V (default: the version
/// before V).
pub fn version_diff(req: &Req, app: &App, id: &str, number: &str, version: &str) -> Result<Reply> {
    let (id, number, version) = (
        story_id(id)?,
        chapter_number(number)?,
        version_number(version)?,
    );
    let against = match req.query_param("against") {
        None | Some("") => version.checked_sub(1).filter(|v| *v >= 1).ok_or_else(|| {
            Error::validation(
                "against",
                "version 1 has no earlier version; name one with ?against=",
            )
        })?,
        Some(text) => version_number(text)
            .map_err(|_| Error::validation("against", "must be a version number"))?,
    };
    let old = app.store.chapter_version(&id, number, against)?;
    let new = app.store.chapter_version(&id, number, version)?;
    let diff = crate::diff::word_diff(&old.content, &new.content);
    Ok(Reply::ok(&json!({
        "story_id": id,
        "chapter": number,
        "from": against,
        "to": version,
        "title_changed": old.title != new.title,
        "words_deleted": diff.words_deleted,
        "words_inserted": diff.words_inserted,
        "parts": diff.parts,
    })))
}

pub fn restore_version(app: &App, id: &str, number: &str, version: &str) -> Result<Reply> {
    let id = story_id(id)?;
    let chapter =
        app.store
            .restore_version(&id, chapter_number(number)?, version_number(version)?)?;
    Ok(Reply::ok(&json!(chapter)))
}

pub fn roll_back(req: &Req, app: &App, id: &str) -> Result<Reply> {
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct RollBackTo {
        to_chapter: u32,
    }
    let id = story_id(id)?;
    let body: RollBackTo = req.json()?;
    let rolled = app.store.roll_back_story(&id, body.to_chapter)?;
    app.counts.invalidate(&id);
    Ok(Reply::ok(&json!(rolled)))
}

pub fn trash(app: &App) -> Result<Reply> {
    Ok(Reply::ok(&json!({ "stories": app.store.trash()? })))
}

pub fn restore_from_trash(app: &App, id: &str) -> Result<Reply> {
    let id = story_id(id)?;
    let story = app.store.restore_story(&id)?;
    app.counts.invalidate(&id);
    Ok(Reply::ok(&json!(story)))
}

/// `DELETE /api/stories/{id}?purge=true`: a story in the trash deleted for
/// good, after a backup (whose path the answer gives).
pub(super) fn purge(app: &App, id: &StoryId) -> Result<Reply> {
    if app.store.story_place(id)? != StoryPlace::Trash {
        // The store refuses too; saying so before the backup spares one.
        app.store.purge_story(id)?;
    }
    let backup = app.backup_before(BackupReason::Purge)?;
    let purged = app.store.purge_story(id)?;
    app.counts.invalidate(id);
    log::info!("story {id} purged from the trash; backup {backup}");
    Ok(Reply::ok(
        &json!({ "story_id": id, "purged": purged, "backup": backup }),
    ))
}

pub fn backups(app: &App) -> Result<Reply> {
    let files = crate::backup::list_backups(&app.backup_policy.dir)?;
    Ok(Reply::ok(
        &json!({ "status": app.backups.status(), "backups": files }),
    ))
}
