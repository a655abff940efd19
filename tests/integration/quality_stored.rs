//! Quality signals stored with each chapter version (schema 0010): what the
//! API and `diagnose --story` show is what was measured when the version
//! was saved; `stock_phrases.txt` in `--prompts DIR` replaces the list; and
//! `serve --rewrite-repetitive R` writes a repetitive chapter once more.

use std::time::Duration;

use rusqlite::{Connection, params};
use serde_json::{Value, json};

use crate::util::fake_llm::{FakeLlm, Reply};
use crate::util::{self, Api, Server, create_story, id_of, outline, story_with_run};

const WAIT: Duration = Duration::from_secs(60);
const SENTENCE: &str = "The courier crossed the flooded plain at dawn.";

fn open_db(server: &Server) -> Connection {
    let conn = Connection::open(&server.db).expect("open the test database");
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn
}

/// The stored quality of each version of a chapter, oldest first (`None`
/// where the column is NULL).
fn stored(conn: &Connection, story: &str, number: u32) -> Vec<(u32, Option<Value>)> {
    conn.prepare(
        "SELECT version, quality FROM chapter_versions WHERE story_id = ?1 AND number = ?2
         ORDER BY version",
    )
    .unwrap()
    .query_map(params![story, number], |row| {
        let json: Option<String> = row.get(1)?;
        Ok((row.get(0)?, json.map(|j| serde_json::from_str(&j).unwrap())))
    })
    .unwrap()
    .collect::<rusqlite::Result<_>>()
    .unwrap()
}

fn quality_of(server: &Server, story: &str, number: u32) -> Value {
    let resp = server.get(&format!("/api/stories/{story}/chapters/{number}"));
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.json()["quality"].clone()
}

fn written_story(server: &Server) -> String {
    let story = id_of(&create_story(
        server,
        json!({ "title": "Measured", "outline": outline(2) }),
    ));
    let run = server.start_run(&story, None);
    server.wait_for_run(&id_of(&run), "completed", WAIT);
    story
}

#[test]
fn quality_is_stored_with_every_version_and_is_what_the_api_and_diagnose_show() {
    let server = Server::start(&[]);
    let story = written_story(&server);
    let conn = open_db(&server);

    // Generated: stored in the version row, and the API sends exactly it.
    let listed = server.chapters(&story);
    for number in 1..=2 {
        let versions = stored(&conn, &story, number);
        assert_eq!(versions.len(), 1, "{versions:?}");
        let generated = versions[0].1.clone().expect("stored when generated");
        assert_eq!(quality_of(&server, &story, number), generated);
        assert_eq!(listed[number as usize - 1]["quality"], generated);
    }
    let first = stored(&conn, &story, 2)[0].1.clone().unwrap();

    // Edited: the new version carries the new text's signals.
    let parrot = format!("{SENTENCE} ").repeat(200);
    let resp = server.patch(
        &format!("/api/stories/{story}/chapters/2"),
        &json!({ "content": parrot }),
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    let answered = resp.json()["quality"].clone();
    let versions = stored(&conn, &story, 2);
    assert_eq!(versions.len(), 2);
    assert_eq!(
        versions[0].1.as_ref(),
        Some(&first),
        "old versions unchanged"
    );
    let edited = versions[1].1.clone().expect("stored when edited");
    assert!(edited["repetition"].as_f64().unwrap() > 0.9, "{edited}");
    assert_eq!(edited["repeated_sentences"][0]["count"], 200, "{edited}");
    assert_eq!(quality_of(&server, &story, 2), edited);
    assert_eq!(answered, edited, "the edit answers with the new signals");
    let out = util::cli(&server.db, &["diagnose", "--story", &story, "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let codes: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["code"].as_str())
        .collect();
    assert!(codes.contains(&"CHAPTER_REPETITIVE"), "{report}");

    // Restored: the old version's signals come back with its text.
    let resp = server.post_empty(&format!(
        "/api/stories/{story}/chapters/2/versions/1/restore"
    ));
    assert_eq!(resp.status, 200, "{}", resp.text());
    let versions = stored(&conn, &story, 2);
    assert_eq!(versions.len(), 3);
    assert_eq!(versions[2].1.as_ref(), Some(&first));
    assert_eq!(quality_of(&server, &story, 2), first);

    // Reads take the stored value, not a new measure: a value changed
    // behind storyflow's back is what is shown...
    conn.execute(
        "UPDATE chapter_versions SET quality = json_set(quality, '$.repetition', 0.777)
         WHERE story_id = ?1 AND number = 2 AND version = 3",
        params![story],
    )
    .unwrap();
    assert_eq!(quality_of(&server, &story, 2)["repetition"], 0.777);
    // ...and a version saved before schema 0010 (no value) is measured.
    conn.execute(
        "UPDATE chapter_versions SET quality = NULL WHERE story_id = ?1 AND number = 2",
        params![story],
    )
    .unwrap();
    assert_eq!(quality_of(&server, &story, 2), first);
    assert_eq!(server.chapters(&story)[1]["quality"], first);
}

#[test]
fn a_stock_phrases_file_beside_the_prompts_replaces_the_list() {
    let prompts = tempfile::tempdir().unwrap();
    std::fs::write(
        prompts.path().join("stock_phrases.txt"),
        "# only mine\nbrass lantern\n",
    )
    .unwrap();
    let dir = prompts.path().to_str().unwrap();
    let server = Server::start(&["--prompts", dir]);
    let story = written_story(&server);
    let text = "A brass lantern swung. It was a testament to the storm. \
                The brass lantern went out over the water.";
    let resp = server.patch(
        &format!("/api/stories/{story}/chapters/1"),
        &json!({ "content": text }),
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    // The override's phrase is found; a phrase of the built-in list is not.
    assert_eq!(
        quality_of(&server, &story, 1)["stock_phrases"],
        json!([{ "phrase": "brass lantern", "count": 2 }])
    );

    // A file that is not UTF-8 stops serve at once, naming the problem.
    std::fs::write(prompts.path().join("stock_phrases.txt"), b"caf\xe9\n").unwrap();
    let db = util::TempDb::new();
    let out = util::cli(
        &db.path,
        &["serve", "--addr", "127.0.0.1:0", "--prompts", dir],
    );
    assert_eq!(out.status.code(), Some(2), "{}", util::stderr(&out));
    let stderr = util::stderr(&out);
    assert!(stderr.contains("--prompts"), "{stderr}");
    assert!(stderr.contains("is not UTF-8 text"), "{stderr}");
}

fn one_chapter() -> Value {
    json!({ "title": "The Salt Road", "outline": outline(1) })
}

/// A fake server answering the first chapter request with one sentence
/// repeated and the next with clean prose.
fn repetitive_then_clean() -> (FakeLlm, String, String) {
    let parrot = format!("{SENTENCE} ").repeat(40).trim_end().to_string();
    let clean = "Fog lay over the marsh. The courier waited for the ferry, \
                 counting the gulls, and thought of the letter sewn into her coat."
        .to_string();
    let llm = FakeLlm::start(vec![
        Reply::Text(parrot.clone()),
        Reply::Text(clean.clone()),
    ]);
    (llm, parrot, clean)
}

fn chapter_calls(conn: &Connection, story: &str) -> i64 {
    conn.query_row(
        "SELECT count(*) FROM generations WHERE story_id = ?1 AND kind = 'chapter'",
        params![story],
        |row| row.get(0),
    )
    .unwrap()
}

#[test]
fn rewrite_repetitive_writes_a_repetitive_chapter_again_and_keeps_the_better() {
    let (llm, _, clean) = repetitive_then_clean();
    let server = Server::start(&llm.args(&["--rewrite-repetitive", "0.2"]));
    let (story, run) = story_with_run(&server, one_chapter(), None);
    server.wait_for_run(&run, "completed", WAIT);

    let writing: Vec<_> = llm.seen().into_iter().filter(|s| !s.is_summary()).collect();
    assert_eq!(writing.len(), 2, "two chapter calls");
    assert_eq!(chapter_calls(&open_db(&server), &story), 2, "a row each");
    assert_eq!(server.chapters(&story)[0]["content"], clean);
    assert!(
        quality_of(&server, &story, 1)["repetition"]
            .as_f64()
            .unwrap()
            <= 0.2
    );
    let rewritten = server.event_messages(&run, "rewritten");
    assert_eq!(rewritten.len(), 1, "{rewritten:?}");
    let message = &rewritten[0];
    assert!(
        message.starts_with("chapter 1 repeated itself (0.9"),
        "{message}"
    );
    assert!(message.contains("above 0.2"), "{message}");
    assert!(
        message.contains("written again: 0.000; kept the second"),
        "{message}"
    );
}

#[test]
fn without_rewrite_repetitive_a_repetitive_chapter_is_saved_after_one_call() {
    let (llm, parrot, _) = repetitive_then_clean();
    let server = Server::start(&llm.args(&[]));
    let (story, run) = story_with_run(&server, one_chapter(), None);
    server.wait_for_run(&run, "completed", WAIT);

    let writing: Vec<_> = llm.seen().into_iter().filter(|s| !s.is_summary()).collect();
    assert_eq!(writing.len(), 1, "one chapter call");
    assert_eq!(chapter_calls(&open_db(&server), &story), 1);
    assert_eq!(server.chapters(&story)[0]["content"], parrot);
    assert!(!server.event_kinds(&run).contains(&"rewritten".to_string()));
}
