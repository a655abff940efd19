//! Maintenance on damaged databases, continued from [`crate::maintenance`]:
//! a story whose outline names no chapters, totals that disagree, a damaged
//! file, and a server started on a damaged database.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::maintenance::*;
use crate::util::{Api, Server, TempDb, create_story, outline};
use rusqlite::Connection;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------
// a story whose outline names no chapters

/// A story with notes for an outline and no explicit count (plus a sound
/// one), made with the CLI; (loose story, its pending run, sound story).
pub(crate) fn default_count_db() -> (TempDb, String, String, String) {
    let temp = TempDb::new();
    let db = &temp.path;
    let (code, out) = cli_json(
        db,
        &[
            "story",
            "add",
            "Loose Notes",
            "--premise",
            "A clockmaker loses an hour.",
            "--outline",
            "Open on the workshop.\nSomething about the missing hour.\nEnd somewhere quiet.",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(out["chapter_count_source"], "default");
    let loose = out["story"]["id"].as_str().unwrap().to_string();
    let (code, out) = cli_json(db, &["story", "add", "Counted", "--chapters", "4"]);
    assert_eq!(code, 0, "{out}");
    let counted = out["story"]["id"].as_str().unwrap().to_string();
    let (code, run) = cli_json(db, &["run", "start", &loose]);
    assert_eq!(code, 0, "{run}");
    assert_eq!(run["chapters_total"], 10);
    (
        temp,
        loose,
        run["id"].as_str().unwrap().to_string(),
        counted,
    )
}

pub(crate) fn explicit_count(db: &Path, story: &str) -> Option<u32> {
    Connection::open(db)
        .unwrap()
        .query_row(
            "SELECT chapter_count FROM stories WHERE id = ?1",
            [story],
            |r| r.get(0),
        )
        .unwrap()
}

#[test]
fn a_story_whose_outline_names_no_chapters_falls_back_to_the_default_until_fixed() {
    let (temp, loose, run_id, counted) = default_count_db();
    let db = &temp.path;

    let (code, report) = cli_json(db, &["diagnose", "--story", &loose]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["exists"], true);
    assert_eq!(report["chapter_count"], 10);
    assert_eq!(report["chapter_count_source"], "default");
    // The outline is not empty yet names no chapter: the writer is told why.
    assert_eq!(
        codes(&report, "findings"),
        set(&["DEFAULT_CHAPTER_COUNT", "OUTLINE_PROBLEM"])
    );
    assert_eq!(
        finding(&report, "DEFAULT_CHAPTER_COUNT")["severity"],
        "warning"
    );
    let (code, report) = cli_json(db, &["diagnose", "--story", &counted]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["chapter_count_source"], "explicit");
    // The queued run itself is fine; the problem is its story's.
    let (code, report) = cli_json(db, &["diagnose", "--run", &run_id]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(codes(&report, "findings"), set(&["HEALTHY"]));

    let (code, report) = cli_json(db, &["diagnose", "--all"]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["stories_with_default_count"], json!([loose]));
    assert_eq!(codes(&report, "findings"), set(&["DEFAULT_CHAPTER_COUNT"]));
    assert!(recommends(&report, "health-check --fix"));

    let (code, report) = cli_json(db, &["health-check"]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(codes(&report, "problems"), set(&["DEFAULT_CHAPTER_COUNT"]));
    assert_eq!(problem(&report, "DEFAULT_CHAPTER_COUNT")["count"], 1);
    assert_eq!(problem(&report, "DEFAULT_CHAPTER_COUNT")["fixable"], true);

    let before = snapshot(db);
    let (code, report) = cli_json(db, &["fix-orphans", "--dry-run"]);
    assert_eq!(code, 0);
    assert_unchanged(db, &before, "fix-orphans --dry-run");
    assert_eq!(report["stories_given_default_count"], 0);
    assert!(
        report["summary"]
            .as_str()
            .unwrap()
            .contains("set a chapter count on 1 stories"),
        "{report}"
    );
    assert_eq!(explicit_count(db, &loose), None);

    let (code, report) = cli_json(db, &["fix-orphans"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["stories_given_default_count"], 1);
    assert_eq!(report["counts"]["runs"], 0);
    assert_eq!(explicit_count(db, &loose), Some(10));
    assert_eq!(explicit_count(db, &counted), Some(4));
    let (code, story) = cli_json(db, &["story", "show", &loose]);
    assert_eq!(code, 0);
    assert_eq!(story["chapter_count_source"], "explicit");
    let (code, report) = cli_json(db, &["health-check"]);
    assert_eq!(code, 0, "{report}");
    // The count is usable now; the outline itself still names no chapter,
    // and diagnose keeps saying so until the writer rewrites it.
    let (code, report) = cli_json(db, &["diagnose", "--story", &loose]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(codes(&report, "findings"), set(&["OUTLINE_PROBLEM"]));
}

#[test]
fn health_check_fix_gives_a_story_without_a_usable_count_an_explicit_one() {
    let (temp, loose, _, counted) = default_count_db();
    let db = &temp.path;
    let (code, report) = cli_json(db, &["health-check", "--fix"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["healthy"], true);
    assert_eq!(
        report["fixed"],
        json!(["set an explicit chapter count of 10 on 1 stories"])
    );
    assert_eq!(explicit_count(db, &loose), Some(10));
    assert_eq!(explicit_count(db, &counted), Some(4));
    let (code, report) = cli_json(db, &["health-check"]);
    assert_eq!(code, 0, "{report}");
    assert!(report["problems"].as_array().unwrap().is_empty());
    let (code, report) = cli_json(db, &["diagnose", "--all"]);
    assert_eq!(code, 0, "{report}");
}

// ---------------------------------------------------------------------------
// totals that disagree

/// A five-chapter story written to the end, whose last two chapters were
/// then deleted by hand; (story, run).
pub(crate) fn wrong_totals_db() -> (TempDb, String, String) {
    let temp = TempDb::new();
    let server = serve(&temp.path);
    let (story, run) = write_story(&server, "Pruned", 5);
    stop(server);
    let conn = Connection::open(&temp.path).unwrap();
    let deleted = conn
        .execute(
            "DELETE FROM chapters WHERE story_id = ?1 AND number > 3",
            [&story],
        )
        .unwrap();
    assert_eq!(deleted, 2);
    (temp, story, run)
}

pub(crate) fn chapters_done(db: &Path, run: &str) -> i64 {
    count(
        db,
        "SELECT chapters_done FROM workflow_runs WHERE id = ?1",
        run,
    )
}

#[test]
fn a_finished_run_whose_chapters_done_disagrees_with_its_chapters_is_found_and_recomputed() {
    let (temp, story, run) = wrong_totals_db();
    let db = &temp.path;

    let (code, report) = cli_json(db, &["diagnose", "--run", &run]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(codes(&report, "findings"), set(&["WRONG_TOTALS"]));
    assert!(recommends(&report, "health-check --fix"), "{report}");
    let (code, report) = cli_json(db, &["diagnose", "--story", &story]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["chapters_saved"], 3);
    assert!(
        codes(&report, "findings").contains("WRONG_TOTALS"),
        "{report}"
    );
    let (code, report) = cli_json(db, &["diagnose", "--all"]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(codes(&report, "findings"), set(&["WRONG_TOTALS"]));

    let (code, report) = cli_json(db, &["health-check"]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(codes(&report, "problems"), set(&["WRONG_TOTALS"]));
    assert_eq!(problem(&report, "WRONG_TOTALS")["count"], 1);
    assert_eq!(problem(&report, "WRONG_TOTALS")["fixable"], true);

    let before = snapshot(db);
    let (code, report) = cli_json(db, &["fix-orphans", "--dry-run"]);
    assert_eq!(code, 0);
    assert_unchanged(db, &before, "fix-orphans --dry-run");
    assert_eq!(report["counts"]["runs"], 0);
    let (code, _) = cli_json(db, &["fix-orphans"]);
    assert_eq!(code, 0);
    assert_eq!(
        chapters_done(db, &run),
        5,
        "not the orphan clean-up's business"
    );

    let (code, report) = cli_json(db, &["health-check", "--fix"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(
        report["fixed"],
        json!(["recomputed chapters_done of 1 runs from their saved chapters"])
    );
    assert_eq!(chapters_done(db, &run), 3);
    let (code, report) = cli_json(db, &["health-check"]);
    assert_eq!(code, 0, "{report}");
    let (code, report) = cli_json(db, &["diagnose", "--run", &run]);
    assert_eq!(code, 0, "{report}");
}

/// Regression: a cancelled run followed by a new run that finishes the book
/// is ordinary history, not a disagreement: the cancelled run did write only
/// the chapters it says it wrote.
#[test]
fn a_cancelled_run_superseded_by_a_new_one_is_healthy_history() {
    let temp = TempDb::new();
    let db = &temp.path;
    let server = Server::start_on(db, &["--workers", "1", "--builtin-delay-ms", "200"]);
    let story = create_story(
        &server,
        json!({"title": "Second Try", "outline": outline(5)}),
    );
    let story_id = story["id"].as_str().unwrap();
    let first = server
        .post_empty(&format!("/api/stories/{story_id}/runs"))
        .json();
    let first = first["id"].as_str().unwrap().to_string();
    assert!(server.wait_until(WAIT, || {
        server.get(&format!("/api/runs/{first}")).json()["chapters_done"] == 2
    }));
    assert_eq!(
        server
            .post_empty(&format!("/api/runs/{first}/cancel"))
            .status,
        200
    );
    let second = server.post_empty(&format!("/api/stories/{story_id}/runs"));
    assert_eq!(second.status, 202, "{}", second.text());
    let second = second.json()["id"].as_str().unwrap().to_string();
    server.wait_for_run(&second, "completed", WAIT);
    stop(server);
    let first_done = chapters_done(db, &first);
    assert!((2..5).contains(&first_done));

    let (code, report) = cli_json(db, &["health-check"]);
    assert_eq!(code, 0, "{report}");
    let (code, report) = cli_json(db, &["diagnose", "--all"]);
    assert_eq!(code, 0, "{report}");
    let (code, report) = cli_json(db, &["health-check", "--fix"]);
    assert_eq!(code, 0, "{report}");
    assert!(report["fixed"].as_array().unwrap().is_empty(), "{report}");
    assert_eq!(chapters_done(db, &first), first_done, "history rewritten");
}

// ---------------------------------------------------------------------------
// a damaged file

/// Zeroes the first page of index `index` in a checkpointed copy of `db`.
pub(crate) fn corrupt_copy(db: &Path, index: &str) -> PathBuf {
    let conn = Connection::open(db).unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    let page_size: i64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap();
    let root: i64 = conn
        .query_row(
            "SELECT rootpage FROM sqlite_schema WHERE type = 'index' AND name = ?1",
            [index],
            |r| r.get(0),
        )
        .unwrap();
    drop(conn);
    assert!(!wal_path(db).exists() || std::fs::metadata(wal_path(db)).unwrap().len() == 0);
    let copy = db.with_file_name("damaged.db");
    let mut bytes = std::fs::read(db).unwrap();
    let start = ((root - 1) * page_size) as usize;
    assert!(root > 1 && start + page_size as usize <= bytes.len());
    bytes[start..start + page_size as usize].fill(0);
    std::fs::write(&copy, bytes).unwrap();
    copy
}

#[test]
fn a_database_that_fails_the_integrity_check_is_not_touched_by_fix() {
    let (fx, conn) = OrphanDb::build();
    drop(conn);
    let damaged = corrupt_copy(fx.path(), "run_events_run");

    let before = snapshot(&damaged);
    let (code, report) = cli_json(&damaged, &["health-check"]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["integrity_ok"], false);
    assert_eq!(codes(&report, "problems"), set(&["INTEGRITY"]));
    assert_eq!(problem(&report, "INTEGRITY")["fixable"], false);

    let (code, report) = cli_json(&damaged, &["health-check", "--fix"]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["healthy"], false);
    assert_eq!(report["integrity_ok"], false);
    assert_eq!(codes(&report, "remaining"), set(&["INTEGRITY"]));
    let said = report["fixed"].to_string();
    assert!(said.contains("left untouched"), "{report}");
    assert_unchanged(&damaged, &before, "health-check --fix on a damaged file");
    let (code, text) = cli_text(&damaged, &["health-check", "--fix"]);
    assert_eq!(code, 1);
    assert!(text.contains("integrity FAILED"), "{text}");
    assert!(text.contains("left untouched"), "{text}");
    assert_unchanged(&damaged, &before, "health-check --fix (text)");
    // The same orphans in the sound original are what --fix would have removed.
    let (code, report) = cli_json(fx.path(), &["health-check", "--fix"]);
    assert_eq!(code, 0, "{report}");
    assert!(
        report["fixed"][0]
            .as_str()
            .unwrap()
            .starts_with("removed 2 orphaned runs")
    );
    assert_eq!(
        count(
            &damaged,
            "SELECT count(*) FROM workflow_runs WHERE story_id = ?1",
            &fx.gone
        ),
        2
    );
}

// ---------------------------------------------------------------------------
// a server on a damaged database

#[test]
fn a_server_fails_active_orphans_in_its_start_up_sweep_and_its_http_maintenance_agrees_with_the_cli()
 {
    let temp = TempDb::new();
    let db = &temp.path;
    // A run left `running` by a killed server ...
    let mut first = Server::start_on(db, &["--workers", "1", "--builtin-delay-ms", "500"]);
    let crashed = create_story(&first, json!({"title": "Crashed", "outline": outline(5)}));
    let crashed = crashed["id"].as_str().unwrap().to_string();
    let resp = first.post_empty(&format!("/api/stories/{crashed}/runs"));
    let running_run = resp.json()["id"].as_str().unwrap().to_string();
    assert!(first.wait_until(WAIT, || {
        first.get(&format!("/api/runs/{running_run}")).json()["chapters_done"] == 1
    }));
    first.kill();
    // ... a run queued from the shell, older than the sound one ...
    let (_, out) = cli_json(db, &["story", "add", "Queued", "--outline", &outline(3)]);
    let queued = out["story"]["id"].as_str().unwrap().to_string();
    let (_, run) = cli_json(db, &["run", "start", &queued]);
    let pending_run = run["id"].as_str().unwrap().to_string();
    let (_, out) = cli_json(db, &["story", "add", "Sound", "--outline", &outline(3)]);
    let sound = out["story"]["id"].as_str().unwrap().to_string();
    let (_, run) = cli_json(db, &["run", "start", &sound]);
    let sound_run = run["id"].as_str().unwrap().to_string();
    // ... and the first two stories deleted with the sqlite3 shell.
    let conn = Connection::open(db).unwrap();
    delete_story_behind_storyflows_back(&conn, &crashed);
    delete_story_behind_storyflows_back(&conn, &queued);
    drop(conn);
    assert_eq!(run_status(db, &running_run).0, "running");
    assert_eq!(run_status(db, &pending_run).0, "pending");

    let sweeps_before: i64 = Connection::open(db)
        .unwrap()
        .query_row("SELECT coalesce(max(id), 0) FROM sweeps", [], |r| r.get(0))
        .unwrap();
    let server = Server::start_on(db, &["--workers", "1", "--sweep-interval-s", "1"]);
    // The other story's run completes normally.
    let run = server.wait_for_run(&sound_run, "completed", WAIT);
    assert_eq!(run["chapters_done"], 3);
    // The orphans were failed, not run, and by the very first sweep.
    for orphan in [&running_run, &pending_run] {
        let (status, code, owner) = run_status(db, orphan);
        assert_eq!(
            (status.as_str(), code.as_deref(), owner),
            ("failed", Some("ORPHANED_RUN"), None)
        );
    }
    // The sweep records itself when it is done, after marking.
    let mut first_sweep = None;
    assert!(server.wait_until(WAIT, || {
        first_sweep = Connection::open(db)
            .unwrap()
            .query_row(
                "SELECT changes FROM sweeps WHERE id > ?1 ORDER BY id LIMIT 1",
                [sweeps_before],
                |r| r.get::<_, String>(0),
            )
            .ok();
        first_sweep.is_some()
    }));
    let first_sweep: Value = serde_json::from_str(&first_sweep.unwrap()).unwrap();
    assert_eq!(
        ids_of(&first_sweep["orphans_marked_failed"]),
        set(&[&running_run, &pending_run]),
        "{first_sweep}"
    );
    assert!(!server.log_text().contains(&format!(
        "Story context loaded successfully: run {pending_run}"
    )));

    let orphans = server.get("/api/diagnostics/orphans");
    assert_eq!(orphans.status, 200);
    let orphans = orphans.json();
    assert_eq!(orphans["count"], 2, "{orphans}");
    assert_eq!(
        ids(&orphans["runs"], "id"),
        set(&[&running_run, &pending_run])
    );
    for run in orphans["runs"].as_array().unwrap() {
        assert_eq!(run["status"], "failed");
        assert_eq!(run["error_code"], "ORPHANED_RUN");
    }
    let (code, all) = cli_json(db, &["diagnose", "--all"]);
    assert_eq!(code, 1);
    assert_eq!(
        ids(&all["orphaned_runs"], "id"),
        ids(&orphans["runs"], "id")
    );
    assert_eq!(all["failed_by_code"]["ORPHANED_RUN"], 2);

    // Degraded while the orphans remain.
    let mut health = Value::Null;
    assert!(server.wait_until(WAIT, || {
        health = server.get("/api/health").json();
        !health["last_sweep"].is_null()
    }));
    assert_eq!(health["status"], "degraded", "{health}");

    // The diagnostics routes say what the CLI says.
    let same = |http: &Value, cli: &Value| {
        for key in ["exists", "findings", "recommendations"] {
            assert_eq!(http[key], cli[key], "{key}: http {http} cli {cli}");
        }
    };
    for run in [&pending_run, &sound_run, &UNKNOWN_ID.to_string()] {
        let resp = server.get(&format!("/api/diagnostics/runs/{run}"));
        assert_eq!(resp.status, 200, "{}", resp.text());
        let (code, cli) = cli_json(db, &["diagnose", "--run", run, "--verbose"]);
        let http = resp.json();
        same(&http, &cli);
        assert_eq!(http["story_exists"], cli["story_exists"]);
        assert_eq!(code, if run == &sound_run { 0 } else { 1 }, "{cli}");
    }
    let http = server
        .get(&format!("/api/diagnostics/runs/{UNKNOWN_ID}"))
        .json();
    assert_eq!(http["exists"], false);
    for story in [&queued, &sound, &UNKNOWN_ID.to_string()] {
        let resp = server.get(&format!("/api/diagnostics/stories/{story}"));
        assert_eq!(resp.status, 200, "{}", resp.text());
        let http = resp.json();
        let (_, cli) = cli_json(db, &["diagnose", "--story", story]);
        same(&http, &cli);
        assert_eq!(ids(&http["runs"], "id"), ids(&cli["runs"], "id"));
    }
    let http = server
        .get(&format!("/api/diagnostics/stories/{queued}"))
        .json();
    assert_eq!(http["exists"], false);
    assert_eq!(ids(&http["runs"], "id"), set(&[&pending_run]));
    assert!(recommends(&http, "storyflow fix-orphans"));
    let http = server
        .get(&format!("/api/diagnostics/stories/{UNKNOWN_ID}"))
        .json();
    assert_eq!(http["exists"], false);
    assert_eq!(codes(&http, "findings"), set(&["STORY_NOT_FOUND"]));

    // The health check and the orphan dry run, over HTTP and from the shell.
    let resp = server.get("/api/maintenance/health");
    assert_eq!(resp.status, 200);
    let http = resp.json();
    let (code, cli) = cli_json(db, &["health-check"]);
    assert_eq!(code, 1);
    assert_eq!(http["healthy"], false);
    assert_eq!(http["problems"], cli["problems"]);
    assert_eq!(
        codes(&http, "problems"),
        set(&[
            "ORPHANED_RUNS",
            "ORPHANED_CHAPTERS",
            "ORPHANED_VERSIONS",
            "ORPHANED_EVENTS"
        ])
    );
    let resp = server.get("/api/maintenance/health?fix=true");
    assert_eq!(resp.status, 400, "a GET never fixes: {}", resp.text());
    let resp = server.post_empty("/api/maintenance/fix-orphans?dry_run=true");
    assert_eq!(resp.status, 200, "{}", resp.text());
    let http = resp.json();
    let (code, cli) = cli_json(db, &["fix-orphans", "--dry-run"]);
    assert_eq!(code, 0);
    assert_eq!(http["dry_run"], true);
    assert_eq!(http["counts"], cli["counts"]);
    assert_eq!(http["orphaned_runs"], cli["orphaned_runs"]);
    assert_eq!(http["counts"]["runs"], 2);
    assert_eq!(http["counts"]["active_runs"], 0, "the sweep failed them");
    assert_eq!(server.get("/api/diagnostics/orphans").json()["count"], 2);

    // Fix over HTTP; the next sweep clears the degraded status.
    let resp = server.post_empty("/api/maintenance/health?fix=true");
    assert_eq!(resp.status, 200, "{}", resp.text());
    let fixed = resp.json();
    assert_eq!(fixed["healthy"], true, "{fixed}");
    assert!(
        fixed["fixed"][0]
            .as_str()
            .unwrap()
            .starts_with("removed 2 orphaned runs"),
        "{fixed}"
    );
    assert_eq!(server.get("/api/diagnostics/orphans").json()["count"], 0);
    let (code, cli) = cli_json(db, &["health-check"]);
    assert_eq!(code, 0, "{cli}");
    assert_eq!(
        server.get("/api/maintenance/health").json()["healthy"],
        true
    );
    assert!(
        server.wait_until(WAIT, || server.get("/api/health").json()["status"] == "ok"),
        "{}",
        server.get("/api/health").text()
    );
    assert_eq!(run_status(db, &sound_run).0, "completed");
    stop(server);
}

pub(crate) fn ids_of(list: &Value) -> BTreeSet<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}
