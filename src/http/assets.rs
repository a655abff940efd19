//! The status page and the OpenAPI document, compiled into the binary: the
//! binary alone serves them, and no request path reaches the file system.
//!
//! The page names its scripts and styles with this build's asset version
//! (`/assets/core.js?v=…`, a hash of every asset), and an asset asked for
//! with that version is served as immutable for a year: a page opened again
//! parses no script it has already compiled, and a new build's page names
//! new URLs, so a stale copy is never used. The page itself, an asset asked
//! for without the version, and the API stay `no-store`.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::OnceLock;

use super::Reply;
use crate::error::{Error, Result};

const INDEX_HTML: &str = include_str!("../../static/index.html");
const OPENAPI_JSON: &str = include_str!("../../static/openapi.json");

/// Every asset the page loads: `/assets/NAME` serves its text.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "core.js",
        "text/javascript",
        include_str!("../../static/core.js"),
    ),
    (
        "system.js",
        "text/javascript",
        include_str!("../../static/system.js"),
    ),
    (
        "stories.js",
        "text/javascript",
        include_str!("../../static/stories.js"),
    ),
    (
        "story.js",
        "text/javascript",
        include_str!("../../static/story.js"),
    ),
    (
        "history.js",
        "text/javascript",
        include_str!("../../static/history.js"),
    ),
    (
        "run.js",
        "text/javascript",
        include_str!("../../static/run.js"),
    ),
    (
        "settings.js",
        "text/javascript",
        include_str!("../../static/settings.js"),
    ),
    (
        "search.js",
        "text/javascript",
        include_str!("../../static/search.js"),
    ),
    (
        "preferences.js",
        "text/javascript",
        include_str!("../../static/preferences.js"),
    ),
    (
        "bible.js",
        "text/javascript",
        include_str!("../../static/bible.js"),
    ),
    (
        "app.js",
        "text/javascript",
        include_str!("../../static/app.js"),
    ),
    (
        "style.css",
        "text/css",
        include_str!("../../static/style.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("../../static/favicon.svg"),
    ),
];

/// How long a versioned asset may be cached: a year, as immutable.
const VERSIONED_CACHE: &str = "public, max-age=31536000, immutable";

/// This build's asset version: a hash of every asset's text.
fn version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let mut hasher = DefaultHasher::new();
        ASSETS.hash(&mut hasher);
        format!("{:016x}", hasher.finish())
    })
}

/// The page, its asset URLs carrying this build's version.
pub fn index() -> Reply {
    static PAGE: OnceLock<String> = OnceLock::new();
    let page = PAGE.get_or_init(|| versioned_urls(INDEX_HTML, version()));
    Reply::bytes("text/html", page.as_str())
}

/// `html` with every `"/assets/NAME"` attribute value given `?v=VERSION`.
fn versioned_urls(html: &str, version: &str) -> String {
    let mut out = String::with_capacity(html.len() + 32 * ASSETS.len());
    let mut rest = html;
    while let Some(at) = rest.find("\"/assets/") {
        let start = at + 1;
        let Some(len) = rest[start..].find('"') else {
            break;
        };
        out.push_str(&rest[..start + len]);
        out.push_str("?v=");
        out.push_str(version);
        rest = &rest[start + len..];
    }
    out.push_str(rest);
    out
}

/// An asset; cached for good when asked for with this build's version.
pub fn asset(name: &str, asked_version: Option<&str>) -> Result<Reply> {
    let Some((_, content_type, text)) = ASSETS.iter().find(|(file, _, _)| *file == name) else {
        return Err(Error::NotFound {
            method: "GET".into(),
            path: format!("/assets/{}", name.chars().take(100).collect::<String>()),
        });
    };
    let reply = Reply::bytes(*content_type, *text);
    Ok(if asked_version == Some(version()) {
        reply.with_header("Cache-Control", VERSIONED_CACHE)
    } else {
        reply
    })
}

pub fn openapi() -> Reply {
    Reply::bytes("application/json", OPENAPI_JSON)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache_control(reply: &Reply) -> Option<&str> {
        reply
            .headers
            .iter()
            .find(|(name, _)| *name == "Cache-Control")
            .map(|(_, value)| value.as_str())
    }

    #[test]
    fn the_page_names_every_asset_with_this_builds_version() {
        let page = String::from_utf8(index().body).unwrap();
        for (file, _, _) in ASSETS.iter().filter(|(file, _, _)| page.contains(*file)) {
            assert!(
                page.contains(&format!("\"/assets/{file}?v={}\"", version())),
                "{file}"
            );
        }
        assert!(
            !page.contains("/assets/core.js\""),
            "an unversioned URL is left"
        );
        assert_eq!(
            versioned_urls(r#"<a href="/assets/x.js">"#, "abc"),
            r#"<a href="/assets/x.js?v=abc">"#
        );
    }

    #[test]
    fn only_an_asset_asked_for_with_this_version_is_cached() {
        let current = asset("core.js", Some(version())).unwrap();
        assert_eq!(cache_control(&current), Some(VERSIONED_CACHE));
        for asked in [None, Some("0000000000000000")] {
            let reply = asset("core.js", asked).unwrap();
            assert_eq!(
                cache_control(&reply),
                None,
                "{asked:?}: the default no-store applies"
            );
        }
        assert!(asset("nope.js", Some(version())).is_err());
    }
}
