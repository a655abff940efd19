//! The page brings a writer's text in and back, in headless Chromium: a
//! manuscript imported from the Stories view (and one refused, in words,
//! with nothing created), and the reader's "Set aside" list after a
//! roll-back, whose Restore puts a chapter back into the book. Same browser
//! helpers and rules as [`crate::browser`]: wait for what a writer would
//! see, never sleep and assume.

use crate::browser::{Browser, WAIT, assert_quiet_console, assert_quiet_console_except};
use crate::util::{Api, Server, create_story, id_of};
use serde_json::{Value, json};

const MANUSCRIPT: &str = "# The Salt Road\n\n\
## Chapter 1: The Flood\nThe water came at night.\n\n\
## Chapter 2: The Ferryman\nA boat waited at the bridge.\n\n\
## Chapter 3: The Letter\nNobody wanted the letter.\n";

/// Puts `text` into a form field as a paste would, with the input event.
fn paste(browser: &Browser, css: &str, text: &str) {
    browser.wait_visible(css);
    browser.js(
        "const el = document.querySelector(arguments[0]); el.value = arguments[1]; \
         el.dispatchEvent(new Event('input', { bubbles: true }));",
        json!([css, text]),
    );
}

fn stories(server: &Server) -> Vec<Value> {
    server.get("/api/stories").json()["stories"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn a_pasted_manuscript_is_imported_and_its_story_opens() {
    let server = Server::start(&["--workers", "0"]);
    let browser = Browser::open(&server);
    browser.goto("/");
    browser.click("#btn-import-story");
    paste(&browser, "#import-markdown", MANUSCRIPT);
    paste(&browser, "#import-chapter-count", "5");
    browser.click("#import-submit");

    browser.wait_visible("#view-story");
    browser.wait_text("#view-story .detail-title", "The Salt Road");
    browser.wait_text("#chapter-1 .chapter-title", "The Flood");
    browser.wait_text("#chapter-2", "A boat waited at the bridge.");
    browser.wait_text("#chapter-3 .chapter-title", "The Letter");
    assert!(!browser.exists("#chapter-4"));
    browser.wait_text("#view-story .chapter-count", "5 chapters");

    let listed = stories(&server);
    assert_eq!(listed.len(), 1, "{listed:?}");
    let id = id_of(&listed[0]);
    let chapters = server.chapters(&id);
    let texts: Vec<&str> = chapters
        .iter()
        .filter_map(|c| c["content"].as_str())
        .collect();
    assert_eq!(
        texts,
        [
            "The water came at night.",
            "A boat waited at the bridge.",
            "Nobody wanted the letter."
        ]
    );
    // The imported story is not set aside anywhere: nothing was rolled back.
    assert!(!browser.visible("#set-aside"));
    assert_quiet_console(&browser);
}

#[test]
fn a_manuscript_without_chapter_headings_is_refused_in_words_and_nothing_is_created() {
    let server = Server::start(&["--workers", "0"]);
    let browser = Browser::open(&server);
    browser.goto("/");
    browser.click("#btn-import-story");
    let text = "Just some prose, with no heading at all.\nAnd a second line.";
    paste(&browser, "#import-markdown", text);
    paste(&browser, "#import-title", "Headless");
    browser.click("#import-submit");

    browser.wait_text("#import-form-error", "no chapter headings found");
    browser.wait_text("#import-form-error", "VALIDATION_FAILED");
    // What the writer entered is still there to fix, and the view stays.
    assert!(browser.visible("#import-form"));
    assert!(browser.visible("#view-stories"));
    assert_eq!(
        browser.js(
            "return [document.querySelector('#import-markdown').value, document.querySelector('#import-title').value];",
            json!([])
        ),
        json!([text, "Headless"])
    );
    assert_eq!(
        browser.js(
            "return document.querySelector('#import-markdown').getAttribute('aria-invalid');",
            json!([])
        ),
        "true"
    );
    assert_eq!(stories(&server), Vec::<Value>::new());
    assert_quiet_console_except(&browser, &["422"]);
}

#[test]
fn a_chapter_set_aside_by_a_roll_back_is_listed_and_restored() {
    let server = Server::start(&[]);
    let story = create_story(&server, json!({"title": "Two ways", "chapter_count": 2}));
    let id = id_of(&story);
    let run = id_of(&server.start_run(&id, None));
    server.wait_for_run(&run, "completed", WAIT);
    let written = server.get(&format!("/api/stories/{id}/chapters/2")).json();
    let resp = server.post(
        &format!("/api/stories/{id}/rollback"),
        &json!({"to_chapter": 1}),
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["set_aside"], json!([2]));

    let browser = Browser::open(&server);
    browser.goto(&format!("/#story/{id}"));
    browser.wait_visible("#chapter-1");
    assert!(!browser.exists("#chapter-2"));
    let item = "#set-aside .set-aside-item[data-number='2']";
    browser.wait_text(item, "Chapter 2");
    let title = written["title"].as_str().unwrap_or_default();
    assert!(!title.is_empty(), "chapter 2 has a title: {written}");
    browser.wait_text(item, title);

    browser.click(&format!("{item} .btn-restore-set-aside"));
    browser.wait_text("#chapter-2 .chapter-title", title);
    browser.wait_gone(item);
    assert!(!browser.visible("#set-aside"));
    let chapter = server.get(&format!("/api/stories/{id}/chapters/2")).json();
    assert_eq!(chapter["content"], written["content"]);
    let sources: Vec<Value> = server
        .get(&format!("/api/stories/{id}/chapters/2/versions"))
        .json()["versions"]
        .as_array()
        .map(|v| v.iter().map(|v| v["source"].clone()).collect())
        .unwrap_or_default();
    assert_eq!(sources, vec!["restored", "generated"]);
    assert_quiet_console(&browser);
}
