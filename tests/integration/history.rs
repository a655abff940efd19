//! Nothing the writer wrote is lost: chapter versions, diffs, restore,
//! locks, roll-back and the trash, through the real server.

use std::time::Duration;

use serde_json::{Value, json};

use crate::util::{Api, Server, assert_error, create_story, id_of, outline};

const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// A story of `chapters` chapters written whole by the builtin generator.
fn written_story(server: &Server, chapters: u32) -> String {
    let story = create_story(
        server,
        json!({ "title": "The Salt Road", "premise": "A courier crosses a drowned country.",
                "outline": outline(chapters) }),
    );
    let story_id = id_of(&story);
    let run = server.start_run(&story_id, None);
    server.wait_for_run(&id_of(&run), "completed", RUN_TIMEOUT);
    story_id
}

fn versions(server: &Server, story: &str, n: u32) -> Vec<Value> {
    let resp = server.get(&format!("/api/stories/{story}/chapters/{n}/versions"));
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.json()["versions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn content(server: &Server, story: &str, n: u32) -> String {
    let resp = server.get(&format!("/api/stories/{story}/chapters/{n}"));
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.json()["content"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn regenerate(server: &Server, story: &str, n: u32) {
    let resp = server.post_empty(&format!("/api/stories/{story}/chapters/{n}/regenerate"));
    assert_eq!(resp.status, 202, "{}", resp.text());
    server.wait_for_run(&id_of(&resp.json()), "completed", RUN_TIMEOUT);
}

#[test]
fn generate_edit_regenerate_restore_keeps_every_version() {
    let server = Server::start(&[]);
    let story = written_story(&server, 2);
    let generated = content(&server, &story, 1);
    let edited = format!("{generated}\n\nThe writer added this closing line by hand.");
    let resp = server.patch(
        &format!("/api/stories/{story}/chapters/1"),
        &json!({ "content": edited }),
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    regenerate(&server, &story, 1);
    let resp = server.post_empty(&format!(
        "/api/stories/{story}/chapters/1/versions/1/restore"
    ));
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["content"], generated.as_str());
    assert_eq!(content(&server, &story, 1), generated, "byte for byte");

    let history = versions(&server, &story, 1);
    let sources: Vec<(u64, &str)> = history
        .iter()
        .map(|v| {
            (
                v["version"].as_u64().unwrap(),
                v["source"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        sources,
        [
            (4, "restored"),
            (3, "regenerated"),
            (2, "edited"),
            (1, "generated")
        ]
    );
    assert!(history[2]["run_id"].is_null());
    assert!(history[3]["run_id"].is_string());
    let v2 = server.get(&format!("/api/stories/{story}/chapters/1/versions/2"));
    assert_eq!(v2.json()["content"], edited.trim());

    let diff = server
        .get(&format!(
            "/api/stories/{story}/chapters/1/versions/2/diff?against=1"
        ))
        .json();
    let inserted: String = diff["parts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["op"] == "insert")
        .map(|p| p["text"].as_str().unwrap())
        .collect();
    assert!(inserted.contains("closing line by hand"), "{diff}");
    assert_eq!(diff["words_deleted"], 0);
    assert_eq!(diff["words_inserted"], 8);
}

#[test]
fn a_locked_chapter_refuses_regenerate_and_survives_a_run() {
    let server = Server::start(&[]);
    let story = written_story(&server, 2);
    let before = content(&server, &story, 2);
    let resp = server.patch(
        &format!("/api/stories/{story}/chapters/2"),
        &json!({ "locked": true }),
    );
    assert_eq!(resp.json()["locked"], true);
    let refused = server.post_empty(&format!("/api/stories/{story}/chapters/2/regenerate"));
    let error = assert_error(&refused, 409, "CONFLICT");
    assert_eq!(error["details"]["chapter"], 2);
    // A whole-book run leaves written chapters alone, locked or not.
    let run = server.start_run(&story, None);
    server.wait_for_run(&id_of(&run), "completed", RUN_TIMEOUT);
    assert_eq!(content(&server, &story, 2), before);
    assert_eq!(versions(&server, &story, 2).len(), 1);
    let resp = server.patch(
        &format!("/api/stories/{story}/chapters/2"),
        &json!({ "locked": false }),
    );
    assert_eq!(resp.json()["locked"], false);
    regenerate(&server, &story, 2);
    assert_eq!(versions(&server, &story, 2).len(), 2);
}

#[test]
fn rolling_back_to_chapter_one_sets_later_chapters_aside_and_a_run_writes_them_again() {
    let server = Server::start(&[]);
    let story = written_story(&server, 3);
    let old_three = content(&server, &story, 3);
    let resp = server.post(
        &format!("/api/stories/{story}/rollback"),
        &json!({ "to_chapter": 1 }),
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["set_aside"], json!([2, 3]));
    assert_eq!(server.chapter_numbers(&story), [1]);
    let run = server.start_run(&story, None);
    let done = server.wait_for_run(&id_of(&run), "completed", RUN_TIMEOUT);
    assert_eq!(done["chapters_done"], 3);
    assert_eq!(server.chapter_numbers(&story), [1, 2, 3]);
    let history = versions(&server, &story, 3);
    assert_eq!(history.len(), 2, "the set-aside text stays a version");
    let v1 = server.get(&format!("/api/stories/{story}/chapters/3/versions/1"));
    assert_eq!(v1.json()["content"], old_three.as_str());
}

#[test]
fn the_trash_hides_a_story_keeps_it_whole_and_gives_it_back() {
    let server = Server::start(&["--builtin-delay-ms", "2000"]);
    let story = written_story_quickly(&server);
    let chapters_before = server.get(&format!("/api/stories/{story}/chapters")).json();
    let versions_before = versions(&server, &story, 1);
    let active = server.start_run(&story, None);
    let active_id = id_of(&active);

    assert_eq!(server.delete(&format!("/api/stories/{story}")).status, 204);
    assert_error(
        &server.get(&format!("/api/stories/{story}")),
        404,
        "STORY_NOT_FOUND",
    );
    assert_error(
        &server.get(&format!("/api/stories/{story}/chapters")),
        404,
        "STORY_NOT_FOUND",
    );
    assert_eq!(server.run(&active_id)["status"], "cancelled");
    let trash = server.get("/api/trash").json();
    assert_eq!(trash["stories"][0]["id"], story.as_str());
    assert_eq!(trash["stories"][0]["chapters"], 1);
    let orphans = server.get("/api/diagnostics/orphans").json();
    assert_eq!(orphans["runs"], json!([]), "{orphans}");
    assert_eq!(orphans["count"], 0);
    // The worker that held the run lets go within a watcher tick of the
    // cancel, accounting the call it abandoned and, unless the story was
    // already gone for it, saying it stopped: the runs are compared once
    // they have settled (the same twice, a second apart).
    let deadline = std::time::Instant::now() + RUN_TIMEOUT;
    let runs_in_trash = loop {
        let before = server.runs_of(&story);
        std::thread::sleep(Duration::from_secs(1));
        let after = server.runs_of(&story);
        if before == after {
            break after;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the trashed story's runs never settled"
        );
    };

    let resp = server.post_empty(&format!("/api/trash/{story}/restore"));
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        server.get(&format!("/api/stories/{story}/chapters")).json(),
        chapters_before
    );
    assert_eq!(versions(&server, &story, 1), versions_before);
    assert_eq!(server.runs_of(&story), runs_in_trash);
    assert_eq!(server.get("/api/trash").json()["stories"], json!([]));
    let again = server.post_empty(&format!("/api/trash/{story}/restore"));
    assert_error(&again, 409, "CONFLICT");
}

/// A story with one written chapter, on a server whose builtin generator is
/// slow (so that a second run is still active when the test deletes).
fn written_story_quickly(server: &Server) -> String {
    let story = create_story(server, json!({ "title": "Kept", "outline": outline(2) }));
    let story_id = id_of(&story);
    let run = server.start_run(&story_id, Some(&json!({ "until_chapter": 1 })));
    server.wait_for_run(&id_of(&run), "completed", RUN_TIMEOUT);
    story_id
}

#[test]
fn history_errors_are_clear_and_change_nothing() {
    let server = Server::start(&[]);
    let story = written_story(&server, 1);
    let missing = server.post_empty(&format!(
        "/api/stories/{story}/chapters/1/versions/9/restore"
    ));
    let error = assert_error(&missing, 404, "NOT_FOUND");
    assert_eq!(error["details"]["version"], 9);
    assert_eq!(versions(&server, &story, 1).len(), 1);
    assert_error(
        &server.get(&format!("/api/stories/{story}/chapters/1/versions/x")),
        400,
        "BAD_REQUEST",
    );
    assert_error(
        &server.post(
            &format!("/api/stories/{story}/rollback"),
            &json!({ "to": 1 }),
        ),
        422,
        "VALIDATION_FAILED",
    );
    let live = server.post_empty(&format!("/api/trash/{story}/restore"));
    assert_error(&live, 409, "CONFLICT");
}

#[test]
fn a_chapter_of_one_sentence_repeated_is_reported_by_diagnose_and_a_trashed_story_is_no_orphan() {
    let server = Server::start(&[]);
    let story = written_story(&server, 2);
    let clean = crate::util::cli(&server.db, &["diagnose", "--story", &story, "--json"]);
    let report: Value = serde_json::from_slice(&clean.stdout).unwrap();
    let codes: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        ["HEALTHY"],
        "builtin chapters pass the thresholds: {report}"
    );

    let parrot = "The courier crossed the flooded plain at dawn. ".repeat(300);
    let resp = server.patch(
        &format!("/api/stories/{story}/chapters/2"),
        &json!({ "content": parrot }),
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    let out = crate::util::cli(&server.db, &["diagnose", "--story", &story, "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let repetitive = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "CHAPTER_REPETITIVE")
        .unwrap_or_else(|| panic!("no repetition finding: {report}"));
    assert!(
        repetitive["message"]
            .as_str()
            .unwrap()
            .starts_with("chapter 2:")
    );
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["code"] == "CHAPTER_REPEATED_SENTENCES")
    );

    assert_eq!(server.delete(&format!("/api/stories/{story}")).status, 204);
    let out = crate::util::cli(&server.db, &["diagnose", "--story", &story, "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["exists"], true, "{report}");
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["code"] == "IN_TRASH")
    );
    assert!(
        !report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["code"] == "ORPHANED_RUNS")
    );
}
