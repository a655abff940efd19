//! The API over real HTTP, continued from [`crate::api`]: progress reports,
//! health and metrics, and every error code in the contract's shape.

use crate::api::*;
use crate::util::{Api, InProcess, Server, assert_error, create_story, id_of, outline, send_raw};
use serde_json::json;

// ---------------------------------------------------------------- progress

#[test]
fn external_progress_reports_start_advance_and_complete_a_run() {
    let server = Server::start(&["--workers", "0"]);
    let id = id_of(&create_story(
        &server,
        json!({"title": "Outsourced", "outline": outline(4)}),
    ));
    let run_id = id_of(&server.start_run(&id, None));
    let run = |server: &Server| server.get(&format!("/api/runs/{run_id}")).json();
    assert_eq!(run(&server)["status"], "pending");

    // The first report starts the pending run.
    let resp = report(
        &server,
        &run_id,
        json!({"chapters_done": 1, "step": "chapter 2/4"}),
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json(), json!({"applied": true}));
    let now = run(&server);
    assert_eq!(now["status"], "running");
    assert_eq!(now["chapters_done"], 1);
    assert_eq!(now["progress"], 25);
    assert_eq!(now["step"], "chapter 2/4");
    assert!(now["started_at"].is_string());

    // Monotonic: the same or a lower value is stale and changes nothing.
    for stale in [1, 0] {
        let resp = report(&server, &run_id, json!({"chapters_done": stale}));
        assert_eq!(resp.status, 200);
        assert_eq!(resp.json(), json!({"applied": false, "reason": "stale"}));
    }
    assert_eq!(
        report(&server, &run_id, json!({"chapters_done": 3})).json(),
        json!({"applied": true})
    );
    assert_eq!(
        report(
            &server,
            &run_id,
            json!({"chapters_done": 2, "step": "back"})
        )
        .json(),
        json!({"applied": false, "reason": "stale"})
    );
    let now = run(&server);
    assert_eq!(now["chapters_done"], 3);
    assert_eq!(now["progress"], 75);
    assert_eq!(now["step"], "chapter 2/4", "a stale report changes no step");

    // More than the story has is refused.
    let error = assert_error(
        &report(&server, &run_id, json!({"chapters_done": 5})),
        422,
        "VALIDATION_FAILED",
    );
    assert_eq!(error["details"]["field"], "chapters_done");

    // Reaching the total completes the run; later reports are turned away.
    assert_eq!(
        report(&server, &run_id, json!({"chapters_done": 4})).json(),
        json!({"applied": true})
    );
    let done = run(&server);
    assert_eq!(done["status"], "completed");
    assert_eq!(done["progress"], 100);
    assert!(done["finished_at"].is_string());
    assert_eq!(
        report(&server, &run_id, json!({"chapters_done": 4})).json(),
        json!({"applied": false, "reason": "run_finished"})
    );

    // A cancelled run is finished too.
    let other = id_of(&create_story(
        &server,
        json!({"title": "Dropped", "outline": outline(4)}),
    ));
    let cancelled = id_of(&server.start_run(&other, None));
    server.post_empty(&format!("/api/runs/{cancelled}/cancel"));
    assert_eq!(
        report(&server, &cancelled, json!({"chapters_done": 2})).json(),
        json!({"applied": false, "reason": "run_finished"})
    );
    assert_eq!(
        server.get(&format!("/api/runs/{cancelled}")).json()["chapters_done"],
        0
    );

    let metrics = server.get("/api/metrics").json();
    let progress = &metrics["progress_updates"];
    assert_eq!(progress["applied"], 3, "{metrics}");
    assert_eq!(progress["skipped"]["stale"], 3, "{metrics}");
    assert_eq!(progress["skipped"]["run_finished"], 2, "{metrics}");
    assert_eq!(progress["skipped"]["run_failed"], 0, "{metrics}");
}

#[test]
fn progress_on_a_failed_run_is_skipped_with_run_failed() {
    let server = failing_server();
    let failed = failed_run(&server);
    let run_id = id_of(&failed);
    let resp = report(&server, &run_id, json!({"chapters_done": 1}));
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        resp.json(),
        json!({"applied": false, "reason": "run_failed"})
    );
    let after = server.get(&format!("/api/runs/{run_id}")).json();
    assert_eq!(after["status"], "failed");
    assert_eq!(after["chapters_done"], failed["chapters_done"]);
    assert!(
        server.wait_until(WAIT, || server
            .log_text()
            .contains("Skipping progress update for failed run")),
        "no warning logged:\n{}",
        server.log_text()
    );
    assert_eq!(
        server.get("/api/metrics").json()["progress_updates"]["skipped"]["run_failed"],
        1
    );
}

#[test]
fn progress_reports_are_validated() {
    let server = InProcess::new();
    let id = id_of(&create_story(
        &server,
        json!({"title": "Checked", "outline": outline(2)}),
    ));
    let run_id = id_of(&server.start_run(&id, None));
    for (body, field) in [
        (json!({}), "chapters_done"),
        (json!({"chapters_done": -1}), "chapters_done"),
        (json!({"chapters_done": "one"}), "chapters_done"),
        (json!({"chapters_done": 1, "step": 5}), "step"),
        (json!({"chapters_done": 1, "step": "x".repeat(201)}), "step"),
    ] {
        let error = assert_error(
            &report(&server, &run_id, body.clone()),
            422,
            "VALIDATION_FAILED",
        );
        assert_eq!(error["details"]["field"], field, "{body}");
    }
    let error = assert_error(
        &report(&server, MISSING_ID, json!({"chapters_done": 1})),
        404,
        "RUN_NOT_FOUND",
    );
    assert_eq!(error["details"]["run_id"], MISSING_ID);
    assert_error(
        &report(&server, "nope", json!({"chapters_done": 1})),
        400,
        "BAD_REQUEST",
    );
    assert_eq!(
        server.get(&format!("/api/runs/{run_id}")).json()["status"],
        "pending",
        "no invalid report touched the run"
    );
}

// ---------------------------------------------------------------- health and metrics

#[test]
fn health_and_metrics_have_their_documented_shape() {
    let server = Server::start(&["--workers", "0"]);
    let health = server.get("/api/health");
    assert_eq!(health.status, 200);
    let health = health.json();
    assert!(
        health["status"] == "ok" || health["status"] == "degraded",
        "{health}"
    );
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    assert!(health["uptime_s"].is_u64(), "{health}");

    // Produce a known error so the counters have something to count.
    assert_eq!(server.get("/api/nope").status, 404);
    let metrics = server.get("/api/metrics");
    assert_eq!(metrics.status, 200);
    let metrics = metrics.json();
    let cache = &metrics["chapter_count_cache"];
    for field in ["hits", "misses", "entries", "evictions"] {
        assert!(cache[field].is_u64(), "cache {field} missing: {metrics}");
    }
    assert!(cache["hit_rate"].is_number(), "{metrics}");
    let progress = &metrics["progress_updates"];
    assert!(progress["applied"].is_u64(), "{metrics}");
    for reason in ["run_failed", "run_finished", "stale"] {
        assert!(progress["skipped"][reason].is_u64(), "{reason}: {metrics}");
    }
    for field in [
        "orphans_detected",
        "runs_recovered",
        "failed_runs_cleaned",
        "sweeps",
        "sql_statements",
        "http_requests",
        "http_errors",
    ] {
        assert!(metrics[field].is_u64(), "{field} missing: {metrics}");
    }
    assert!(metrics["http_requests"].as_u64().unwrap() >= 2);
    assert!(metrics["http_errors"].as_u64().unwrap() >= 1);
    assert!(metrics["sql_statements"].as_u64().unwrap() > 0);

    let text = server.get("/metrics");
    assert_eq!(text.status, 200);
    assert!(
        text.header("content-type")
            .is_some_and(|t| t.starts_with("text/plain")),
        "{:?}",
        text.headers
    );
    let text = text.text();
    for name in [
        "storyflow_chapter_count_cache_hits_total",
        "storyflow_chapter_count_cache_hit_rate",
        "storyflow_progress_updates_applied_total",
        "storyflow_http_requests_total",
        "storyflow_sql_statements_total",
    ] {
        assert!(
            text.contains(&format!("# TYPE {name} ")),
            "{name} missing:\n{text}"
        );
    }
    assert!(text.contains("storyflow_progress_updates_skipped_total{reason=\"stale\"} "));
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let value = line.rsplit(' ').next().unwrap();
        assert!(value.parse::<f64>().is_ok(), "bad sample line: {line}");
        assert!(line.starts_with("storyflow_"), "bad sample line: {line}");
    }
}

#[test]
fn responses_carry_nosniff_and_a_content_security_policy() {
    let server = Server::start(&["--workers", "0"]);
    let json_reply = server.get("/api/health");
    let page = server.get("/");
    let error = server.get("/api/stories/not-an-id");
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    for resp in [&json_reply, &page, &error] {
        assert_eq!(resp.header("x-content-type-options"), Some("nosniff"));
        let csp = resp
            .header("content-security-policy")
            .unwrap_or_else(|| panic!("no CSP: {:?}", resp.headers));
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
    }
}

// ---------------------------------------------------------------- error codes

#[test]
fn malformed_json_is_invalid_json() {
    let server = InProcess::new();
    for body in [
        &b"{\"title\": "[..],
        b"{title: 'x'}",
        b"{\"title\": \"a\"} trailing",
        b"",
        b"   ",
        b"\xff\xfe",
    ] {
        let resp = server.send("POST", "/api/stories", Some("application/json"), body);
        assert_error(&resp, 400, "INVALID_JSON");
    }
    let id = id_of(&create_story(&server, json!({"title": "Patchable"})));
    let resp = server.send(
        "PATCH",
        &format!("/api/stories/{id}"),
        Some("application/json"),
        b"{\"title\": \"x\",",
    );
    assert_error(&resp, 400, "INVALID_JSON");
    assert_eq!(
        server.get(&format!("/api/stories/{id}")).json()["title"],
        "Patchable"
    );
}

#[test]
fn wrong_types_fail_validation_naming_the_field() {
    let server = InProcess::new();
    for (body, field) in [
        (json!({"title": 5}), "title"),
        (json!({"title": null}), "title"),
        (json!({"title": "t", "premise": ["a"]}), "premise"),
        (json!({"title": "t", "outline": {}}), "outline"),
        (
            json!({"title": "t", "chapter_count": "many"}),
            "chapter_count",
        ),
        (json!({"title": "t", "chapter_count": -3}), "chapter_count"),
        (json!({"title": "t", "chapter_count": 2.5}), "chapter_count"),
        (json!({"title": "t", "chapter_count": 0}), "chapter_count"),
        (
            json!({"title": "t", "chapter_count": 1001}),
            "chapter_count",
        ),
        (json!({"title": "t", "colour": "red"}), "colour"),
        (json!(["title"]), "body"),
        (json!("title"), "body"),
    ] {
        let error = assert_error(
            &server.post("/api/stories", &body),
            422,
            "VALIDATION_FAILED",
        );
        assert_eq!(error["details"]["field"], field, "{body}: {error}");
    }
    let id = id_of(&create_story(&server, json!({"title": "Typed"})));
    for (body, field) in [
        (json!({"premise": 3}), "premise"),
        (json!({"chapter_count": "x"}), "chapter_count"),
        (json!({"title": ""}), "title"),
        (json!({"title": null}), "title"),
        (json!({"premise": null}), "premise"),
        (json!({"outline": null}), "outline"),
        (json!({"chapter_count": 1, "bogus": true}), "bogus"),
    ] {
        let error = assert_error(
            &server.patch(&format!("/api/stories/{id}"), &body),
            422,
            "VALIDATION_FAILED",
        );
        assert_eq!(error["details"]["field"], field, "{body}: {error}");
    }
    // Nothing was created or changed by a refused body.
    let stories = server.get("/api/stories").json();
    assert_eq!(stories["stories"].as_array().unwrap().len(), 1);
    let story = server.get(&format!("/api/stories/{id}")).json();
    assert_eq!(story["title"], "Typed");
    assert_eq!(story["chapter_count_source"], "default");
}

#[test]
fn a_missing_or_empty_title_fails_validation() {
    let server = InProcess::new();
    for body in [
        json!({}),
        json!({"premise": "no title"}),
        json!({"title": ""}),
        json!({"title": "   \n\t"}),
    ] {
        let error = assert_error(
            &server.post("/api/stories", &body),
            422,
            "VALIDATION_FAILED",
        );
        assert_eq!(error["details"]["field"], "title", "{body}");
        assert!(
            error["message"].as_str().unwrap().contains("title"),
            "{error}"
        );
    }
    assert_eq!(server.get("/api/stories").json()["stories"], json!([]));
}

#[test]
fn a_title_of_100k_characters_fails_validation_naming_the_limit() {
    let server = InProcess::new();
    let title = "é".repeat(100_000);
    let error = assert_error(
        &server.post("/api/stories", &json!({"title": title})),
        422,
        "VALIDATION_FAILED",
    );
    assert_eq!(error["details"]["field"], "title");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("500"), "the limit is not named: {message}");
    assert!(
        message.contains("100000"),
        "the length is not named: {message}"
    );
    assert!(message.len() < 300, "the title is echoed back: {message}");
    assert_eq!(server.get("/api/stories").json()["stories"], json!([]));

    let id = id_of(&create_story(&server, json!({"title": "Short"})));
    let error = assert_error(
        &server.patch(
            &format!("/api/stories/{id}"),
            &json!({"title": "x".repeat(100_000)}),
        ),
        422,
        "VALIDATION_FAILED",
    );
    assert_eq!(error["details"]["field"], "title");
    // Just inside the limit is fine.
    create_story(&server, json!({"title": "x".repeat(500)}));
}

#[test]
fn unknown_routes_are_not_found() {
    let server = InProcess::new();
    for path in [
        "/api/nope",
        "/nope",
        "/api",
        "/api/stories/extra/segments/here",
        &format!("/api/stories/{MISSING_ID}/nope"),
        "/assets/../../etc/passwd",
        "/assets/secret.txt",
    ] {
        assert_error(&server.get(path), 404, "NOT_FOUND");
    }
    assert_error(&server.post("/api/nope", &json!({})), 404, "NOT_FOUND");
}

#[test]
fn wrong_methods_are_refused_with_an_allow_header() {
    let server = InProcess::new();
    for (method, path, allow) in [
        ("PUT", "/api/stories".to_string(), "GET, POST"),
        ("DELETE", "/api/stories".to_string(), "GET, POST"),
        (
            "POST",
            format!("/api/stories/{MISSING_ID}"),
            "GET, PATCH, DELETE",
        ),
        ("GET", format!("/api/runs/{MISSING_ID}/cancel"), "POST"),
        ("DELETE", "/api/runs".to_string(), "GET"),
        ("POST", "/api/health".to_string(), "GET"),
        ("POST", "/".to_string(), "GET"),
    ] {
        let resp = server.send(method, &path, None, b"");
        let error = assert_error(&resp, 405, "METHOD_NOT_ALLOWED");
        assert_eq!(resp.header("allow"), Some(allow), "{method} {path}");
        let allowed: Vec<&str> = error["details"]["allowed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap())
            .collect();
        assert_eq!(allowed.join(", "), allow);
    }
}

#[test]
fn a_body_over_one_mebibyte_is_payload_too_large() {
    let server = Server::start(&["--workers", "0"]);
    let body = format!("{{\"title\": \"{}\"}}", "x".repeat(MIB));
    assert!(body.len() > MIB);

    // Declared with Content-Length.
    let resp = server.send(
        "POST",
        "/api/stories",
        Some("application/json"),
        body.as_bytes(),
    );
    let error = assert_error(&resp, 413, "PAYLOAD_TOO_LARGE");
    assert_eq!(error["details"]["limit_bytes"], MIB);

    // Declared small-enough chunks, no Content-Length: the server must count.
    let mut request = format!(
        "POST /api/stories HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        server.addr
    )
    .into_bytes();
    for chunk in body.as_bytes().chunks(64 * 1024) {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let resp = send_raw(server.addr, &request);
    let error = assert_error(&resp, 413, "PAYLOAD_TOO_LARGE");
    assert_eq!(error["details"]["limit_bytes"], MIB);

    // A chunked body within the limit is read whole.
    let small = br#"{"title": "Chunked"}"#;
    let request = [
        format!(
            "POST /api/stories HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
            server.addr
        )
        .into_bytes(),
        format!("{:x}\r\n", 10).into_bytes(),
        small[..10].to_vec(),
        b"\r\n".to_vec(),
        format!("{:x}\r\n", small.len() - 10).into_bytes(),
        small[10..].to_vec(),
        b"\r\n0\r\n\r\n".to_vec(),
    ]
    .concat();
    let resp = send_raw(server.addr, &request);
    assert_eq!(resp.status, 201, "{}", resp.text());
    assert_eq!(resp.json()["title"], "Chunked");

    // Exactly at the limit is read and judged on its content (the outline is too long).
    let filler = MIB - r#"{"title": "t", "outline": ""}"#.len();
    let at_limit = format!(
        "{{\"title\": \"t\", \"outline\": \"{}\"}}",
        "x".repeat(filler)
    );
    assert_eq!(at_limit.len(), MIB);
    let resp = server.send(
        "POST",
        "/api/stories",
        Some("application/json"),
        at_limit.as_bytes(),
    );
    let error = assert_error(&resp, 422, "VALIDATION_FAILED");
    assert_eq!(error["details"]["field"], "outline");
    assert_eq!(
        server.get("/api/stories").json()["stories"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn a_body_that_is_not_json_is_unsupported_media_type() {
    let server = InProcess::new();
    let body = br#"{"title": "Typed wrong"}"#;
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/jsonp"),
        None,
    ] {
        let resp = server.send("POST", "/api/stories", content_type, body);
        assert_error(&resp, 415, "UNSUPPORTED_MEDIA_TYPE");
    }
    // Parameters and case do not matter.
    let resp = server.send(
        "POST",
        "/api/stories",
        Some("Application/JSON; charset=utf-8"),
        body,
    );
    assert_eq!(resp.status, 201, "{}", resp.text());
    let id = id_of(&resp.json());
    let resp = server.send(
        "PATCH",
        &format!("/api/stories/{id}"),
        Some("text/plain"),
        body,
    );
    assert_error(&resp, 415, "UNSUPPORTED_MEDIA_TYPE");
    let run = server.send(
        "POST",
        &format!("/api/stories/{id}/runs"),
        Some("text/plain"),
        b"{}",
    );
    assert_error(&run, 415, "UNSUPPORTED_MEDIA_TYPE");
}

#[test]
fn ids_that_are_not_uuids_are_bad_requests() {
    let server = InProcess::new();
    let long = "x".repeat(5000);
    for (method, path) in [
        ("GET", "/api/stories/abc".to_string()),
        ("PATCH", "/api/stories/abc".to_string()),
        ("DELETE", "/api/stories/123".to_string()),
        ("GET", "/api/stories/abc/chapters".to_string()),
        ("GET", "/api/stories/abc/export".to_string()),
        ("POST", "/api/stories/abc/runs".to_string()),
        ("GET", "/api/runs/abc".to_string()),
        ("GET", "/api/runs/abc/events".to_string()),
        ("POST", "/api/runs/abc/cancel".to_string()),
        ("POST", "/api/runs/abc/retry".to_string()),
        ("GET", format!("/api/runs/{}", &MISSING_ID[..35])),
        ("GET", format!("/api/stories/{long}")),
        ("GET", "/api/stories/%27%20OR%201=1".to_string()),
    ] {
        let body: &[u8] = if method == "PATCH" {
            b"{\"title\": \"x\"}"
        } else {
            b""
        };
        let content_type = (!body.is_empty()).then_some("application/json");
        let resp = server.send(method, &path, content_type, body);
        let error = assert_error(&resp, 400, "BAD_REQUEST");
        assert!(
            error["message"].as_str().unwrap().len() < 300,
            "a long id is echoed back whole: {error}"
        );
    }
    let error = assert_error(&server.get("/api/runs/abc"), 400, "BAD_REQUEST");
    assert_eq!(error["details"]["kind"], "run");
    let error = assert_error(&server.get("/api/stories/abc"), 400, "BAD_REQUEST");
    assert_eq!(error["details"]["kind"], "story");
}

#[test]
fn ids_that_do_not_exist_are_not_found() {
    let server = InProcess::new();
    for (method, path) in [
        ("GET", format!("/api/stories/{MISSING_ID}")),
        ("PATCH", format!("/api/stories/{MISSING_ID}")),
        ("DELETE", format!("/api/stories/{MISSING_ID}")),
        ("GET", format!("/api/stories/{MISSING_ID}/chapters")),
        ("GET", format!("/api/stories/{MISSING_ID}/export")),
        ("GET", format!("/api/stories/{MISSING_ID}/runs")),
        ("POST", format!("/api/stories/{MISSING_ID}/runs")),
    ] {
        let body: &[u8] = if method == "PATCH" {
            b"{\"title\": \"x\"}"
        } else {
            b""
        };
        let content_type = (!body.is_empty()).then_some("application/json");
        let error = assert_error(
            &server.send(method, &path, content_type, body),
            404,
            "STORY_NOT_FOUND",
        );
        assert_eq!(error["details"]["story_id"], MISSING_ID, "{method} {path}");
        assert!(error["message"].as_str().unwrap().contains(MISSING_ID));
    }
    for (method, path) in [
        ("GET", format!("/api/runs/{MISSING_ID}")),
        ("GET", format!("/api/runs/{MISSING_ID}/events")),
        ("POST", format!("/api/runs/{MISSING_ID}/cancel")),
        ("POST", format!("/api/runs/{MISSING_ID}/retry")),
    ] {
        let error = assert_error(&server.send(method, &path, None, b""), 404, "RUN_NOT_FOUND");
        assert_eq!(error["details"]["run_id"], MISSING_ID, "{method} {path}");
    }
    // Upper-case spelling of a real id finds it.
    let id = id_of(&create_story(&server, json!({"title": "Case"})));
    assert_eq!(
        server
            .get(&format!("/api/stories/{}", id.to_uppercase()))
            .status,
        200
    );
    // No run was created for the missing story: nothing to orphan.
    assert_eq!(server.get("/api/runs").json()["runs"], json!([]));
}

#[test]
fn an_internal_error_does_not_leak_its_cause() {
    let server = Server::start(&["--workers", "0"]);
    let id = id_of(&create_story(
        &server,
        json!({"title": "Broken", "outline": outline(2)}),
    ));
    let run_id = id_of(&server.start_run(&id, None));
    // Break the database behind the server's back, as a damaged or
    // hand-edited file would.
    open_db(&server)
        .execute_batch("DROP TABLE run_events")
        .unwrap();
    let resp = server.get(&format!("/api/runs/{run_id}/events"));
    let error = assert_error(&resp, 500, "INTERNAL");
    let text = resp.text();
    for secret in ["run_events", "sqlite", "no such table", "SELECT", "src/"] {
        assert!(
            !text.to_lowercase().contains(&secret.to_lowercase()),
            "the 500 leaks `{secret}`: {text}"
        );
    }
    let request_id = error["details"]["request_id"].as_str().unwrap().to_string();
    assert!(error["message"].as_str().unwrap().contains(&request_id));
    assert!(
        server.wait_until(WAIT, || {
            let log = server.log_text();
            log.contains("Workflow error occurred") && log.contains(&request_id)
        }),
        "the cause is not logged under the request id:\n{}",
        server.log_text()
    );
}

/// Regression: tiny_http drained an unread body through one buffer of the
/// whole declared length, so a request declaring a huge Content-Length
/// aborted the server ("memory allocation failed") after its 413 was sent.
#[test]
fn a_huge_declared_content_length_is_refused_and_the_server_lives_on() {
    let server = Server::start(&["--workers", "0"]);
    for declared in [
        "9223372036854775807",
        "18446744073709551615",
        "100000000000000",
    ] {
        let request = format!(
            "POST /api/stories HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {declared}\r\nConnection: close\r\n\r\n{{\"title\": \"x\"}}",
            server.addr
        );
        // The client sends a few bytes and closes: the server must not wait for the rest.
        let resp = send_raw(server.addr, request.as_bytes());
        assert_error(&resp, 413, "PAYLOAD_TOO_LARGE");
    }
    let health = server.get("/api/health");
    assert_eq!(health.status, 200, "the server died: {}", server.log_text());
    assert!(!server.log_text().contains("memory allocation"));
}
