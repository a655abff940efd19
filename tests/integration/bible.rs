//! The story bible: its routes (in process: shapes, validation, 404s), the
//! entries each chapter's prompt carries as the fake OpenAI-compatible
//! server receives them (real server), the budget with a large bible, the
//! `bible` commands of the CLI, and search finding an entry.

use std::time::Duration;

use serde_json::{Value, json};

use crate::util::fake_llm::{FakeLlm, Seen};
use crate::util::{
    self, Api, InProcess, Server, TempDb, assert_error, cli, create_story, id_of, outline, stdout,
};

const WAIT: Duration = Duration::from_secs(60);

fn bible_path(story: &str) -> String {
    format!("/api/stories/{story}/bible")
}

fn add(api: &impl Api, story: &str, body: Value) -> Value {
    let resp = api.post(&bible_path(story), &body);
    assert_eq!(resp.status, 201, "{}", resp.text());
    resp.json()
}

/// The chapter requests (not outlines, summaries or continuations), in order.
fn chapter_prompts(seen: &[Seen]) -> Vec<String> {
    seen.iter()
        .filter(|s| !s.is_summary() && !s.is_outline() && !s.is_continuation())
        .map(|s| s.body["messages"].to_string())
        .collect()
}

#[test]
fn bible_entries_are_created_listed_changed_and_removed() {
    let api = InProcess::new();
    let story = id_of(&create_story(&api, json!({"title": "Tide"})));
    let created = api.post(
        &bible_path(&story),
        &json!({"kind": "character", "name": " Mara ", "aliases": ["the Captain", "mara"],
                "description": "Rows the ferry.", "pinned": true}),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let entry = created.json();
    let entry_id = id_of(&entry);
    assert_eq!(
        created.header("location"),
        Some(format!("/api/stories/{story}/bible/{entry_id}").as_str())
    );
    assert_eq!(entry["name"], "Mara");
    assert_eq!(entry["aliases"], json!(["the Captain"]));
    assert_eq!(entry["pinned"], true);
    assert_eq!(entry["story_id"], story.as_str());
    add(&api, &story, json!({"kind": "place", "name": "Salt Road"}));

    let listed = api.get(&bible_path(&story)).json();
    let names: Vec<&str> = listed["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Mara", "Salt Road"]);

    let entry_path = format!("{}/{entry_id}", bible_path(&story));
    let patched = api.patch(&entry_path, &json!({"pinned": false, "kind": "object"}));
    assert_eq!(patched.status, 200, "{}", patched.text());
    assert_eq!(patched.json()["pinned"], false);
    assert_eq!(patched.json()["kind"], "object");
    assert_eq!(patched.json()["description"], "Rows the ferry.");

    assert_eq!(api.delete(&entry_path).status, 204);
    assert_error(&api.delete(&entry_path), 404, "NOT_FOUND");
    assert_error(
        &api.patch(&entry_path, &json!({"name": "X"})),
        404,
        "NOT_FOUND",
    );
    assert_eq!(
        api.get(&bible_path(&story)).json()["entries"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // A story in the trash has no bible here.
    assert_eq!(api.delete(&format!("/api/stories/{story}")).status, 204);
    assert_error(&api.get(&bible_path(&story)), 404, "STORY_NOT_FOUND");
    assert_error(
        &api.post(&bible_path(&story), &json!({"kind": "fact", "name": "x"})),
        404,
        "STORY_NOT_FOUND",
    );
}

#[test]
fn bad_bible_entries_are_refused_naming_the_field() {
    let api = InProcess::new();
    let story = id_of(&create_story(&api, json!({"title": "Tide"})));
    for (body, field) in [
        (json!({"kind": "character", "name": "  "}), "name"),
        (json!({"kind": "monster", "name": "Mara"}), "kind"),
        (json!({"name": "Mara"}), "kind"),
        (
            json!({"kind": "place", "name": "M", "aliases": [3]}),
            "aliases[0]",
        ),
        (
            json!({"kind": "place", "name": "M", "aliases": "Mara"}),
            "aliases",
        ),
        (json!({"kind": "place", "name": "n".repeat(201)}), "name"),
        (
            json!({"kind": "place", "name": "M", "description": "d".repeat(10_001)}),
            "description",
        ),
        (
            json!({"kind": "place", "name": "M", "colour": "red"}),
            "colour",
        ),
    ] {
        let resp = api.post(&bible_path(&story), &body);
        let error = assert_error(&resp, 422, "VALIDATION_FAILED");
        assert_eq!(error["details"]["field"], field, "{body}: {error}");
    }
    let entry = id_of(&add(
        &api,
        &story,
        json!({"kind": "thread", "name": "The debt"}),
    ));
    let resp = api.patch(
        &format!("{}/{entry}", bible_path(&story)),
        &json!({"pinned": null}),
    );
    assert_error(&resp, 422, "VALIDATION_FAILED");
    assert_error(
        &api.patch(&format!("{}/not-an-id", bible_path(&story)), &json!({})),
        400,
        "BAD_REQUEST",
    );
}

#[test]
fn a_chapter_prompt_carries_the_entries_it_mentions_and_the_pinned_ones() {
    let llm = FakeLlm::start(Vec::new());
    let server = Server::start(&llm.args(&["--workers", "1"]));
    let plan = "## Chapter 1: Dawn\nThe ferry leaves the harbour.\n\
                ## Chapter 2: Fog\nNobody speaks.\n\
                ## Chapter 3: The Smuggler\nThe ferry meets Oren Vail at the reef.\n";
    let story = id_of(&create_story(
        &server,
        json!({"title": "Tide", "outline": plan}),
    ));
    add(
        &server,
        &story,
        json!({"kind": "character", "name": "Oren Vail", "aliases": ["the Smuggler"],
               "description": "Deals in salt; owes the harbourmaster."}),
    );
    add(
        &server,
        &story,
        json!({"kind": "place", "name": "Greywater", "pinned": true,
               "description": "A drowned town under the bay."}),
    );
    let run = id_of(&server.start_run(&story, None));
    server.wait_for_run(&run, "completed", WAIT);

    let prompts = chapter_prompts(&llm.seen());
    assert_eq!(prompts.len(), 3, "{prompts:?}");
    for prompt in &prompts {
        assert!(prompt.contains("A drowned town under the bay."), "{prompt}");
    }
    assert!(
        !prompts[0].contains("Deals in salt"),
        "chapter 1: {}",
        prompts[0]
    );
    assert!(
        prompts[2].contains("Oren Vail (character; also: the Smuggler): Deals in salt"),
        "chapter 3: {}",
        prompts[2]
    );
    let events = server.event_messages(&run, "prompt");
    let third = events
        .iter()
        .find(|e| e.starts_with("chapter 3 prompt"))
        .unwrap_or_else(|| panic!("no chapter 3 prompt event: {events:?}"));
    assert!(third.contains("bible: Greywater, Oren Vail"), "{third}");
    let first = events
        .iter()
        .find(|e| e.starts_with("chapter 1 prompt"))
        .unwrap_or_else(|| panic!("no chapter 1 prompt event: {events:?}"));
    assert!(
        first.contains("bible: Greywater") && !first.contains("Oren"),
        "{first}"
    );
}

#[test]
fn a_forty_entry_bible_never_pushes_a_prompt_over_the_budget() {
    let llm = FakeLlm::start(Vec::new());
    let context_tokens = 3072;
    let server = Server::start(&llm.args(&["--workers", "1", "--llm-context-tokens", "3072"]));
    let names: Vec<String> = (1..=40).map(|n| format!("Keeper{n}")).collect();
    // Every chapter's outline entry names every entry: all 40 are wanted.
    let plan: String = (1..=3)
        .map(|n| format!("## Chapter {n}: Beat {n}\n{}\n", names.join(", ")))
        .collect();
    let story = id_of(&create_story(
        &server,
        json!({"title": "Lights", "outline": plan}),
    ));
    for (n, name) in names.iter().enumerate() {
        add(
            &server,
            &story,
            json!({"kind": "character", "name": name, "pinned": n < 2,
                   "description": format!("{name} keeps a light. ").repeat(150)}),
        );
    }
    let run = id_of(&server.start_run(&story, None));
    server.wait_for_run(&run, "completed", WAIT);

    let seen = llm.seen();
    let chapters: Vec<&Seen> = seen
        .iter()
        .filter(|s| !s.is_summary() && !s.is_outline())
        .collect();
    assert!(chapters.len() >= 3, "{}", chapters.len());
    let budget = context_tokens - context_tokens / 4;
    for request in &chapters {
        // The builder's own estimate: 3.5 characters a token, 8 per message.
        let estimate = (request.prompt_chars() as f64 / 3.5).ceil() as usize + 16;
        assert!(
            estimate <= budget as usize,
            "a prompt of ≈{estimate} tokens over the budget of {budget}"
        );
        let prompt = request.body["messages"].to_string();
        assert!(prompt.contains("Keeper1 (character)"), "pinned first");
    }
    let events = server.event_messages(&run, "prompt");
    let third = events
        .iter()
        .find(|e| e.starts_with("chapter 3 prompt"))
        .unwrap_or_else(|| panic!("{events:?}"));
    assert!(third.contains("bible: Keeper1, Keeper2"), "{third}");
    // The rest are counted; the least relevant are the ones left out.
    assert!(third.contains("bible entries left out: "), "{third}");
    assert!(third.contains(" more"), "{third}");
    assert!(!third.contains("left out: Keeper1,"), "{third}");
}

#[test]
fn the_cli_lists_adds_edits_and_removes_entries() {
    let db = TempDb::new();
    let story = stdout(&cli(&db.path, &["story", "add", "Tide"]))
        .trim()
        .to_string();
    let short = &story[..6];
    let added = cli(
        &db.path,
        &[
            "bible",
            "add",
            short,
            "Mara Okafor",
            "--kind",
            "character",
            "--alias",
            "the Captain",
            "--description",
            "Rows the ferry.",
            "--pinned",
        ],
    );
    assert!(added.status.success(), "{}", util::stderr(&added));
    let entry = stdout(&added).trim().to_string();
    let place = cli(
        &db.path,
        &["bible", "add", &story, "Greywater", "--kind", "place"],
    );
    assert!(place.status.success(), "{}", util::stderr(&place));

    let listed = stdout(&cli(&db.path, &["bible", "list", short]));
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 3, "{listed}");
    assert!(
        lines[0].starts_with("ID        KIND       PINNED  NAME"),
        "{listed}"
    );
    assert!(lines[1].starts_with(&entry[..8]), "{listed}");
    assert!(lines[1].ends_with("Mara Okafor  the Captain"), "{listed}");
    // Aligned: the names start in the same column.
    assert_eq!(
        lines[1].find("Mara"),
        lines[2].find("Greywater"),
        "{listed}"
    );

    let edited = cli(
        &db.path,
        &[
            "bible",
            "edit",
            short,
            &entry[..7],
            "--unpin",
            "--alias",
            "mara okafor",
            "--alias",
            "Ma",
            "--json",
        ],
    );
    assert!(edited.status.success(), "{}", util::stderr(&edited));
    let json: Value = serde_json::from_str(&stdout(&edited)).unwrap();
    assert_eq!(json["pinned"], false);
    assert_eq!(json["aliases"], json!(["Ma"]));

    let bad = cli(&db.path, &["bible", "add", short, "X", "--kind", "monster"]);
    assert_eq!(bad.status.code(), Some(2));
    let removed = cli(&db.path, &["bible", "remove", short, &entry[..6]]);
    assert!(removed.status.success(), "{}", util::stderr(&removed));
    let again = cli(&db.path, &["bible", "remove", short, &entry[..6]]);
    assert_eq!(again.status.code(), Some(2));
    assert!(util::stderr(&again).contains("no bible entry id starts with"));
    let json: Value =
        serde_json::from_str(&stdout(&cli(&db.path, &["bible", "list", short, "--json"]))).unwrap();
    assert_eq!(json["entries"].as_array().unwrap().len(), 1);
}

#[test]
fn search_finds_a_bible_entry() {
    let api = InProcess::new();
    let story = id_of(&create_story(
        &api,
        json!({"title": "Tide", "outline": outline(2)}),
    ));
    add(
        &api,
        &story,
        json!({"kind": "object", "name": "The Brass Astrolabe", "aliases": ["the Wheel"],
               "description": "Found in the café by the pier; points at drowned towns."}),
    );
    let resp = api.get("/api/search?q=astrolabe");
    assert_eq!(resp.status, 200, "{}", resp.text());
    let hits = resp.json()["hits"].as_array().cloned().unwrap_or_default();
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0]["kind"], "bible");
    assert_eq!(hits[0]["chapter"], Value::Null);
    assert_eq!(hits[0]["title"], "The Brass Astrolabe");
    assert_eq!(hits[0]["story_id"], story.as_str());
    let by_description = api.get("/api/search?q=drowned%20cafe").json();
    let snippet = by_description["hits"][0]["snippet"].as_str().unwrap_or("");
    assert!(
        snippet.contains("[café]") && snippet.contains("[drowned]"),
        "{snippet}"
    );
}
