//! The one set of helpers of the integration tests: the real `storyflow`
//! binary started on a free loopback port with a temporary database (killed
//! on drop), the same API in process ([`InProcess`]), one client for both
//! ([`Api`]: requests, runs, chapters, events), the contract's error shape
//! ([`assert_error`]), and the CLI as a child process.

// Not every field of what the fake LLM saw is read by today's tests.
#[allow(dead_code)]
pub mod fake_llm;
mod in_process;

pub use in_process::{InProcess, PORT as IN_PROCESS_PORT};

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_storyflow")
}

/// A temporary directory holding a database path.
pub struct TempDb {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl TempDb {
    pub fn new() -> TempDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("storyflow.db");
        TempDb { dir, path }
    }
}

/// The CLI as a child process on `db`.
pub fn cli(db: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .arg("--db")
        .arg(db)
        .args(args)
        .env("RUST_LOG", "warn")
        .env_remove("STORYFLOW_DB")
        .env_remove("STORYFLOW_TOKEN")
        .output()
        .expect("run storyflow")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A `storyflow serve` child process on an ephemeral loopback port.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub db: PathBuf,
    /// Every line the server wrote to standard error (its log).
    pub log: Arc<Mutex<Vec<String>>>,
    _temp: Option<Arc<TempDb>>,
}

impl Server {
    /// Serves a fresh temporary database with `args` added to `serve`.
    pub fn start(args: &[&str]) -> Server {
        let temp = Arc::new(TempDb::new());
        let mut server = Server::start_on(&temp.path, args);
        server._temp = Some(temp);
        server
    }

    /// Serves the database at `db` (which outlives the server).
    pub fn start_on(db: &Path, args: &[&str]) -> Server {
        Server::start_with_env(db, args, &[])
    }

    pub fn start_with_env(db: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut command = Command::new(bin());
        command
            .arg("--db")
            .arg(db)
            .arg("serve")
            .args(["--addr", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "debug")
            .env_remove("STORYFLOW_TOKEN")
            .env_remove("STORYFLOW_LLM_API_KEY")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("spawn storyflow serve");
        let stderr = child.stderr.take().expect("stderr piped");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("serving http://").nth(1) {
                    let addr = rest
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_string();
                    let _ = tx.send(addr);
                }
                sink.lock().unwrap().push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => addr.parse().expect("server address"),
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "storyflow did not start; log:\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
        };
        Server {
            child,
            addr,
            db: db.to_path_buf(),
            log,
            _temp: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Polls `check` until it returns true or `timeout` passes.
    pub fn wait_until(&self, timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if check() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        check()
    }

    /// Waits for a run to reach `status`; panics with the run on timeout.
    pub fn wait_for_run(&self, run_id: &str, status: &str, timeout: Duration) -> Value {
        let mut last = Value::Null;
        let reached = self.wait_until(timeout, || {
            last = self.get(&format!("/api/runs/{run_id}")).json();
            last["status"] == status
        });
        assert!(
            reached,
            "run {run_id} did not reach {status}: {last}\nlog:\n{}",
            self.log_text()
        );
        last
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// SIGKILL: no clean-up of any kind.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        self.child.wait().expect("wait for storyflow")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// storyflow's HTTP API as the tests speak it, over a socket ([`Server`]) or
/// in process ([`InProcess`]); every helper below works on both.
pub trait Api {
    /// Sends exactly these headers and this body; the one required method.
    fn raw(&self, method: &str, path: &str, headers: &[(String, String)], body: &[u8]) -> Resp;

    /// The `Host` header that names this server.
    fn host(&self) -> String;

    /// A JSON request: `Host`, and `Content-Type` when there is a body.
    fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Resp {
        let body = body.map(|b| b.to_string());
        self.send(
            method,
            path,
            body.is_some().then_some("application/json"),
            body.as_deref().unwrap_or("").as_bytes(),
        )
    }

    /// A request with `Host`, exactly `content_type` (if any) and `body`.
    fn send(&self, method: &str, path: &str, content_type: Option<&str>, body: &[u8]) -> Resp {
        let mut headers = vec![header("Host", &self.host())];
        if let Some(content_type) = content_type {
            headers.push(header("Content-Type", content_type));
        }
        self.raw(method, path, &headers, body)
    }

    fn get(&self, path: &str) -> Resp {
        self.request("GET", path, None)
    }

    fn post(&self, path: &str, body: &Value) -> Resp {
        self.request("POST", path, Some(body))
    }

    fn post_empty(&self, path: &str) -> Resp {
        self.request("POST", path, None)
    }

    fn patch(&self, path: &str, body: &Value) -> Resp {
        self.request("PATCH", path, Some(body))
    }

    fn delete(&self, path: &str) -> Resp {
        self.request("DELETE", path, None)
    }

    /// Starts a run of the story (with `body`, e.g. `until_chapter`);
    /// asserts 202 and returns the run.
    fn start_run(&self, story_id: &str, body: Option<&Value>) -> Value {
        let resp = self.request("POST", &format!("/api/stories/{story_id}/runs"), body);
        assert_eq!(resp.status, 202, "{}", resp.text());
        resp.json()
    }

    /// A run as `GET /api/runs/{id}` has it; asserts 200.
    fn run(&self, run_id: &str) -> Value {
        let resp = self.get(&format!("/api/runs/{run_id}"));
        assert_eq!(resp.status, 200, "{}", resp.text());
        resp.json()
    }

    /// A story's runs, as `GET /api/runs?story_id=` lists them.
    fn runs_of(&self, story_id: &str) -> Vec<Value> {
        list_of(&self.get(&format!("/api/runs?story_id={story_id}")), "runs")
    }

    /// A story's chapters, in order.
    fn chapters(&self, story_id: &str) -> Vec<Value> {
        list_of(
            &self.get(&format!("/api/stories/{story_id}/chapters")),
            "chapters",
        )
    }

    /// The numbers of a story's chapters, in order.
    fn chapter_numbers(&self, story_id: &str) -> Vec<u64> {
        self.chapters(story_id)
            .iter()
            .map(|c| {
                c["number"]
                    .as_u64()
                    .unwrap_or_else(|| panic!("no number in {c}"))
            })
            .collect()
    }

    /// A run's events, oldest first.
    fn events(&self, run_id: &str) -> Vec<Value> {
        list_of(&self.get(&format!("/api/runs/{run_id}/events")), "events")
    }

    /// The kinds of a run's events, oldest first.
    fn event_kinds(&self, run_id: &str) -> Vec<String> {
        self.events(run_id)
            .iter()
            .map(|e| e["kind"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// The messages of a run's events of one `kind`, oldest first.
    fn event_messages(&self, run_id: &str, kind: &str) -> Vec<String> {
        self.events(run_id)
            .iter()
            .filter(|e| e["kind"] == kind)
            .map(|e| e["message"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

/// The array under `key` of a 200 answer.
fn list_of(resp: &Resp, key: &str) -> Vec<Value> {
    assert_eq!(resp.status, 200, "{}", resp.text());
    let body = resp.json();
    body[key]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("no {key} in {body}"))
}

impl Api for Server {
    /// Over a raw socket (so no client library adds or fixes headers), with
    /// `Content-Length` when there is a body and none is given, and
    /// `Connection: close`.
    fn raw(&self, method: &str, path: &str, headers: &[(String, String)], body: &[u8]) -> Resp {
        let mut request = format!("{method} {path} HTTP/1.1\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        if !body.is_empty()
            && !headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        {
            request.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        request.push_str("Connection: close\r\n\r\n");
        let mut bytes = request.into_bytes();
        bytes.extend_from_slice(body);
        send_raw(self.addr, &bytes)
    }

    fn host(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes `bytes` to `addr` and reads the whole response.
pub fn send_raw(addr: SocketAddr, bytes: &[u8]) -> Resp {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // The server may answer (413) and close before reading a large body.
    let _ = stream.write_all(bytes);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    Resp::parse(&raw)
}

#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    /// A raw HTTP/1.1 response: status, headers, (de-chunked) body.
    pub fn parse(raw: &[u8]) -> Resp {
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or(raw.len());
        let head = String::from_utf8_lossy(&raw[..split]);
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let mut body = raw.get(split + 4..).unwrap_or_default().to_vec();
        if headers
            .iter()
            .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"))
        {
            body = dechunk(&body);
        }
        Resp {
            status,
            headers,
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// The contract's error code of an error response.
    pub fn error_code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = body.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&body[..end]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = end + 2;
        out.extend_from_slice(&body[start..(start + size).min(body.len())]);
        body = body.get(start + size + 2..).unwrap_or_default();
    }
    out
}

/// Creates a story through the API; returns its JSON.
pub fn create_story(api: &impl Api, body: Value) -> Value {
    let resp = api.post("/api/stories", &body);
    assert_eq!(resp.status, 201, "{}", resp.text());
    resp.json()
}

/// Creates a story and starts its run (with `run_body`); (story id, run id).
pub fn story_with_run(api: &impl Api, story: Value, run_body: Option<&Value>) -> (String, String) {
    let story_id = id_of(&create_story(api, story));
    let run_id = id_of(&api.start_run(&story_id, run_body));
    (story_id, run_id)
}

/// The `id` of an object the API returned.
pub fn id_of(value: &Value) -> String {
    value["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {value}"))
        .to_string()
}

/// A header as [`Api::raw`] takes it.
pub fn header(name: &str, value: &str) -> (String, String) {
    (name.to_string(), value.to_string())
}

/// The keys the contract's error object may have; `hint` is optional.
const ERROR_KEYS: [&str; 5] = ["code", "message", "status", "details", "hint"];

/// Asserts the contract's error answer: this status, a JSON body whose only
/// key is `error`, with this `code`, the same `status`, a non-empty
/// `message`, an object of `details`, a string `hint` if any, and nothing
/// else. Returns the `error` object.
pub fn assert_error(resp: &Resp, status: u16, code: &str) -> Value {
    assert_eq!(
        resp.status,
        status,
        "expected {status} {code}, got {}: {}",
        resp.status,
        resp.text()
    );
    assert!(
        resp.header("content-type")
            .is_some_and(|t| t.starts_with("application/json")),
        "error bodies are JSON: {:?}",
        resp.headers
    );
    let body = resp.json();
    let keys: Vec<&String> = body
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    assert_eq!(keys, ["error"], "the body is one `error` object: {body}");
    let error = &body["error"];
    assert_eq!(error["code"], code, "{body}");
    assert_eq!(error["status"], status, "{body}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "error without a message: {body}"
    );
    assert!(
        error["details"].is_object(),
        "error without details: {body}"
    );
    assert!(
        error.get("hint").is_none_or(Value::is_string),
        "a hint is text: {body}"
    );
    let unknown: Vec<&String> = error
        .as_object()
        .into_iter()
        .flat_map(|o| o.keys())
        .filter(|k| !ERROR_KEYS.contains(&k.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "keys outside the contract {unknown:?}: {body}"
    );
    error.clone()
}

/// A numbered outline of `n` chapters titled "Beat 1".. "Beat n".
pub fn outline(n: u32) -> String {
    (1..=n)
        .map(|i| format!("## Chapter {i}: Beat {i}\n"))
        .collect()
}
