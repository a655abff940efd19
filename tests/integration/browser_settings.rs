//! A story's settings on the page, in headless Chromium, and the route
//! behind its live outline preview (`POST /api/outline/preview`, in
//! process): editing the outline shows the chapters as parsed and the
//! warnings a save would give; saving the settings changes the stored
//! story. Same browser helpers and rules as [`crate::browser`]: wait for
//! what a writer would see, never sleep and assume.

use crate::browser::{Browser, assert_quiet_console};
use crate::util::{Api, InProcess, Server, assert_error, create_story, id_of};
use serde_json::{Value, json};

const OUTLINE: &str = "## Chapter 1: Arrival\n## Chapter 2: The Storm\n## Chapter 3: The Letter\n";

/// Puts `text` into a form field as typing would, with the input event.
fn type_into(browser: &Browser, css: &str, text: &str) {
    browser.wait_visible(css);
    browser.js(
        "const el = document.querySelector(arguments[0]); el.value = arguments[1]; \
         el.dispatchEvent(new Event('input', { bubbles: true }));",
        json!([css, text]),
    );
}

fn preview(api: &impl Api, body: Value) -> Value {
    let resp = api.post("/api/outline/preview", &body);
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.json()
}

#[test]
fn the_preview_route_parses_an_outline_without_storing_anything() {
    let server = InProcess::new();
    let parsed = preview(&server, json!({ "outline": OUTLINE }));
    assert_eq!(
        parsed["chapters"],
        json!([
            {"number": 1, "title": "Arrival"},
            {"number": 2, "title": "The Storm"},
            {"number": 3, "title": "The Letter"},
        ])
    );
    assert_eq!(parsed["chapter_count"], 3);
    assert_eq!(parsed["chapter_count_source"], "outline");
    assert_eq!(parsed["warnings"], json!([]));

    // An explicit count wins, and the outline's disagreement is a warning.
    let explicit = preview(&server, json!({ "outline": OUTLINE, "chapter_count": 5 }));
    assert_eq!(explicit["chapter_count"], 5);
    assert_eq!(explicit["chapter_count_source"], "explicit");
    assert_eq!(explicit["warnings"].as_array().map(Vec::len), Some(1));

    let prose = preview(&server, json!({ "outline": "Just some prose." }));
    assert_eq!(prose["chapters"], json!([]));
    assert_eq!(prose["chapter_count_source"], "default");
    assert!(
        prose["warnings"][0]
            .as_str()
            .is_some_and(|w| w.starts_with("no chapter found")),
        "{prose}"
    );

    let too_long = "x".repeat(200_001);
    let resp = server.post("/api/outline/preview", &json!({ "outline": too_long }));
    let error = assert_error(&resp, 422, "VALIDATION_FAILED");
    assert_eq!(error["details"]["field"], "outline", "{error}");
    let resp = server.post(
        "/api/outline/preview",
        &json!({ "outline": OUTLINE, "chapter_count": 0 }),
    );
    assert_error(&resp, 422, "VALIDATION_FAILED");
    let resp = server.post("/api/outline/preview", &json!({ "outlines": OUTLINE }));
    assert_error(&resp, 422, "VALIDATION_FAILED");

    let stories = server.get("/api/stories").json();
    assert_eq!(stories["stories"], json!([]), "a preview stores nothing");
}

fn open_settings(server: &Server) -> (Browser, String) {
    let story = create_story(
        server,
        json!({"title": "The Salt Road", "premise": "A drowned country."}),
    );
    let id = id_of(&story);
    let browser = Browser::open(server);
    browser.goto(&format!("/#story/{id}"));
    browser.wait_text("#view-story .detail-title", "The Salt Road");
    browser.click("#story-settings > summary");
    browser.wait_visible("#settings-outline");
    (browser, id)
}

#[test]
fn editing_the_outline_shows_its_chapters_as_parsed() {
    let server = Server::start(&["--workers", "0"]);
    let (browser, _) = open_settings(&server);
    type_into(&browser, "#settings-outline", OUTLINE);
    browser.wait_text("#settings-outline-preview .preview-chapters", "1. Arrival");
    let listed = browser.wait_text(
        "#settings-outline-preview .preview-chapters",
        "3. The Letter",
    );
    assert!(listed.contains("2. The Storm"), "{listed}");
    browser.wait_text("#settings-outline-preview .preview-count", "3 chapters");
    assert!(!browser.exists("#settings-outline-preview .preview-warnings"));

    // The new-story form previews its outline the same way.
    browser.goto("/");
    browser.click("#btn-new-story");
    type_into(
        &browser,
        "#story-outline",
        "1. The Flood\n2. The Ferryman\n",
    );
    browser.wait_text(
        "#story-outline-preview .preview-chapters",
        "2. The Ferryman",
    );
    assert_quiet_console(&browser);
}

#[test]
fn an_outline_that_names_no_chapter_shows_a_warning() {
    let server = Server::start(&["--workers", "0"]);
    let (browser, _) = open_settings(&server);
    type_into(
        &browser,
        "#settings-outline",
        "A courier crosses a drowned country.",
    );
    browser.wait_text(
        "#settings-outline-preview .preview-warnings",
        "no chapter found",
    );
    browser.wait_text(
        "#settings-outline-preview .preview-empty",
        "No chapter found",
    );
    assert!(!browser.exists("#settings-outline-preview .preview-chapters"));
    assert_quiet_console(&browser);
}

#[test]
fn saving_the_settings_changes_the_story() {
    let server = Server::start(&["--workers", "0"]);
    let (browser, id) = open_settings(&server);
    browser.wait("the settings filled from the story", |b| {
        match b.js(
            "return document.querySelector('#settings-language').value;",
            json!([]),
        ) {
            Value::String(language) if language == "English" => Some(()),
            _ => None,
        }
    });
    type_into(&browser, "#settings-language", "French");
    type_into(&browser, "#settings-target-words", "900");
    browser.click("#settings-save");
    browser.wait_text("#notices", "Saved the settings");
    let story = server.get(&format!("/api/stories/{id}")).json();
    assert_eq!(story["language"], "French", "{story}");
    assert_eq!(story["target_words"], 900, "{story}");
    // Untouched fields keep what they had.
    assert_eq!(story["title"], "The Salt Road", "{story}");
    assert_eq!(story["premise"], "A drowned country.", "{story}");
    assert_quiet_console(&browser);
}

#[test]
fn unsaved_settings_ask_before_the_story_is_left() {
    let server = Server::start(&["--workers", "0"]);
    let (browser, id) = open_settings(&server);
    type_into(&browser, "#settings-tense", "present");

    browser.click("#view-story .back");
    browser.wait_visible("#confirm-dialog");
    browser.wait_text(
        "#confirm-title",
        "Discard your changes to the story settings?",
    );
    browser.click("#confirm-cancel");
    browser.wait("the dialog to close", |b| {
        (!b.visible("#confirm-dialog")).then_some(())
    });
    assert_eq!(
        browser.js(
            "return [location.hash, document.querySelector('#settings-tense').value];",
            json!([])
        ),
        json!([format!("#story/{id}"), "present"])
    );

    // Discarding leaves, and the story keeps its stored tense.
    browser.click("#view-story .back");
    browser.wait_visible("#confirm-dialog");
    browser.click("#confirm-ok");
    browser.wait_visible("#view-stories");
    let story = server.get(&format!("/api/stories/{id}")).json();
    assert_eq!(story["tense"], "", "{story}");
    assert_quiet_console(&browser);
}
