//! The status page in headless Chromium: the reader (edits, rewrites,
//! unsaved-edit guards), runs stopped after a chapter, the EPUB link, the
//! first screen, the System view, titles, progress wording and the
//! placeholder-text label. Harness and rules in [`crate::browser`].

use std::time::Duration;

use crate::browser::{
    Browser, WAIT, assert_quiet_console, assert_quiet_console_except, run_card, story_card,
};
use crate::util::{Api, Server, TempDb, create_story, id_of, outline};
use serde_json::{Value, json};

/// A 3-chapter story written by a server with workers, then served by one
/// without: nothing moves while the page works on it, and a run started
/// later stays pending. The database lives as long as the returned `TempDb`.
fn written_then_served_without_workers(title: &str) -> (TempDb, String, Server) {
    let db = TempDb::new();
    let id = {
        let writer = Server::start_on(&db.path, &[]);
        let story = create_story(&writer, json!({"title": title, "outline": outline(3)}));
        let id = story["id"].as_str().unwrap().to_string();
        let run = id_of(&writer.start_run(&id, None));
        writer.wait_for_run(&run, "completed", WAIT);
        id
    };
    let server = Server::start_on(&db.path, &["--workers", "0"]);
    (db, id, server)
}

#[test]
fn a_chapter_is_edited_from_the_reader() {
    let (_db, id, server) = written_then_served_without_workers("Edited by hand");
    let before = server.chapters(&id);
    assert_eq!(before.len(), 3);
    let browser = Browser::open(&server);
    browser.goto(&format!("/#story/{id}"));
    let ch2 = "#chapter-2";
    browser.wait_text(&format!("{ch2} .chapter-title"), "Beat 2");

    // Edit: the title becomes an input, the text a textarea; Cancel leaves
    // the chapter as it was.
    browser.click(&format!("{ch2} .btn-edit-chapter"));
    browser.wait_visible(&format!("{ch2} textarea.chapter-content-input"));
    assert_eq!(
        browser.js(
            "return document.querySelector('#chapter-2 .chapter-content-input').value;",
            json!([])
        ),
        before[1]["content"]
    );
    browser.click(&format!("{ch2} .btn-cancel-edit"));
    browser.wait_gone(&format!("{ch2} .chapter-edit"));
    browser.wait_text(&format!("{ch2} .chapter-title"), "Beat 2");

    // An empty text: the server's 422 VALIDATION_FAILED, in its words.
    browser.click(&format!("{ch2} .btn-edit-chapter"));
    browser.type_into(&format!("{ch2} .chapter-content-input"), "   ");
    let expected = server
        .patch(
            &format!("/api/stories/{id}/chapters/2"),
            &json!({"title": "x", "content": "   "}),
        )
        .json()["error"]
        .clone();
    assert_eq!(expected["code"], "VALIDATION_FAILED");
    browser.click(&format!("{ch2} .btn-save-chapter"));
    let error = format!("{ch2} .chapter-edit-error .api-error");
    browser.wait_text(&format!("{error} .error-code"), "VALIDATION_FAILED");
    assert_eq!(
        browser.text(&format!("{error} .error-message")),
        expected["message"].as_str().map(str::to_string)
    );
    assert_eq!(
        server.chapters(&id),
        before,
        "a refused edit changed nothing"
    );

    // A real edit: the API returns the new title and text, byte for byte.
    let text = "The ferry left at dawn.\n\nNobody waved <b>goodbye</b>.";
    browser.type_into(&format!("{ch2} .chapter-title-input"), "The Ferry, revised");
    browser.type_into(&format!("{ch2} .chapter-content-input"), text);
    browser.click(&format!("{ch2} .btn-save-chapter"));
    browser.wait_gone(&format!("{ch2} .chapter-edit"));
    browser.wait_text(&format!("{ch2} .chapter-title"), "The Ferry, revised");
    browser.wait_text(ch2, "Nobody waved <b>goodbye</b>.");
    let chapter = server.get(&format!("/api/stories/{id}/chapters/2")).json();
    assert_eq!(chapter["title"], "The Ferry, revised");
    assert_eq!(chapter["content"], text);
    let after = server.chapters(&id);
    assert_eq!(after[0], before[0]);
    assert_eq!(after[2], before[2]);
    assert_eq!(
        browser.js(
            "return document.querySelectorAll('#chapter-2 > p').length;",
            json!([])
        ),
        2,
        "the edited text is shown as its two paragraphs"
    );
    assert_eq!(
        browser.js(
            "return document.querySelectorAll('#view-story b').length;",
            json!([])
        ),
        0
    );

    // Rewriting while another run of the story is active: the 409 in words.
    let pending = id_of(&server.start_run(&id, None));
    browser.click("#chapter-1 .btn-rewrite-chapter");
    browser.wait_visible("#confirm-dialog");
    browser.click("#confirm-ok");
    let notice = "#notices .notice-error .api-error";
    browser.wait_text(&format!("{notice} .error-code"), "CONFLICT");
    browser.wait_text(&format!("{notice} .error-message"), &pending);
    assert!(
        browser
            .text(&format!("{notice} .error-hint"))
            .is_some_and(|hint| !hint.is_empty()),
        "the conflict comes with a hint"
    );
    assert_eq!(server.runs_of(&id).len(), 2, "no rewrite run was queued");
    assert_quiet_console_except(&browser, &["409", "422"]);
}

#[test]
fn one_chapter_is_rewritten_from_the_reader() {
    let server = Server::start(&["--builtin-delay-ms", "100"]);
    let story = create_story(
        &server,
        json!({"title": "Say it again", "outline": outline(3)}),
    );
    let id = story["id"].as_str().unwrap();
    let first = id_of(&server.start_run(id, None));
    server.wait_for_run(&first, "completed", WAIT);
    let before = server.chapters(id);
    assert_eq!(before.len(), 3);

    let browser = Browser::open(&server);
    browser.goto(&format!("/#story/{id}"));
    browser.wait_text("#chapter-2 .chapter-title", "Beat 2");
    browser.click("#chapter-2 .btn-rewrite-chapter");
    browser.wait_visible("#confirm-dialog");
    browser.wait_text("#confirm-title", "Rewrite chapter 2");
    browser.click("#confirm-ok");

    let run = browser.wait("the rewrite run in GET /api/runs", |_| {
        server.get("/api/runs").json()["runs"]
            .as_array()?
            .iter()
            .find(|r| r["story_id"] == id && r["regenerate_chapter"] == 2)
            .map(|r| r["id"].as_str().unwrap().to_string())
    });
    let done = server.wait_for_run(&run, "completed", WAIT);
    assert_eq!(done["regenerate_chapter"], 2);
    // Shown like any run, saying what it rewrote.
    let card = format!("#view-story [data-run-id=\"{run}\"]");
    browser.wait_text(&format!("{card} .badge"), "completed");
    browser.wait_text(&format!("{card} .run-scope"), "rewrite of chapter 2");
    browser.wait_text("#chapter-2 .chapter-meta", "changed");
    browser.goto("/");
    browser.wait_text(
        &format!("{} .run-scope", run_card(&run)),
        "rewrite of chapter 2",
    );

    let after = server.chapters(id);
    assert_eq!(after.len(), 3);
    assert_eq!(after[0], before[0], "chapter 1 changed");
    assert_eq!(after[2], before[2], "chapter 3 changed");
    assert_eq!(
        after[1]["run_id"],
        run.as_str(),
        "chapter 2 comes from the rewrite"
    );
    assert!(!after[1]["updated_at"].is_null(), "{}", after[1]);
    assert_quiet_console(&browser);
}

#[test]
fn a_run_started_from_the_page_can_stop_after_a_chapter() {
    let server = Server::start(&[]);
    let story = create_story(
        &server,
        json!({"title": "Half told", "outline": outline(5)}),
    );
    let id = story["id"].as_str().unwrap();
    let browser = Browser::open(&server);
    browser.goto(&format!("/#story/{id}"));
    browser.wait_text("#view-story .btn-start", "Start run");
    browser.type_into("#until-chapter", "2");
    browser.click("#view-story .btn-start");

    let run = browser.wait("the run the click started", |_| {
        server
            .runs_of(id)
            .first()
            .map(|r| r["id"].as_str().unwrap().to_string())
    });
    let done = server.wait_for_run(&run, "completed", WAIT);
    assert_eq!(done["until_chapter"], 2, "{done}");
    assert_eq!(done["chapters_done"], 2, "{done}");
    let chapters = server.chapters(id);
    assert_eq!(
        chapters
            .iter()
            .map(|c| c["number"].clone())
            .collect::<Vec<_>>(),
        vec![json!(1), json!(2)]
    );
    let card = format!("#view-story [data-run-id=\"{run}\"]");
    browser.wait_text(&format!("{card} .badge"), "completed");
    browser.wait_text(&format!("{card} .run-scope"), "up to chapter 2");
    browser.wait_text("#view-story .story-main > h2", "2 chapters of 5");
    browser.wait_gone("#chapter-3");

    // Left empty, the next run writes the rest.
    assert_eq!(
        browser.js(
            "return document.querySelector('#until-chapter').value;",
            json!([])
        ),
        ""
    );
    browser.click("#view-story .btn-start");
    let rest = browser.wait("a second run", |_| {
        let runs = server.runs_of(id);
        (runs.len() == 2).then(|| runs[0]["id"].as_str().unwrap().to_string())
    });
    let done = server.wait_for_run(&rest, "completed", WAIT);
    assert!(done["until_chapter"].is_null(), "{done}");
    assert_eq!(server.chapters(id).len(), 5);
    browser.wait_text("#view-story .story-main > h2", "5 chapters of 5");
    assert_quiet_console(&browser);
}

#[test]
fn the_epub_export_is_a_download_link() {
    let server = Server::start(&[]);
    let story = create_story(&server, json!({"title": "Bound", "outline": outline(2)}));
    let id = story["id"].as_str().unwrap();
    let run = id_of(&server.start_run(id, None));
    server.wait_for_run(&run, "completed", WAIT);
    let browser = Browser::open(&server);
    let link = |b: &Browser, css: &str| {
        b.js(
            "const a = document.querySelector(arguments[0]);
             return a && {href: a.getAttribute('href'), download: a.hasAttribute('download'),
                          text: a.textContent, visible: a.getClientRects().length > 0};",
            json!([css]),
        )
    };
    browser.goto(&format!("/#story/{id}"));
    browser.wait_visible("#view-story .btn-export-epub");
    let epub = link(&browser, "#view-story .btn-export-epub");
    assert_eq!(
        epub["href"],
        format!("/api/stories/{id}/export?format=epub")
    );
    assert_eq!(epub["download"], true);
    assert_eq!(epub["visible"], true);
    // Next to the Markdown link, which is unchanged.
    let md = link(&browser, "#view-story .btn-export");
    assert_eq!(md["href"], format!("/api/stories/{id}/export"));
    assert_eq!(
        browser.js(
            "return document.querySelector('#view-story .btn-export').nextElementSibling.classList.contains('btn-export-epub');",
            json!([])
        ),
        true
    );
    // The story card on the dashboard has it too.
    browser.goto("/");
    let card = story_card(id);
    browser.wait_visible(&format!("{card} .btn-export-epub"));
    let epub = link(&browser, &format!("{card} .btn-export-epub"));
    assert_eq!(
        epub["href"],
        format!("/api/stories/{id}/export?format=epub")
    );
    assert_eq!(epub["download"], true);
    // What the link points at is an EPUB.
    let resp = server.get(&format!("/api/stories/{id}/export?format=epub"));
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-type"), Some("application/epub+zip"));
    assert_quiet_console(&browser);
}

/// Where the stories heading, the New story button, the first story and
/// every health or metrics panel on screen are, in viewport pixels.
fn first_screen(browser: &Browser) -> Value {
    browser.js(
        "const box = (e) => {
           if (!e) return null;
           const r = e.getBoundingClientRect();
           return {top: r.top, bottom: r.bottom, shown: e.getClientRects().length > 0};
         };
         const panels = [...document.querySelectorAll('#health-stats, #metrics-stats, .card.system, #maintenance-result')]
           .map(box).filter((b) => b.shown);
         return {viewport: innerHeight, scrolled: scrollY,
                 heading: box(document.querySelector('#stories-title')),
                 button: box(document.querySelector('#btn-new-story')),
                 story: box(document.querySelector('#story-list .story')),
                 panels, panels_in_page: document.querySelectorAll('#health-stats, #metrics-stats').length};",
        json!([]),
    )
}

#[test]
fn the_first_screen_shows_the_stories_and_new_story_above_any_system_panel() {
    let server = Server::start(&[]);
    let story = create_story(
        &server,
        json!({"title": "The Salt Road", "premise": "A courier crosses a drowned country.", "outline": outline(3)}),
    );
    let id = story["id"].as_str().unwrap();
    let run = id_of(&server.start_run(id, None));
    server.wait_for_run(&run, "completed", WAIT);
    for (width, height) in [(1280, 800), (390, 844)] {
        let browser = Browser::open_sized(&server, width, height);
        browser.goto("/");
        browser.wait_text(&format!("{} .story-title", story_card(id)), "The Salt Road");
        // The story says how its last run went, in words.
        browser.wait_text(
            &format!("{} .story-progress", story_card(id)),
            "done · 3 chapters",
        );
        let screen = first_screen(&browser);
        let at = format!("{width}x{height}: {screen}");
        assert_eq!(screen["scrolled"], 0, "{at}");
        assert_eq!(screen["panels_in_page"], 2, "the panels still exist: {at}");
        let viewport = screen["viewport"].as_f64().unwrap();
        let mut lowest = 0.0_f64;
        for part in ["heading", "button", "story"] {
            let b = &screen[part];
            assert_eq!(b["shown"], true, "{part} is shown: {at}");
            let (top, bottom) = (b["top"].as_f64().unwrap(), b["bottom"].as_f64().unwrap());
            assert!(
                top >= 0.0 && bottom <= viewport,
                "{part} is on the first screen: {at}"
            );
            if part != "story" {
                lowest = lowest.max(bottom);
            }
        }
        for panel in screen["panels"].as_array().unwrap() {
            assert!(
                panel["top"].as_f64().unwrap() >= lowest,
                "a health or metrics panel is above the stories: {at}"
            );
        }
        // The top bar keeps a small health pill, which leads to the rest.
        browser.wait_text("#health-pill", "healthy");
        assert_eq!(
            browser.js(
                "return document.querySelector('#health-pill').getAttribute('href');",
                json!([])
            ),
            "#system"
        );
        assert_quiet_console(&browser);
    }
}

#[test]
fn on_a_phone_the_chapter_list_of_a_story_is_reachable() {
    let server = Server::start(&[]);
    let story = create_story(&server, json!({"title": "Pocket", "outline": outline(6)}));
    let id = story["id"].as_str().unwrap();
    let run = id_of(&server.start_run(id, None));
    server.wait_for_run(&run, "completed", WAIT);
    let browser = Browser::open_sized(&server, 390, 844);
    browser.goto("/");
    browser.click(&format!("{} .story-title", story_card(id)));
    browser.wait_visible("#view-story .toc .toc-link");
    assert_eq!(
        browser.js(
            "return document.querySelectorAll('#view-story .toc .toc-link').length;",
            json!([])
        ),
        6
    );
    // The list comes before the chapters it leads to.
    assert_eq!(
        browser.js(
            "return document.querySelector('.toc').getBoundingClientRect().top
                  < document.querySelector('#chapter-1').getBoundingClientRect().top;",
            json!([])
        ),
        true
    );
    browser.click("#view-story .toc li:nth-child(6) .toc-link");
    browser.wait("chapter 6 scrolled into view", |b| {
        (b.js(
            "const r = document.querySelector('#chapter-6').getBoundingClientRect();
             return r.top >= 0 && r.top < innerHeight;",
            json!([]),
        ) == true)
            .then_some(())
    });
}

#[test]
fn the_system_view_shows_health_metrics_and_maintenance() {
    let server = Server::start(&["--workers", "0"]);
    create_story(
        &server,
        json!({"title": "Only a story", "chapter_count": 2}),
    );
    let browser = Browser::open(&server);
    browser.goto("/");
    browser.wait_text("#story-list .story-title", "Only a story");
    assert!(
        !browser.visible("#health-stats"),
        "health is not on the stories view"
    );
    assert!(
        !browser.visible("#metrics-stats"),
        "metrics are not on the stories view"
    );
    assert!(!browser.visible("#btn-orphan-dry-run"));

    // The pill in the top bar leads there.
    browser.wait_text("#health-pill", "healthy");
    browser.click("#health-pill");
    browser.wait_visible("#view-system");
    assert_eq!(browser.js("return location.hash;", json!([])), "#system");
    assert!(!browser.visible("#view-stories"));
    browser.wait_text("#health-stats [data-stat=status]", "Healthy");
    browser.wait_text("#health-stats [data-stat=orphans]", "0");
    browser.wait_text("#metrics-stats [data-stat=hit-rate]", "%");
    browser.wait_text("#metrics-stats [data-stat=sql]", "HTTP requests");
    assert_eq!(
        browser.js(
            "return document.querySelector('#nav-system').getAttribute('aria-current');",
            json!([])
        ),
        "page"
    );
    browser.click("#btn-health-check");
    browser.wait_text("#maintenance-result[data-kind=health]", "Healthy");

    // Back to the stories; `#/system` is the same view.
    browser.click("#view-system .back");
    browser.wait_visible("#view-stories");
    assert!(!browser.visible("#view-system"));
    browser.goto("/#/system");
    browser.wait_visible("#view-system #health-stats");
    browser.wait_text("#health-stats [data-stat=status]", "Healthy");
    assert_quiet_console(&browser);
}

fn title_is(browser: &Browser, expected: &str) {
    browser.wait(&format!("the document title `{expected}`"), |b| {
        (b.js("return document.title;", json!([])) == expected).then_some(())
    });
}

#[test]
fn the_document_title_follows_the_view() {
    // No workers: no run is being written, so no percentage in the title.
    let server = Server::start(&["--workers", "0"]);
    let story = create_story(
        &server,
        json!({"title": "The Salt Road", "outline": outline(3)}),
    );
    let id = story["id"].as_str().unwrap();
    let browser = Browser::open(&server);
    browser.goto("/");
    title_is(&browser, "Stories · storyflow");
    browser.click(&format!("{} .story-title", story_card(id)));
    title_is(&browser, "The Salt Road · storyflow");
    browser.click("#nav-system");
    title_is(&browser, "System · storyflow");
    browser.click("#nav-stories");
    title_is(&browser, "Stories · storyflow");
    let run = id_of(&server.start_run(id, None));
    browser.goto(&format!("/#run/{run}"));
    title_is(&browser, "Run · The Salt Road · storyflow");
    browser.goto(&format!("/#story/{id}"));
    title_is(&browser, "The Salt Road · storyflow");
}

/// Whether a `beforeunload` now would make the browser ask.
fn leaving_would_ask(browser: &Browser) -> bool {
    browser.js(
        "const ev = new Event('beforeunload', {cancelable: true});
         window.dispatchEvent(ev);
         return ev.defaultPrevented;",
        json!([]),
    ) == true
}

#[test]
fn leaving_an_unsaved_chapter_edit_asks_first() {
    let (_db, id, server) = written_then_served_without_workers("Hand edits");
    let before = server.chapters(&id);
    let browser = Browser::open(&server);
    browser.goto("/");
    browser.click(&format!("{} .story-title", story_card(&id)));
    browser.wait_text("#chapter-2 .chapter-title", "Beat 2");
    let content = "#chapter-2 .chapter-content-input";
    let typed = "A sentence the writer has not saved yet.";

    // An editor opened and left untouched drops nothing: no question.
    browser.click("#chapter-2 .btn-edit-chapter");
    browser.wait_visible(content);
    assert!(!leaving_would_ask(&browser));
    browser.click("#view-story .back");
    browser.wait_visible("#view-stories");
    assert!(!browser.visible("#confirm-dialog"));

    browser.click(&format!("{} .story-title", story_card(&id)));
    browser.click("#chapter-2 .btn-edit-chapter");
    browser.type_into(content, typed);
    assert!(
        leaving_would_ask(&browser),
        "beforeunload is set while the edit is dirty"
    );
    let edit_kept = |b: &Browser| {
        assert!(
            b.visible("#view-story"),
            "still on the story:\n{}",
            b.page_text()
        );
        assert_eq!(
            b.js(
                "return document.querySelector(arguments[0]).value;",
                json!([content])
            ),
            typed,
            "the unsaved text is still in the editor"
        );
        assert_eq!(
            b.js("return location.hash;", json!([])),
            format!("#story/{id}")
        );
    };

    // A link: asked; "Keep editing" keeps the edit where it was.
    browser.click("#view-story .back");
    browser.wait_visible("#confirm-dialog");
    browser.wait_text("#confirm-title", "Discard your changes to chapter 2?");
    browser.click("#confirm-cancel");
    browser.wait("the dialog to close", |b| {
        (!b.visible("#confirm-dialog")).then_some(())
    });
    edit_kept(&browser);

    // The browser's back button: asked too, and dismissing keeps the edit.
    browser.js("history.back();", json!([]));
    browser.wait_visible("#confirm-dialog");
    browser.click("#confirm-cancel");
    browser.wait("the dialog to close", |b| {
        (!b.visible("#confirm-dialog")).then_some(())
    });
    edit_kept(&browser);

    // The editor's own Cancel asks as well.
    browser.click("#chapter-2 .btn-cancel-edit");
    browser.wait_visible("#confirm-dialog");
    browser.click("#confirm-cancel");
    browser.wait("the dialog to close", |b| {
        (!b.visible("#confirm-dialog")).then_some(())
    });
    edit_kept(&browser);

    // Another view, accepted: the page leaves, and nothing was saved.
    browser.click("#health-pill");
    browser.wait_visible("#confirm-dialog");
    browser.click("#confirm-ok");
    browser.wait_visible("#view-system");
    title_is(&browser, "System · storyflow");
    assert!(!leaving_would_ask(&browser), "nothing is left to lose");
    assert_eq!(server.chapters(&id), before, "leaving saved nothing");

    // Back on the story, the chapter reads as it was.
    browser.goto(&format!("/#story/{id}"));
    browser.wait_text("#chapter-2 .chapter-title", "Beat 2");
    assert!(!browser.exists(content));
    assert_quiet_console(&browser);
}

#[test]
fn progress_is_worded_for_a_writer() {
    // Slow enough that each chapter holds still while the page polls.
    let server = Server::start(&["--builtin-delay-ms", "1000"]);
    let story = create_story(&server, json!({"title": "Twelve", "outline": outline(12)}));
    let id = story["id"].as_str().unwrap();
    let browser = Browser::open(&server);
    browser.goto("/");
    browser.wait_text(&format!("{} .story-title", story_card(id)), "Twelve");
    let run = id_of(&server.start_run(id, None));
    let step = format!("{} .run-step", run_card(&run));
    // "writing chapter 4 of 12 · 3 done", on the run and on its story.
    let (writing, done) = browser.wait("a chapter being written", |b| {
        let text = b.text(&step)?;
        let rest = text.strip_prefix("writing chapter ")?;
        let (number, rest) = rest.split_once(" of 12 · ")?;
        let done = rest.strip_suffix(" done")?;
        Some((number.parse::<u32>().ok()?, done.parse::<u32>().ok()?))
    });
    assert_eq!(
        done + 1,
        writing,
        "the chapter being written follows the ones done"
    );
    browser.wait_text(&format!("{} .story-progress", story_card(id)), " of 12 · ");
    server.wait_for_run(&run, "completed", Duration::from_secs(60));
    browser.wait_text(&step, "done · 12 chapters");
    assert_eq!(browser.text(&step).as_deref(), Some("done · 12 chapters"));
    browser.wait_text(
        &format!("{} .story-progress", story_card(id)),
        "done · 12 chapters",
    );

    // Every other state, in the page's words.
    let cases = [
        (
            json!({"status": "pending", "attempt": 0, "chapters_done": 0, "chapters_total": 12}),
            "waiting for a worker",
        ),
        (
            json!({"status": "running", "step": "outline", "chapters_done": 0, "chapters_total": 12}),
            "writing the outline",
        ),
        (
            json!({"status": "running", "step": "chapter 4/12", "chapters_done": 3, "chapters_total": 12}),
            "writing chapter 4 of 12 · 3 done",
        ),
        (
            json!({"status": "running", "step": "finalize", "chapters_done": 12, "chapters_total": 12}),
            "finishing",
        ),
        (
            json!({"status": "completed", "step": "finalize", "chapters_done": 12, "chapters_total": 12}),
            "done · 12 chapters",
        ),
        (
            json!({"status": "failed", "step": "chapter 5/12", "chapters_done": 4, "chapters_total": 12,
                "error": {"code": "GENERATOR_UNAVAILABLE", "message": "the model server did not answer"}}),
            "failed at chapter 5: the model server did not answer",
        ),
    ];
    for (run, expected) in cases {
        assert_eq!(
            browser.js("return progressText(arguments[0]);", json!([run])),
            expected,
            "{run}"
        );
    }
    assert_quiet_console(&browser);
}

#[test]
fn a_failed_run_says_where_it_stopped_and_why() {
    let llm = crate::util::fake_llm::FakeLlm::start(vec![crate::util::fake_llm::status(
        401,
        r#"{"error":{"message":"Invalid API key","type":"invalid_request_error"}}"#,
    )]);
    let server = Server::start(&llm.args(&[]));
    let story = create_story(
        &server,
        json!({"title": "Locked out", "outline": outline(2)}),
    );
    let id = story["id"].as_str().unwrap();
    let run = id_of(&server.start_run(id, None));
    server.wait_for_run(&run, "failed", WAIT);
    let browser = Browser::open(&server);
    browser.goto("/");
    let step = format!("{} .run-step", run_card(&run));
    let text = browser.wait_text(&step, "failed at chapter 1: ");
    assert!(text.contains("Invalid API key"), "{text}");
    browser.wait_text(
        &format!("{} .story-progress", story_card(id)),
        "failed at chapter 1: ",
    );
    browser.wait_text(
        &format!("{} .run-error .error-code", run_card(&run)),
        "GENERATOR_AUTH",
    );
    // The run's page says where; its error box says why.
    browser.goto(&format!("/#run/{run}"));
    browser.wait_text("#view-run .run-progress-text", "failed at chapter 1");
    browser.wait_text("#view-run .run-error .error-message", "Invalid API key");
    assert_quiet_console(&browser);
}

#[test]
fn text_from_the_builtin_generator_is_labelled_as_placeholder_text() {
    let db = TempDb::new();
    let id = {
        let writer = Server::start_on(&db.path, &[]);
        let story = create_story(&writer, json!({"title": "Stand-in", "outline": outline(2)}));
        let id = story["id"].as_str().unwrap().to_string();
        let run = id_of(&writer.start_run(&id, None));
        writer.wait_for_run(&run, "completed", WAIT);
        assert_eq!(
            writer.get("/api/health").json()["generator"]["name"],
            "builtin"
        );
        let browser = Browser::open(&writer);
        browser.goto(&format!("/#story/{id}"));
        browser.wait_text("#chapter-2 .chapter-title", "Beat 2");
        browser.wait_visible("#view-story .placeholder-notice");
        browser.wait_text(
            "#view-story .placeholder-notice",
            "Placeholder text from the built-in generator",
        );
        browser.wait_text("#view-story .placeholder-notice", "connect a model server");
        browser.wait_visible("#view-story .toc-block .placeholder-tag");
        assert_quiet_console(&browser);
        id
    };
    // The same chapters served with a model server configured: no label.
    let llm = crate::util::fake_llm::FakeLlm::start(Vec::new());
    let server = Server::start_on(&db.path, &llm.args(&["--workers", "0"]));
    assert_eq!(
        server.get("/api/health").json()["generator"]["name"],
        "openai"
    );
    let browser = Browser::open(&server);
    browser.goto(&format!("/#story/{id}"));
    browser.wait_text("#chapter-2 .chapter-title", "Beat 2");
    browser.wait_text("#footer-version", "storyflow ");
    browser.wait("the health to be known", |b| {
        (b.js("return Boolean(state.health);", json!([])) == true).then_some(())
    });
    assert!(!browser.visible("#view-story .placeholder-notice"));
    assert!(!browser.visible("#view-story .placeholder-tag"));
}
