//! The story bible's routes: `GET|POST /api/stories/{id}/bible` and
//! `PATCH|DELETE /api/stories/{id}/bible/{entry}` (the rules live in
//! `store::bible`).
//!
//! A list answers `{"entries": [...]}` in the order they were added; a
//! create answers 201 with the entry and its `Location`; a patch the entry;
//! a delete 204. A story in the trash has no bible here (404), as on its
//! other routes.

use serde_json::json;

use super::handlers::story_id;
use super::{Reply, Req};
use crate::app::App;
use crate::error::Result;
use crate::store::{BibleEntryId, BiblePatch, NewBibleEntry};

fn entry_id(text: &str) -> Result<BibleEntryId> {
    Ok(BibleEntryId::parse(text)?)
}

pub fn list(app: &App, id: &str) -> Result<Reply> {
    let entries = app.store.bible(&story_id(id)?)?;
    Ok(Reply::ok(&json!({ "entries": entries })))
}

pub fn create(req: &Req, app: &App, id: &str) -> Result<Reply> {
    let story = story_id(id)?;
    let new: NewBibleEntry = req.json()?;
    let entry = app.store.add_bible_entry(&story, &new)?;
    Ok(Reply::json(201, &json!(entry)).with_header(
        "Location",
        format!("/api/stories/{story}/bible/{}", entry.id),
    ))
}

pub fn update(req: &Req, app: &App, id: &str, entry: &str) -> Result<Reply> {
    let story = story_id(id)?;
    let entry = entry_id(entry)?;
    let patch: BiblePatch = req.json()?;
    Ok(Reply::ok(&json!(
        app.store.update_bible_entry(&story, &entry, &patch)?
    )))
}

pub fn delete(app: &App, id: &str, entry: &str) -> Result<Reply> {
    let story = story_id(id)?;
    app.store.delete_bible_entry(&story, &entry_id(entry)?)?;
    Ok(Reply::no_content())
}
