//! `GET /api/search?q=TEXT[&story_id=]`: the chapters that hold the
//! writer's words (the query and ranking live in `store::search`).

use serde_json::json;

use super::{Reply, Req};
use crate::app::App;
use crate::error::{Error, Result};
use crate::run::StoryId;
use crate::store::MAX_SEARCH_HITS;

/// How many hits a search answers when `limit` is not given: a screen of
/// them. Each hit's snippet reads its chapter's text, so a page of 20
/// rather than [`MAX_SEARCH_HITS`] keeps a common word's search fast on a
/// large library (`cargo bench --bench search`).
pub const DEFAULT_SEARCH_HITS: u32 = 20;

/// 200 `{"hits": [...]}`, best first, `?limit=` of them (default
/// [`DEFAULT_SEARCH_HITS`], at most [`MAX_SEARCH_HITS`]). A missing or blank `q` is
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
    let limit = super::handlers::page_limit(req, DEFAULT_SEARCH_HITS, MAX_SEARCH_HITS)?;
    let hits = app.store.search(query, story.as_ref(), limit)?;
    Ok(Reply::ok(&json!({ "hits": hits })))
}
