//! The contract's Safety section, continued from [`crate::security`]: slow
//! and idle clients, the headers every response carries, and validation.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::security::*;
use crate::util::{Api, InProcess, Resp, Server, assert_error, create_story, header};
use serde_json::json;

// -------------------------------------------------- slow and idle clients

/// Reads until the server closes; returns what it sent and when it closed.
pub(crate) fn read_until_closed(stream: &mut TcpStream, started: Instant) -> (Vec<u8>, Duration) {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    (raw, started.elapsed())
}

/// Requests `/api/health` on fresh connections until `stop`; counts them,
/// and panics on any answer but 200.
pub(crate) fn keep_requesting(server: &Server, stop: &AtomicBool, served: &AtomicUsize) {
    while !stop.load(Ordering::SeqCst) {
        let resp = server.get("/api/health");
        assert_eq!(resp.status, 200, "{}", resp.text());
        served.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_slowloris_connection_is_closed_within_the_timeout() {
    let server = Arc::new(Server::start(&["--workers", "0", "--http-timeout-s", "2"]));
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let others = {
        let (server, stop, served) = (server.clone(), stop.clone(), served.clone());
        std::thread::spawn(move || keep_requesting(&server, &stop, &served))
    };

    // Headers a byte at a time, then stalled.
    let head = format!(
        "GET /api/health HTTP/1.1\r\nHost: {}\r\nX-Slow: ",
        server.addr
    );
    let started = Instant::now();
    let mut stream = TcpStream::connect(server.addr).expect("connect");
    for byte in head.bytes() {
        stream.write_all(&[byte]).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    let (answer, closed_after) = read_until_closed(&mut stream, started);
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        closed_after < Duration::from_secs(6),
        "a stalled request was held {closed_after:?}"
    );
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );

    // A byte every 100 ms never stalls long enough for a per-read timeout,
    // but the whole request must still arrive in time.
    let started = Instant::now();
    let mut stream = TcpStream::connect(server.addr).expect("connect");
    stream.write_all(head.as_bytes()).unwrap();
    let mut trickler = stream.try_clone().unwrap();
    let trickle = std::thread::spawn(move || {
        while trickler.write_all(b"a").is_ok() && started.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let (answer, closed_after) = read_until_closed(&mut stream, started);
    assert!(
        closed_after < Duration::from_secs(6),
        "a trickling request was held {closed_after:?}"
    );
    let timed_out = Resp::parse(&answer);
    assert_error(&timed_out, 408, "REQUEST_TIMEOUT");
    assert_safety_headers(&timed_out, "request timeout");
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let _ = trickle.join();

    stop.store(true, Ordering::SeqCst);
    others.join().expect("other requests were served");
    assert!(
        served.load(Ordering::SeqCst) >= 20,
        "only {} requests were served meanwhile",
        served.load(Ordering::SeqCst)
    );
}

#[test]
fn an_idle_keep_alive_connection_is_closed_without_a_stray_answer() {
    let server = Server::start(&["--workers", "0", "--http-timeout-s", "2"]);
    let started = Instant::now();
    let mut stream = TcpStream::connect(server.addr).expect("connect");
    let request = format!("GET /api/health HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr);
    stream.write_all(request.as_bytes()).unwrap();
    let (raw, closed_after) = read_until_closed(&mut stream, started);
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert_eq!(
        text.matches("HTTP/1.1 ").count(),
        1,
        "an idle connection gets no unsolicited 408: {text}"
    );
    assert!(
        closed_after >= Duration::from_millis(1500) && closed_after < Duration::from_secs(6),
        "idle for {closed_after:?}"
    );
}

#[test]
fn many_idle_connections_do_not_stop_a_new_request() {
    let server = Server::start(&["--workers", "0"]);
    let idle: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(server.addr).expect("connect"))
        .collect();
    // Half of them have started a request and stalled.
    for stream in idle.iter().step_by(2) {
        let mut stream = stream;
        stream.write_all(b"GET /api/health HTTP/1.1\r\nHo").unwrap();
    }
    let started = Instant::now();
    let resp = server.get("/api/health");
    assert_eq!(
        resp.status,
        200,
        "after {:?}; log:\n{}",
        started.elapsed(),
        server.log_text()
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "a new request waited {:?} behind idle connections",
        started.elapsed()
    );
    drop(idle);
}

#[test]
fn a_client_that_pipelines_without_reading_ties_up_no_more_than_two_request_threads() {
    const PIPELINED: usize = 400_000;
    let server = Server::start(&["--workers", "0", "--http-timeout-s", "30"]);
    // Thousands of requests in one go, each with a large answer, and never a
    // byte read back: the answers fill the socket buffers and their writes
    // stall. Upstream queued every request, so all request threads ended
    // up waiting on this one connection until the write timeout.
    let mut greedy = TcpStream::connect(server.addr).expect("connect");
    let request = format!(
        "GET /api/openapi.json HTTP/1.1\r\nHost: {}\r\n\r\n",
        server.addr
    );
    greedy
        .set_write_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut sent = 0;
    for _ in 0..PIPELINED {
        if greedy.write_all(request.as_bytes()).is_err() {
            break;
        }
        sent += 1;
    }
    assert!(sent < PIPELINED, "the server read every pipelined request");
    // Everyone else is still served at once.
    let started = Instant::now();
    for _ in 0..20 {
        assert_eq!(server.get("/api/health").status, 200);
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "other clients waited {:?} behind a pipelining client",
        started.elapsed()
    );
    // And the greedy client gets its answers, in order, once it reads.
    greedy
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut head = [0u8; 12];
    greedy.read_exact(&mut head).expect("the first answer");
    assert_eq!(&head, b"HTTP/1.1 200");
}

#[cfg(target_os = "linux")]
pub(crate) fn thread_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|dir| dir.count())
        .unwrap_or(0)
}

#[cfg(target_os = "linux")]
#[test]
fn a_connection_flood_queues_on_a_bounded_number_of_threads() {
    let server = Server::start(&[
        "--workers",
        "0",
        "--http-max-connections",
        "4",
        "--http-timeout-s",
        "2",
    ]);
    assert_eq!(server.get("/api/health").status, 200);
    std::thread::sleep(Duration::from_millis(200));
    let before = thread_count(server.pid());

    // Forty connections that send nothing: at most four are read at once
    // (tiny_http keeps four idle connection threads from the start, so
    // these need no new thread); the rest wait in the listen backlog.
    // Unbounded, each would have had a thread of its own.
    let flood: Vec<TcpStream> = (0..40)
        .map(|_| TcpStream::connect(server.addr).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let during = thread_count(server.pid());
    assert!(
        during <= before + 4,
        "{before} threads before the flood, {during} during it"
    );
    drop(flood);

    // A request behind twelve idle connections queues until they time out
    // (three rounds of four, 2 s each), then is served; the server closes
    // every idle connection itself.
    let flood: Vec<TcpStream> = (0..12)
        .map(|_| TcpStream::connect(server.addr).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let resp = server.get("/api/health");
    assert_eq!(resp.status, 200, "{}", resp.text());
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(15),
        "the queued request waited {waited:?}"
    );
    for mut stream in flood {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0u8; 64];
        assert!(matches!(stream.read(&mut buf), Ok(0)), "still open");
    }
    assert!(thread_count(server.pid()) <= before + 4);
}

// ------------------------------------------------------------------ headers

pub(crate) fn assert_safety_headers(resp: &Resp, what: &str) {
    assert_eq!(
        resp.header("x-content-type-options"),
        Some("nosniff"),
        "{what}: {:?}",
        resp.headers
    );
    assert_eq!(
        resp.header("referrer-policy"),
        Some("no-referrer"),
        "{what}"
    );
    let csp = resp
        .header("content-security-policy")
        .unwrap_or_else(|| panic!("{what}: no Content-Security-Policy"));
    let directives: Vec<&str> = csp.split(';').map(str::trim).collect();
    for directive in CSP_DIRECTIVES {
        assert!(
            directives.contains(&directive),
            "{what}: {directive} missing from {csp}"
        );
    }
    assert!(!csp.contains("unsafe"), "{what}: {csp}");
}

/// Sends `bytes`, ends the sending half (so a server waiting for the next
/// request on the connection sees it end), and reads the answer.
pub(crate) fn send_and_stop_writing(addr: SocketAddr, bytes: &[u8]) -> Resp {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(bytes).expect("send");
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    Resp::parse(&raw)
}

#[test]
fn every_response_carries_the_safety_headers() {
    let server = Server::start(&["--workers", "0"]);
    let story = create_story(&server, json!({"title": "Headers"}));
    let id = story["id"].as_str().unwrap();
    let port = server.addr.port();
    let mut responses = vec![
        ("page", server.get("/")),
        ("script", server.get("/assets/app.js")),
        ("stylesheet", server.get("/assets/style.css")),
        ("json", server.get("/api/health")),
        ("openapi", server.get("/api/openapi.json")),
        ("prometheus", server.get("/metrics")),
        ("markdown", server.get(&format!("/api/stories/{id}/export"))),
        ("created", server.post("/api/stories", &json!({"title": "Another"}))),
        ("not found", server.get("/api/nope")),
        ("method", server.raw("PUT", "/api/stories", &[host(&server)], b"")),
        ("bad id", server.get("/api/stories/not-a-uuid")),
        (
            "foreign host",
            server.raw("GET", "/", &[header("Host", "evil.com")], b""),
        ),
        (
            "foreign origin",
            server.raw(
                "DELETE",
                &format!("/api/stories/{id}"),
                &[header("Host", &format!("localhost:{port}")), header("Origin", "null")],
                b"",
            ),
        ),
        (
            "media type",
            server.raw("POST", "/api/stories", &[host(&server)], b"title=x"),
        ),
        (
            "too large",
            answer_without_body(
                server.addr,
                &format!(
                    "POST /api/stories HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: 2000000\r\n\r\n",
                    server.addr
                ),
                Duration::from_secs(20),
            )
            .0,
        ),
        ("validation", server.get("/api/stories?limit=100000")),
    ];
    // Answers the HTTP layer writes before a request is routed.
    let refused_early = [
        (
            "malformed head",
            "GARBAGE\r\n\r\n".to_string(),
            400,
            "BAD_REQUEST",
        ),
        (
            "http version",
            format!("GET /api/health HTTP/2.0\r\nHost: {}\r\n\r\n", server.addr),
            505,
            "HTTP_VERSION_NOT_SUPPORTED",
        ),
        (
            "expectation",
            format!(
                "POST /api/stories HTTP/1.1\r\nHost: {}\r\nExpect: a-pony\r\nContent-Length: 2\r\n\r\n{{}}",
                server.addr
            ),
            417,
            "EXPECTATION_FAILED",
        ),
    ];
    for (what, head, status, code) in refused_early {
        let resp = send_and_stop_writing(server.addr, head.as_bytes());
        assert_error(&resp, status, code);
        responses.push((what, resp));
    }
    responses.push(("deleted", server.delete(&format!("/api/stories/{id}"))));
    assert_eq!(responses.last().unwrap().1.status, 204);
    for (what, resp) in &responses {
        assert_safety_headers(resp, what);
    }
    let token_server = Server::start(&["--workers", "0", "--token", "t0ken"]);
    let unauthorized = token_server.get("/api/health");
    assert_eq!(unauthorized.status, 401);
    assert_safety_headers(&unauthorized, "unauthorized");
}

// --------------------------------------------------------------- validation

#[test]
fn ids_are_parsed_as_uuids() {
    let server = InProcess::new();
    for id in [
        "not-a-uuid",
        "123",
        "3251c7d5-8f0e-4c52-9d7a-1b2c3d4e5f6",
        "3251c7d5-8f0e-4c52-9d7a-1b2c3d4e5f60x",
        "%27%20OR%20%271%27%3D%271",
        "..%2F..%2Fetc%2Fpasswd",
        "%00",
        &"f".repeat(5000),
    ] {
        for (method, path) in [
            ("GET", format!("/api/stories/{id}")),
            ("PATCH", format!("/api/stories/{id}")),
            ("DELETE", format!("/api/stories/{id}")),
            ("GET", format!("/api/stories/{id}/chapters")),
            ("GET", format!("/api/stories/{id}/export")),
            ("POST", format!("/api/stories/{id}/runs")),
            ("GET", format!("/api/runs/{id}")),
            ("GET", format!("/api/runs/{id}/events")),
            ("POST", format!("/api/runs/{id}/cancel")),
            ("POST", format!("/api/runs/{id}/retry")),
            ("POST", format!("/api/runs/{id}/progress")),
            ("GET", format!("/api/diagnostics/runs/{id}")),
            ("GET", format!("/api/diagnostics/stories/{id}")),
        ] {
            let body: &[u8] = match method {
                "PATCH" => br#"{"title": "x"}"#,
                "POST" if path.ends_with("progress") => br#"{"chapters_done": 1}"#,
                _ => b"",
            };
            let mut headers = vec![host(&server)];
            if !body.is_empty() {
                headers.push(json_type());
            }
            let resp = server.raw(method, &path, &headers, body);
            let error = assert_error(&resp, 400, "BAD_REQUEST");
            assert!(
                error["message"].as_str().unwrap().len() < 400,
                "the id is echoed whole: {error}"
            );
        }
    }
    for query in ["story_id=nope", "story_id=%27%3B%20DROP%20TABLE%20stories"] {
        let error = assert_error(
            &server.get(&format!("/api/runs?{query}")),
            422,
            "VALIDATION_FAILED",
        );
        assert_eq!(error["details"]["field"], "story_id");
    }
}

#[test]
fn fields_over_their_limit_fail_validation_naming_the_field_and_the_limit() {
    let server = InProcess::new();
    let story = create_story(&server, json!({"title": "Limits"}));
    let id = story["id"].as_str().unwrap();
    for (field, limit) in [("title", 500), ("premise", 20_000), ("outline", 200_000)] {
        let mut body = json!({"title": "ok"});
        body[field] = json!("x".repeat(limit + 1));
        let created = server.post("/api/stories", &body);
        let mut patch = json!({});
        patch[field] = json!("x".repeat(limit + 1));
        let patched = server.patch(&format!("/api/stories/{id}"), &patch);
        for resp in [created, patched] {
            let error = assert_error(&resp, 422, "VALIDATION_FAILED");
            assert_eq!(error["details"]["field"], field, "{error}");
            let message = error["message"].as_str().unwrap();
            assert!(message.contains(field), "{message}");
            assert!(
                message.contains(&limit.to_string()),
                "the limit is not named: {message}"
            );
            assert!(message.len() < 300, "the value is echoed: {message}");
        }
        // At the limit is accepted.
        let mut body = json!({"title": "ok"});
        body[field] = json!("x".repeat(limit));
        assert_eq!(
            server.post("/api/stories", &body).status,
            201,
            "{field} at the limit"
        );
    }
    let story = server.get(&format!("/api/stories/{id}")).json();
    assert_eq!(story["title"], "Limits");
    assert_eq!(story["premise"], "");
}

#[test]
fn query_parameters_are_bounded() {
    let server = InProcess::new();
    let story = create_story(&server, json!({"title": "Queries"}));
    let id = story["id"].as_str().unwrap();
    for path in [
        "/api/stories".to_string(),
        "/api/runs".to_string(),
        format!("/api/stories/{id}/runs"),
    ] {
        for (query, field) in [
            ("limit=100000", "limit"),
            ("limit=501", "limit"),
            ("limit=0", "limit"),
            ("limit=-1", "limit"),
            ("limit=1e3", "limit"),
            ("limit=99999999999999999999999", "limit"),
            ("offset=-1", "offset"),
            ("offset=abc", "offset"),
        ] {
            let error = assert_error(
                &server.get(&format!("{path}?{query}")),
                422,
                "VALIDATION_FAILED",
            );
            assert_eq!(error["details"]["field"], field, "{path}?{query}");
            assert!(
                error["message"].as_str().unwrap().contains("500") || field == "offset",
                "{error}"
            );
        }
        assert_eq!(server.get(&format!("{path}?limit=500")).status, 200);
    }
    let error = assert_error(
        &server.get("/api/runs?status=exploded"),
        422,
        "VALIDATION_FAILED",
    );
    assert_eq!(error["details"]["field"], "status");
    for path in [
        "/api/maintenance/health?fix=maybe",
        "/api/maintenance/health?full=2",
    ] {
        assert_error(&server.get(path), 422, "VALIDATION_FAILED");
    }
}
