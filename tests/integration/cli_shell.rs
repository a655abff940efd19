//! The command line as a shell user meets it: ids by a short prefix, a
//! mistyped `--db` that creates nothing, and a closed output pipe.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

use rusqlite::Connection;

use crate::util::{TempDb, bin, cli, stderr, stdout};

/// Adds a story and returns its id.
fn add(db: &Path, title: &str) -> String {
    let out = cli(db, &["story", "add", title]);
    assert!(out.status.success(), "{out:?}");
    stdout(&out).trim().to_string()
}

/// Gives the story `id` a new id starting with `prefix` (so two stories
/// share a prefix the test chooses).
fn rename(db: &Path, id: &str, new_id: &str) {
    Connection::open(db)
        .unwrap()
        .execute("UPDATE stories SET id = ?2 WHERE id = ?1", [id, new_id])
        .unwrap();
}

#[test]
fn ids_are_taken_by_a_unique_prefix_of_six_or_more_characters() {
    let temp = TempDb::new();
    let a = add(&temp.path, "Alpha");
    let b = add(&temp.path, "Beta");
    rename(&temp.path, &a, "abcdef01-0000-4000-8000-000000000001");
    rename(&temp.path, &b, "abcdef02-0000-4000-8000-000000000002");

    let shown = cli(&temp.path, &["story", "show", "abcdef01"]);
    assert!(shown.status.success(), "{}", stderr(&shown));
    assert!(stdout(&shown).contains("Alpha"), "{}", stdout(&shown));

    let ambiguous = cli(&temp.path, &["story", "show", "abcdef"]);
    assert_eq!(ambiguous.status.code(), Some(2));
    let message = stderr(&ambiguous);
    assert!(
        message.contains("abcdef01-0000-4000-8000-000000000001")
            && message.contains("abcdef02-0000-4000-8000-000000000002"),
        "the matches are listed: {message}"
    );

    let short = cli(&temp.path, &["story", "show", "abcde"]);
    assert_eq!(short.status.code(), Some(2));
    assert!(
        stderr(&short).contains("6 characters"),
        "{}",
        stderr(&short)
    );

    let none = cli(&temp.path, &["story", "show", "ffffff"]);
    assert_eq!(none.status.code(), Some(2));
    assert!(
        stderr(&none).contains("no story id starts with"),
        "{}",
        stderr(&none)
    );

    // Runs too: start one by the story's prefix, show it by its own.
    let started = cli(&temp.path, &["run", "start", "abcdef02"]);
    assert!(started.status.success(), "{}", stderr(&started));
    let run_id = stdout(&started)
        .split_whitespace()
        .find(|w| w.len() == 36 && w.chars().filter(|c| *c == '-').count() == 4)
        .unwrap_or_else(|| panic!("no run id in {}", stdout(&started)))
        .to_string();
    let run = cli(&temp.path, &["run", "show", &run_id[..8]]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(stdout(&run).contains(&run_id), "{}", stdout(&run));
}

#[test]
fn commands_that_only_read_or_run_never_create_a_missing_database() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.db");
    for args in [
        &["story", "list"][..],
        &["run", "show", "0123456789"],
        &["diagnose", "--all"],
        &["health-check"],
    ] {
        let out = cli(&missing, args);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("no database"), "{}", stderr(&out));
        assert!(!missing.exists(), "{args:?} created the database");
    }
    let nowhere = Path::new("/nonexistent/dir/x.db");
    let out = cli(nowhere, &["story", "list"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(!nowhere.exists());
    // Adding a story is how a database begins.
    add(&missing, "First");
    assert!(missing.exists());
}

#[test]
fn a_closed_output_pipe_ends_the_command_quietly() {
    let temp = TempDb::new();
    let id = add(&temp.path, "Long Enough");
    let chapter = "The tide came in. ".repeat(20_000);
    let file = temp.dir.path().join("chapter.txt");
    std::fs::write(&file, &chapter).unwrap();
    // A story with text enough to fill the pipe.
    Connection::open(&temp.path)
        .unwrap()
        .execute(
            "INSERT INTO chapters (story_id, number, title, content, word_count, created_at)
             VALUES (?1, 1, 'One', ?2, 80000, '2026-01-01T00:00:00.000Z')",
            [&id, &chapter],
        )
        .unwrap();
    let mut child = Command::new(bin())
        .args(["--db"])
        .arg(&temp.path)
        .args(["story", "export", &id])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader takes nothing and goes away, as `| head -c 0` does.
    drop(child.stdout.take());
    let mut errors = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut errors)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(errors.is_empty(), "no error message: {errors}");
    assert_ne!(status.code(), Some(3), "not a database failure: {status}");
}

#[test]
fn story_edit_changes_fields_says_what_the_outline_lacks_and_list_is_a_table() {
    let temp = TempDb::new();
    let id = add(&temp.path, "Draft Title");
    let out = cli(
        &temp.path,
        &[
            "story",
            "edit",
            &id[..8],
            "--title",
            "The Salt Road",
            "--outline",
            "Notes about the sea, nothing else.",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("warning: outline no chapter found"),
        "an outline that names no chapter is never silent: {}",
        stderr(&out)
    );
    let out = cli(
        &temp.path,
        &[
            "story",
            "edit",
            &id,
            "--outline",
            "Chapter One: Arrival\nChapter Two: The Ford",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let saved: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(saved["chapter_count"], 2, "{saved}");
    assert_eq!(saved["warnings"], serde_json::json!([]));
    assert_eq!(saved["story"]["title"], "The Salt Road");

    let listed = stdout(&cli(&temp.path, &["story", "list"]));
    let mut lines = listed.lines();
    let header = lines.next().unwrap_or_default();
    assert!(
        header.starts_with("ID") && header.ends_with("TITLE"),
        "{listed}"
    );
    let row = lines.next().unwrap_or_default();
    assert!(
        row.starts_with(&id[..8]) && row.ends_with("The Salt Road"),
        "{listed}"
    );
    assert_eq!(
        header.find("TITLE"),
        row.find("The Salt Road"),
        "columns align: {listed}"
    );
}

#[test]
fn run_start_wait_follows_the_run_and_exits_by_its_end() {
    use crate::util::Server;
    let temp = TempDb::new();
    let lonely = add(&temp.path, "Nobody Serves");
    let queued = cli(&temp.path, &["run", "start", &lonely]);
    assert!(queued.status.success());
    assert!(
        stderr(&queued).contains("no `storyflow serve` has been running"),
        "{}",
        stderr(&queued)
    );
    let out = cli(&temp.path, &["run", "cancel", stdout(&queued).trim()]);
    assert!(out.status.success(), "{}", stderr(&out));

    let server = Server::start_on(&temp.path, &[]);
    let story = add(&temp.path, "Served");
    let out = cli(
        &temp.path,
        &[
            "story",
            "edit",
            &story,
            "--outline",
            "Chapter 1: One\nChapter 2: Two",
        ],
    );
    assert!(out.status.success());
    let waited = cli(&temp.path, &["run", "start", &story, "--wait"]);
    assert_eq!(waited.status.code(), Some(0), "{}", stderr(&waited));
    let progress = stderr(&waited);
    assert!(
        !progress.contains("warning"),
        "a serve is running: {progress}"
    );
    assert!(
        progress
            .lines()
            .last()
            .unwrap_or_default()
            .starts_with("completed · 2/2"),
        "{progress}"
    );
    drop(server);

    // A run that fails exits 1.
    let llm = crate::util::fake_llm::FakeLlm::start(vec![crate::util::fake_llm::status(
        401,
        r#"{"error": {"message": "Invalid API key"}}"#,
    )]);
    let _server = Server::start_on(&temp.path, &llm.args(&[]));
    let doomed = add(&temp.path, "Doomed");
    let failed = cli(&temp.path, &["run", "start", &doomed, "--wait"]);
    assert_eq!(failed.status.code(), Some(1), "{}", stderr(&failed));
    assert!(
        stderr(&failed).contains("GENERATOR_AUTH"),
        "{}",
        stderr(&failed)
    );
}
