//! The status page and the OpenAPI document, compiled into the binary: the
//! binary alone serves them, and no request path reaches the file system.

use super::Reply;
use crate::error::{Error, Result};

const INDEX_HTML: &str = include_str!("../../static/index.html");
const CORE_JS: &str = include_str!("../../static/core.js");
const SYSTEM_JS: &str = include_str!("../../static/system.js");
const STORIES_JS: &str = include_str!("../../static/stories.js");
const STORY_JS: &str = include_str!("../../static/story.js");
const HISTORY_JS: &str = include_str!("../../static/history.js");
const RUN_JS: &str = include_str!("../../static/run.js");
const SETTINGS_JS: &str = include_str!("../../static/settings.js");
const SEARCH_JS: &str = include_str!("../../static/search.js");
const PREFERENCES_JS: &str = include_str!("../../static/preferences.js");
const BIBLE_JS: &str = include_str!("../../static/bible.js");
const APP_JS: &str = include_str!("../../static/app.js");
const STYLE_CSS: &str = include_str!("../../static/style.css");
const FAVICON_SVG: &str = include_str!("../../static/favicon.svg");
const OPENAPI_JSON: &str = include_str!("../../static/openapi.json");

pub fn index() -> Reply {
    Reply::bytes("text/html", INDEX_HTML)
}

pub fn asset(name: &str) -> Result<Reply> {
    match name {
        "core.js" => Ok(Reply::bytes("text/javascript", CORE_JS)),
        "system.js" => Ok(Reply::bytes("text/javascript", SYSTEM_JS)),
        "stories.js" => Ok(Reply::bytes("text/javascript", STORIES_JS)),
        "story.js" => Ok(Reply::bytes("text/javascript", STORY_JS)),
        "history.js" => Ok(Reply::bytes("text/javascript", HISTORY_JS)),
        "run.js" => Ok(Reply::bytes("text/javascript", RUN_JS)),
        "settings.js" => Ok(Reply::bytes("text/javascript", SETTINGS_JS)),
        "search.js" => Ok(Reply::bytes("text/javascript", SEARCH_JS)),
        "preferences.js" => Ok(Reply::bytes("text/javascript", PREFERENCES_JS)),
        "bible.js" => Ok(Reply::bytes("text/javascript", BIBLE_JS)),
        "app.js" => Ok(Reply::bytes("text/javascript", APP_JS)),
        "style.css" => Ok(Reply::bytes("text/css", STYLE_CSS)),
        "favicon.svg" => Ok(Reply::bytes("image/svg+xml", FAVICON_SVG)),
        _ => Err(Error::NotFound {
            method: "GET".into(),
            path: format!("/assets/{}", name.chars().take(100).collect::<String>()),
        }),
    }
}

pub fn openapi() -> Reply {
    Reply::bytes("application/json", OPENAPI_JSON)
}
