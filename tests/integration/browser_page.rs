//! The status page in headless Chromium: the stories view, runs started,
//! cancelled and retried from the page, errors in words, markup shown
//! literally, the token, a phone's layout and a hidden tab. Harness and
//! rules in [`crate::browser`].

use std::time::Duration;

use crate::browser::{Browser, WAIT, assert_quiet_console, run_card, story_card};
use crate::util::{Api, Server, create_story, id_of, outline};
use serde_json::json;

#[test]
fn the_page_lists_a_story_created_through_the_api() {
    let server = Server::start(&[]);
    let story = create_story(
        &server,
        json!({"title": "The Salt Road", "premise": "A courier crosses a drowned country.", "outline": outline(12)}),
    );
    let id = story["id"].as_str().unwrap();
    let browser = Browser::open(&server);
    browser.goto("/");
    let card = story_card(id);
    browser.wait_text(&format!("{card} .story-title"), "The Salt Road");
    assert_eq!(
        browser.text(&format!("{card} .chapter-count")).as_deref(),
        Some("12 chapters")
    );
    assert_eq!(
        browser.text(&format!("{card} .count-source")).as_deref(),
        Some("from the outline")
    );
    assert_eq!(
        browser.text(&format!("{card} .story-premise")).as_deref(),
        Some("A courier crosses a drowned country.")
    );
    // The health summary and the metrics come from the same server, on
    // the System view of their own.
    browser.goto("/#system");
    browser.wait_text("#health-stats [data-stat=status]", "Healthy");
    browser.wait_text("#health-stats [data-stat=orphans]", "0");
    browser.wait_text("#metrics-stats [data-stat=hit-rate]", "%");
    browser.wait_text("#metrics-stats [data-stat=sql]", "HTTP requests");
    assert_quiet_console(&browser);
}

#[test]
fn markup_in_user_text_is_shown_literally_and_never_becomes_elements() {
    let server = Server::start(&[]);
    let title = "<img src=x onerror=alert(1)>";
    let premise = "<script>alert(2)</script> and <b>bold</b>";
    let story = create_story(
        &server,
        json!({"title": title, "premise": premise,
               "outline": "## Chapter 1: <img src=y onerror=alert(3)> begins\n## Chapter 2: <b>Ends</b>\n"}),
    );
    let id = story["id"].as_str().unwrap();
    let run = id_of(&server.start_run(id, None));
    server.wait_for_run(&run, "completed", WAIT);
    let no_injected_elements = |b: &Browser| {
        assert_eq!(
            b.js(
                "return document.querySelectorAll('img, b, script:not([src]), [onerror]').length;",
                json!([])
            ),
            0,
            "user text became elements:\n{}",
            b.page_text()
        );
        assert!(!b.alert_open(), "an alert ran");
    };

    let browser = Browser::open(&server);
    browser.goto("/");
    let card = story_card(id);
    browser.wait_text(&format!("{card} .story-title"), title);
    assert_eq!(
        browser.text(&format!("{card} .story-title")).as_deref(),
        Some(title)
    );
    assert_eq!(
        browser.text(&format!("{card} .story-premise")).as_deref(),
        Some(premise)
    );
    browser.wait_text(&format!("{} .run-title", run_card(&run)), title);
    no_injected_elements(&browser);

    // The reader: the story's title, and chapter titles from the outline.
    browser.click(&format!("{card} .story-title"));
    browser.wait_text("#view-story .detail-title", title);
    browser.wait_text(
        "#chapter-1 .chapter-title",
        "<img src=y onerror=alert(3)> begins",
    );
    browser.wait_text("#chapter-2 .chapter-title", "<b>Ends</b>");
    no_injected_elements(&browser);

    // The run's timeline quotes the chapter titles too.
    browser.goto(&format!("/#run/{run}"));
    browser.wait_text("#view-run .timeline", "<b>Ends</b>");
    browser.wait_text("#view-run .detail-title", title);
    no_injected_elements(&browser);

    // The delete confirmation names the story.
    browser.goto("/");
    browser.click(&format!("{card} .btn-delete"));
    browser.wait_visible("#confirm-dialog");
    assert_eq!(
        browser.text("#confirm-title").as_deref(),
        Some(format!("Delete “{title}”?").as_str())
    );
    no_injected_elements(&browser);
    // Not even an attempt to load `x` or `y` as an image.
    assert_quiet_console(&browser);
}

#[test]
fn a_run_started_from_the_page_progresses_to_completed() {
    let server = Server::start(&["--builtin-delay-ms", "200"]);
    let story = create_story(
        &server,
        json!({"title": "Lanterns Over Kestrel Bay", "premise": "The lanterns are lit for the boats that did not come back.", "outline": outline(15)}),
    );
    let id = story["id"].as_str().unwrap();
    assert!(server.runs_of(id).is_empty());
    let browser = Browser::open(&server);
    browser.goto("/");
    let card = story_card(id);
    browser.wait_text(&format!("{card} .btn-start"), "Start run");
    browser.click(&format!("{card} .btn-start"));

    let run = browser.wait("the run the click started", |_| {
        server
            .runs_of(id)
            .first()
            .map(|r| r["id"].as_str().unwrap().to_string())
    });
    let bar = format!("{} .progress", run_card(&run));
    // Watch the bar: it must show the run part-way before it shows it done.
    let mut seen = Vec::new();
    browser.wait("the run to reach 100% on the page", |b| {
        let state = b.js(
            "const card = document.querySelector(arguments[0]);
             if (!card) return null;
             return {status: card.dataset.status,
                     now: card.querySelector('.progress').getAttribute('aria-valuenow'),
                     pct: card.querySelector('.run-pct').textContent,
                     step: card.querySelector('.run-step').textContent};",
            json!([run_card(&run)]),
        );
        if state.is_null() {
            return None;
        }
        let now: u32 = state["now"].as_str()?.parse().ok()?;
        if seen.last() != Some(&(state["status"].to_string(), now)) {
            seen.push((state["status"].to_string(), now));
        }
        (state["status"] == "completed" && now == 100 && state["pct"] == "100%").then_some(())
    });
    assert!(
        seen.iter()
            .any(|(status, now)| status == "\"running\"" && *now > 0 && *now < 100),
        "the page never showed the run part-way: {seen:?}"
    );
    assert_eq!(
        browser.js(
            "return document.querySelector(arguments[0]).style.width;",
            json!([format!("{bar} .progress-fill")])
        ),
        "100%"
    );
    browser.wait_text(&format!("{} .badge", run_card(&run)), "completed");
    browser.wait_text(&format!("{card} .story-latest"), "completed");
    assert_eq!(
        server.get(&format!("/api/runs/{run}")).json()["status"],
        "completed"
    );

    // Its timeline, then the chapters it wrote.
    browser.click(&format!("{} .btn-details", run_card(&run)));
    browser.wait_text("#view-run .timeline", "all chapters written");
    browser.wait_text("#view-run .big-pct", "100%");
    browser.click("#view-run .detail-meta a");
    browser.wait_text("#view-story .story-main > h2", "15 chapters of 15");
    browser.wait_text("#chapter-15 .chapter-title", "Beat 15");
    let export = browser.js(
        "const a = document.querySelector('#view-story .btn-export');
         return {href: a.getAttribute('href'), download: a.hasAttribute('download')};",
        json!([]),
    );
    assert_eq!(export["href"], format!("/api/stories/{id}/export"));
    assert_eq!(export["download"], true);
    // Progress bars are sized through the CSSOM, which the CSP allows.
    assert_quiet_console(&browser);
}

#[test]
fn api_errors_are_shown_in_words() {
    let server = Server::start(&["--workers", "0"]);
    let browser = Browser::open(&server);
    browser.goto("/");

    // An empty title: the server's VALIDATION_FAILED, in its own words.
    let expected = server.post("/api/stories", &json!({"title": ""})).json()["error"].clone();
    assert_eq!(expected["code"], "VALIDATION_FAILED");
    browser.click("#btn-new-story");
    browser.wait_visible("#story-form");
    browser.click("#story-submit");
    let error = "#story-form-error .api-error";
    browser.wait_text(&format!("{error} .error-code"), "VALIDATION_FAILED");
    assert_eq!(
        browser.text(&format!("{error} .error-message")),
        expected["message"].as_str().map(str::to_string)
    );
    assert_eq!(
        browser.text(&format!("{error} .error-hint")),
        expected["hint"].as_str().map(str::to_string)
    );
    assert!(browser.exists("#story-title[aria-invalid=true]"));

    // Corrected, the same form creates the story.
    browser.type_into("#story-title", "Written from the page");
    browser.type_into("#story-premise", "A story typed into the form.");
    browser.type_into(
        "#story-outline",
        "## Chapter 1: First\n## Chapter 2: Second\n## Chapter 3: Third",
    );
    browser.click("#story-submit");
    browser.wait_gone(error);
    let story = browser.wait("the story in the API", |_| {
        server.get("/api/stories").json()["stories"]
            .as_array()?
            .iter()
            .find(|s| s["title"] == "Written from the page")
            .cloned()
    });
    assert_eq!(story["premise"], "A story typed into the form.");
    assert_eq!(story["chapter_count"], 3);
    let card = story_card(story["id"].as_str().unwrap());
    browser.wait_text(&format!("{card} .chapter-count"), "3 chapters");

    // A CONFLICT: retrying a cancelled run while another run of the same
    // story waits for a worker.
    let id = story["id"].as_str().unwrap();
    let first = id_of(&server.start_run(id, None));
    assert_eq!(
        server
            .post_empty(&format!("/api/runs/{first}/cancel"))
            .status,
        200
    );
    let second = id_of(&server.start_run(id, None));
    browser.reload();
    browser.click(&format!("{} .btn-retry", run_card(&first)));
    let notice = "#notices .notice-error .api-error";
    browser.wait_text(&format!("{notice} .error-code"), "CONFLICT");
    browser.wait_text(
        &format!("{notice} .error-message"),
        &format!("already has an active run {second}"),
    );
    assert!(
        browser
            .text(&format!("{notice} .error-hint"))
            .is_some_and(|hint| !hint.is_empty()),
        "the conflict comes with a hint"
    );
    assert_eq!(
        server.get(&format!("/api/runs/{first}")).json()["status"],
        "cancelled"
    );
}

#[test]
fn deleting_a_story_asks_for_confirmation_first() {
    let server = Server::start(&[]);
    let story = create_story(&server, json!({"title": "Keep or cut", "chapter_count": 2}));
    let id = story["id"].as_str().unwrap();
    let browser = Browser::open(&server);
    browser.goto("/");
    let card = story_card(id);
    browser.wait_text(&format!("{card} .story-title"), "Keep or cut");

    browser.click(&format!("{card} .btn-delete"));
    browser.wait_visible("#confirm-dialog");
    browser.wait_text("#confirm-title", "Keep or cut");
    browser.click("#confirm-cancel");
    browser.wait("the dialog to close", |b| {
        (!b.visible("#confirm-dialog")).then_some(())
    });
    assert_eq!(server.get(&format!("/api/stories/{id}")).status, 200);
    assert!(browser.exists(&card));

    browser.click(&format!("{card} .btn-delete"));
    browser.wait_visible("#confirm-dialog");
    browser.click("#confirm-ok");
    browser.wait_gone(&card);
    assert_eq!(server.get(&format!("/api/stories/{id}")).status, 404);
    browser.wait_text("#notices .notice-ok", "Deleted “Keep or cut”");
}

#[test]
fn a_run_is_cancelled_and_retried_from_the_page() {
    // No workers: the run waits, so each state holds still for the test.
    let server = Server::start(&["--workers", "0"]);
    let story = create_story(
        &server,
        json!({"title": "Stop and go", "outline": outline(3)}),
    );
    let id = story["id"].as_str().unwrap();
    let browser = Browser::open(&server);
    browser.goto("/");
    let card = story_card(id);
    browser.click(&format!("{card} .btn-start"));
    let run = browser.wait("the run the click started", |_| {
        server
            .runs_of(id)
            .first()
            .map(|r| r["id"].as_str().unwrap().to_string())
    });
    let rc = run_card(&run);
    browser.wait_text(&format!("{rc} .badge"), "pending");
    browser.wait_text(&format!("{rc} .run-step"), "waiting for a worker");

    browser.click(&format!("{rc} .btn-cancel"));
    browser.wait_text(&format!("{rc} .badge"), "cancelled");
    assert_eq!(
        server.get(&format!("/api/runs/{run}")).json()["status"],
        "cancelled"
    );
    assert!(!browser.visible(&format!("{rc} .btn-cancel")));

    browser.click(&format!("{rc} .btn-retry"));
    browser.wait_text(&format!("{rc} .badge"), "pending");
    assert_eq!(
        server.get(&format!("/api/runs/{run}")).json()["status"],
        "pending"
    );
}

#[test]
fn the_health_check_and_the_orphan_dry_run_show_what_they_found() {
    let server = Server::start(&["--workers", "0"]);
    let story = create_story(&server, json!({"title": "Soon gone", "chapter_count": 2}));
    let id = story["id"].as_str().unwrap();
    let run = id_of(&server.start_run(id, None));
    // Delete the story behind storyflow's back, as the sqlite3 shell would
    // (foreign keys off), leaving its run an orphan.
    let db = rusqlite::Connection::open(&server.db).expect("open the database");
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    db.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
    assert_eq!(
        db.execute("DELETE FROM stories WHERE id = ?1", [id])
            .unwrap(),
        1
    );
    drop(db);
    assert_eq!(server.get("/api/diagnostics/orphans").json()["count"], 1);

    let browser = Browser::open(&server);
    browser.goto("/");
    browser.wait_text(&format!("{} .run-title", run_card(&run)), "missing story");
    // Health and maintenance live on the System view.
    browser.goto("/#system");
    browser.wait_text("#health-stats [data-stat=orphans] .stat-value", "1");

    browser.click("#btn-orphan-dry-run");
    let result = "#maintenance-result[data-kind=orphans]";
    browser.wait_text(result, "would remove 1 orphaned runs");
    browser.wait_text(result, &run[..8]);
    browser.wait_text(result, "nothing changed");
    assert_eq!(server.get("/api/diagnostics/orphans").json()["count"], 1);

    browser.click("#btn-health-check");
    let result = "#maintenance-result[data-kind=health]";
    browser.wait_text(result, "ORPHANED_RUNS");
    browser.wait_text(result, "1 runs point at stories that do not exist");
    browser.wait_text(result, "storyflow health-check --fix");
}

#[test]
fn a_server_with_a_token_asks_for_it_once() {
    let server = Server::start(&["--token", "s3cret-token"]);
    let story = create_story_with_token(&server, "Behind a token", "s3cret-token");
    let browser = Browser::open(&server);
    browser.goto("/");
    browser.wait_visible("#token-dialog");
    browser.type_into("#token-input", "wrong");
    browser.click("#token-submit");
    browser.wait_text("#token-error", "refused");
    browser.type_into("#token-input", "s3cret-token");
    browser.click("#token-submit");
    browser.wait_text(
        &format!("{} .story-title", story_card(&story)),
        "Behind a token",
    );
    assert!(!browser.visible("#token-dialog"));
    assert_eq!(
        browser.js(
            "return sessionStorage.getItem('storyflow.token');",
            json!([])
        ),
        "s3cret-token"
    );
    assert_eq!(
        browser.js("return localStorage.length;", json!([])),
        0,
        "the token is kept for the tab only"
    );
    // A reload in the same tab does not ask again.
    browser.reload();
    browser.wait_text(
        &format!("{} .story-title", story_card(&story)),
        "Behind a token",
    );
    assert!(!browser.visible("#token-dialog"));
}

fn create_story_with_token(server: &Server, title: &str, token: &str) -> String {
    let body = json!({ "title": title }).to_string();
    let resp = server.raw(
        "POST",
        "/api/stories",
        &[
            ("Host".into(), server.addr.to_string()),
            ("Content-Type".into(), "application/json".into()),
            ("Authorization".into(), format!("Bearer {token}")),
        ],
        body.as_bytes(),
    );
    assert_eq!(resp.status, 201, "{}", resp.text());
    resp.json()["id"].as_str().unwrap().to_string()
}

#[test]
fn the_page_fits_a_phone_and_is_readable_in_dark_mode() {
    let server = Server::start(&[]);
    let story = create_story(
        &server,
        json!({"title": "A title long enough to need wrapping on a narrow phone screen, and then some more words", "outline": outline(3)}),
    );
    let id = story["id"].as_str().unwrap();
    let run = id_of(&server.start_run(id, None));
    server.wait_for_run(&run, "completed", WAIT);
    let browser = Browser::open_sized(&server, 390, 844);
    // Dark mode, as the operating system would ask for it.
    browser.command(
        "POST",
        "/goog/cdp/execute",
        Some(json!({"cmd": "Emulation.setEmulatedMedia", "params": {
            "features": [{"name": "prefers-color-scheme", "value": "dark"}]}})),
    );
    let pages = [
        ("/".to_string(), story_card(id)),
        (
            format!("/#story/{id}"),
            "#view-story #chapter-3".to_string(),
        ),
        (
            format!("/#run/{run}"),
            "#view-run .timeline li[data-kind]".to_string(),
        ),
    ];
    for (path, shown) in pages {
        browser.goto(&path);
        browser.wait_visible(&shown);
        let layout = browser.js(
            "return {client: document.documentElement.clientWidth, scroll: document.documentElement.scrollWidth};",
            json!([]),
        );
        assert_eq!(
            layout["client"], 390,
            "{path}: the page is laid out for the phone's width"
        );
        assert!(
            layout["scroll"].as_u64() <= Some(390),
            "{path} scrolls sideways at phone width: {layout}"
        );
    }
    // The chapter controls, and a chapter open for editing, fit too.
    browser.goto(&format!("/#story/{id}"));
    browser.wait_visible("#view-story #until-chapter");
    browser.wait_visible("#view-story .btn-export-epub");
    browser.click("#chapter-3 .btn-edit-chapter");
    browser.wait_visible("#chapter-3 .chapter-content-input");
    let layout = browser.js(
        "const over = [...document.querySelectorAll('#view-story *')]
           .filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5)
           .map((e) => e.className || e.tagName);
         return {scroll: document.documentElement.scrollWidth, over};",
        json!([]),
    );
    assert!(
        layout["scroll"].as_u64() <= Some(390) && layout["over"] == json!([]),
        "the story page with a chapter being edited overflows at phone width: {layout}"
    );
    browser.goto("/");
    browser.wait_text(
        &format!("{} .story-title", story_card(id)),
        "A title long enough",
    );
    let contrast = browser.js(
        "const rgb = (c) => c.match(/[\\d.]+/g).slice(0, 3).map(Number);
         const lum = ([r, g, b]) => {
           const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
           return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
         };
         const ratio = (a, b) => { const [x, y] = [lum(rgb(a)), lum(rgb(b))].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
         const body = getComputedStyle(document.body);
         const card = document.querySelector('.card.story');
         const cardStyle = getComputedStyle(card);
         const title = getComputedStyle(card.querySelector('.story-title'));
         const muted = getComputedStyle(card.querySelector('.story-latest .muted'));
         return {dark: matchMedia('(prefers-color-scheme: dark)').matches,
                 background: lum(rgb(body.backgroundColor)),
                 text: ratio(body.color, body.backgroundColor),
                 title: ratio(title.color, cardStyle.backgroundColor),
                 muted: ratio(muted.color, cardStyle.backgroundColor)};",
        json!([]),
    );
    assert_eq!(contrast["dark"], true, "{contrast}");
    assert!(
        contrast["background"].as_f64().unwrap() < 0.05,
        "dark mode has a dark background: {contrast}"
    );
    for key in ["text", "title"] {
        assert!(
            contrast[key].as_f64().unwrap() >= 7.0,
            "{key} contrast below 7:1 in dark mode: {contrast}"
        );
    }
    assert!(
        contrast["muted"].as_f64().unwrap() >= 4.5,
        "muted text contrast below 4.5:1 in dark mode: {contrast}"
    );
}

#[test]
fn a_hidden_tab_stops_polling_and_catches_up_when_shown() {
    // No workers: the run stays pending, so the page polls at its fast rate.
    let server = Server::start(&["--workers", "0"]);
    let story = create_story(&server, json!({"title": "Waiting", "chapter_count": 2}));
    let run = id_of(&server.start_run(&id_of(&story), None));
    let browser = Browser::open(&server);
    browser.goto("/");
    browser.wait_text(&format!("{} .badge", run_card(&run)), "pending");
    browser.wait("fast polling", |b| {
        (b.js(
            "return document.documentElement.dataset.polling;",
            json!([]),
        ) == "fast")
            .then_some(())
    });
    let api_requests = |b: &Browser| {
        b.js(
            "return performance.getEntriesByType('resource').filter(e => e.name.includes('/api/')).length;",
            json!([]),
        )
        .as_u64()
        .unwrap()
    };

    // The tab goes to the background (as the browser reports it).
    browser.js(
        "Object.defineProperty(document, 'hidden', {configurable: true, get: () => true});
         Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => 'hidden'});
         document.dispatchEvent(new Event('visibilitychange'));",
        json!([]),
    );
    browser.wait("polling to pause", |b| {
        (b.js(
            "return document.documentElement.dataset.polling;",
            json!([]),
        ) == "paused")
            .then_some(())
    });
    let before = api_requests(&browser);
    // Three polling periods of the fast rate pass without a request.
    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!(api_requests(&browser), before, "a hidden tab polled");

    // Back in front: it refreshes at once and polls again.
    browser.js(
        "delete document.hidden; delete document.visibilityState;
         document.dispatchEvent(new Event('visibilitychange'));",
        json!([]),
    );
    browser.wait("a refresh on becoming visible", |b| {
        (api_requests(b) > before).then_some(())
    });
    browser.wait("fast polling again", |b| {
        (b.js(
            "return document.documentElement.dataset.polling;",
            json!([]),
        ) == "fast")
            .then_some(())
    });
}
