//! The shortest path through storyflow: serve, create, generate, export.

use std::time::Duration;

use crate::util::{Api, Server, create_story, id_of, outline};
use serde_json::json;

#[test]
fn a_twelve_chapter_outline_is_written_end_to_end_by_builtin() {
    let server = Server::start(&[]);
    let story = create_story(
        &server,
        json!({"title": "The Salt Road", "premise": "A courier crosses a drowned country.", "outline": outline(12)}),
    );
    assert_eq!(story["chapter_count"], 12);
    assert_eq!(story["chapter_count_source"], "outline");
    let id = &id_of(&story);
    let run = server.start_run(id, None);
    let run = server.wait_for_run(&id_of(&run), "completed", Duration::from_secs(30));
    assert_eq!(run["progress"], 100);
    assert_eq!(run["chapters_done"], 12);
    assert_eq!(server.chapter_numbers(id), (1..=12).collect::<Vec<u64>>());
    let export = server.get(&format!("/api/stories/{id}/export"));
    assert!(
        export
            .header("content-type")
            .unwrap()
            .starts_with("text/markdown")
    );
    for i in 1..=12 {
        assert!(
            export.text().contains(&format!("## Chapter {i}: Beat {i}")),
            "chapter {i} missing from export"
        );
    }
    assert!(
        server
            .log_text()
            .contains("Story context loaded successfully")
    );
}

/// The page names its scripts with the build's asset version; those URLs
/// are cached for good, while the page itself, an unversioned asset and the
/// API are never cached.
#[test]
fn versioned_assets_are_cached_and_the_page_and_api_are_not() {
    let server = Server::start(&[]);
    let page = server.get("/");
    assert_eq!(page.header("Cache-Control"), Some("no-store"));
    let html = page.text();
    let start = html
        .find("/assets/core.js?v=")
        .expect("a versioned script URL");
    let url = &html[start..start + html[start..].find('"').expect("a closing quote")];
    let script = server.get(url);
    assert_eq!(script.status, 200);
    assert_eq!(
        script.header("Cache-Control"),
        Some("public, max-age=31536000, immutable")
    );
    let unversioned = server.get("/assets/core.js");
    assert_eq!(unversioned.text(), script.text());
    assert_eq!(unversioned.header("Cache-Control"), Some("no-store"));
    assert_eq!(
        server
            .get("/assets/core.js?v=0123456789abcdef")
            .header("Cache-Control"),
        Some("no-store")
    );
    assert_eq!(
        server.get("/api/health").header("Cache-Control"),
        Some("no-store")
    );
}
