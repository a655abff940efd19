//! What writers ask every story generator for: long books that fit the
//! context window, no truncated chapters, editable prompts, EPUB, and
//! chapter-level control. Against the real server, with the fake LLM where a
//! model is needed.

use crate::util;

use std::io::Read;
use std::time::Duration;

use crate::util::fake_llm::{FakeLlm, Reply, Seen, default_reply};
use crate::util::{Api, Server, TempDb, create_story, outline, story_with_run};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);

/// Chapter text of about `words` words that names its request.
fn prose(number: usize, words: usize) -> String {
    let mut text = format!("Reply {number} begins.");
    for i in 0..words {
        text.push_str(if i % 12 == 11 { " tide." } else { " tide" });
    }
    text
}

#[test]
fn a_sixty_chapter_book_never_sends_a_prompt_over_the_budget() {
    const CONTEXT: usize = 2048;
    // A server that, like real ones, rejects with 400 any request whose
    // prompt and answer budget exceed its context (4 characters a token).
    let llm = FakeLlm::with_responder(Vec::new(), |seen: &Seen, number| {
        let tokens =
            seen.prompt_chars() / 4 + seen.body["max_tokens"].as_u64().unwrap_or(0) as usize;
        if tokens > CONTEXT {
            return Reply::Status(
                400,
                format!(
                    r#"{{"error":{{"message":"{tokens} tokens exceed the context of {CONTEXT}"}}}}"#
                ),
                Vec::new(),
            );
        }
        if seen.is_summary() {
            Reply::Text(format!(
                "Summary {number}: the courier crosses another flooded valley and loses a friend."
            ))
        } else {
            Reply::Text(prose(number, 120))
        }
    });
    let server = Server::start(&llm.args(&["--llm-context-tokens", "2048", "--workers", "1"]));
    let (story_id, run_id) = story_with_run(
        &server,
        json!({"title": "The Long Road", "premise": "A courier crosses a drowned country.", "outline": outline(60)}),
        None,
    );
    let run = server.wait_for_run(&run_id, "completed", Duration::from_secs(120));
    assert_eq!(run["chapters_done"], 60);
    let seen = llm.seen();
    assert_eq!(
        seen.len(),
        120,
        "60 chapters and 60 summaries, none rejected or retried"
    );
    let largest = seen
        .iter()
        .map(|s| s.prompt_chars() / 4 + 512)
        .max()
        .unwrap();
    assert!(largest <= CONTEXT, "largest request ≈ {largest} tokens");
    // The story so far really was carried, trimmed oldest-first, and said so.
    let last = seen
        .iter()
        .rev()
        .find(|s| !s.is_summary())
        .unwrap()
        .user_prompt()
        .to_string();
    assert!(last.contains("Chapter 59 (Beat 59): Summary"), "{last}");
    assert!(!last.contains("Chapter 1 (Beat 1): Summary"), "{last}");
    let prompts = server.event_messages(&run_id, "prompt");
    assert_eq!(prompts.len(), 60, "one estimate per chapter");
    assert!(
        prompts[0].starts_with("chapter 1 prompt ≈ "),
        "{}",
        prompts[0]
    );
    assert!(
        prompts[59].contains("of 1536 tokens; summaries of chapters 1-"),
        "{}",
        prompts[59]
    );
    assert_eq!(server.chapters(&story_id).len(), 60);
}

#[test]
fn chapters_cut_off_by_the_length_limit_are_continued_and_saved_whole() {
    // Chapter 1 arrives in three parts; every other answer is complete.
    let llm = FakeLlm::start(vec![
        Reply::Finish("The river rose in the night, and the".into(), "length"),
        Reply::Finish("ferryman woke to water at his door".into(), "length"),
        Reply::Text(", cold and loud. He ran.".into()),
    ]);
    let server = Server::start(&llm.args(&[]));
    let (story_id, run_id) = story_with_run(
        &server,
        json!({"title": "Flood", "outline": outline(2)}),
        None,
    );
    server.wait_for_run(&run_id, "completed", WAIT);
    let saved = server.chapters(&story_id);
    assert_eq!(
        saved[0]["content"],
        "The river rose in the night, and the ferryman woke to water at his door, cold and loud. He ran."
    );
    let seen = llm.seen();
    let continuation = seen
        .iter()
        .find(|s| s.is_continuation())
        .expect("a continuation request");
    assert!(
        continuation
            .user_prompt()
            .contains("The river rose in the night, and the"),
        "{}",
        continuation.user_prompt()
    );
    assert_eq!(server.event_messages(&run_id, "continued").len(), 2);
}

#[test]
fn a_chapter_that_never_completes_fails_the_run_chapter_truncated() {
    let llm = FakeLlm::with_responder(Vec::new(), |seen: &Seen, number| {
        if seen.is_summary() {
            default_reply(seen, number)
        } else {
            Reply::Finish(format!("part {number} and"), "length")
        }
    });
    let server = Server::start(&llm.args(&["--max-continuations", "2"]));
    let (story_id, run_id) = story_with_run(
        &server,
        json!({"title": "Endless", "outline": outline(2)}),
        None,
    );
    let run = server.wait_for_run(&run_id, "failed", WAIT);
    assert_eq!(run["error"]["code"], "CHAPTER_TRUNCATED", "{run}");
    assert!(
        run["error"]["message"]
            .as_str()
            .unwrap()
            .contains("after 2 continuations"),
        "{run}"
    );
    assert!(
        server.chapters(&story_id).is_empty(),
        "nothing cut off is saved"
    );
    assert_eq!(llm.seen().len(), 3, "the chapter and two continuations");
}

#[test]
fn a_short_command_chapter_is_continued_until_long_enough() {
    // The program writes 30 words a call; 50 are needed.
    let words = "word ".repeat(30);
    let command = format!("sh -c 'cat >/dev/null; echo {words}'");
    let server = Server::start(&["--generator", "command", "--generator-cmd", &command]);
    let (story_id, run_id) = story_with_run(
        &server,
        json!({"title": "Short", "outline": outline(1)}),
        None,
    );
    server.wait_for_run(&run_id, "completed", WAIT);
    assert_eq!(server.chapters(&story_id)[0]["word_count"], 60);
    assert_eq!(server.event_messages(&run_id, "continued").len(), 1);
}

#[test]
fn the_epub_export_is_a_valid_epub_3() {
    let server = Server::start(&[]);
    let (story_id, run_id) = story_with_run(
        &server,
        json!({"title": "Salt & <Stone>", "premise": "A courier crosses a drowned country.", "outline": outline(3)}),
        None,
    );
    server.wait_for_run(&run_id, "completed", WAIT);
    let resp = server.get(&format!("/api/stories/{story_id}/export?format=epub"));
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.header("content-type"), Some("application/epub+zip"));
    assert!(
        resp.header("content-disposition")
            .unwrap()
            .contains("salt-stone.epub")
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("book.epub");
    std::fs::write(&path, &resp.body).unwrap();

    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(resp.body.clone())).unwrap();
    {
        let mut first = zip.by_index(0).unwrap();
        assert_eq!(first.name(), "mimetype", "mimetype must be the first entry");
        assert_eq!(first.compression(), zip::CompressionMethod::Stored);
        let mut text = String::new();
        first.read_to_string(&mut text).unwrap();
        assert_eq!(text, "application/epub+zip");
    }
    let read = |zip: &mut zip::ZipArchive<std::io::Cursor<Vec<u8>>>, name: &str| {
        let mut text = String::new();
        zip.by_name(name)
            .unwrap_or_else(|_| panic!("{name} missing"))
            .read_to_string(&mut text)
            .unwrap();
        text
    };
    let container = read(&mut zip, "META-INF/container.xml");
    let opf_path = container
        .split("full-path=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let opf = read(&mut zip, &opf_path);
    assert!(opf.contains("version=\"3.0\""), "{opf}");
    assert!(
        opf.contains("Salt &amp; &lt;Stone&gt;"),
        "the title, escaped: {opf}"
    );
    let base = opf_path
        .rsplit_once('/')
        .map_or(String::new(), |(dir, _)| format!("{dir}/"));
    for n in 1..=3 {
        let chapter = read(&mut zip, &format!("{base}chapter_{n:04}.xhtml"));
        assert!(
            chapter.contains(&format!("Chapter {n}: Beat {n}")),
            "{chapter}"
        );
        assert!(
            opf.contains(&format!("chapter_{n:04}.xhtml")),
            "chapter {n} in the manifest"
        );
    }
    let names: Vec<String> = zip.file_names().map(str::to_string).collect();
    assert!(
        names.iter().any(|n| n.ends_with("nav.xhtml")),
        "a navigation document: {names:?}"
    );
    // The reference checker (scripts/test.sh installs it from apt).
    let jar = "/usr/share/java/epubcheck.jar";
    assert!(
        std::path::Path::new(jar).exists(),
        "epubcheck is missing: run scripts/test.sh, which installs it"
    );
    let check = std::process::Command::new("java")
        .args(["-jar", jar])
        .arg(&path)
        .output()
        .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(check.status.success(), "epubcheck: {report}");
    assert!(
        report.contains("No errors or warnings detected"),
        "epubcheck: {report}"
    );
    // The same book from the command line.
    let out = dir.path().join("cli.epub");
    let db = server.db.clone();
    let output = util::cli(
        &db,
        &[
            "story",
            "export",
            &story_id,
            "--format",
            "epub",
            "--output",
            out.to_str().unwrap(),
        ],
    );
    assert!(output.status.success(), "{}", util::stderr(&output));
    assert!(
        zip::ZipArchive::new(std::fs::File::open(&out).unwrap())
            .unwrap()
            .len()
            >= 7
    );
    assert_eq!(
        server
            .get(&format!("/api/stories/{story_id}/export?format=pdf"))
            .error_code(),
        "VALIDATION_FAILED"
    );
}

#[test]
fn prompt_templates_can_be_overridden_and_bad_ones_refuse_to_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("chapter.txt"),
        "HOUSE STYLE. Write chapter {chapter_number}: {chapter_title} of {title}.",
    )
    .unwrap();
    let llm = FakeLlm::start(Vec::new());
    let prompts = dir.path().to_str().unwrap().to_string();
    let server = Server::start(&llm.args(&["--prompts", &prompts]));
    let (_, run_id) = story_with_run(
        &server,
        json!({"title": "Styled", "outline": outline(1)}),
        None,
    );
    server.wait_for_run(&run_id, "completed", WAIT);
    let chapter = llm.seen().into_iter().find(|s| !s.is_summary()).unwrap();
    assert_eq!(
        chapter.user_prompt(),
        "HOUSE STYLE. Write chapter 1: Beat 1 of Styled."
    );
    drop(server);

    std::fs::write(
        dir.path().join("summary.txt"),
        "Summarise\n{chapter_text}\nin the style of {narrator}",
    )
    .unwrap();
    let temp = TempDb::new();
    let output = util::cli(
        &temp.path,
        &["serve", "--addr", "127.0.0.1:0", "--prompts", &prompts],
    );
    assert_eq!(output.status.code(), Some(2), "{}", util::stderr(&output));
    let stderr = util::stderr(&output);
    assert!(
        stderr.contains("summary.txt:3: unknown placeholder `{narrator}`"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

#[test]
fn a_chapter_can_be_edited_and_one_chapter_regenerated_alone() {
    let server = Server::start(&[]);
    let (story_id, run_id) = story_with_run(
        &server,
        json!({"title": "Edits", "outline": outline(4)}),
        None,
    );
    server.wait_for_run(&run_id, "completed", WAIT);
    let before = server.chapters(&story_id);

    // Edit chapter 2: new text, word count, no stale summary.
    let path = format!("/api/stories/{story_id}/chapters/2");
    let edited = server.patch(
        &path,
        &json!({"content": "My own words for this chapter.", "title": "Mine"}),
    );
    assert_eq!(edited.status, 200, "{}", edited.text());
    let edited = edited.json();
    assert_eq!(
        (edited["word_count"].as_u64(), edited["title"].as_str()),
        (Some(6), Some("Mine"))
    );
    assert_eq!(edited["summary"], "");
    assert!(edited["updated_at"].is_string());
    assert_eq!(
        server.patch(&path, &json!({"content": "  "})).error_code(),
        "VALIDATION_FAILED"
    );
    assert_eq!(
        server
            .patch(
                &format!("/api/stories/{story_id}/chapters/9"),
                &json!({"content": "x"})
            )
            .error_code(),
        "VALIDATION_FAILED"
    );
    assert_eq!(
        server
            .patch(
                &format!("/api/stories/{story_id}/chapters/zero"),
                &json!({"content": "x"})
            )
            .error_code(),
        "BAD_REQUEST"
    );

    // Regenerate chapter 3: it changes (and gets a summary); 1, 2 and 4 are byte-identical.
    let regen = server.post_empty(&format!("/api/stories/{story_id}/chapters/3/regenerate"));
    assert_eq!(regen.status, 202, "{}", regen.text());
    let regen = regen.json();
    assert_eq!(
        (
            regen["regenerate_chapter"].as_u64(),
            regen["chapters_total"].as_u64()
        ),
        (Some(3), Some(1))
    );
    let done = server.wait_for_run(regen["id"].as_str().unwrap(), "completed", WAIT);
    assert_eq!(done["progress"], 100);
    let after = server.chapters(&story_id);
    assert_eq!(after.len(), 4);
    assert_eq!(after[0], before[0]);
    assert_eq!(after[1]["content"], "My own words for this chapter.");
    assert_eq!(after[3], before[3]);
    assert_eq!(after[2]["run_id"], regen["id"]);
    assert!(after[2]["updated_at"].is_string());
    assert!(!after[2]["summary"].as_str().unwrap().is_empty());
    // The edited chapter 2 got a fresh summary before chapter 3 was written.
    assert!(
        after[1]["summary"]
            .as_str()
            .unwrap()
            .contains("My own words"),
        "{}",
        after[1]
    );
    let md = server
        .get(&format!("/api/stories/{story_id}/export"))
        .text();
    assert!(
        md.contains("## Chapter 2: Mine\n\nMy own words for this chapter."),
        "{md}"
    );
    // A chapter not written yet cannot be regenerated.
    let missing = server.post_empty(&format!("/api/stories/{story_id}/chapters/5/regenerate"));
    assert_eq!(
        missing.error_code(),
        "VALIDATION_FAILED",
        "{}",
        missing.text()
    );

    // The same from the command line.
    let db = server.db.clone();
    let text = dir_file("The writer's chapter one.");
    let out = util::cli(
        &db,
        &[
            "chapter",
            "edit",
            &story_id,
            "1",
            "--file",
            text.1.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", util::stderr(&out));
    let shown = util::cli(&db, &["chapter", "show", &story_id, "1", "--json"]);
    let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["content"], "The writer's chapter one.");
    let out = util::cli(&db, &["chapter", "regenerate", &story_id, "4", "--yes"]);
    assert!(out.status.success(), "{}", util::stderr(&out));
    server.wait_for_run(util::stdout(&out).trim(), "completed", WAIT);
    // Rewrite runs count their one chapter: no totals disagree afterwards.
    let check = util::cli(&db, &["health-check", "--json"]);
    assert_eq!(check.status.code(), Some(0), "{}", util::stdout(&check));
    assert_eq!(
        server.chapters(&story_id)[0]["content"],
        "The writer's chapter one."
    );
}

fn dir_file(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chapter.txt");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn until_chapter_stops_early_and_a_later_run_continues() {
    let server = Server::start(&[]);
    let (story_id, run_id) = story_with_run(
        &server,
        json!({"title": "In Parts", "outline": outline(6)}),
        Some(&json!({"until_chapter": 2})),
    );
    let run = server.wait_for_run(&run_id, "completed", WAIT);
    assert_eq!(
        (
            run["chapters_done"].as_u64(),
            run["chapters_total"].as_u64(),
            run["until_chapter"].as_u64()
        ),
        (Some(2), Some(2), Some(2))
    );
    assert_eq!(server.chapters(&story_id).len(), 2);
    let first_two = server.chapters(&story_id);

    let db = server.db.clone();
    let out = util::cli(&db, &["run", "start", &story_id, "--until-chapter", "4"]);
    assert!(out.status.success(), "{}", util::stderr(&out));
    let second = server.wait_for_run(util::stdout(&out).trim(), "completed", WAIT);
    assert_eq!(
        (
            second["chapters_done"].as_u64(),
            second["chapters_total"].as_u64()
        ),
        (Some(4), Some(4))
    );

    let rest = server
        .post_empty(&format!("/api/stories/{story_id}/runs"))
        .json();
    let third = server.wait_for_run(rest["id"].as_str().unwrap(), "completed", WAIT);
    assert_eq!(third["chapters_done"], 6);
    let all = server.chapters(&story_id);
    let numbers: Vec<u64> = all.iter().map(|c| c["number"].as_u64().unwrap()).collect();
    assert_eq!(numbers, [1, 2, 3, 4, 5, 6]);
    assert_eq!(&all[..2], &first_two[..], "earlier chapters untouched");
    let bad = server.post(
        &format!("/api/stories/{story_id}/runs"),
        &json!({"until_chapter": 7}),
    );
    assert_eq!(bad.error_code(), "VALIDATION_FAILED", "{}", bad.text());
    assert_eq!(bad.json()["error"]["details"]["field"], "until_chapter");
}

#[test]
fn outline_problems_are_reported_when_the_story_is_saved() {
    let server = Server::start(&[]);
    let story = create_story(
        &server,
        json!({"title": "Gaps", "outline": "Chapter 1: A\nChapter 2: B\nChapter 10: C\nChapter 45: D\nChapter 2: B again", "chapter_count": 3}),
    );
    let warnings = story["warnings"].to_string();
    assert!(warnings.contains("chapters 3-9 are missing"), "{warnings}");
    assert!(
        warnings.contains("chapter 2 appears more than once"),
        "{warnings}"
    );
    assert!(
        warnings.contains("the chapter count is 3 but the outline names 4 chapters"),
        "{warnings}"
    );
    let id = story["id"].as_str().unwrap();
    let report = util::cli(&server.db, &["diagnose", "--story", id, "--json"]);
    let report: Value = serde_json::from_slice(&report.stdout).unwrap();
    assert!(
        report["outline_warnings"]
            .to_string()
            .contains("chapters 11-44 are missing"),
        "{report}"
    );
}
