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

const WAIT: Duration = Duration::from_secs(60);
const UNKNOWN_ID: &str = "3251c7d5-0000-4000-8000-000000000000";

// ---------------------------------------------------------------------------
// helpers

/// The CLI with `--json`: (exit code, parsed standard output).
fn cli_json(db: &Path, args: &[&str]) -> (i32, Value) {
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
fn cli_text(db: &Path, args: &[&str]) -> (i32, String) {
    let out = util::cli(db, args);
    (
        out.status.code().expect("storyflow exited with a code"),
        util::stdout(&out),
    )
}

/// The `code`s of a report's `findings` (diagnose) or `problems` (health).
fn codes(report: &Value, key: &str) -> BTreeSet<String> {
    report[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} in {report}"))
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect()
}

fn finding<'a>(report: &'a Value, code: &str) -> &'a Value {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == code)
        .unwrap_or_else(|| panic!("no {code} finding in {report}"))
}

fn problem<'a>(report: &'a Value, code: &str) -> &'a Value {
    report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["code"] == code)
        .unwrap_or_else(|| panic!("no {code} problem in {report}"))
}

fn recommends(report: &Value, text: &str) -> bool {
    report["recommendations"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r.as_str().unwrap().contains(text))
}

fn ids(list: &Value, key: &str) -> BTreeSet<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|r| r[key].as_str().unwrap().to_string())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn wal_path(db: &Path) -> PathBuf {
    let mut name = db.file_name().unwrap().to_os_string();
    name.push("-wal");
    db.with_file_name(name)
}

/// The bytes of the database file and of its write-ahead log. A missing log
/// and an empty one mean the same to SQLite (no frames), so both read as empty.
fn snapshot(db: &Path) -> (Vec<u8>, Vec<u8>) {
    (
        std::fs::read(db).expect("read the database file"),
        std::fs::read(wal_path(db)).unwrap_or_default(),
    )
}

fn assert_unchanged(db: &Path, before: &(Vec<u8>, Vec<u8>), what: &str) {
    let after = snapshot(db);
    assert!(after.0 == before.0, "{what} changed the database file");
    assert!(after.1 == before.1, "{what} changed the -wal file");
}

fn count(db: &Path, sql: &str, arg: &str) -> i64 {
    Connection::open(db)
        .unwrap()
        .query_row(sql, [arg], |r| r.get(0))
        .unwrap()
}

fn run_status(db: &Path, run_id: &str) -> (String, Option<String>, Option<String>) {
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
fn delete_story_behind_storyflows_back(conn: &Connection, story_id: &str) {
    conn.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
    let deleted = conn
        .execute("DELETE FROM stories WHERE id = ?1", [story_id])
        .unwrap();
    assert_eq!(deleted, 1);
}

/// Serves `db` with one quick worker.
fn serve(db: &Path) -> Server {
    Server::start_on(db, &["--workers", "1"])
}

/// Creates a story with an outline of `chapters` chapters and writes it to
/// the end; (story id, run id).
fn write_story(server: &Server, title: &str, chapters: u32) -> (String, String) {
    let (story_id, run_id) = story_with_run(
        server,
        json!({"title": title, "premise": "Two sisters map a city that moves at night.",
               "outline": outline(chapters)}),
        None,
    );
    server.wait_for_run(&run_id, "completed", WAIT);
    (story_id, run_id)
}

fn stop(mut server: Server) {
    let status = server.terminate();
    assert!(status.success(), "serve exited with {status}");
}

/// A database in which story `gone` was deleted with foreign keys off,
/// leaving a completed run with its chapters and events, and a pending run
/// queued from the CLI; story `kept` and its run are sound.
struct OrphanDb {
    temp: TempDb,
    gone: String,
    done_run: String,
    active_run: String,
    kept: String,
    kept_run: String,
    orphan_chapters: i64,
    orphan_events: i64,
    kept_events: i64,
}

impl OrphanDb {
    fn path(&self) -> &Path {
        &self.temp.path
    }

    /// Builds it; the damaging connection is returned still open, with
    /// automatic checkpoints off, so the damage sits in the -wal file.
    fn build() -> (OrphanDb, Connection) {
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
    fn leftovers(&self) -> (i64, i64, i64) {
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
    fn assert_kept_intact(&self) {
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
fn stuck_db() -> (TempDb, String, String) {
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

// ---------------------------------------------------------------------------
// a story whose outline names no chapters

/// A story with notes for an outline and no explicit count (plus a sound
/// one), made with the CLI; (loose story, its pending run, sound story).
fn default_count_db() -> (TempDb, String, String, String) {
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

fn explicit_count(db: &Path, story: &str) -> Option<u32> {
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
fn wrong_totals_db() -> (TempDb, String, String) {
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

fn chapters_done(db: &Path, run: &str) -> i64 {
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
fn corrupt_copy(db: &Path, index: &str) -> PathBuf {
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

fn ids_of(list: &Value) -> BTreeSet<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}
