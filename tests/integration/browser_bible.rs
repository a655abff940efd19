//! The story bible and search on the page, in headless Chromium: the bible
//! editor of the story view adds, edits, pins and removes an entry (and the API
//! agrees), and a search from the stories view opens the right story at the
//! right chapter, or at its bible for an entry. Same browser helpers and
//! rules as [`crate::browser`]: wait for what a writer would see.

use serde_json::{Value, json};

use crate::browser::{Browser, WAIT, assert_quiet_console};
use crate::util::{Api, Server, create_story, id_of, outline};

/// Puts `value` into a form field as typing would, with the input event.
fn fill(browser: &Browser, css: &str, value: &str) {
    browser.wait_visible(css);
    browser.js(
        "const el = document.querySelector(arguments[0]); el.value = arguments[1]; \
         el.dispatchEvent(new Event('input', { bubbles: true }));",
        json!([css, value]),
    );
}

fn bible(server: &Server, story: &str) -> Vec<Value> {
    server.get(&format!("/api/stories/{story}/bible")).json()["entries"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Whether the element's top is inside the window (scrolled to).
fn in_view(browser: &Browser, css: &str) -> bool {
    browser.js(
        "const el = document.querySelector(arguments[0]); if (!el) return false; \
         const r = el.getBoundingClientRect(); \
         return r.top >= -2 && r.top < window.innerHeight / 2;",
        json!([css]),
    ) == true
}

#[test]
fn the_bible_editor_adds_edits_pins_and_removes_an_entry() {
    let server = Server::start(&["--workers", "0"]);
    let story = id_of(&create_story(&server, json!({"title": "Tide"})));
    let browser = Browser::open(&server);
    browser.goto(&format!("/#story/{story}"));
    browser.wait_text("#bible .bible-status", "No entries yet");

    browser.click("#bible-add");
    browser.js(
        "document.querySelector('#bible-kind').value = 'place';",
        json!([]),
    );
    fill(&browser, "#bible-name", "Greywater");
    fill(&browser, "#bible-aliases", "the drowned town, Grey");
    fill(&browser, "#bible-description", "A town under the bay.");
    browser.click("#bible-save");

    let entry = "#bible-list .bible-entry";
    browser.wait_text(entry, "Greywater");
    browser.wait_text(entry, "also: the drowned town, Grey");
    browser.wait_text(&format!("{entry} .bible-kind"), "place");
    browser.wait_gone("#bible-form");
    let stored = bible(&server, &story);
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0]["name"], "Greywater");
    assert_eq!(stored[0]["kind"], "place");
    assert_eq!(stored[0]["aliases"], json!(["the drowned town", "Grey"]));
    assert_eq!(stored[0]["description"], "A town under the bay.");
    assert_eq!(stored[0]["pinned"], false);

    browser.click(&format!("{entry} .bible-edit"));
    fill(
        &browser,
        "#bible-description",
        "A town under the bay; bells at low tide.",
    );
    browser.click("#bible-save");
    browser.wait_text(entry, "bells at low tide");
    assert_eq!(
        bible(&server, &story)[0]["description"],
        "A town under the bay; bells at low tide."
    );

    browser.click(&format!("{entry} .bible-pin"));
    browser.wait_text(&format!("{entry} .bible-pinned"), "pinned");
    assert_eq!(bible(&server, &story)[0]["pinned"], true);

    // An empty name is refused in words, and the form stays to fix it.
    browser.click("#bible-add");
    browser.click("#bible-save");
    browser.wait_text("#bible-form-error", "VALIDATION_FAILED");
    browser.click("#bible-form .btn.ghost");
    browser.wait_gone("#bible-form");

    browser.click(&format!("{entry} .bible-remove"));
    browser.click("#confirm-ok");
    browser.wait_gone(entry);
    assert!(bible(&server, &story).is_empty());
    crate::browser::assert_quiet_console_except(&browser, &["422"]);
}

#[test]
fn a_search_opens_the_right_story_at_the_right_chapter() {
    let server = Server::start(&[]);
    let other = id_of(&create_story(
        &server,
        json!({"title": "The Ferry", "outline": outline(2)}),
    ));
    let story = id_of(&create_story(
        &server,
        json!({"title": "The Lamp", "outline": outline(9)}),
    ));
    for id in [&other, &story] {
        let run = id_of(&server.start_run(id, None));
        server.wait_for_run(&run, "completed", WAIT);
    }
    // Long enough that chapter 7 starts well below the first screen.
    let text = format!(
        "{}At dawn the keeper found a brass astrolabe by the pier.",
        "The fog lay on the water and nobody spoke of it. ".repeat(40)
    );
    let resp = server.patch(
        &format!("/api/stories/{story}/chapters/7"),
        &json!({"content": text}),
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    let resp = server.post(
        &format!("/api/stories/{other}/bible"),
        &json!({"kind": "object", "name": "The Sextant", "description": "Points at drowned towns."}),
    );
    assert_eq!(resp.status, 201, "{}", resp.text());

    let browser = Browser::open(&server);
    browser.goto("/");
    fill(&browser, "#search-input", "astrolabe");
    browser.click("#search-submit");
    browser.wait_text("#search-status", "1 match found");
    let chapter_hit = "#search-results .search-hit .search-hit-link";
    browser.wait_text(chapter_hit, "The Lamp · Chapter 7");
    browser.click(chapter_hit);

    browser.wait_text("#view-story .detail-title", "The Lamp");
    assert_eq!(
        browser.js("return location.hash;", json!([])),
        format!("#story/{story}")
    );
    browser.wait("chapter 7 scrolled into view", |b| {
        in_view(b, "#chapter-7").then_some(())
    });
    browser.wait_text("#chapter-7", "brass astrolabe");

    // A bible entry's hit opens its story at the bible.
    browser.goto("/");
    fill(&browser, "#search-input", "sextant");
    browser.click("#search-submit");
    let bible_hit = "#search-results .search-hit .search-hit-link";
    browser.wait_text(bible_hit, "The Ferry · Bible: The Sextant");
    browser.click(bible_hit);
    browser.wait_text("#view-story .detail-title", "The Ferry");
    browser.wait_text("#bible-list", "The Sextant");
    assert_quiet_console(&browser);
}
