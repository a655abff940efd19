//! `POST /api/stories/import`: a manuscript in, a story with its chapters
//! out (the splitting lives in [`crate::import`]).

use serde_json::json;

use super::handlers::saved_story_json;
use super::{Reply, Req};
use crate::app::App;
use crate::error::Result;
use crate::import::{ImportRequest, import_manuscript};

/// 201 `{story, chapters_imported}`; nothing is saved when the manuscript
/// is refused.
pub fn import_story(req: &Req, app: &App) -> Result<Reply> {
    let request: ImportRequest = req.json()?;
    let imported = import_manuscript(&app.store, request)?;
    let story = &imported.story;
    log::info!(
        "story {} imported with {} chapters",
        story.id,
        imported.chapters_imported
    );
    Ok(Reply::json(
        201,
        &json!({
            "story": saved_story_json(app, story),
            "chapters_imported": imported.chapters_imported,
        }),
    )
    .with_header("Location", format!("/api/stories/{}", story.id)))
}
