//! The command line as a child process, continued from [`crate::cli`]:
//! choosing the database file, two processes on one file, chapter history
//! and the trash.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::cli::*;
use crate::util::{Api, Server, TempDb, bin, cli, outline, stderr};
use serde_json::{Value, json};

// ---------------------------------------------------------------- choosing the file

pub(crate) fn bare_command(cwd: &Path) -> Command {
    let mut command = Command::new(bin());
    command
        .current_dir(cwd)
        .env("RUST_LOG", "warn")
        .env_remove("STORYFLOW_DB")
        .env_remove("STORYFLOW_TOKEN");
    command
}

#[test]
fn db_flag_and_storyflow_db_env_choose_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let from_env = dir.path().join("env.db");
    let from_flag = dir.path().join("flag.db");

    let out = bare_command(dir.path())
        .env("STORYFLOW_DB", &from_env)
        .args(["story", "add", "Chosen by the environment"])
        .output()
        .unwrap();
    ok(&out);
    assert!(from_env.exists());
    assert!(
        !dir.path().join("storyflow.db").exists(),
        "STORYFLOW_DB was ignored"
    );

    // --db wins over the environment.
    let out = bare_command(dir.path())
        .env("STORYFLOW_DB", &from_env)
        .arg("--db")
        .arg(&from_flag)
        .args(["story", "add", "Chosen by the flag"])
        .output()
        .unwrap();
    ok(&out);
    assert!(from_flag.exists());

    let titles = |db: &Path| -> Vec<String> {
        json_of(&ok(&cli(db, &["story", "list", "--json"])))
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["title"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(titles(&from_env), ["Chosen by the environment"]);
    assert_eq!(titles(&from_flag), ["Chosen by the flag"]);

    // The global flag may also follow the command.
    let out = bare_command(dir.path())
        .args(["story", "list", "--db"])
        .arg(&from_flag)
        .output()
        .unwrap();
    assert!(ok(&out).contains("Chosen by the flag"));

    // Neither: storyflow.db in the working directory.
    let out = bare_command(dir.path())
        .args(["story", "add", "The default"])
        .output()
        .unwrap();
    ok(&out);
    assert_eq!(titles(&dir.path().join("storyflow.db")), ["The default"]);

    // An unusable file chosen by the environment is named like one from the flag.
    let out = bare_command(dir.path())
        .env("STORYFLOW_DB", dir.path())
        .args(["story", "list"])
        .output()
        .unwrap();
    let err = fails(&out, 3);
    assert!(one_line(&err).contains("directory"), "{err}");
}

#[test]
fn every_command_has_help() {
    let dir = tempfile::tempdir().unwrap();
    for command in [
        vec![],
        vec!["serve"],
        vec!["story"],
        vec!["story", "add"],
        vec!["story", "list"],
        vec!["story", "show"],
        vec!["story", "export"],
        vec!["run"],
        vec!["run", "start"],
        vec!["run", "show"],
        vec!["run", "cancel"],
        vec!["run", "retry"],
        vec!["diagnose"],
        vec!["health-check"],
        vec!["fix-orphans"],
        vec!["backup"],
    ] {
        let out = bare_command(dir.path())
            .args(&command)
            .arg("--help")
            .output()
            .unwrap();
        let text = ok(&out);
        assert!(text.contains("Usage: storyflow"), "{command:?}: {text}");
        assert!(text.contains("--db"), "{command:?}: {text}");
        let out = bare_command(dir.path())
            .arg("help")
            .args(&command)
            .output()
            .unwrap();
        assert!(ok(&out).contains("Usage: storyflow"), "help {command:?}");
    }
    let top = ok(&bare_command(dir.path()).arg("--help").output().unwrap());
    for command in [
        "serve",
        "story",
        "run",
        "diagnose",
        "health-check",
        "fix-orphans",
        "backup",
    ] {
        assert!(
            top.contains(command),
            "{command} missing from --help: {top}"
        );
    }
    assert!(top.contains("STORYFLOW_DB"), "{top}");
    // Asking for help never touches a database.
    assert!(!dir.path().join("storyflow.db").exists());
}

// ---------------------------------------------------------------- two processes

/// The server writes continuously (workers, a builtin delay, a fast sweep)
/// while CLI processes add stories, start runs and list, all on one file.
/// No `database is locked` reaches the user: no CLI failure, no 5xx from the
/// server, and every run completes.
#[test]
fn the_cli_and_the_server_share_one_database_file() {
    let db = TempDb::new();
    let server = Arc::new(Server::start_on(
        &db.path,
        &[
            "--workers",
            "3",
            "--builtin-delay-ms",
            "2",
            "--sweep-interval-s",
            "1",
        ],
    ));

    // Meanwhile an HTTP client creates stories and runs and reads.
    let stop = Arc::new(AtomicBool::new(false));
    let http = {
        let (server, stop) = (server.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            let mut runs = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                let created = server.post(
                    "/api/stories",
                    &json!({"title": format!("HTTP {i}"), "outline": outline(3)}),
                );
                seen.push((created.status, created.text()));
                if created.status == 201 {
                    let id = created.json()["id"].as_str().unwrap().to_string();
                    let run = server.post_empty(&format!("/api/stories/{id}/runs"));
                    seen.push((run.status, run.text()));
                    if run.status == 202 {
                        runs.push(run.json()["id"].as_str().unwrap().to_string());
                    }
                }
                for path in ["/api/runs?limit=20", "/api/stories?limit=20", "/api/health"] {
                    let resp = server.get(path);
                    seen.push((resp.status, resp.text()));
                }
            }
            (seen, runs)
        })
    };

    let mut cli_runs = Vec::new();
    for i in 0..15 {
        let add = cli(
            &db.path,
            &[
                "story",
                "add",
                &format!("CLI {i}"),
                "--outline",
                &outline(3),
            ],
        );
        let story = ok(&add).trim().to_string();
        assert!(!stderr(&add).contains("locked"), "{}", stderr(&add));
        let start = cli(&db.path, &["run", "start", &story]);
        cli_runs.push(ok(&start).trim().to_string());
        for args in [
            vec!["story", "list", "--limit", "5"],
            vec!["run", "show", cli_runs.last().unwrap().as_str()],
            vec!["story", "show", story.as_str()],
        ] {
            let out = cli(&db.path, &args);
            ok(&out);
            assert!(!stderr(&out).contains("locked"), "{}", stderr(&out));
        }
    }
    stop.store(true, Ordering::SeqCst);
    let (seen, http_runs) = http.join().expect("the HTTP client thread");

    for (status, body) in &seen {
        assert!(
            (200..300).contains(status),
            "the server answered {status} while the CLI worked: {body}"
        );
    }
    assert!(!http_runs.is_empty());
    for run in cli_runs.iter().chain(&http_runs) {
        let done = server.wait_for_run(run, "completed", WAIT);
        assert_eq!(done["chapters_done"], 3, "{done}");
    }
    let log = server.log_text();
    assert!(!log.contains("Workflow error occurred"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    // And the CLI sees everything the server wrote.
    let total = json_of(&ok(&cli(
        &db.path,
        &["story", "list", "--json", "--limit", "1000"],
    )));
    assert_eq!(
        total.as_array().unwrap().len(),
        cli_runs.len() + http_runs.len()
    );
}

// ------------------------------------------------- chapter history, trash

/// A story with three imported chapters (no server needed); its id.
pub(crate) fn imported_story(db: &TempDb) -> String {
    let file = db.dir.path().join("book.md");
    let text = "# Book\n## Chapter 1: One\nFirst text.\n## Chapter 2: Two\nSecond.\n## Chapter 3: Three\nThird.\n";
    std::fs::write(&file, text).expect("write the manuscript");
    ok(&cli(
        &db.path,
        &["story", "import", &file.to_string_lossy()],
    ))
    .trim()
    .to_string()
}

pub(crate) fn chapter_json(db: &Path, story: &str, n: &str) -> Value {
    json_of(&ok(&cli(db, &["chapter", "show", story, n, "--json"])))
}

pub(crate) fn history_json(db: &Path, story: &str, n: &str) -> Vec<Value> {
    let out = ok(&cli(db, &["chapter", "history", story, n, "--json"]));
    json_of(&out)["versions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn chapter_history_and_restore_bring_back_an_earlier_text() {
    let db = TempDb::new();
    let story = imported_story(&db);
    ok(&cli(
        &db.path,
        &[
            "chapter",
            "edit",
            &story,
            "1",
            "--text",
            "Rewritten by hand.",
        ],
    ));
    let table = ok(&cli(&db.path, &["chapter", "history", &story, "1"]));
    let rows: Vec<&str> = table.lines().collect();
    assert!(
        rows[0].contains("version") && rows[0].contains("source"),
        "{table}"
    );
    assert!(
        rows[1].contains("edited") && rows[2].contains("imported"),
        "{table}"
    );
    let versions = history_json(&db.path, &story, "1");
    let numbers: Vec<&Value> = versions.iter().map(|v| &v["version"]).collect();
    assert_eq!(numbers, [&json!(2), &json!(1)], "newest first");

    let out = ok(&cli(&db.path, &["chapter", "restore", &story, "1", "1"]));
    assert!(out.contains("version 3"), "{out}");
    assert_eq!(
        chapter_json(&db.path, &story, "1")["content"],
        "First text."
    );
    let versions = history_json(&db.path, &story, "1");
    assert_eq!(versions.len(), 3);
    assert_eq!(versions[0]["source"], "restored");

    // A version that does not exist: exit 2, nothing changed.
    let err = fails(&cli(&db.path, &["chapter", "restore", &story, "1", "9"]), 2);
    assert!(err.contains("9"), "{err}");
    assert_eq!(history_json(&db.path, &story, "1").len(), 3);
    assert_eq!(
        chapter_json(&db.path, &story, "1")["content"],
        "First text."
    );
    fails(&cli(&db.path, &["chapter", "history", &story, "7"]), 2);
}

#[test]
fn a_locked_chapter_refuses_regenerate_until_unlocked() {
    let db = TempDb::new();
    let story = imported_story(&db);
    ok(&cli(&db.path, &["chapter", "lock", &story, "2"]));
    assert_eq!(chapter_json(&db.path, &story, "2")["locked"], true);
    fails(
        &cli(&db.path, &["chapter", "regenerate", &story, "2", "--yes"]),
        2,
    );
    ok(&cli(&db.path, &["chapter", "unlock", &story, "2"]));
    assert_eq!(chapter_json(&db.path, &story, "2")["locked"], false);
    let run = ok(&cli(
        &db.path,
        &["chapter", "regenerate", &story, "2", "--yes"],
    ));
    let shown = json_of(&ok(&cli(&db.path, &["run", "show", run.trim(), "--json"])));
    assert_eq!(shown["status"], "pending");
}

#[test]
fn regenerate_off_a_terminal_without_yes_is_refused_and_queues_nothing() {
    let db = TempDb::new();
    let story = imported_story(&db);
    let err = fails(&cli(&db.path, &["chapter", "regenerate", &story, "1"]), 2);
    assert!(err.contains("--yes"), "{err}");
    let shown = json_of(&ok(&cli(&db.path, &["story", "show", &story, "--json"])));
    assert_eq!(shown["runs"].as_array().map(Vec::len), Some(0));
}

#[test]
fn story_delete_moves_to_the_trash_and_story_restore_brings_it_back() {
    let db = TempDb::new();
    let story = imported_story(&db);
    let out = ok(&cli(&db.path, &["story", "delete", &story]));
    assert!(out.contains("story restore"), "says how to restore: {out}");
    fails(&cli(&db.path, &["story", "show", &story]), 2);
    let listed = json_of(&ok(&cli(&db.path, &["story", "list", "--json"])));
    assert_eq!(listed.as_array().map(Vec::len), Some(0));
    ok(&cli(&db.path, &["story", "restore", &story]));
    let shown = json_of(&ok(&cli(&db.path, &["story", "show", &story, "--json"])));
    assert_eq!(shown["chapters_saved"], 3);
    assert_eq!(chapter_json(&db.path, &story, "3")["content"], "Third.");
    fails(&cli(&db.path, &["story", "restore", &story]), 2);
}
