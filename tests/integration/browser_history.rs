//! The page keeps the writer's work, in headless Chromium: a chapter's
//! history panel and restore, its lock, roll back to a chapter, the Trash
//! view, and the backup line of the System view. Same browser helpers and
//! rules as [`crate::browser`]: wait for what a writer would see, never
//! sleep and assume.

use crate::browser::{Browser, WAIT, assert_quiet_console, story_card};
use crate::util::{Api, Server, create_story, id_of};
use serde_json::{Value, json};

/// A finished 2-chapter story written by the builtin generator.
fn written_story(server: &Server, title: &str) -> String {
    let story = create_story(server, json!({"title": title, "chapter_count": 2}));
    let id = id_of(&story);
    let run = id_of(&server.start_run(&id, None));
    server.wait_for_run(&run, "completed", WAIT);
    id
}

fn versions(server: &Server, id: &str, n: u32) -> Vec<Value> {
    server
        .get(&format!("/api/stories/{id}/chapters/{n}/versions"))
        .json()["versions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn the_history_panel_lists_versions_and_restores_one() {
    let server = Server::start(&[]);
    let id = written_story(&server, "Second thoughts");
    let first = server
        .get(&format!("/api/stories/{id}/chapters/1/versions/1"))
        .json();
    // Words the builtin generator never writes, so the diff must insert them.
    let edited = "Zephyrine quibbled over marmalade.";
    let resp = server.patch(
        &format!("/api/stories/{id}/chapters/1"),
        &json!({"content": edited}),
    );
    assert_eq!(resp.status, 200, "{}", resp.text());

    let browser = Browser::open(&server);
    browser.goto(&format!("/#story/{id}"));
    browser.wait_text("#chapter-1", "quibbled over marmalade.");
    browser.click("#chapter-1 .btn-history");
    let list = "#chapter-1 .version-list";
    browser.wait_text(&format!("{list} li[data-version='2']"), "edited by you");
    browser.wait_text(&format!("{list} li[data-version='1']"), "written by a run");
    assert_eq!(
        browser.js(
            "return [...document.querySelectorAll(arguments[0] + ' li')].map(li => li.dataset.version);",
            json!([list])
        ),
        json!(["2", "1"]),
        "newest first"
    );

    // The edit against the version before it: its words inserted, green;
    // the generated words deleted, struck through. The current version
    // cannot be restored onto itself.
    browser.click(&format!("{list} li[data-version='2'] .version-item"));
    browser.wait("the edit's words shown as inserted", |b| {
        let inserted = b.js(
            "return [...document.querySelectorAll('#chapter-1 .version-diff ins.diff-insert')].map(e => e.textContent).join(' ');",
            json!([]),
        );
        inserted
            .as_str()
            .is_some_and(|t| t.contains("Zephyrine") && t.contains("marmalade"))
            .then_some(())
    });
    assert!(browser.exists("#chapter-1 .version-diff del.diff-delete"));
    browser.wait_text("#chapter-1 .diff-summary", "Against version 1");
    browser.wait_visible("#chapter-1 .btn-restore-version");
    assert_eq!(
        browser.js(
            "return document.querySelector('#chapter-1 .btn-restore-version').disabled;",
            json!([])
        ),
        true
    );

    // Version 1 back, after a confirmation.
    browser.click(&format!("{list} li[data-version='1'] .version-item"));
    browser.wait_text("#chapter-1 .diff-summary", "first version");
    browser.click("#chapter-1 .btn-restore-version");
    browser.wait_visible("#confirm-dialog");
    browser.wait_text("#confirm-title", "Restore version 1 of chapter 1");
    browser.click("#confirm-ok");
    browser.wait_text(&format!("{list} li[data-version='3']"), "restored");
    browser.wait("the chapter's text to be version 1's again", |b| {
        b.text("#chapter-1").filter(|t| !t.contains("Zephyrine"))
    });
    let opening = first["content"]
        .as_str()
        .and_then(|text| text.split("\n\n").next())
        .map(str::trim)
        .unwrap_or_default();
    assert!(!opening.is_empty(), "version 1 has text: {first}");
    browser.wait_text("#chapter-1 > p", opening);
    let chapter = server.get(&format!("/api/stories/{id}/chapters/1")).json();
    assert_eq!(chapter["content"], first["content"]);
    let sources: Vec<Value> = versions(&server, &id, 1)
        .iter()
        .map(|v| v["source"].clone())
        .collect();
    assert_eq!(sources, vec!["restored", "edited", "generated"]);
    assert_quiet_console(&browser);
}

#[test]
fn a_locked_chapter_cannot_be_rewritten_and_a_story_rolls_back() {
    let server = Server::start(&[]);
    let id = written_story(&server, "Hold that line");
    let browser = Browser::open(&server);
    browser.goto(&format!("/#story/{id}"));
    browser.wait_visible("#chapter-2 .chapter-lock");

    browser.click("#chapter-1 .chapter-lock");
    browser.wait_text(
        "#chapter-1 .chapter-meta",
        "Locked: runs and rewrites leave it alone",
    );
    assert_eq!(
        server.get(&format!("/api/stories/{id}/chapters/1")).json()["locked"],
        true
    );
    assert_eq!(
        browser.js(
            "return document.querySelector('#chapter-1 .btn-rewrite-chapter').disabled;",
            json!([])
        ),
        true,
        "a locked chapter offers no rewrite"
    );

    // The last chapter has nothing after it to roll back.
    assert!(!browser.exists("#chapter-2 .btn-rollback"));
    browser.click("#chapter-1 .btn-rollback");
    browser.wait_visible("#confirm-dialog");
    browser.wait_text(
        "#confirm-body",
        "they stay in their history and can be restored",
    );
    browser.wait_text("#confirm-body", "The next run writes from chapter 2");
    browser.click("#confirm-ok");
    browser.wait_gone("#chapter-2");
    assert_eq!(server.chapters(&id).len(), 1);
    assert_eq!(
        versions(&server, &id, 2).len(),
        1,
        "chapter 2 kept its history"
    );
    assert_quiet_console(&browser);
}

#[test]
fn a_deleted_story_waits_in_the_trash_and_comes_back() {
    let server = Server::start(&["--workers", "0"]);
    let story = create_story(&server, json!({"title": "Not yet", "chapter_count": 2}));
    let id = id_of(&story);
    let browser = Browser::open(&server);
    browser.goto("/");
    let card = story_card(&id);
    browser.wait_text(&format!("{card} .story-title"), "Not yet");

    browser.click(&format!("{card} .btn-delete"));
    browser.wait_visible("#confirm-dialog");
    browser.wait_text("#confirm-body", "go to the trash");
    browser.click("#confirm-ok");
    browser.wait_gone(&card);
    browser.wait_text("#notices .notice-ok", "it is in the trash");
    assert_eq!(server.get(&format!("/api/stories/{id}")).status, 404);

    browser.click("#link-trash");
    browser.wait_visible("#view-trash");
    let item = format!("#trash-list [data-story-id=\"{id}\"]");
    browser.wait_text(&format!("{item} .story-title"), "Not yet");
    browser.wait_text(&format!("{item} .story-meta"), "deleted");
    browser.click(&format!("{item} .btn-restore-story"));
    browser.wait_gone(&item);
    browser.wait_text("#trash-list", "The trash is empty.");
    assert_eq!(server.get(&format!("/api/stories/{id}")).status, 200);
    browser.click("#view-trash .back");
    browser.wait_text(&format!("{card} .story-title"), "Not yet");

    // Delete for good: asked first, then gone from the trash and the API.
    assert_eq!(server.delete(&format!("/api/stories/{id}")).status, 204);
    browser.goto("/#trash");
    browser.click(&format!("{item} .btn-purge-story"));
    browser.wait_visible("#confirm-dialog");
    browser.wait_text("#confirm-title", "for good");
    browser.click("#confirm-ok");
    browser.wait_gone(&item);
    browser.wait_text("#notices .notice-ok:last-child", "for good");
    assert_eq!(server.get("/api/trash").json()["stories"], json!([]));
    assert_quiet_console(&browser);
}

#[test]
fn the_system_view_shows_the_last_backup_and_warns_when_backups_are_off() {
    {
        let server = Server::start(&["--workers", "0"]);
        let browser = Browser::open(&server);
        browser.goto("/#system");
        browser.wait_text("#backup-line", "last backup");
        browser.wait_text("#backup-line", "every 24 h");
        assert!(!browser.visible("#backup-warning"));
        assert_quiet_console(&browser);
    }
    let server = Server::start(&["--workers", "0", "--backup-interval-h", "0"]);
    let browser = Browser::open(&server);
    browser.goto("/#system");
    browser.wait_text("#backup-warning", "Backups are off");
    assert!(browser.visible("#backup-warning"));
    assert_quiet_console(&browser);
}

#[test]
fn a_repetitive_chapter_shows_a_badge_that_explains_itself() {
    let server = Server::start(&[]);
    let id = written_story(&server, "Said twice");
    let parrot = "The ferry left without them again. ".repeat(150);
    let resp = server.patch(
        &format!("/api/stories/{id}/chapters/2"),
        &json!({"content": parrot}),
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    let browser = Browser::open(&server);
    browser.goto(&format!("/#story/{id}"));
    browser.wait_text("#chapter-2 .quality-badges", "Repeats itself");
    let why = browser.js(
        "return document.querySelector('#chapter-2 .quality-badge').getAttribute('title');",
        json!([]),
    );
    assert!(
        why.as_str()
            .unwrap_or_default()
            .contains("4-word phrases are repeats"),
        "{why}"
    );
    assert_eq!(
        browser.js(
            "return document.querySelectorAll('#chapter-1 .quality-badge').length;",
            json!([])
        ),
        json!(0),
        "the builtin chapter passes every threshold"
    );
    assert_quiet_console(&browser);
}
