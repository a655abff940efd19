//! The command line as a child process: every story and run command, backup,
//! the choice of database file, exit codes and messages, and the CLI and the
//! server sharing one database file at the same time.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use crate::util::{Server, TempDb, cli, outline, stderr, stdout};
use serde_json::{Value, json};

pub(crate) const WAIT: Duration = Duration::from_secs(60);

/// Asserts success; returns standard output.
pub(crate) fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        stdout(output),
        stderr(output)
    );
    stdout(output)
}

/// Asserts exit `code`, no panic, and an error on standard error; returns it.
pub(crate) fn fails(output: &Output, code: i32) -> String {
    let err = stderr(output);
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout: {}\nstderr: {err}",
        stdout(output)
    );
    assert!(!err.contains("panicked"), "the CLI panicked: {err}");
    assert!(!err.contains("RUST_BACKTRACE"), "the CLI panicked: {err}");
    assert!(err.contains("error"), "no error message: {err}");
    err
}

/// Asserts the storyflow error is one line: `error: <sentence>`.
pub(crate) fn one_line(err: &str) -> &str {
    let err = err.trim();
    assert_eq!(err.lines().count(), 1, "not one line: {err}");
    assert!(err.starts_with("error: "), "{err}");
    err
}

pub(crate) fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

pub(crate) fn add_story(db: &Path, title: &str, chapters: u32) -> String {
    let out = ok(&cli(
        db,
        &["story", "add", title, "--outline", &outline(chapters)],
    ));
    out.trim().to_string()
}

// ---------------------------------------------------------------- stories

#[test]
fn story_add_list_show_and_export() {
    let db = TempDb::new();
    let id = ok(&cli(
        &db.path,
        &[
            "story",
            "add",
            "The Salt Road",
            "--premise",
            "A courier crosses a drowned country.",
            "--outline",
            &outline(3),
        ],
    ))
    .trim()
    .to_string();
    assert_eq!(id.len(), 36, "story add prints the id: {id}");

    let explicit = ok(&cli(
        &db.path,
        &["story", "add", "Counted", "--chapters", "7", "--json"],
    ));
    let explicit = json_of(&explicit);
    assert_eq!(explicit["chapter_count"], 7);
    assert_eq!(explicit["chapter_count_source"], "explicit");
    let explicit_id = explicit["story"]["id"].as_str().unwrap().to_string();

    let outline_file = db.dir.path().join("outline.md");
    std::fs::write(&outline_file, outline(4)).unwrap();
    let from_file = json_of(&ok(&cli(
        &db.path,
        &[
            "story",
            "add",
            "From a file",
            "--outline-file",
            outline_file.to_str().unwrap(),
            "--json",
        ],
    )));
    assert_eq!(from_file["chapter_count"], 4);
    assert_eq!(from_file["chapter_count_source"], "outline");

    let list = ok(&cli(&db.path, &["story", "list"]));
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 4, "a header and three stories: {list}");
    assert!(lines[0].starts_with("ID"), "{list}");
    assert!(
        lines[2].starts_with(&explicit_id[..8]),
        "newest first: {list}"
    );
    assert!(lines[3].starts_with(&id[..8]) && lines[3].ends_with("The Salt Road"));
    let chapters: Vec<&str> = lines[3].split_whitespace().collect();
    assert_eq!(chapters[1..3], ["3", "outline"], "{list}");
    let listed = json_of(&ok(&cli(
        &db.path,
        &["story", "list", "--json", "--limit", "2"],
    )));
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert_eq!(listed[0]["title"], "From a file");

    let show = ok(&cli(&db.path, &["story", "show", &id]));
    assert!(show.contains("The Salt Road"), "{show}");
    assert!(show.contains(&id));
    assert!(show.contains("0 saved of 3"), "{show}");
    assert!(show.contains("A courier crosses a drowned country."));
    let show = json_of(&ok(&cli(&db.path, &["story", "show", &id, "--json"])));
    assert_eq!(show["story"]["title"], "The Salt Road");
    assert_eq!(show["chapter_count"], 3);
    assert_eq!(show["chapters_saved"], 0);
    assert_eq!(show["runs"], json!([]));

    let export = ok(&cli(&db.path, &["story", "export", &id]));
    assert!(export.starts_with("# The Salt Road\n"), "{export}");
    assert!(export.contains("> A courier crosses a drowned country."));
}

#[test]
fn story_add_refuses_invalid_input_with_exit_2() {
    let db = TempDb::new();
    let err = fails(&cli(&db.path, &["story", "add", "   "]), 2);
    assert!(one_line(&err).contains("title"), "{err}");
    let err = fails(&cli(&db.path, &["story", "add", &"x".repeat(100_000)]), 2);
    assert!(one_line(&err).contains("500"), "{err}");
    assert!(err.len() < 400, "the title is echoed back: {err}");
    let err = fails(&cli(&db.path, &["story", "add", "t", "--chapters", "0"]), 2);
    assert!(one_line(&err).contains("chapter_count"), "{err}");
    let missing = db.dir.path().join("no-such-outline.md");
    let err = fails(
        &cli(
            &db.path,
            &[
                "story",
                "add",
                "t",
                "--outline-file",
                missing.to_str().unwrap(),
            ],
        ),
        2,
    );
    assert!(one_line(&err).contains("no-such-outline.md"), "{err}");
    assert_eq!(
        ok(&cli(&db.path, &["story", "list"])),
        "",
        "nothing was saved"
    );
}

// ---------------------------------------------------------------- runs

#[test]
fn run_start_show_cancel_and_retry() {
    let db = TempDb::new();
    let story = add_story(&db.path, "Queued", 3);
    let run = ok(&cli(&db.path, &["run", "start", &story]))
        .trim()
        .to_string();
    assert_eq!(run.len(), 36, "run start prints the id: {run}");

    let show = ok(&cli(&db.path, &["run", "show", &run]));
    assert!(show.contains(&run) && show.contains(&story), "{show}");
    assert!(show.contains("status: pending"), "{show}");
    assert!(show.contains("0% (0/3 chapters)"), "{show}");
    let shown = json_of(&ok(&cli(&db.path, &["run", "show", &run, "--json"])));
    assert_eq!(shown["status"], "pending");
    assert_eq!(shown["chapters_total"], 3);
    assert_eq!(shown["story_id"], story);

    // A second start conflicts: exit 2, naming the active run.
    let err = fails(&cli(&db.path, &["run", "start", &story]), 2);
    assert!(one_line(&err).contains(&run), "{err}");

    // Retry needs a failed or cancelled run.
    let err = fails(&cli(&db.path, &["run", "retry", &run]), 2);
    assert!(one_line(&err).contains("pending"), "{err}");

    let cancel = ok(&cli(&db.path, &["run", "cancel", &run]));
    assert!(
        cancel.contains(&run) && cancel.contains("cancelled"),
        "{cancel}"
    );
    let shown = json_of(&ok(&cli(&db.path, &["run", "show", &run, "--json"])));
    assert_eq!(shown["status"], "cancelled");
    let err = fails(&cli(&db.path, &["run", "cancel", &run]), 2);
    assert!(one_line(&err).contains("cancelled"), "{err}");

    let retry = ok(&cli(&db.path, &["run", "retry", &run]));
    assert!(
        retry.contains(&run) && retry.contains("queued again"),
        "{retry}"
    );
    let shown = json_of(&ok(&cli(&db.path, &["run", "show", &run, "--json"])));
    assert_eq!(shown["status"], "pending");

    let story_runs = json_of(&ok(&cli(&db.path, &["story", "show", &story, "--json"])));
    assert_eq!(story_runs["runs"][0]["id"], run);
    let json_start = fails(&cli(&db.path, &["run", "start", &story, "--json"]), 2);
    one_line(&json_start);
}

#[test]
fn a_run_queued_by_the_cli_is_written_by_a_server_and_exported() {
    let db = TempDb::new();
    let story = add_story(&db.path, "Handed Over", 3);
    let run = ok(&cli(&db.path, &["run", "start", &story]))
        .trim()
        .to_string();
    let server = Server::start_on(&db.path, &[]);
    server.wait_for_run(&run, "completed", WAIT);
    let shown = json_of(&ok(&cli(&db.path, &["run", "show", &run, "--json"])));
    assert_eq!(shown["status"], "completed");
    assert_eq!(shown["progress"], 100);
    let err = fails(&cli(&db.path, &["run", "cancel", &run]), 2);
    assert!(one_line(&err).contains("completed"), "{err}");
    let err = fails(&cli(&db.path, &["run", "retry", &run]), 2);
    assert!(one_line(&err).contains("completed"), "{err}");
    let export = ok(&cli(&db.path, &["story", "export", &story]));
    for i in 1..=3 {
        assert!(
            export.contains(&format!("## Chapter {i}: Beat {i}")),
            "{export}"
        );
    }
    let show = ok(&cli(&db.path, &["story", "show", &story]));
    assert!(show.contains("3 saved of 3"), "{show}");
    assert!(
        show.contains(&format!("run {run} completed 100%")),
        "{show}"
    );
}

// ---------------------------------------------------------------- backup

#[test]
fn backup_writes_a_copy_that_opens_and_refuses_to_overwrite() {
    let db = TempDb::new();
    let ids: Vec<String> = (1..=3)
        .map(|i| add_story(&db.path, &format!("Kept {i}"), 2))
        .collect();
    let copy = db.dir.path().join("copy.db");
    let out = ok(&cli(&db.path, &["backup", copy.to_str().unwrap()]));
    assert!(out.contains("copy.db"), "{out}");

    // The copy is a storyflow database holding the stories.
    let listed = json_of(&ok(&cli(&copy, &["story", "list", "--json"])));
    let mut copied: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    copied.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(copied, expected);
    let conn = rusqlite::Connection::open(&copy).unwrap();
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");

    // An existing file is never overwritten.
    std::fs::write(db.dir.path().join("taken.db"), b"precious").unwrap();
    let taken = db.dir.path().join("taken.db");
    let err = fails(&cli(&db.path, &["backup", taken.to_str().unwrap()]), 2);
    assert!(one_line(&err).contains("taken.db"), "{err}");
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(std::fs::read(&taken).unwrap(), b"precious");
    let err = fails(&cli(&db.path, &["backup", copy.to_str().unwrap()]), 2);
    one_line(&err);
    assert_eq!(
        json_of(&ok(&cli(&copy, &["story", "list", "--json"])))
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

#[test]
fn backup_is_consistent_while_the_server_writes() {
    let db = TempDb::new();
    let server = Server::start_on(&db.path, &["--builtin-delay-ms", "5"]);
    let story = add_story(&db.path, "Busy", 20);
    let run = ok(&cli(&db.path, &["run", "start", &story]))
        .trim()
        .to_string();
    let copy = db.dir.path().join("during.db");
    ok(&cli(&db.path, &["backup", copy.to_str().unwrap()]));
    server.wait_for_run(&run, "completed", WAIT);
    let conn = rusqlite::Connection::open(&copy).unwrap();
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    // Whatever moment it caught, chapters and progress agree in the copy.
    let (done, saved): (i64, i64) = conn
        .query_row(
            "SELECT chapters_done, (SELECT count(*) FROM chapters) FROM workflow_runs",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(done, saved);
}

// ---------------------------------------------------------------- exit codes

#[test]
fn usage_errors_exit_2() {
    let db = TempDb::new();
    let story = add_story(&db.path, "Present", 2);
    for args in [
        vec!["--bogus", "story", "list"],
        vec!["story", "list", "--bogus"],
        vec!["story", "frobnicate"],
        vec!["nonsense"],
        vec!["story", "add"],
        vec!["story", "list", "--limit", "many"],
        vec!["run", "start"],
        vec!["serve", "--workers", "-1"],
        vec!["diagnose"],
    ] {
        let out = cli(&db.path, &args);
        let err = fails(&out, 2);
        assert!(
            err.contains("Usage") || err.contains("--help"),
            "{args:?}: {err}"
        );
        assert_eq!(stdout(&out), "", "{args:?}");
    }

    // Bad ids name the id and exit 2.
    for args in [
        vec!["story", "show", "not-a-uuid"],
        vec!["story", "export", "not-a-uuid"],
        vec!["run", "start", "not-a-uuid"],
        vec!["run", "show", "not-a-uuid"],
        vec!["run", "cancel", "not-a-uuid"],
        vec!["run", "retry", "not-a-uuid"],
    ] {
        let err = fails(&cli(&db.path, &args), 2);
        assert!(
            one_line(&err).contains("`not-a-uuid` is not a"),
            "{args:?}: {err}"
        );
    }

    // Ids that do not exist are named, with what to do next.
    let missing = "3251c7d5-8f0e-4c52-9d7a-1b2c3d4e5f60";
    for (args, what) in [
        (vec!["story", "show", missing], "story"),
        (vec!["story", "export", missing], "story"),
        (vec!["run", "start", missing], "story"),
        (vec!["run", "show", missing], "run"),
        (vec!["run", "cancel", missing], "run"),
        (vec!["run", "retry", missing], "run"),
    ] {
        let err = fails(&cli(&db.path, &args), 2);
        let err = one_line(&err);
        assert!(
            err.contains(&format!("{what} {missing} does not exist")),
            "{args:?}: {err}"
        );
    }
    // Nothing was created by the failures: no orphan run.
    let runs = json_of(&ok(&cli(&db.path, &["story", "show", &story, "--json"])));
    assert_eq!(runs["runs"], json!([]));
}

/// Every way of pointing --db at something that is not a usable storyflow
/// database: exit 3, one clear sentence naming the path, never a panic.
#[test]
fn a_database_that_cannot_be_opened_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let not_sqlite = dir.path().join("notes.txt");
    std::fs::write(
        &not_sqlite,
        "these are my notes, not a database\n".repeat(100),
    )
    .unwrap();
    let short_junk = dir.path().join("junk.db");
    std::fs::write(&short_junk, b"junk").unwrap();
    let newer = dir.path().join("newer.db");
    {
        let conn = rusqlite::Connection::open(&newer).unwrap();
        conn.execute_batch("PRAGMA user_version = 99").unwrap();
    }
    let foreign = dir.path().join("foreign.db");
    {
        let conn = rusqlite::Connection::open(&foreign).unwrap();
        conn.execute_batch("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
            .unwrap();
    }
    let no_dir = dir.path().join("missing-dir").join("x.db");
    let backup = dir.path().join("never-written.db");
    let backup = backup.to_str().unwrap();

    let cases: Vec<(&Path, &str)> = vec![
        (dir.path(), "directory"),
        (&not_sqlite, "not an SQLite database"),
        (&short_junk, "not an SQLite database"),
        (&newer, "newer"),
        (&foreign, "not storyflow"),
        (&no_dir, "cannot be opened"),
    ];
    for (path, reason) in cases {
        for args in [
            vec!["story", "list"],
            vec!["story", "add", "t"],
            vec!["run", "show", "3251c7d5-8f0e-4c52-9d7a-1b2c3d4e5f60"],
            vec!["backup", backup],
            vec!["serve", "--addr", "127.0.0.1:0"],
        ] {
            let started = std::time::Instant::now();
            let out = cli(path, &args);
            // Refusing a file is immediate, not a wait for a pool timeout.
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{args:?} on {} took {:?}",
                path.display(),
                started.elapsed()
            );
            let err = fails(&out, 3);
            let err = one_line(&err);
            assert!(
                err.contains(&path.display().to_string()),
                "{args:?} on {}: the path is not named: {err}",
                path.display()
            );
            // A command that may not create the file says there is none.
            let reason = if path == no_dir.as_path()
                && !matches!(args[..2], ["story", "add"] | ["serve", _])
            {
                "no database at this path"
            } else {
                reason
            };
            assert!(
                err.contains(reason),
                "{args:?} on {}: {err}",
                path.display()
            );
        }
    }
    // Refusing a file changes nothing in it.
    assert_eq!(std::fs::read(&short_junk).unwrap(), b"junk");
    let version: i64 = rusqlite::Connection::open(&newer)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 99);
    let tables: i64 = rusqlite::Connection::open(&foreign)
        .unwrap()
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        tables, 1,
        "no storyflow tables were added to a foreign file"
    );
    assert!(!Path::new(backup).exists());
}
