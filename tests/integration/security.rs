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
use std::time::{Duration, Instant};

use crate::util::{Api, Resp, Server, TempDb, assert_error, header, send_raw};
use serde_json::json;

pub(crate) const MIB: usize = 1024 * 1024;

/// The status page's policy, directive by directive, as the issue states it.
pub(crate) const CSP_DIRECTIVES: [&str; 6] = [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "connect-src 'self'",
    "img-src 'self'",
    "frame-ancestors 'none'",
];

pub(crate) fn host(server: &impl Api) -> (String, String) {
    header("Host", &server.host())
}

pub(crate) fn json_type() -> (String, String) {
    header("Content-Type", "application/json")
}

pub(crate) fn story_count(server: &Server) -> usize {
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
pub(crate) fn spawn_serve(db: &TempDb, args: &[&str], env: &[(&str, &str)]) -> Child {
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
pub(crate) fn wait_exit(child: &mut Child, timeout: Duration) -> (i32, String) {
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

pub(crate) fn bearer(token: &str) -> (String, String) {
    header("Authorization", &format!("Bearer {token}"))
}

/// Every /api and /metrics request needs the token; the page does not.
pub(crate) fn assert_token_required(addr: SocketAddr, host_header: &str, token: &str) {
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
pub(crate) fn answer_without_body(
    addr: SocketAddr,
    head: &str,
    patience: Duration,
) -> (Resp, Duration) {
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
