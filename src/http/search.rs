//! `GET /api/search?q=TEXT[&story_id=]`: the chapters that hold the
//! writer's words (the query and ranking live in `store::search`).

use serde_json::json;

use super::{Reply, Req};
use crate::app::App;
use crate::error::{Error, Result};
use crate::run::StoryId;
use crate::store::MAX_SEARCH_HITS;

/// 200 `{"hits": [...]}`, best first, at most 50. A missing or blank `q` is
/// a 422; a `story_id` of a story that does not exist (or is in the trash)
/// is a 404, as on every story route, rather than an empty list that would
/// look like "no match".
pub fn search(req: &Req, app: &App) -> Result<Reply> {
    let query = req.query_param("q").unwrap_or("");
    let story = match req.query_param("story_id") {
        None | Some("") => None,
        Some(text) => {
            let id =
                StoryId::parse(text).map_err(|e| Error::validation("story_id", e.to_string()))?;
            Some(app.store.story(&id)?.id)
        }
    };
    let hits = app.store.search(query, story.as_ref(), MAX_SEARCH_HITS)?;
    Ok(Reply::ok(&json!({ "hits": hits })))
}
