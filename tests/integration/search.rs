//! Search over the chapters through the real server (`GET /api/search`),
//! and the health check's `SEARCH_INDEX` problem through the real CLI.

use std::time::Duration;

use serde_json::{Value, json};

use crate::util::{self, Api, Server, TempDb, assert_error, create_story, id_of, outline};

const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// A story of `chapters` chapters written whole by the builtin generator.
fn written_story(server: &Server, title: &str, chapters: u32) -> String {
    let story = create_story(
        server,
        json!({ "title": title, "premise": "A keeper tends a light on a drowned coast.",
                "outline": outline(chapters) }),
    );
    let story_id = id_of(&story);
    let run = server.start_run(&story_id, None);
    server.wait_for_run(&id_of(&run), "completed", RUN_TIMEOUT);
    story_id
}

fn set_content(server: &Server, story: &str, number: u32, content: &str) {
    let resp = server.patch(
        &format!("/api/stories/{story}/chapters/{number}"),
        &json!({ "content": content }),
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
}

fn search(server: &Server, query: &str) -> Vec<Value> {
    let resp = server.get(&format!("/api/search?{query}"));
    assert_eq!(resp.status, 200, "{query}: {}", resp.text());
    resp.json()["hits"].as_array().cloned().unwrap_or_default()
}

#[test]
fn a_word_written_in_chapter_seven_is_found_and_gone_after_an_edit() {
    let server = Server::start(&[]);
    let story = written_story(&server, "The Lamp", 8);
    let other = written_story(&server, "The Ferry", 2);
    set_content(
        &server,
        &story,
        7,
        "At dawn the keeper found a brass astrolabe in the café by the pier.",
    );

    let hits = search(&server, "q=astrolabe");
    assert_eq!(hits.len(), 1, "{hits:?}");
    let hit = &hits[0];
    assert_eq!(hit["story_id"], story.as_str());
    assert_eq!(hit["story_title"], "The Lamp");
    assert_eq!(hit["chapter"], 7);
    assert_eq!(hit["title"], "Beat 7");
    let snippet = hit["snippet"].as_str().unwrap_or_default();
    assert!(snippet.contains("a brass [astrolabe] in"), "{snippet}");
    let keys: Vec<&String> = hit
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    // The contract's five fields and `kind` (chapter or bible entry).
    assert_eq!(keys.len(), 6, "only the contract's fields and kind: {hit}");
    assert_eq!(hit["kind"], "chapter");

    // Words are ANDed, case and diacritics folded; `story_id` narrows.
    assert_eq!(search(&server, "q=Brass%20CAFE").len(), 1);
    assert_eq!(search(&server, "q=brass+zeppelin").len(), 0);
    assert_eq!(
        search(&server, &format!("q=astrolabe&story_id={story}")).len(),
        1
    );
    assert_eq!(
        search(&server, &format!("q=astrolabe&story_id={other}")).len(),
        0
    );

    set_content(
        &server,
        &story,
        7,
        "At dawn the keeper found a wrinkled quince.",
    );
    assert!(search(&server, "q=astrolabe").is_empty());
    assert_eq!(search(&server, "q=wrinkled%20QUINCE").len(), 1);
}

#[test]
fn trashed_stories_are_not_searched_and_hostile_queries_are_plain_words() {
    let server = Server::start(&[]);
    let kept = written_story(&server, "Kept", 1);
    let trashed = written_story(&server, "Trashed", 1);
    set_content(&server, &kept, 1, "The heron waited near the pier, a -b c.");
    set_content(&server, &trashed, 1, "The heron flew off.");
    assert_eq!(search(&server, "q=heron").len(), 2);
    assert_eq!(
        server.delete(&format!("/api/stories/{trashed}")).status,
        204
    );
    let hits = search(&server, "q=heron");
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0]["story_id"], kept.as_str());

    // FTS5 syntax in the writer's words breaks nothing and injects nothing.
    for hostile in [
        "%22",
        "*",
        "NEAR(",
        "a%20-b",
        "heron%20OR",
        "title%3Aheron",
        "(((",
        "%22heron%22%20NOT",
    ] {
        search(&server, &format!("q={hostile}"));
    }
    assert_eq!(search(&server, "q=NEAR(").len(), 1, "NEAR is a word");
    assert_eq!(
        search(&server, "q=heron%20OR").len(),
        0,
        "OR is a word, not an operator"
    );

    assert_error(
        &server.get("/api/search?q=%20%20"),
        422,
        "VALIDATION_FAILED",
    );
    assert_error(&server.get("/api/search"), 422, "VALIDATION_FAILED");
    assert_error(
        &server.get("/api/search?q=heron&story_id=nope"),
        422,
        "VALIDATION_FAILED",
    );
    let trashed_search = server.get(&format!("/api/search?q=heron&story_id={trashed}"));
    assert_error(&trashed_search, 404, "STORY_NOT_FOUND");
    assert_eq!(server.post_empty("/api/search?q=heron").status, 405);
}

fn health_json(db: &std::path::Path, args: &[&str]) -> (i32, Value) {
    let mut full = args.to_vec();
    full.push("--json");
    let out = util::cli(db, &full);
    let code = out.status.code().expect("storyflow exited with a code");
    let value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}): {}", util::stderr(&out)));
    (code, value)
}

#[test]
fn health_check_finds_an_emptied_search_index_and_fix_rebuilds_it() {
    let db = TempDb::new();
    let out = util::cli(&db.path, &["story", "add", "Tide", "--chapters", "1"]);
    assert!(out.status.success(), "{}", util::stderr(&out));
    let conn = rusqlite::Connection::open(&db.path).expect("open");
    let story: String = conn
        .query_row("SELECT id FROM stories", [], |r| r.get(0))
        .expect("story");
    conn.execute(
        "INSERT INTO chapters (story_id, number, title, content, word_count, created_at)
         VALUES (?1, 1, 'One', 'The heron waited.', 3, '2026-01-01T00:00:00.000Z')",
        [&story],
    )
    .expect("chapter");
    let found = |conn: &rusqlite::Connection| -> i64 {
        conn.query_row(
            "SELECT count(*) FROM chapters_fts WHERE chapters_fts MATCH 'heron'",
            [],
            |r| r.get(0),
        )
        .expect("match")
    };
    assert_eq!(found(&conn), 1, "the trigger indexed the chapter");
    conn.execute(
        "INSERT INTO chapters_fts (chapters_fts) VALUES ('delete-all')",
        [],
    )
    .expect("empty the index");
    drop(conn);

    let (code, report) = health_json(&db.path, &["health-check"]);
    assert_eq!(code, 1, "{report}");
    let problems = report["problems"].as_array().cloned().unwrap_or_default();
    assert_eq!(problems.len(), 1, "{report}");
    assert_eq!(problems[0]["code"], "SEARCH_INDEX");
    assert_eq!(problems[0]["fixable"], true);

    let (code, report) = health_json(&db.path, &["health-check", "--fix"]);
    assert_eq!(code, 0, "{report}");
    assert!(
        report["fixed"].to_string().contains("search index"),
        "{report}"
    );
    let (code, report) = health_json(&db.path, &["health-check"]);
    assert_eq!(code, 0, "{report}");
    let conn = rusqlite::Connection::open(&db.path).expect("open");
    assert_eq!(found(&conn), 1, "rebuilt from the chapters");
}

/// A search answers a screen of hits unless asked for more: the best 20 by
/// default, `limit` from 1 to 50, anything else refused in the error shape.
#[test]
fn a_search_answers_twenty_hits_unless_asked_for_up_to_fifty() {
    let server = Server::start(&[]);
    let story = written_story(&server, "The Tideline", 30);
    for number in 1..=30 {
        set_content(
            &server,
            &story,
            number,
            &format!("Chapter {number}: the lantern swung over the quay."),
        );
    }
    assert_eq!(search(&server, "q=lantern").len(), 20);
    assert_eq!(search(&server, "q=lantern&limit=5").len(), 5);
    assert_eq!(search(&server, "q=lantern&limit=50").len(), 30);
    for bad in ["0", "51", "many", "-1"] {
        assert_error(
            &server.get(&format!("/api/search?q=lantern&limit={bad}")),
            422,
            "VALIDATION_FAILED",
        );
    }
}
