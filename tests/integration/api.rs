//! The JSON API over real HTTP: the real binary on a free loopback port with
//! its own temporary database, driven through raw sockets. Stories, runs,
//! progress reports, health and metrics, and every error code of the
//! contract produced by a real request.

use std::time::Duration;

use crate::util::{Api, InProcess, Resp, Server, assert_error, create_story, id_of, outline};
use serde_json::{Value, json};

pub(crate) const WAIT: Duration = Duration::from_secs(30);
pub(crate) const MIB: usize = 1024 * 1024;
pub(crate) const MISSING_ID: &str = "3251c7d5-8f0e-4c52-9d7a-1b2c3d4e5f60";

pub(crate) fn run_ids(list: &Value) -> Vec<String> {
    ids_in(list, "runs")
}

/// The ids of the objects listed under `key`, in order.
pub(crate) fn ids_in(list: &Value, key: &str) -> Vec<String> {
    list[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} in {list}"))
        .iter()
        .map(id_of)
        .collect()
}

pub(crate) fn report(server: &impl Api, run_id: &str, body: Value) -> Resp {
    server.post(&format!("/api/runs/{run_id}/progress"), &body)
}

/// A server whose generator always fails (a command that exits non-zero, no
/// retries), so its runs end `failed` through the real engine.
pub(crate) fn failing_server() -> Server {
    Server::start(&[
        "--generator",
        "command",
        "--generator-cmd",
        "false",
        "--retries",
        "0",
        "--workers",
        "1",
    ])
}

pub(crate) fn failed_run(server: &Server) -> Value {
    let story = create_story(server, json!({"title": "Doomed", "outline": outline(2)}));
    let run = server.start_run(&id_of(&story), None);
    let failed = server.wait_for_run(&id_of(&run), "failed", WAIT);
    assert!(failed["error"]["code"].is_string(), "{failed}");
    failed
}

pub(crate) fn open_db(server: &Server) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(&server.db).expect("open the test database");
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn
}

pub(crate) fn count(conn: &rusqlite::Connection, sql: &str, id: &str) -> i64 {
    conn.query_row(sql, [id], |row| row.get(0)).unwrap()
}

// ---------------------------------------------------------------- stories

#[test]
fn a_story_is_created_read_updated_and_deleted() {
    let server = InProcess::new();
    let resp = server.post(
        "/api/stories",
        &json!({"title": "  The Salt Road ", "premise": "A courier crosses a drowned country.", "outline": outline(3)}),
    );
    assert_eq!(resp.status, 201, "{}", resp.text());
    let story = resp.json();
    let id = id_of(&story);
    assert_eq!(
        resp.header("location"),
        Some(format!("/api/stories/{id}").as_str())
    );
    assert_eq!(story["title"], "The Salt Road", "titles are trimmed");
    assert_eq!(story["premise"], "A courier crosses a drowned country.");
    assert_eq!(story["chapter_count"], 3);
    assert_eq!(story["chapter_count_source"], "outline");
    for field in ["created_at", "updated_at"] {
        assert!(story[field].is_string(), "{field} missing: {story}");
    }

    let read = server.get(&format!("/api/stories/{id}"));
    assert_eq!(read.status, 200);
    let read = read.json();
    assert_eq!(read["id"], id);
    assert_eq!(read["title"], "The Salt Road");
    assert_eq!(read["outline"], outline(3));
    assert_eq!(read["chapter_count_source"], "outline");

    // An explicit count wins over the outline; absent fields are left alone.
    let resp = server.patch(
        &format!("/api/stories/{id}"),
        &json!({"title": "The Salt Road, Revised", "chapter_count": 7}),
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    let updated = resp.json();
    assert_eq!(updated["title"], "The Salt Road, Revised");
    assert_eq!(updated["premise"], "A courier crosses a drowned country.");
    assert_eq!(updated["chapter_count"], 7);
    assert_eq!(updated["chapter_count_source"], "explicit");
    let read = server.get(&format!("/api/stories/{id}")).json();
    assert_eq!(read["chapter_count"], 7);
    assert_eq!(read["chapter_count_source"], "explicit");

    // `chapter_count: null` clears the explicit count: derived again.
    let cleared = server
        .patch(
            &format!("/api/stories/{id}"),
            &json!({"chapter_count": null}),
        )
        .json();
    assert_eq!(cleared["chapter_count"], 3, "{cleared}");
    assert_eq!(cleared["chapter_count_source"], "outline");
    assert_eq!(cleared["title"], "The Salt Road, Revised");
    let read = server.get(&format!("/api/stories/{id}")).json();
    assert_eq!(read["chapter_count"], 3);
    assert_eq!(read["chapter_count_source"], "outline");

    // Without an outline the configured default applies.
    let no_outline = server
        .patch(&format!("/api/stories/{id}"), &json!({"outline": ""}))
        .json();
    assert_eq!(no_outline["chapter_count"], 10);
    assert_eq!(no_outline["chapter_count_source"], "default");

    let resp = server.delete(&format!("/api/stories/{id}"));
    assert_eq!(resp.status, 204, "{}", resp.text());
    assert!(resp.body.is_empty());
    let gone = server.get(&format!("/api/stories/{id}"));
    let error = assert_error(&gone, 404, "STORY_NOT_FOUND");
    assert_eq!(error["details"]["story_id"], id);
    assert_error(
        &server.delete(&format!("/api/stories/{id}")),
        404,
        "STORY_NOT_FOUND",
    );
}

#[test]
fn stories_are_listed_newest_first_with_limit_and_offset() {
    let server = InProcess::new();
    let ids: Vec<String> = (1..=5)
        .map(|i| {
            id_of(&create_story(
                &server,
                json!({"title": format!("Story {i}")}),
            ))
        })
        .collect();
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();

    let all = server.get("/api/stories").json();
    assert_eq!(ids_in(&all, "stories"), newest_first);
    assert_eq!(all["limit"], 50);
    assert_eq!(all["offset"], 0);

    let page = server.get("/api/stories?limit=2").json();
    assert_eq!(ids_in(&page, "stories"), newest_first[..2]);
    let page = server.get("/api/stories?limit=2&offset=2").json();
    assert_eq!(ids_in(&page, "stories"), newest_first[2..4]);
    assert_eq!(page["limit"], 2);
    assert_eq!(page["offset"], 2);
    let page = server.get("/api/stories?limit=2&offset=4").json();
    assert_eq!(ids_in(&page, "stories"), newest_first[4..]);
    let page = server.get("/api/stories?offset=99").json();
    assert_eq!(ids_in(&page, "stories"), Vec::<String>::new());

    for bad in [
        "limit=0",
        "limit=abc",
        "limit=-1",
        "limit=100000",
        "offset=x",
    ] {
        let field = bad.split('=').next().unwrap();
        let error = assert_error(
            &server.get(&format!("/api/stories?{bad}")),
            422,
            "VALIDATION_FAILED",
        );
        assert_eq!(error["details"]["field"], field, "{bad}");
    }
}

#[test]
fn deleting_a_story_cancels_its_active_run_and_a_purge_removes_runs_chapters_and_events() {
    let server = Server::start(&["--builtin-delay-ms", "150"]);
    let story = create_story(
        &server,
        json!({"title": "Short-lived", "premise": "It will not last.", "outline": outline(30)}),
    );
    let id = id_of(&story);
    let run_id = id_of(&server.start_run(&id, None));
    let mut last = Value::Null;
    assert!(
        server.wait_until(WAIT, || {
            last = server.get(&format!("/api/runs/{run_id}")).json();
            last["chapters_done"].as_u64().unwrap_or(0) >= 1
        }),
        "no chapter was written: {last}"
    );
    let conn = open_db(&server);
    assert!(
        count(
            &conn,
            "SELECT count(*) FROM chapters WHERE story_id = ?1",
            &id
        ) >= 1
    );

    let resp = server.delete(&format!("/api/stories/{id}"));
    assert_eq!(resp.status, 204, "{}", resp.text());

    // Deleted means in the trash: the story routes answer 404, its run is
    // cancelled, nothing is destroyed until the purge.
    assert_eq!(server.run(&run_id)["status"], "cancelled");
    assert_error(
        &server.get(&format!("/api/stories/{id}/chapters")),
        404,
        "STORY_NOT_FOUND",
    );
    let purge = server.delete(&format!("/api/stories/{id}?purge=true"));
    assert_eq!(purge.status, 200, "{}", purge.text());
    let backup = purge.json()["backup"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(std::path::Path::new(&backup).is_file(), "{backup}");
    assert_error(
        &server.get(&format!("/api/runs/{run_id}")),
        404,
        "RUN_NOT_FOUND",
    );
    let listed = server.get(&format!("/api/runs?story_id={id}")).json();
    assert_eq!(run_ids(&listed), Vec::<String>::new());
    // The worker holding the run notices at its next step and writes nothing more.
    assert!(
        server.wait_until(WAIT, || server
            .log_text()
            .contains("was cancelled, deleted or taken over")),
        "the worker did not stop; log:\n{}",
        server.log_text()
    );
    assert_eq!(
        count(&conn, "SELECT count(*) FROM stories WHERE id = ?1", &id),
        0
    );
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM chapters WHERE story_id = ?1",
            &id
        ),
        0
    );
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM workflow_runs WHERE story_id = ?1",
            &id
        ),
        0
    );
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM run_events WHERE run_id = ?1",
            &run_id
        ),
        0
    );
}

#[test]
fn chapters_and_markdown_export_after_a_builtin_run() {
    let server = Server::start(&[]);
    let story = create_story(
        &server,
        json!({"title": "The Lighthouse Keeper", "premise": "A keeper finds a letter in the lamp.", "outline": outline(3)}),
    );
    let id = id_of(&story);

    // Before any run: no chapters, and the export is the title and premise.
    let empty = server.get(&format!("/api/stories/{id}/chapters")).json();
    assert_eq!(empty["chapters"], json!([]));

    let run_id = id_of(&server.start_run(&id, None));
    server.wait_for_run(&run_id, "completed", WAIT);

    let resp = server.get(&format!("/api/stories/{id}/chapters"));
    assert_eq!(resp.status, 200);
    let chapters = resp.json()["chapters"].as_array().unwrap().clone();
    assert_eq!(chapters.len(), 3);
    for (i, chapter) in chapters.iter().enumerate() {
        let number = i as u64 + 1;
        assert_eq!(chapter["number"], number, "{chapter}");
        assert_eq!(chapter["title"], format!("Beat {number}"), "{chapter}");
        let content = chapter["content"].as_str().unwrap();
        assert!(!content.trim().is_empty());
        assert_eq!(
            chapter["word_count"],
            content.split_whitespace().count() as u64
        );
        assert_eq!(chapter["run_id"], run_id);
        assert!(chapter["created_at"].is_string());
    }

    let export = server.get(&format!("/api/stories/{id}/export"));
    assert_eq!(export.status, 200);
    assert!(
        export
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/markdown")),
        "{:?}",
        export.headers
    );
    let markdown = export.text();
    assert!(
        markdown.starts_with("# The Lighthouse Keeper\n"),
        "{markdown}"
    );
    assert!(markdown.contains("A keeper finds a letter in the lamp."));
    let positions: Vec<usize> = (1..=3)
        .map(|i| {
            markdown
                .find(&format!("## Chapter {i}: Beat {i}"))
                .unwrap_or_else(|| panic!("chapter {i} missing: {markdown}"))
        })
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "chapters out of order"
    );
    for chapter in &chapters {
        let opening: String = chapter["content"]
            .as_str()
            .unwrap()
            .split_whitespace()
            .take(8)
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            markdown
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .contains(&opening),
            "chapter text missing from the export"
        );
    }
}

// ---------------------------------------------------------------- runs

#[test]
fn a_second_start_conflicts_with_the_active_run() {
    let server = InProcess::new();
    let id = id_of(&create_story(
        &server,
        json!({"title": "Twice", "outline": outline(4)}),
    ));
    let resp = server.post_empty(&format!("/api/stories/{id}/runs"));
    assert_eq!(resp.status, 202, "{}", resp.text());
    let run = resp.json();
    let run_id = id_of(&run);
    assert_eq!(
        resp.header("location"),
        Some(format!("/api/runs/{run_id}").as_str())
    );
    assert_eq!(run["story_id"], id);
    assert_eq!(run["status"], "pending");
    assert_eq!(run["chapters_done"], 0);
    assert_eq!(run["chapters_total"], 4);
    assert_eq!(run["progress"], 0);
    assert_eq!(run["error"], Value::Null);
    for field in [
        "step",
        "attempt",
        "created_at",
        "started_at",
        "updated_at",
        "finished_at",
    ] {
        assert!(run.get(field).is_some(), "{field} missing: {run}");
    }

    let second = server.post_empty(&format!("/api/stories/{id}/runs"));
    let error = assert_error(&second, 409, "CONFLICT");
    assert_eq!(error["details"]["run_id"], run_id);
    assert_eq!(error["details"]["story_id"], id);
    assert!(error["message"].as_str().unwrap().contains(&run_id));

    // Once it is cancelled a new run may start.
    assert_eq!(
        server
            .post_empty(&format!("/api/runs/{run_id}/cancel"))
            .status,
        200
    );
    server.start_run(&id, None);
}

#[test]
fn cancel_stops_an_active_run_and_refuses_a_finished_one() {
    let server = Server::start(&["--workers", "0"]);
    let id = id_of(&create_story(
        &server,
        json!({"title": "Stop", "outline": outline(2)}),
    ));
    let run_id = id_of(&server.start_run(&id, None));
    let resp = server.post_empty(&format!("/api/runs/{run_id}/cancel"));
    assert_eq!(resp.status, 200, "{}", resp.text());
    let cancelled = resp.json();
    assert_eq!(cancelled["status"], "cancelled");
    assert!(cancelled["finished_at"].is_string());
    let again = server.post_empty(&format!("/api/runs/{run_id}/cancel"));
    let error = assert_error(&again, 409, "CONFLICT");
    assert_eq!(error["details"]["status"], "cancelled");

    // A completed run (written by the real engine) cannot be cancelled.
    let builtin = Server::start(&[]);
    let id = id_of(&create_story(
        &builtin,
        json!({"title": "Done", "outline": outline(2)}),
    ));
    let run_id = id_of(&builtin.start_run(&id, None));
    builtin.wait_for_run(&run_id, "completed", WAIT);
    let error = assert_error(
        &builtin.post_empty(&format!("/api/runs/{run_id}/cancel")),
        409,
        "CONFLICT",
    );
    assert_eq!(error["details"]["run_id"], run_id);
    assert_eq!(error["details"]["status"], "completed");
    assert_eq!(
        builtin.get(&format!("/api/runs/{run_id}")).json()["status"],
        "completed"
    );
}

#[test]
fn only_failed_or_cancelled_runs_can_be_retried() {
    let server = Server::start(&["--workers", "0"]);
    let id = id_of(&create_story(
        &server,
        json!({"title": "Again", "outline": outline(2)}),
    ));
    let run_id = id_of(&server.start_run(&id, None));
    let retry = |run: &str| server.post_empty(&format!("/api/runs/{run}/retry"));

    let error = assert_error(&retry(&run_id), 409, "CONFLICT");
    assert_eq!(error["details"]["status"], "pending");

    report(&server, &run_id, json!({"chapters_done": 1}));
    let error = assert_error(&retry(&run_id), 409, "CONFLICT");
    assert_eq!(error["details"]["status"], "running");

    server.post_empty(&format!("/api/runs/{run_id}/cancel"));
    let resp = retry(&run_id);
    assert_eq!(resp.status, 202, "{}", resp.text());
    let retried = resp.json();
    assert_eq!(retried["id"], run_id, "a retry resumes the same run");
    assert_eq!(retried["status"], "pending");
    assert_eq!(
        retried["chapters_done"], 1,
        "a retry keeps the chapters done"
    );
    assert_eq!(retried["finished_at"], Value::Null);

    // While it is active again, a second retry and a new start conflict.
    assert_error(&retry(&run_id), 409, "CONFLICT");
    assert_error(
        &server.post_empty(&format!("/api/stories/{id}/runs")),
        409,
        "CONFLICT",
    );

    report(&server, &run_id, json!({"chapters_done": 2}));
    assert_eq!(
        server.get(&format!("/api/runs/{run_id}")).json()["status"],
        "completed"
    );
    let error = assert_error(&retry(&run_id), 409, "CONFLICT");
    assert_eq!(error["details"]["status"], "completed");

    // A run failed by its generator is retried: queued again, error cleared.
    let failing = failing_server();
    let failed = failed_run(&failing);
    let failed_id = id_of(&failed);
    let resp = failing.post_empty(&format!("/api/runs/{failed_id}/retry"));
    assert_eq!(resp.status, 202, "{}", resp.text());
    let retried = resp.json();
    assert!(
        retried["status"] == "pending" || retried["status"] == "running",
        "{retried}"
    );
    assert_eq!(retried["error"], Value::Null);
    assert_eq!(retried["chapters_done"], failed["chapters_done"]);
}

#[test]
fn a_retried_run_resumes_after_its_last_saved_chapter() {
    let server = Server::start(&["--builtin-delay-ms", "100"]);
    let id = id_of(&create_story(
        &server,
        json!({"title": "Resumable", "premise": "A long walk.", "outline": outline(8)}),
    ));
    let run_id = id_of(&server.start_run(&id, None));
    let mut last = Value::Null;
    assert!(
        server.wait_until(WAIT, || {
            last = server.get(&format!("/api/runs/{run_id}")).json();
            last["chapters_done"].as_u64().unwrap_or(0) >= 2
        }),
        "no progress: {last}"
    );
    let cancelled = server
        .post_empty(&format!("/api/runs/{run_id}/cancel"))
        .json();
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    let done = cancelled["chapters_done"].as_u64().unwrap();
    assert!((2..8).contains(&done), "{cancelled}");
    let saved = server.get(&format!("/api/stories/{id}/chapters")).json()["chapters"]
        .as_array()
        .unwrap()
        .len() as u64;
    assert_eq!(saved, done, "chapters saved match chapters_done");

    let resp = server.post_empty(&format!("/api/runs/{run_id}/retry"));
    assert_eq!(resp.status, 202, "{}", resp.text());
    assert_eq!(resp.json()["chapters_done"], done);
    let completed = server.wait_for_run(&run_id, "completed", WAIT);
    assert_eq!(completed["chapters_done"], 8);
    assert_eq!(completed["progress"], 100);

    let chapters = server.get(&format!("/api/stories/{id}/chapters")).json();
    let numbers: Vec<u64> = chapters["chapters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, (1..=8).collect::<Vec<u64>>(), "each chapter once");
    let events = server.get(&format!("/api/runs/{run_id}/events")).json();
    let retry = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "retry")
        .unwrap_or_else(|| panic!("no retry event: {events}"));
    assert!(
        retry["message"]
            .as_str()
            .unwrap()
            .contains(&format!("after chapter {done}")),
        "{retry}"
    );
}

#[test]
fn runs_are_listed_with_status_and_story_filters() {
    let server = Server::start(&["--workers", "0"]);
    let a = id_of(&create_story(
        &server,
        json!({"title": "A", "outline": outline(2)}),
    ));
    let b = id_of(&create_story(
        &server,
        json!({"title": "B", "outline": outline(2)}),
    ));
    let a1 = id_of(&server.start_run(&a, None));
    server.post_empty(&format!("/api/runs/{a1}/cancel"));
    let a2 = id_of(&server.start_run(&a, None));
    let b1 = id_of(&server.start_run(&b, None));

    let all = server.get("/api/runs").json();
    assert_eq!(run_ids(&all), [b1.as_str(), a2.as_str(), a1.as_str()]);
    assert_eq!(
        run_ids(&server.get("/api/runs?status=cancelled").json()),
        [a1.as_str()]
    );
    assert_eq!(
        run_ids(&server.get("/api/runs?status=pending").json()),
        [b1.as_str(), a2.as_str()]
    );
    assert_eq!(
        run_ids(&server.get(&format!("/api/runs?story_id={a}")).json()),
        [a2.as_str(), a1.as_str()]
    );
    assert_eq!(
        run_ids(
            &server
                .get(&format!("/api/runs?story_id={a}&status=pending"))
                .json()
        ),
        [a2.as_str()]
    );
    assert_eq!(
        run_ids(&server.get("/api/runs?status=completed").json()),
        Vec::<String>::new()
    );
    assert_eq!(
        run_ids(
            &server
                .get(&format!("/api/runs?story_id={MISSING_ID}"))
                .json()
        ),
        Vec::<String>::new()
    );
    assert_eq!(
        run_ids(&server.get("/api/runs?limit=1").json()),
        [b1.as_str()]
    );
    // The per-story listing says the same.
    assert_eq!(
        run_ids(&server.get(&format!("/api/stories/{b}/runs")).json()),
        [b1.as_str()]
    );

    for (query, field) in [
        ("status=bogus", "status"),
        ("status=PENDING", "status"),
        ("story_id=not-a-uuid", "story_id"),
        ("limit=0", "limit"),
        ("limit=many", "limit"),
    ] {
        let error = assert_error(
            &server.get(&format!("/api/runs?{query}")),
            422,
            "VALIDATION_FAILED",
        );
        assert_eq!(error["details"]["field"], field, "{query}");
    }
}

#[test]
fn the_events_timeline_records_each_transition_in_order() {
    let server = Server::start(&["--workers", "0"]);
    let id = id_of(&create_story(
        &server,
        json!({"title": "Timeline", "outline": outline(3)}),
    ));
    let run_id = id_of(&server.start_run(&id, None));
    server.post_empty(&format!("/api/runs/{run_id}/cancel"));
    server.post_empty(&format!("/api/runs/{run_id}/retry"));
    for done in 1..=3 {
        report(&server, &run_id, json!({"chapters_done": done}));
    }
    let resp = server.get(&format!("/api/runs/{run_id}/events"));
    assert_eq!(resp.status, 200);
    let body = resp.json();
    assert_eq!(body["run_id"], run_id);
    let events = body["events"].as_array().unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds[..3], ["created", "cancelled", "retry"], "{body}");
    let ids: Vec<i64> = events.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "not in order: {body}");
    let times: Vec<&str> = events.iter().map(|e| e["at"].as_str().unwrap()).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "not in order: {body}"
    );
    assert!(events.iter().all(|e| e["message"].is_string()));
    assert!(events[0]["message"].as_str().unwrap().contains('3'));
}

#[test]
fn a_builtin_run_leaves_a_timeline_of_chapters_and_completion() {
    let server = Server::start(&[]);
    let id = id_of(&create_story(
        &server,
        json!({"title": "Logged", "outline": outline(2)}),
    ));
    let run_id = id_of(&server.start_run(&id, None));
    let run = server.wait_for_run(&run_id, "completed", WAIT);
    assert_eq!(run["step"], "finalize");
    assert!(run["started_at"].is_string() && run["finished_at"].is_string());
    let events = server.get(&format!("/api/runs/{run_id}/events")).json();
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"created"), "{events}");
    assert_eq!(
        kinds.iter().filter(|k| **k == "chapter").count(),
        2,
        "{events}"
    );
    assert_eq!(kinds.last(), Some(&"completed"), "{events}");
}
