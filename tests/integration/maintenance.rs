//! Diagnostics, the health check and the orphan clean-up on databases damaged
//! the way they are in the field: storyflow writes a real database (through a
//! server or the CLI), then plain SQLite breaks it as a person with the
//! `sqlite3` shell would, and the maintenance commands must find exactly the
//! damage, repair what is safe, and change nothing when asked not to.

use crate::util;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::util::{Api, Server, TempDb, create_story, outline, story_with_run};
use rusqlite::Connection;
use serde_json::{Value, json};

pub(crate) const WAIT: Duration = Duration::from_secs(60);
pub(crate) const UNKNOWN_ID: &str = "3251c7d5-0000-4000-8000-000000000000";

// ---------------------------------------------------------------------------
// helpers

/// The CLI with `--json`: (exit code, parsed standard output).
pub(crate) fn cli_json(db: &Path, args: &[&str]) -> (i32, Value) {
    let mut full = args.to_vec();
    full.push("--json");
    let out = util::cli(db, &full);
    let code = out.status.code().expect("storyflow exited with a code");
    let value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "`{}` printed no JSON ({e}):\n{}\nstderr: {}",
            full.join(" "),
            util::stdout(&out),
            util::stderr(&out)
        )
    });
    (code, value)
}

/// The CLI's human output: (exit code, standard output).
pub(crate) fn cli_text(db: &Path, args: &[&str]) -> (i32, String) {
    let out = util::cli(db, args);
    (
        out.status.code().expect("storyflow exited with a code"),
        util::stdout(&out),
    )
}

/// The `code`s of a report's `findings` (diagnose) or `problems` (health).
pub(crate) fn codes(report: &Value, key: &str) -> BTreeSet<String> {
    report[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} in {report}"))
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect()
}

pub(crate) fn finding<'a>(report: &'a Value, code: &str) -> &'a Value {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == code)
        .unwrap_or_else(|| panic!("no {code} finding in {report}"))
}

pub(crate) fn problem<'a>(report: &'a Value, code: &str) -> &'a Value {
    report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["code"] == code)
        .unwrap_or_else(|| panic!("no {code} problem in {report}"))
}

pub(crate) fn recommends(report: &Value, text: &str) -> bool {
    report["recommendations"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r.as_str().unwrap().contains(text))
}

pub(crate) fn ids(list: &Value, key: &str) -> BTreeSet<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|r| r[key].as_str().unwrap().to_string())
        .collect()
}

pub(crate) fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

pub(crate) fn wal_path(db: &Path) -> PathBuf {
    let mut name = db.file_name().unwrap().to_os_string();
    name.push("-wal");
    db.with_file_name(name)
}

/// The bytes of the database file and of its write-ahead log. A missing log
/// and an empty one mean the same to SQLite (no frames), so both read as empty.
pub(crate) fn snapshot(db: &Path) -> (Vec<u8>, Vec<u8>) {
    (
        std::fs::read(db).expect("read the database file"),
        std::fs::read(wal_path(db)).unwrap_or_default(),
    )
}

pub(crate) fn assert_unchanged(db: &Path, before: &(Vec<u8>, Vec<u8>), what: &str) {
    let after = snapshot(db);
    assert!(after.0 == before.0, "{what} changed the database file");
    assert!(after.1 == before.1, "{what} changed the -wal file");
}

pub(crate) fn count(db: &Path, sql: &str, arg: &str) -> i64 {
    Connection::open(db)
        .unwrap()
        .query_row(sql, [arg], |r| r.get(0))
        .unwrap()
}

pub(crate) fn run_status(db: &Path, run_id: &str) -> (String, Option<String>, Option<String>) {
    Connection::open(db)
        .unwrap()
        .query_row(
            "SELECT status, error_code, lease_owner FROM workflow_runs WHERE id = ?1",
            [run_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
}

/// Deletes a story as the `sqlite3` shell does by default: foreign keys off,
/// so its runs, chapters and events stay behind.
pub(crate) fn delete_story_behind_storyflows_back(conn: &Connection, story_id: &str) {
    conn.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
    let deleted = conn
        .execute("DELETE FROM stories WHERE id = ?1", [story_id])
        .unwrap();
    assert_eq!(deleted, 1);
}

/// Serves `db` with one quick worker.
pub(crate) fn serve(db: &Path) -> Server {
    Server::start_on(db, &["--workers", "1"])
}

/// Creates a story with an outline of `chapters` chapters and writes it to
/// the end; (story id, run id).
pub(crate) fn write_story(server: &Server, title: &str, chapters: u32) -> (String, String) {
    let (story_id, run_id) = story_with_run(
        server,
        json!({"title": title, "premise": "Two sisters map a city that moves at night.",
               "outline": outline(chapters)}),
        None,
    );
    server.wait_for_run(&run_id, "completed", WAIT);
    (story_id, run_id)
}

pub(crate) fn stop(mut server: Server) {
    let status = server.terminate();
    assert!(status.success(), "serve exited with {status}");
}

/// A database in which story `gone` was deleted with foreign keys off,
/// leaving a completed run with its chapters and events, and a pending run
/// queued from the CLI; story `kept` and its run are sound.
pub(crate) struct OrphanDb {
    pub(crate) temp: TempDb,
    pub(crate) gone: String,
    pub(crate) done_run: String,
    pub(crate) active_run: String,
    pub(crate) kept: String,
    pub(crate) kept_run: String,
    pub(crate) orphan_chapters: i64,
    pub(crate) orphan_events: i64,
    pub(crate) kept_events: i64,
}

impl OrphanDb {
    pub(crate) fn path(&self) -> &Path {
        &self.temp.path
    }

    /// Builds it; the damaging connection is returned still open, with
    /// automatic checkpoints off, so the damage sits in the -wal file.
    pub(crate) fn build() -> (OrphanDb, Connection) {
        let temp = TempDb::new();
        let server = serve(&temp.path);
        let (gone, done_run) = write_story(&server, "Gone Without Trace", 3);
        let (kept, kept_run) = write_story(&server, "Still Here", 2);
        stop(server);
        let (code, run) = cli_json(&temp.path, &["run", "start", &gone]);
        assert_eq!(code, 0, "{run}");
        assert_eq!(run["status"], "pending");
        let active_run = run["id"].as_str().unwrap().to_string();
        let db = &temp.path;
        let events_of_story =
            "SELECT count(*) FROM run_events e JOIN workflow_runs r ON r.id = e.run_id
             WHERE r.story_id = ?1";
        let orphan_events = count(db, events_of_story, &gone);
        let kept_events = count(db, events_of_story, &kept);
        let orphan_chapters = count(
            db,
            "SELECT count(*) FROM chapters WHERE story_id = ?1",
            &gone,
        );
        assert_eq!(orphan_chapters, 3);
        assert!(orphan_events > 3, "events of the deleted story's runs");
        let conn = Connection::open(db).unwrap();
        conn.execute_batch("PRAGMA wal_autocheckpoint = 0").unwrap();
        delete_story_behind_storyflows_back(&conn, &gone);
        let fixture = OrphanDb {
            temp,
            gone,
            done_run,
            active_run,
            kept,
            kept_run,
            orphan_chapters,
            orphan_events,
            kept_events,
        };
        (fixture, conn)
    }

    /// What is left of the deleted story: (runs, chapters, events).
    pub(crate) fn leftovers(&self) -> (i64, i64, i64) {
        let db = self.path();
        (
            count(
                db,
                "SELECT count(*) FROM workflow_runs WHERE story_id = ?1",
                &self.gone,
            ),
            count(
                db,
                "SELECT count(*) FROM chapters WHERE story_id = ?1",
                &self.gone,
            ),
            count(
                db,
                "SELECT count(*) FROM run_events WHERE run_id = ?1",
                &self.done_run,
            ) + count(
                db,
                "SELECT count(*) FROM run_events WHERE run_id = ?1",
                &self.active_run,
            ),
        )
    }

    /// The sound story is exactly as it was.
    pub(crate) fn assert_kept_intact(&self) {
        let db = self.path();
        assert_eq!(
            count(db, "SELECT count(*) FROM stories WHERE id = ?1", &self.kept),
            1
        );
        assert_eq!(
            count(
                db,
                "SELECT count(*) FROM chapters WHERE story_id = ?1",
                &self.kept
            ),
            2
        );
        assert_eq!(run_status(db, &self.kept_run).0, "completed");
        assert_eq!(
            count(
                db,
                "SELECT count(*) FROM run_events WHERE run_id = ?1",
                &self.kept_run
            ),
            self.kept_events
        );
    }
}

// ---------------------------------------------------------------------------
// a story deleted with foreign keys off

#[test]
fn diagnose_reports_the_runs_of_a_story_deleted_with_foreign_keys_off_as_orphans() {
    let (fx, conn) = OrphanDb::build();
    drop(conn);
    let db = fx.path();

    for run in [&fx.active_run, &fx.done_run] {
        let (code, report) = cli_json(db, &["diagnose", "--run", run]);
        assert_eq!(code, 1, "{report}");
        assert_eq!(report["exists"], true);
        assert_eq!(report["story_exists"], false);
        assert_eq!(
            codes(&report, "findings"),
            set(&["ORPHANED_RUN"]),
            "{report}"
        );
        assert_eq!(finding(&report, "ORPHANED_RUN")["severity"], "error");
        assert!(
            recommends(&report, "storyflow fix-orphans --dry-run"),
            "{report}"
        );
    }
    let (code, report) = cli_json(db, &["diagnose", "--run", &fx.active_run]);
    assert_eq!(code, 1);
    assert_eq!(report["run"]["status"], "pending");

    let (code, report) = cli_json(db, &["diagnose", "--run", &fx.kept_run]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(codes(&report, "findings"), set(&["HEALTHY"]));

    let (code, report) = cli_json(db, &["diagnose", "--run", UNKNOWN_ID]);
    assert_eq!(code, 1, "a missing run is a finding: {report}");
    assert_eq!(report["exists"], false);
    assert_eq!(codes(&report, "findings"), set(&["RUN_NOT_FOUND"]));

    // The case from the field: the story is gone, its runs still point at it.
    let (code, report) = cli_json(db, &["diagnose", "--story", &fx.gone]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["exists"], false);
    assert_eq!(
        ids(&report["runs"], "id"),
        set(&[&fx.active_run, &fx.done_run])
    );
    assert_eq!(report["runs_by_status"]["pending"], 1);
    assert_eq!(report["runs_by_status"]["completed"], 1);
    assert_eq!(codes(&report, "findings"), set(&["ORPHANED_RUNS"]));
    assert_eq!(finding(&report, "ORPHANED_RUNS")["severity"], "error");
    assert!(recommends(&report, "storyflow fix-orphans"), "{report}");
    let (code, text) = cli_text(db, &["diagnose", "--story", &fx.gone]);
    assert_eq!(code, 1);
    assert!(text.contains("exists: false"), "{text}");
    assert!(
        text.contains(&fx.active_run) && text.contains(&fx.done_run),
        "{text}"
    );
    assert!(text.contains("ORPHANED_RUNS"), "{text}");
    assert!(text.contains("storyflow fix-orphans"), "{text}");

    let (code, report) = cli_json(db, &["diagnose", "--story", UNKNOWN_ID]);
    assert_eq!(code, 1);
    assert_eq!(report["exists"], false);
    assert_eq!(codes(&report, "findings"), set(&["STORY_NOT_FOUND"]));

    let (code, report) = cli_json(db, &["diagnose", "--story", &fx.kept]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["exists"], true);
    assert_eq!(report["chapters_saved"], 2);
    assert_eq!(report["chapter_count_source"], "outline");
    assert_eq!(codes(&report, "findings"), set(&["HEALTHY"]));

    let (code, report) = cli_json(db, &["diagnose", "--all"]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(
        ids(&report["orphaned_runs"], "id"),
        set(&[&fx.active_run, &fx.done_run])
    );
    assert!(report["stuck_runs"].as_array().unwrap().is_empty());
    assert_eq!(codes(&report, "findings"), set(&["ORPHANED_RUNS"]));
    assert!(recommends(&report, "storyflow fix-orphans --dry-run"));
    let (code, text) = cli_text(db, &["diagnose", "--all"]);
    assert_eq!(code, 1);
    assert!(
        text.contains(&format!("missing story {}", fx.gone)),
        "{text}"
    );

    let (code, report) = cli_json(db, &["health-check"]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["healthy"], false);
    assert_eq!(report["integrity_ok"], true);
    assert_eq!(
        codes(&report, "problems"),
        set(&[
            "ORPHANED_RUNS",
            "ORPHANED_CHAPTERS",
            "ORPHANED_VERSIONS",
            "ORPHANED_EVENTS"
        ]),
        "no other problem: {report}"
    );
    assert_eq!(problem(&report, "ORPHANED_RUNS")["count"], 2);
    assert_eq!(
        problem(&report, "ORPHANED_CHAPTERS")["count"],
        fx.orphan_chapters
    );
    assert_eq!(
        problem(&report, "ORPHANED_EVENTS")["count"],
        fx.orphan_events
    );
    for p in report["problems"].as_array().unwrap() {
        assert_eq!(p["fixable"], true, "{p}");
    }
    assert!(report["fixed"].as_array().unwrap().is_empty());
    assert_eq!(report["remaining"], report["problems"]);
}

#[test]
fn fix_orphans_dry_run_changes_not_one_byte_and_fix_orphans_removes_exactly_the_orphans() {
    let (fx, conn) = OrphanDb::build();
    let db = fx.path();
    // The damage is still in the write-ahead log, held open by the shell.
    assert!(wal_path(db).exists());

    let before = snapshot(db);
    assert!(!before.1.is_empty(), "the damage is in the -wal file");
    let (code, report) = cli_json(db, &["fix-orphans", "--dry-run"]);
    assert_eq!(code, 0, "{report}");
    assert_unchanged(db, &before, "fix-orphans --dry-run");
    assert_eq!(report["dry_run"], true);
    assert_eq!(
        ids(&report["orphaned_runs"], "id"),
        set(&[&fx.active_run, &fx.done_run])
    );
    for orphan in report["orphaned_runs"].as_array().unwrap() {
        assert_eq!(orphan["story_id"], fx.gone.as_str());
    }
    assert_eq!(
        report["counts"],
        json!({"runs": 2, "active_runs": 1, "chapters": fx.orphan_chapters,
               "versions": fx.orphan_chapters, "events": fx.orphan_events,
               "bible_entries": 0})
    );
    assert_eq!(report["stories_given_default_count"], 0);
    assert!(
        report["summary"].as_str().unwrap().contains("dry run"),
        "{report}"
    );
    let (code, text) = cli_text(db, &["fix-orphans", "--dry-run"]);
    assert_eq!(code, 0);
    assert!(
        text.contains(&fx.active_run) && text.contains("nothing changed"),
        "{text}"
    );
    assert_unchanged(db, &before, "fix-orphans --dry-run (text)");
    // Diagnostics and a health check without --fix only read, too.
    for args in [
        &["diagnose", "--all"][..],
        &["diagnose", "--story", &fx.gone],
        &["diagnose", "--run", &fx.active_run, "--verbose"],
        &["health-check"],
        &["health-check", "--full"],
    ] {
        let (code, _) = cli_json(db, args);
        assert_eq!(code, 1, "{args:?}");
        assert_unchanged(db, &before, &args.join(" "));
    }
    assert_eq!(fx.leftovers(), (2, fx.orphan_chapters, fx.orphan_events));

    // Once the shell has gone and the log is checkpointed: the same.
    drop(conn);
    let before = snapshot(db);
    let (code, _) = cli_json(db, &["fix-orphans", "--dry-run"]);
    assert_eq!(code, 0);
    assert_unchanged(db, &before, "fix-orphans --dry-run (no live log)");

    let (code, report) = cli_json(db, &["fix-orphans"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["dry_run"], false);
    assert_eq!(
        report["counts"],
        json!({"runs": 2, "active_runs": 1, "chapters": fx.orphan_chapters,
               "versions": fx.orphan_chapters, "events": fx.orphan_events,
               "bible_entries": 0})
    );
    assert_eq!(
        ids(&report["orphaned_runs"], "id"),
        set(&[&fx.active_run, &fx.done_run])
    );
    assert!(
        report["summary"]
            .as_str()
            .unwrap()
            .starts_with("removed 2 orphaned runs")
    );
    assert_eq!(fx.leftovers(), (0, 0, 0));
    fx.assert_kept_intact();
    let conn = Connection::open(db).unwrap();
    let violations = conn
        .prepare("PRAGMA foreign_key_check")
        .unwrap()
        .query_map([], |_| Ok(()))
        .unwrap()
        .count();
    assert_eq!(violations, 0);
    drop(conn);

    // Nothing left to do.
    let (code, report) = cli_json(db, &["fix-orphans"]);
    assert_eq!(code, 0);
    assert_eq!(
        report["counts"],
        json!({"runs": 0, "active_runs": 0, "chapters": 0, "versions": 0, "events": 0,
               "bible_entries": 0})
    );
    let (code, report) = cli_json(db, &["health-check"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["healthy"], true);
    let (code, report) = cli_json(db, &["diagnose", "--all"]);
    assert_eq!(code, 0, "{report}");
    let (code, report) = cli_json(db, &["diagnose", "--story", &fx.gone]);
    assert_eq!(code, 1);
    assert_eq!(codes(&report, "findings"), set(&["STORY_NOT_FOUND"]));
}

#[test]
fn health_check_fix_removes_the_orphans_and_a_second_check_exits_0() {
    let (fx, conn) = OrphanDb::build();
    drop(conn);
    let db = fx.path();
    let (code, report) = cli_json(db, &["health-check", "--fix"]);
    assert_eq!(code, 0, "everything was fixable: {report}");
    assert_eq!(report["healthy"], true);
    assert_eq!(
        codes(&report, "problems"),
        set(&[
            "ORPHANED_RUNS",
            "ORPHANED_CHAPTERS",
            "ORPHANED_VERSIONS",
            "ORPHANED_EVENTS"
        ])
    );
    assert!(report["remaining"].as_array().unwrap().is_empty());
    let fixed: Vec<&str> = report["fixed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert_eq!(
        fixed,
        [format!(
            "removed 2 orphaned runs, {} orphaned chapters and {} orphaned events",
            fx.orphan_chapters, fx.orphan_events
        )]
    );
    assert_eq!(fx.leftovers(), (0, 0, 0));
    fx.assert_kept_intact();

    let (code, text) = cli_text(db, &["health-check"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("no problems found"), "{text}");
    let (code, report) = cli_json(db, &["diagnose", "--all"]);
    assert_eq!(code, 0, "{report}");
    assert!(report["orphaned_runs"].as_array().unwrap().is_empty());
}

// ---------------------------------------------------------------------------
// a run left running by a dead worker

/// A server killed with SIGKILL mid-run, and its lease long expired.
pub(crate) fn stuck_db() -> (TempDb, String, String) {
    let temp = TempDb::new();
    let mut server = Server::start_on(&temp.path, &["--workers", "1", "--builtin-delay-ms", "400"]);
    let story = create_story(
        &server,
        json!({"title": "Left Running", "outline": outline(4)}),
    );
    let story_id = story["id"].as_str().unwrap().to_string();
    let resp = server.post_empty(&format!("/api/stories/{story_id}/runs"));
    assert_eq!(resp.status, 202);
    let run_id = resp.json()["id"].as_str().unwrap().to_string();
    assert!(server.wait_until(WAIT, || {
        server.get(&format!("/api/runs/{run_id}")).json()["chapters_done"] == 1
    }));
    server.kill();
    // Time passes: the dead worker's lease ran out long ago.
    let conn = Connection::open(&temp.path).unwrap();
    let changed = conn
        .execute(
            "UPDATE workflow_runs SET lease_expires_at = '2001-01-01T00:00:00.000Z',
                 heartbeat_at = '2001-01-01T00:00:00.000Z'
             WHERE id = ?1 AND status = 'running' AND lease_owner IS NOT NULL",
            [&run_id],
        )
        .unwrap();
    assert_eq!(changed, 1);
    (temp, story_id, run_id)
}

#[test]
fn a_run_left_running_with_an_expired_lease_is_stuck_until_health_check_fix_requeues_it() {
    let (temp, story_id, run_id) = stuck_db();
    let db = &temp.path;

    let (code, report) = cli_json(db, &["diagnose", "--run", &run_id]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(codes(&report, "findings"), set(&["STUCK_RUN"]));
    assert_eq!(finding(&report, "STUCK_RUN")["severity"], "warning");
    assert!(report["lease_owner"].as_str().is_some());
    assert!(
        report["lease_remaining_s"].as_i64().unwrap() < 0,
        "{report}"
    );
    assert!(recommends(&report, "health-check --fix"), "{report}");

    let (code, report) = cli_json(db, &["diagnose", "--story", &story_id]);
    assert_eq!(code, 1, "the story's only run is stuck: {report}");
    assert!(codes(&report, "findings").contains("STUCK_RUN"), "{report}");
    assert_eq!(report["runs_by_status"]["running"], 1);

    let (code, report) = cli_json(db, &["diagnose", "--all"]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(ids(&report["stuck_runs"], "id"), set(&[&run_id]));
    assert!(report["orphaned_runs"].as_array().unwrap().is_empty());
    assert_eq!(codes(&report, "findings"), set(&["STUCK_RUNS"]));

    let (code, report) = cli_json(db, &["health-check"]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(codes(&report, "problems"), set(&["STUCK_RUNS"]));
    assert_eq!(problem(&report, "STUCK_RUNS")["count"], 1);
    assert_eq!(problem(&report, "STUCK_RUNS")["fixable"], true);

    // Not an orphan: the orphan clean-up leaves it alone.
    let before = snapshot(db);
    let (code, report) = cli_json(db, &["fix-orphans", "--dry-run"]);
    assert_eq!(code, 0);
    assert_unchanged(db, &before, "fix-orphans --dry-run");
    assert_eq!(
        report["counts"],
        json!({"runs": 0, "active_runs": 0, "chapters": 0, "versions": 0, "events": 0,
               "bible_entries": 0})
    );
    let (code, report) = cli_json(db, &["fix-orphans"]);
    assert_eq!(code, 0);
    assert_eq!(report["counts"]["runs"], 0);
    assert_eq!(run_status(db, &run_id).0, "running");

    let (code, report) = cli_json(db, &["health-check", "--fix"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["healthy"], true);
    assert_eq!(
        report["fixed"],
        json!(["re-queued 1 stuck runs; failed 0 that had used up their attempts"])
    );
    let (status, error, owner) = run_status(db, &run_id);
    assert_eq!((status.as_str(), error, owner), ("pending", None, None));
    assert_eq!(
        count(
            db,
            "SELECT count(*) FROM run_events WHERE run_id = ?1 AND kind = 'recovered'",
            &run_id
        ),
        1
    );
    let (code, report) = cli_json(db, &["health-check"]);
    assert_eq!(code, 0, "{report}");
    let (code, report) = cli_json(db, &["diagnose", "--run", &run_id]);
    assert_eq!(code, 0, "{report}");
    let (code, report) = cli_json(db, &["diagnose", "--story", &story_id]);
    assert_eq!(code, 0, "{report}");

    // A server picks the re-queued run up and finishes the book once.
    let server = serve(db);
    let run = server.wait_for_run(&run_id, "completed", WAIT);
    assert_eq!(run["chapters_done"], 4);
    stop(server);
    let numbers: Vec<u32> = Connection::open(db)
        .unwrap()
        .prepare("SELECT number FROM chapters WHERE story_id = ?1 ORDER BY number")
        .unwrap()
        .query_map([&story_id], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(numbers, [1, 2, 3, 4]);
}
