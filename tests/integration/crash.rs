//! Crash safety of the generation workflow: a `serve` child process killed
//! with SIGKILL mid-run, again and again, still ends with every chapter
//! written exactly once; SIGTERM hands the run back; cancel and delete stop
//! a worker at the next step boundary.

use std::path::Path;
use std::time::Duration;

use crate::util::{Api, Server, TempDb, create_story, id_of, outline};
use rusqlite::Connection;
use serde_json::{Value, json};

const CHAPTERS: u32 = 20;
const WAIT: Duration = Duration::from_secs(60);

/// A server that writes slowly enough to be interrupted, recovers dead
/// workers' runs within a second and sweeps every second.
fn serve(db: &Path, delay_ms: u32, workers: u32) -> Server {
    let delay = delay_ms.to_string();
    let workers = workers.to_string();
    Server::start_on(
        db,
        &[
            "--builtin-delay-ms",
            &delay,
            "--lease-s",
            "1",
            "--sweep-interval-s",
            "1",
            "--workers",
            &workers,
        ],
    )
}

/// Creates a story of `chapters` chapters and starts its run; (story, run).
fn story_with_run(server: &Server, title: &str, chapters: u32) -> (String, String) {
    let story = create_story(
        server,
        json!({"title": title, "premise": "A lighthouse keeper counts ships that never arrive.",
               "outline": outline(chapters)}),
    );
    assert_eq!(story["chapter_count"], chapters);
    let story_id = id_of(&story);
    let run_id = id_of(&server.start_run(&story_id, None));
    (story_id, run_id)
}

/// Waits until the run reports at least `done` chapters; returns the run.
fn wait_for_chapters(server: &Server, run_id: &str, done: u64) -> Value {
    let mut last = Value::Null;
    let reached = server.wait_until(WAIT, || {
        last = server.run(run_id);
        last["chapters_done"].as_u64().unwrap_or(0) >= done
    });
    assert!(
        reached,
        "run {run_id} never reached {done} chapters: {last}\nlog:\n{}",
        server.log_text()
    );
    assert_eq!(last["status"], "running", "{last}");
    last
}

fn wait_for_log(server: &Server, needle: &str) {
    assert!(
        server.wait_until(WAIT, || server.log_text().contains(needle)),
        "the log never said `{needle}`:\n{}",
        server.log_text()
    );
}

/// What the database file itself says about a story's chapters, read with
/// plain SQLite after the server has stopped.
struct SavedChapters {
    numbers: Vec<u32>,
    rows: u32,
    distinct: u32,
    /// Rows written by another run than the expected one.
    foreign_run: u32,
    /// `chapter` events of the run: one per save.
    save_events: u32,
}

fn saved_chapters(db: &Path, story_id: &str, run_id: &str) -> SavedChapters {
    let conn = Connection::open(db).unwrap();
    let numbers: Vec<u32> = conn
        .prepare("SELECT number FROM chapters WHERE story_id = ?1 ORDER BY number")
        .unwrap()
        .query_map([story_id], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let one = |sql: &str, arg: &str| -> u32 { conn.query_row(sql, [arg], |r| r.get(0)).unwrap() };
    SavedChapters {
        rows: one(
            "SELECT count(*) FROM chapters WHERE story_id = ?1",
            story_id,
        ),
        distinct: one(
            "SELECT count(DISTINCT number) FROM chapters WHERE story_id = ?1",
            story_id,
        ),
        foreign_run: conn
            .query_row(
                "SELECT count(*) FROM chapters WHERE story_id = ?1 AND run_id IS NOT ?2",
                [story_id, run_id],
                |r| r.get(0),
            )
            .unwrap(),
        save_events: one(
            "SELECT count(*) FROM run_events WHERE run_id = ?1 AND kind = 'chapter'",
            run_id,
        ),
        numbers,
    }
}

fn run_row(db: &Path, run_id: &str) -> (String, Option<String>, u32) {
    let conn = Connection::open(db).unwrap();
    conn.query_row(
        "SELECT status, lease_owner, chapters_done FROM workflow_runs WHERE id = ?1",
        [run_id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .unwrap()
}

fn assert_every_chapter_once(db: &Path, story_id: &str, run_id: &str) {
    let saved = saved_chapters(db, story_id, run_id);
    assert_eq!(saved.numbers, (1..=CHAPTERS).collect::<Vec<u32>>());
    assert_eq!(saved.rows, CHAPTERS, "chapter rows");
    assert_eq!(saved.distinct, CHAPTERS, "distinct chapter numbers");
    assert_eq!(saved.foreign_run, 0, "chapters written by another run");
    assert_eq!(
        saved.save_events, CHAPTERS,
        "a chapter was saved more than once"
    );
}

/// Every chapter row has exactly one version, `generated`, holding its very
/// text, and no version exists without its chapter: a chapter and its
/// version are one save, whenever the process dies.
fn assert_versions_match_chapters(db: &Path, story_id: &str, life: usize) {
    let conn = Connection::open(db).unwrap();
    let mismatched: u32 = conn
        .query_row(
            "SELECT count(*) FROM chapters c
             WHERE c.story_id = ?1 AND NOT EXISTS (
                 SELECT 1 FROM chapter_versions v
                 WHERE v.story_id = c.story_id AND v.number = c.number AND v.version = 1
                   AND v.source = 'generated' AND v.content = c.content AND v.title = c.title)",
            [story_id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        mismatched, 0,
        "chapters without their version (life {life})"
    );
    let (versions, chapters): (u32, u32) = conn
        .query_row(
            "SELECT (SELECT count(*) FROM chapter_versions WHERE story_id = ?1),
                    (SELECT count(*) FROM chapters WHERE story_id = ?1)",
            [story_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        versions, chapters,
        "a version without its chapter, or one doubled (life {life})"
    );
}

#[test]
fn kill_9_mid_run_again_and_again_still_writes_every_chapter_exactly_once() {
    let temp = TempDb::new();
    let mut server = serve(&temp.path, 150, 2);
    let (story_id, run_id) = story_with_run(&server, "Killed Four Times", CHAPTERS);
    // Kill at different depths of the book; each life saves a few chapters.
    let kill_points = [2u64, 7, 11, 16];
    let mut recoveries_seen = 0;
    for (life, &point) in kill_points.iter().enumerate() {
        let run = wait_for_chapters(&server, &run_id, point);
        if life > 0 {
            // This life took the run over from the one killed before it.
            let kinds = server.event_kinds(&run_id);
            let recovered = kinds.iter().filter(|k| *k == "recovered").count();
            assert_eq!(recovered, life, "recoveries after {life} kills: {kinds:?}");
            recoveries_seen = recovered;
        }
        assert!(
            run["chapters_done"].as_u64().unwrap() < u64::from(CHAPTERS),
            "the run finished before kill {life}: {run}"
        );
        server.kill();
        // What the dead process left: a running run with a dead owner, and
        // as many chapters as its progress says, each once.
        let (status, owner, done) = run_row(&temp.path, &run_id);
        assert_eq!(status, "running");
        assert!(owner.is_some(), "the dead worker's lease is still recorded");
        let saved = saved_chapters(&temp.path, &story_id, &run_id);
        assert_eq!(
            saved.numbers,
            (1..=done).collect::<Vec<u32>>(),
            "life {life}"
        );
        assert_eq!(saved.save_events, done, "life {life}");
        assert_versions_match_chapters(&temp.path, &story_id, life);
        server = serve(&temp.path, 150, 2);
    }
    let run = server.wait_for_run(&run_id, "completed", WAIT);
    assert_eq!(run["chapters_done"], CHAPTERS);
    assert_eq!(run["chapters_total"], CHAPTERS);
    assert_eq!(run["progress"], 100);
    assert!(run["error"].is_null(), "{run}");
    assert_eq!(
        run["attempt"],
        kill_points.len() + 1,
        "one claim per life: {run}"
    );
    assert_eq!(
        server.chapter_numbers(&story_id),
        (1..=u64::from(CHAPTERS)).collect::<Vec<u64>>()
    );
    let kinds = server.event_kinds(&run_id);
    let recovered = kinds.iter().filter(|k| *k == "recovered").count();
    assert!(recoveries_seen >= 1);
    assert_eq!(
        recovered,
        kill_points.len(),
        "one recovery per kill: {kinds:?}"
    );
    assert_eq!(
        kinds.last().map(String::as_str),
        Some("completed"),
        "{kinds:?}"
    );
    let status = server.terminate();
    assert!(status.success(), "serve exited with {status}");
    assert_every_chapter_once(&temp.path, &story_id, &run_id);
    assert_versions_match_chapters(&temp.path, &story_id, kill_points.len());
    assert_eq!(run_row(&temp.path, &run_id).0, "completed");
}

#[test]
fn sigterm_mid_run_releases_the_run_and_a_restart_completes_it() {
    let temp = TempDb::new();
    let mut server = serve(&temp.path, 150, 1);
    let (story_id, run_id) = story_with_run(&server, "Interrupted Politely", CHAPTERS);
    wait_for_chapters(&server, &run_id, 3);
    let status = server.terminate();
    assert_eq!(status.code(), Some(0), "serve exited with {status}");
    let log = server.log_text();
    assert!(log.contains("stopped"), "{log}");
    // Handed back: pending, no owner, and its saved chapters match its progress.
    let (status, owner, done) = run_row(&temp.path, &run_id);
    assert_eq!(status, "pending");
    assert_eq!(owner, None);
    assert!(
        (3..CHAPTERS).contains(&done),
        "chapters done at shutdown: {done}"
    );
    let saved = saved_chapters(&temp.path, &story_id, &run_id);
    assert_eq!(saved.numbers, (1..=done).collect::<Vec<u32>>());
    let conn = Connection::open(&temp.path).unwrap();
    let released: u32 = conn
        .query_row(
            "SELECT count(*) FROM run_events WHERE run_id = ?1 AND kind = 'released'",
            [&run_id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(released, 1);
    drop(conn);

    let mut server = serve(&temp.path, 150, 1);
    let run = server.wait_for_run(&run_id, "completed", WAIT);
    assert_eq!(run["chapters_done"], CHAPTERS);
    let kinds = server.event_kinds(&run_id);
    assert!(kinds.contains(&"released".to_string()), "{kinds:?}");
    assert!(
        !kinds.contains(&"recovered".to_string()),
        "a released run needs no crash recovery: {kinds:?}"
    );
    assert_eq!(
        server.chapter_numbers(&story_id),
        (1..=u64::from(CHAPTERS)).collect::<Vec<u64>>()
    );
    assert!(server.terminate().success());
    assert_every_chapter_once(&temp.path, &story_id, &run_id);
}

#[test]
fn cancel_stops_a_running_run_at_the_next_step_boundary() {
    let temp = TempDb::new();
    // One worker: the second story can only finish if the first run let go.
    let mut server = serve(&temp.path, 200, 1);
    let (story_id, run_id) = story_with_run(&server, "Called Off", CHAPTERS);
    wait_for_chapters(&server, &run_id, 2);
    let resp = server.post_empty(&format!("/api/runs/{run_id}/cancel"));
    assert_eq!(resp.status, 200, "{}", resp.text());
    let cancelled = resp.json();
    assert_eq!(cancelled["status"], "cancelled");
    let done_at_cancel = cancelled["chapters_done"].as_u64().unwrap();
    assert!(done_at_cancel >= 2 && done_at_cancel < u64::from(CHAPTERS));
    // The worker notices at its next step and stops.
    wait_for_log(
        &server,
        &format!("run {run_id} was cancelled, deleted or taken over"),
    );
    let (_, other_run) = story_with_run(&server, "Next In Line", 3);
    server.wait_for_run(&other_run, "completed", WAIT);
    // Nothing was written after the cancel.
    let run = server.run(&run_id);
    assert_eq!(run["status"], "cancelled", "{run}");
    assert_eq!(run["chapters_done"], done_at_cancel, "{run}");
    assert_eq!(
        server.chapter_numbers(&story_id),
        (1..=done_at_cancel).collect::<Vec<u64>>()
    );
    let kinds = server.event_kinds(&run_id);
    let cancelled_at = kinds.iter().position(|k| k == "cancelled").unwrap();
    assert!(
        !kinds[cancelled_at..]
            .iter()
            .any(|k| k == "chapter" || k == "step"),
        "the worker went on after the cancel: {kinds:?}"
    );
    assert!(
        !server.log_text().contains("Workflow error occurred"),
        "{}",
        server.log_text()
    );
    assert!(server.terminate().success());
    let saved = saved_chapters(&temp.path, &story_id, &run_id);
    assert_eq!(saved.rows as u64, done_at_cancel);
    assert_eq!(run_row(&temp.path, &run_id).0, "cancelled");
}

#[test]
fn deleting_a_story_mid_run_trashes_it_and_the_worker_stops_without_error() {
    let temp = TempDb::new();
    let mut server = serve(&temp.path, 200, 1);
    let (story_id, run_id) = story_with_run(&server, "Torn Up", CHAPTERS);
    wait_for_chapters(&server, &run_id, 2);
    let resp = server.delete(&format!("/api/stories/{story_id}"));
    assert_eq!(resp.status, 204, "{}", resp.text());
    let resp = server.get(&format!("/api/stories/{story_id}"));
    assert_eq!(resp.status, 404);
    assert_eq!(resp.error_code(), "STORY_NOT_FOUND");
    // In the trash: the run is cancelled, not gone.
    assert_eq!(server.run(&run_id)["status"], "cancelled");
    wait_for_log(
        &server,
        &format!("run {run_id} was cancelled, deleted or taken over"),
    );
    // The only worker is free again.
    let (_, other_run) = story_with_run(&server, "Still Standing", 3);
    server.wait_for_run(&other_run, "completed", WAIT);
    let log = server.log_text();
    assert!(!log.contains("Workflow error occurred"), "{log}");
    assert!(!log.contains("could not record"), "{log}");
    // The delete left nothing behind for the sweeps to find.
    let orphans = server.get("/api/diagnostics/orphans").json();
    assert_eq!(orphans["count"], 0, "{orphans}");
    let purge = server.delete(&format!("/api/stories/{story_id}?purge=true"));
    assert_eq!(purge.status, 200, "{}", purge.text());
    assert!(server.terminate().success());
    let conn = Connection::open(&temp.path).unwrap();
    for (sql, id) in [
        ("SELECT count(*) FROM stories WHERE id = ?1", &story_id),
        (
            "SELECT count(*) FROM chapters WHERE story_id = ?1",
            &story_id,
        ),
        (
            "SELECT count(*) FROM workflow_runs WHERE story_id = ?1",
            &story_id,
        ),
        ("SELECT count(*) FROM run_events WHERE run_id = ?1", &run_id),
    ] {
        let n: u32 = conn.query_row(sql, [id], |r| r.get(0)).unwrap();
        assert_eq!(n, 0, "{sql}");
    }
}

/// The field case: a story deleted with the `sqlite3` shell (foreign keys
/// off) while a worker writes it. The run fails as an orphan at the next
/// chapter, never as a database error that looks worth retrying.
#[test]
fn a_story_deleted_behind_storyflows_back_mid_run_fails_the_run_with_story_not_found() {
    let temp = TempDb::new();
    // No timer sweep during the test: the worker must notice by itself.
    let server = Server::start_on(
        &temp.path,
        &[
            "--builtin-delay-ms",
            "200",
            "--workers",
            "1",
            "--sweep-interval-s",
            "600",
        ],
    );
    let (story_id, run_id) = story_with_run(&server, "Deleted From The Shell", CHAPTERS);
    wait_for_chapters(&server, &run_id, 2);
    let conn = Connection::open(&temp.path).unwrap();
    conn.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
    assert_eq!(
        conn.execute("DELETE FROM stories WHERE id = ?1", [&story_id])
            .unwrap(),
        1
    );
    drop(conn);
    let run = server.wait_for_run(&run_id, "failed", WAIT);
    assert_eq!(run["error"]["code"], "STORY_NOT_FOUND", "{run}");
    let done = run["chapters_done"].as_u64().unwrap();
    assert!(done >= 2 && done < u64::from(CHAPTERS), "{run}");
    let log = server.log_text();
    assert!(log.contains("Workflow error occurred"), "{log}");
    assert!(!log.contains("FOREIGN KEY"), "{log}");
    // The worker is free, and the run is reported as the orphan it is.
    let (_, other_run) = story_with_run(&server, "Unharmed", 3);
    server.wait_for_run(&other_run, "completed", WAIT);
    let report = server
        .get(&format!("/api/diagnostics/runs/{run_id}"))
        .json();
    assert_eq!(report["story_exists"], false, "{report}");
    assert!(
        report["findings"].to_string().contains("ORPHANED_RUN"),
        "{report}"
    );
    let saved = saved_chapters(&temp.path, &story_id, &run_id);
    assert_eq!(
        u64::from(saved.rows),
        done,
        "nothing written after the delete"
    );
}

#[test]
fn a_pending_run_whose_story_vanished_fails_at_once_with_story_not_found() {
    let temp = TempDb::new();
    // One worker, busy with a first story; no timer sweep during the test.
    let server = Server::start_on(
        &temp.path,
        &[
            "--builtin-delay-ms",
            "100",
            "--workers",
            "1",
            "--sweep-interval-s",
            "600",
        ],
    );
    let (_, busy_run) = story_with_run(&server, "Keeps The Worker Busy", 6);
    let (orphan_story, orphan_run) = story_with_run(&server, "Deleted While Queued", 3);
    assert_eq!(server.run(&orphan_run)["status"], "pending");
    let conn = Connection::open(&temp.path).unwrap();
    conn.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
    conn.execute("DELETE FROM stories WHERE id = ?1", [&orphan_story])
        .unwrap();
    drop(conn);
    server.wait_for_run(&busy_run, "completed", WAIT);
    let run = server.wait_for_run(&orphan_run, "failed", WAIT);
    assert_eq!(run["error"]["code"], "STORY_NOT_FOUND", "{run}");
    assert_eq!(run["chapters_done"], 0, "{run}");
    let log = server.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("Workflow error occurred") && l.contains(&orphan_run))
        .unwrap_or_else(|| panic!("no error line for the run:\n{log}"));
    assert!(line.contains(&orphan_story), "{line}");
    // Failed for good: the engine does not pick it up again, and a retry is refused.
    let retry = server.post_empty(&format!("/api/runs/{orphan_run}/retry"));
    assert_eq!(retry.error_code(), "STORY_NOT_FOUND", "{}", retry.text());
}

#[test]
fn sigterm_does_not_wait_out_a_long_generator_call() {
    let temp = TempDb::new();
    // Ten minutes per chapter: a generator call that shutdown cannot wait for.
    let mut server = Server::start_on(
        &temp.path,
        &[
            "--builtin-delay-ms",
            "600000",
            "--shutdown-grace-s",
            "1",
            "--workers",
            "1",
        ],
    );
    let (_, run_id) = story_with_run(&server, "A Slow Muse", 3);
    server.wait_for_run(&run_id, "running", WAIT);
    let started = std::time::Instant::now();
    let status = server.terminate();
    let took = started.elapsed();
    assert_eq!(status.code(), Some(0), "serve exited with {status}");
    assert!(took < Duration::from_secs(10), "shutdown took {took:?}");
    let log = server.log_text();
    // The call is abandoned at shutdown (its cancel token), so the worker
    // releases its run itself instead of the engine after the grace.
    assert!(
        log.contains(&format!(
            "run {run_id}: generator call abandoned for shutdown"
        )),
        "{log}"
    );
    let (status, owner, done) = run_row(&temp.path, &run_id);
    assert_eq!((status.as_str(), owner, done), ("pending", None, 0));

    let server = serve(&temp.path, 0, 1);
    let run = server.wait_for_run(&run_id, "completed", WAIT);
    assert_eq!(run["chapters_done"], 3);
    let kinds = server.event_kinds(&run_id);
    assert!(kinds.contains(&"released".to_string()), "{kinds:?}");
}
