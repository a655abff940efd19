//! Importing a manuscript: through the API (`POST /api/stories/import`) and
//! the CLI (`story import`), a run that writes only the missing chapters,
//! and manuscripts that are refused without a story being created.

use std::time::Duration;

use serde_json::{Value, json};

use crate::util::{Api, Server, TempDb, assert_error, cli, id_of, stderr, stdout};

const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// The text of chapter `n`, with what an import must keep byte for byte:
/// indentation, tabs, trailing spaces, inner blank lines, non-ASCII.
fn chapter_text(n: u32) -> String {
    format!(
        "  Chapter {n} opens indented.\n\n\tThe ferryman said “not today” — and meant it.  \n\n\nLast line of {n}, café."
    )
}

/// A five-chapter Markdown manuscript with a `# Title` line and a premise.
fn manuscript() -> String {
    let mut text = String::from("# The Salt Road\n\nA courier crosses a drowned country.\n\n");
    for n in 1..=5 {
        text.push_str(&format!(
            "## Chapter {n}: Leg {n}\n\n{}\n\n",
            chapter_text(n)
        ));
    }
    text
}

fn story_count(server: &Server) -> usize {
    let resp = server.get("/api/stories");
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.json()["stories"].as_array().map_or(0, Vec::len)
}

fn content_of(chapters: &[Value], n: u64) -> String {
    chapters
        .iter()
        .find(|c| c["number"] == n)
        .and_then(|c| c["content"].as_str())
        .unwrap_or_else(|| panic!("no chapter {n}"))
        .to_string()
}

#[test]
fn a_five_chapter_manuscript_of_eight_keeps_its_chapters_and_a_run_writes_six_to_eight() {
    let server = Server::start(&[]);
    let resp = server.post(
        "/api/stories/import",
        &json!({ "markdown": manuscript(), "chapter_count": 8 }),
    );
    assert_eq!(resp.status, 201, "{}", resp.text());
    let body = resp.json();
    assert_eq!(body["chapters_imported"], 5);
    assert_eq!(body["story"]["title"], "The Salt Road");
    assert_eq!(
        body["story"]["premise"],
        "A courier crosses a drowned country."
    );
    assert_eq!(body["story"]["chapter_count"], 8);
    let story = id_of(&body["story"]);
    let imported = server.chapters(&story);
    assert_eq!(server.chapter_numbers(&story), vec![1, 2, 3, 4, 5]);
    for n in 1..=5u32 {
        assert_eq!(content_of(&imported, n.into()), chapter_text(n));
    }
    let versions = server.get(&format!("/api/stories/{story}/chapters/1/versions"));
    assert_eq!(versions.json()["versions"][0]["source"], "imported");

    let run = server.start_run(&story, None);
    server.wait_for_run(&id_of(&run), "completed", RUN_TIMEOUT);
    assert_eq!(
        server.chapter_numbers(&story),
        (1..=8).collect::<Vec<u64>>()
    );
    let after = server.chapters(&story);
    for n in 1..=5u32 {
        assert_eq!(content_of(&after, n.into()), chapter_text(n), "chapter {n}");
        let resp = server.get(&format!("/api/stories/{story}/chapters/{n}/versions"));
        assert_eq!(resp.json()["versions"].as_array().map(Vec::len), Some(1));
    }
    for n in 6..=8u64 {
        assert!(!content_of(&after, n).is_empty(), "chapter {n} not written");
    }
}

#[test]
fn a_manuscript_without_chapter_headings_is_422_and_creates_no_story() {
    let server = Server::start(&[]);
    let resp = server.post(
        "/api/stories/import",
        &json!({ "title": "Loose Prose", "markdown": "# Loose Prose\n\nNo chapters here, only prose." }),
    );
    let error = assert_error(&resp, 422, "VALIDATION_FAILED");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("no chapter headings")),
        "{error}"
    );
    assert_eq!(story_count(&server), 0);
    let resp = server.post(
        "/api/stories/import",
        &json!({ "markdown": manuscript(), "bogus": 1 }),
    );
    assert_eq!(resp.status / 100, 4, "{}", resp.text());
    assert_eq!(story_count(&server), 0);
}

#[test]
fn story_import_from_the_cli_saves_the_chapters_and_refuses_a_manuscript_without_headings() {
    let db = TempDb::new();
    let dir = db.path.parent().expect("a temporary directory");
    let file = dir.join("salt-road.md");
    std::fs::write(&file, manuscript()).expect("write the manuscript");
    let file_arg = file.to_string_lossy().to_string();
    let out = cli(
        &db.path,
        &[
            "story",
            "import",
            &file_arg,
            "--title",
            "Given Title",
            "--chapter-count",
            "6",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let id = stdout(&out).trim().to_string();
    assert!(
        stderr(&out).contains("imported 5 chapters"),
        "{}",
        stderr(&out)
    );
    let shown = cli(&db.path, &["story", "show", &id, "--json"]);
    let shown: Value = serde_json::from_str(&stdout(&shown)).expect("JSON");
    assert_eq!(shown["story"]["title"], "Given Title");
    assert_eq!(shown["chapter_count"], 6);
    assert_eq!(shown["chapters_saved"], 5);
    let chapter = cli(&db.path, &["chapter", "show", &id, "3", "--json"]);
    let chapter: Value = serde_json::from_str(&stdout(&chapter)).expect("JSON");
    assert_eq!(chapter["content"], chapter_text(3));

    let bare = dir.join("bare.txt");
    std::fs::write(&bare, "Just a page of prose.\nNo headings.").expect("write");
    let out = cli(
        &db.path,
        &[
            "story",
            "import",
            &bare.to_string_lossy(),
            "--title",
            "Bare",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no chapter headings"),
        "{}",
        stderr(&out)
    );
    let list = cli(&db.path, &["story", "list", "--json"]);
    let list: Value = serde_json::from_str(&stdout(&list)).expect("JSON");
    assert_eq!(list.as_array().map(Vec::len), Some(1));
}
