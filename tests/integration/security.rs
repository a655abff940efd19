//! The contract's Safety section, proven through real requests to the real
//! server over raw sockets (a client library would fix the very headers these
//! tests get wrong on purpose): the Host allow-list against DNS rebinding,
//! the Origin check against CSRF, JSON-only bodies, the bearer token, body
//! limits, timeouts for slow and idle connections, the bound on connection
//! threads, the headers on every response, and validation at the edge.

use crate::util;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::util::{
    Api, InProcess, Resp, Server, TempDb, assert_error, create_story, header, send_raw,
};
use serde_json::json;

const MIB: usize = 1024 * 1024;

/// The status page's policy, directive by directive, as the issue states it.
const CSP_DIRECTIVES: [&str; 6] = [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "connect-src 'self'",
    "img-src 'self'",
    "frame-ancestors 'none'",
];

fn host(server: &impl Api) -> (String, String) {
    header("Host", &server.host())
}

fn json_type() -> (String, String) {
    header("Content-Type", "application/json")
}

fn story_count(server: &Server) -> usize {
    server.get("/api/stories").json()["stories"]
        .as_array()
        .map_or(0, Vec::len)
}

// ------------------------------------------------------------ DNS rebinding

#[test]
fn only_hosts_naming_this_server_are_served() {
    let server = Server::start(&["--workers", "0"]);
    let port = server.addr.port();
    for name in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("LocalHost:{port}"),
        format!("[::1]:{port}"),
        "127.0.0.1".to_string(),
        "localhost".to_string(),
        "[::1]".to_string(),
    ] {
        for path in ["/api/health", "/"] {
            let resp = server.raw("GET", path, &[header("Host", &name)], b"");
            assert_eq!(resp.status, 200, "Host: {name} {path}: {}", resp.text());
        }
    }
    let wrong_port = if port == 65535 { port - 1 } else { port + 1 };
    for name in [
        "localhost.evil.com".to_string(),
        format!("localhost.evil.com:{port}"),
        "evil.com".to_string(),
        format!("evil.com:{port}"),
        format!("127.0.0.1.evil.com:{port}"),
        format!("127.0.0.1:{wrong_port}"),
        format!("localhost:{wrong_port}"),
        format!("10.1.2.3:{port}"),
        String::new(),
    ] {
        for path in ["/api/health", "/", "/api/stories"] {
            let resp = server.raw("GET", path, &[header("Host", &name)], b"");
            let error = assert_error(&resp, 403, "FORBIDDEN");
            let hint = error["hint"].as_str().unwrap_or_default();
            assert!(
                hint.contains(&format!("127.0.0.1:{port}")),
                "Host: {name}: the hint should say where storyflow is: {error}"
            );
        }
        // A rebinding page cannot write either.
        let resp = server.raw(
            "POST",
            "/api/stories",
            &[header("Host", &name), json_type()],
            br#"{"title": "Rebound"}"#,
        );
        assert_error(&resp, 403, "FORBIDDEN");
    }
    assert_eq!(story_count(&server), 0);

    // No Host at all, in HTTP/1.1 and in HTTP/1.0.
    let resp = server.raw("GET", "/api/health", &[], b"");
    assert!(matches!(resp.status, 400 | 403), "{}", resp.status);
    assert!(resp.json()["error"]["code"].is_string());
    let resp = send_raw(server.addr, b"GET /api/health HTTP/1.0\r\n\r\n");
    assert!(matches!(resp.status, 400 | 403), "{}", resp.status);
}

// --------------------------------------------------------------------- CSRF

#[test]
fn state_changes_from_a_foreign_origin_are_refused() {
    let server = Server::start(&["--workers", "0"]);
    let own = format!("http://{}", server.addr);
    let resp = server.raw(
        "POST",
        "/api/stories",
        &[host(&server), json_type(), header("Origin", &own)],
        br#"{"title": "Mine"}"#,
    );
    assert_eq!(resp.status, 201, "same origin: {}", resp.text());
    let id = resp.json()["id"].as_str().unwrap().to_string();
    let port = server.addr.port();
    let local = server.raw(
        "POST",
        "/api/stories",
        &[
            header("Host", &format!("localhost:{port}")),
            json_type(),
            header("Origin", &format!("http://localhost:{port}")),
        ],
        br#"{"title": "Also mine"}"#,
    );
    assert_eq!(local.status, 201, "same origin by name: {}", local.text());

    for origin in [
        "https://evil.com",
        "null",
        "http://evil.com",
        &format!("http://{}.evil.com", server.addr),
        &format!("https://{}", server.addr),
        &format!("http://localhost:{port}"),
    ] {
        let attempts: [(&str, String, &[u8]); 5] = [
            ("POST", "/api/stories".into(), br#"{"title": "Forged"}"#),
            (
                "PATCH",
                format!("/api/stories/{id}"),
                br#"{"title": "Forged"}"#,
            ),
            ("DELETE", format!("/api/stories/{id}"), b""),
            ("POST", format!("/api/stories/{id}/runs"), b""),
            ("POST", "/api/maintenance/fix-orphans".into(), b""),
        ];
        for (method, path, body) in attempts {
            let mut headers = vec![host(&server), header("Origin", origin)];
            if !body.is_empty() {
                headers.push(json_type());
            }
            let resp = server.raw(method, &path, &headers, body);
            let error = assert_error(&resp, 403, "FORBIDDEN");
            assert!(error["hint"].is_string(), "{error}");
            assert!(
                !resp.text().contains("Forged"),
                "{method} {path} from {origin}"
            );
        }
        // Reading is not a state change: served, and the browser's
        // same-origin policy keeps the answer from the foreign page.
        let resp = server.raw(
            "GET",
            &format!("/api/stories/{id}"),
            &[host(&server), header("Origin", origin)],
            b"",
        );
        assert_eq!(resp.status, 200, "GET from {origin}");
        assert_eq!(resp.json()["title"], "Mine");
    }
    // Nothing the forged requests asked for happened.
    assert_eq!(story_count(&server), 2);
    assert_eq!(
        server.get(&format!("/api/stories/{id}/runs")).json()["runs"],
        json!([])
    );
}

#[test]
fn bodies_must_be_json_so_html_forms_cannot_post() {
    let server = Server::start(&["--workers", "0"]);
    for (content_type, body) in [
        (
            Some("application/x-www-form-urlencoded"),
            &b"title=Forged"[..],
        ),
        (
            Some("multipart/form-data; boundary=x"),
            b"--x\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nForged\r\n--x--\r\n",
        ),
        (Some("text/plain"), br#"{"title": "Forged"}"#),
        (Some("application/jsonx"), br#"{"title": "Forged"}"#),
        (None, br#"{"title": "Forged"}"#),
    ] {
        let mut headers = vec![host(&server)];
        if let Some(content_type) = content_type {
            headers.push(header("Content-Type", content_type));
        }
        let resp = server.raw("POST", "/api/stories", &headers, body);
        assert_error(&resp, 415, "UNSUPPORTED_MEDIA_TYPE");
    }
    assert_eq!(story_count(&server), 0);
}

// -------------------------------------------------------------------- token

/// `storyflow serve` with exactly these arguments (no `--addr` added).
fn spawn_serve(db: &TempDb, args: &[&str], env: &[(&str, &str)]) -> Child {
    let mut command = Command::new(util::bin());
    command
        .arg("--db")
        .arg(&db.path)
        .arg("serve")
        .args(args)
        .env("RUST_LOG", "info")
        .env_remove("STORYFLOW_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    command.spawn().expect("spawn storyflow serve")
}

/// Waits for the child to exit; kills it and fails after `timeout`.
fn wait_exit(child: &mut Child, timeout: Duration) -> (i32, String) {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                let _ = pipe.read_to_string(&mut stderr);
            }
            return (status.code().unwrap_or(-1), stderr);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("storyflow serve did not exit: it should have refused to start");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_non_loopback_address_without_a_token_refuses_to_start() {
    for (addr, env) in [
        ("0.0.0.0:0", &[][..]),
        ("[::]:0", &[][..]),
        ("192.0.2.1:7878", &[][..]),
        ("0.0.0.0:0", &[("STORYFLOW_TOKEN", "")][..]),
    ] {
        let db = TempDb::new();
        let mut child = spawn_serve(&db, &["--addr", addr, "--workers", "0"], env);
        let (code, stderr) = wait_exit(&mut child, Duration::from_secs(20));
        assert_eq!(code, 2, "{addr}: {stderr}");
        assert!(
            stderr.contains("--token") && stderr.contains("STORYFLOW_TOKEN"),
            "{addr}: the message should say how to fix it: {stderr}"
        );
        assert_eq!(stderr.trim().lines().count(), 1, "one clear line: {stderr}");
    }
}

fn bearer(token: &str) -> (String, String) {
    header("Authorization", &format!("Bearer {token}"))
}

/// Every /api and /metrics request needs the token; the page does not.
fn assert_token_required(addr: SocketAddr, host_header: &str, token: &str) {
    let get = |path: &str, auth: Option<(String, String)>| {
        let mut request = format!("GET {path} HTTP/1.1\r\nHost: {host_header}\r\n");
        if let Some((name, value)) = auth {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("Connection: close\r\n\r\n");
        send_raw(addr, request.as_bytes())
    };
    for path in [
        "/api/health",
        "/api/stories",
        "/api/runs",
        "/api/metrics",
        "/api/openapi.json",
        "/api/diagnostics/orphans",
        "/api/nope",
        "/metrics",
    ] {
        for auth in [
            None,
            Some(bearer("wrong")),
            Some(bearer(&format!("{token}x"))),
            Some(bearer(&token[..token.len() - 1])),
            Some(header("Authorization", token)),
            Some(header("Authorization", &format!("Basic {token}"))),
            Some(header("X-Token", token)),
        ] {
            let resp = get(path, auth.clone());
            assert_error(&resp, 401, "UNAUTHORIZED");
            assert_eq!(resp.header("www-authenticate"), Some("Bearer"), "{path}");
        }
        let resp = get(path, Some(bearer(token)));
        assert_ne!(resp.status, 401, "{path} with the token: {}", resp.text());
        assert!(resp.status < 500, "{path}: {}", resp.text());
    }
    for path in ["/", "/assets/app.js", "/assets/style.css"] {
        assert_eq!(get(path, None).status, 200, "{path} without a token");
    }
}

#[test]
fn with_a_token_every_api_request_needs_it() {
    let token = "s3cret-token-0123456789";
    let server = Server::start(&["--workers", "0", "--token", token]);
    assert_token_required(server.addr, &server.addr.to_string(), token);
    // A write without the token changes nothing; with it, it works.
    let body = br#"{"title": "Guarded"}"#;
    let resp = server.raw("POST", "/api/stories", &[host(&server), json_type()], body);
    assert_error(&resp, 401, "UNAUTHORIZED");
    let resp = server.raw(
        "POST",
        "/api/stories",
        &[host(&server), json_type(), bearer(token)],
        body,
    );
    assert_eq!(resp.status, 201, "{}", resp.text());
    let listed = server.raw("GET", "/api/stories", &[host(&server), bearer(token)], b"");
    assert_eq!(listed.json()["stories"].as_array().unwrap().len(), 1);

    // The token from the environment works the same.
    let db = TempDb::new();
    let server = Server::start_with_env(
        &db.path,
        &["--workers", "0"],
        &[("STORYFLOW_TOKEN", "from-the-env")],
    );
    assert_token_required(server.addr, &server.addr.to_string(), "from-the-env");
}

#[test]
fn a_non_loopback_address_with_a_token_serves_other_host_names_behind_it() {
    let db = TempDb::new();
    let token = "lan-token-42";
    let mut child = spawn_serve(
        &db,
        &["--addr", "0.0.0.0:0", "--workers", "0", "--token", token],
        &[],
    );
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.split("serving http://").nth(1) {
                let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_string());
            }
        }
    });
    let bound: SocketAddr = match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(addr) => addr.parse().expect("address"),
        Err(_) => {
            let _ = child.kill();
            panic!("storyflow did not start on 0.0.0.0 with a token");
        }
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], bound.port()));
    assert_token_required(addr, &format!("box.lan:{}", bound.port()), token);
    assert_token_required(addr, &addr.to_string(), token);
    let _ = child.kill();
    let _ = child.wait();
}

// ------------------------------------------------------------------- limits

/// Sends `head` (no body), then waits at most `patience` for the answer.
fn answer_without_body(addr: SocketAddr, head: &str, patience: Duration) -> (Resp, Duration) {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(patience)).unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    // Read until the whole JSON answer is in; the body is never sent.
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
        let text = String::from_utf8_lossy(&raw);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().to_string())
                })
                .and_then(|v| v.parse::<usize>().ok());
            if length.is_some_and(|n| body.len() >= n) {
                break;
            }
        }
    }
    let elapsed = started.elapsed();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (
        Resp {
            status,
            headers,
            body: body.as_bytes().to_vec(),
        },
        elapsed,
    )
}

#[test]
fn a_declared_body_over_one_mebibyte_is_refused_before_it_is_read() {
    // The default 30 s timeout: an answer within seconds was not waiting
    // for the body.
    let server = Server::start(&["--workers", "0"]);
    for length in [MIB + 1, 2 * MIB, 100_000_000_000_000] {
        let head = format!(
            "POST /api/stories HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n",
            server.addr
        );
        let (resp, elapsed) = answer_without_body(server.addr, &head, Duration::from_secs(20));
        let error = assert_error(&resp, 413, "PAYLOAD_TOO_LARGE");
        assert_eq!(error["details"]["limit_bytes"], MIB);
        assert!(
            elapsed < Duration::from_secs(5),
            "the 413 took {elapsed:?}: was the body awaited?"
        );
        // Regression: a huge declared length used to abort the process
        // (tiny_http allocated it whole to drain it) once the 413 was sent.
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(server.get("/api/health").status, 200, "after {length}");
    }
    assert_eq!(story_count(&server), 0);
}

#[test]
fn a_chunked_body_is_cut_at_one_mebibyte() {
    let server = Server::start(&["--workers", "0"]);
    let body = format!(
        r#"{{"title": "t", "premise": "{}"}}"#,
        "p".repeat(MIB + MIB / 2)
    );
    let mut request = format!(
        "POST /api/stories HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        server.addr
    )
    .into_bytes();
    for chunk in body.as_bytes().chunks(16 * 1024) {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    // Write and read at once: the server stops reading at the limit.
    let mut stream = TcpStream::connect(server.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let _ = writer.write_all(&request);
    });
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let _ = sender.join();
    let text = String::from_utf8_lossy(&raw);
    assert!(
        text.starts_with("HTTP/1.1 413"),
        "{}",
        text.chars().take(300).collect::<String>()
    );
    assert!(text.contains("PAYLOAD_TOO_LARGE"), "{text}");
    assert_eq!(story_count(&server), 0);
}

#[test]
fn overlong_request_heads_are_refused_without_growing() {
    let server = Server::start(&["--workers", "0"]);
    let long_path = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(1_000_000));
    assert_eq!(send_raw(server.addr, long_path.as_bytes()).status, 400);
    let long_header = format!(
        "GET /api/health HTTP/1.1\r\nHost: {}\r\nX-Pad: {}\r\n\r\n",
        server.addr,
        "a".repeat(1_000_000)
    );
    assert_eq!(send_raw(server.addr, long_header.as_bytes()).status, 400);
    let many_headers = format!(
        "GET /api/health HTTP/1.1\r\nHost: {}\r\n{}\r\n",
        server.addr,
        "X-Pad: a\r\n".repeat(1000)
    );
    assert_eq!(send_raw(server.addr, many_headers.as_bytes()).status, 400);
    assert_eq!(server.get("/api/health").status, 200);
}

// -------------------------------------------------- slow and idle clients

/// Reads until the server closes; returns what it sent and when it closed.
fn read_until_closed(stream: &mut TcpStream, started: Instant) -> (Vec<u8>, Duration) {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    (raw, started.elapsed())
}

/// Requests `/api/health` on fresh connections until `stop`; counts them,
/// and panics on any answer but 200.
fn keep_requesting(server: &Server, stop: &AtomicBool, served: &AtomicUsize) {
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
fn thread_count(pid: u32) -> usize {
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

fn assert_safety_headers(resp: &Resp, what: &str) {
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
fn send_and_stop_writing(addr: SocketAddr, bytes: &[u8]) -> Resp {
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
