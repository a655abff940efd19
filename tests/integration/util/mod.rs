//! Test helpers shared by the integration test binaries: the real
//! `storyflow` binary started on a free loopback port with a temporary
//! database (killed on drop), a small HTTP client, and the CLI as a child
//! process.
#![allow(dead_code)]

pub mod fake_llm;

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

    pub fn get(&self, path: &str) -> Resp {
        self.request("GET", path, None)
    }

    pub fn post(&self, path: &str, body: &Value) -> Resp {
        self.request("POST", path, Some(body))
    }

    pub fn post_empty(&self, path: &str) -> Resp {
        self.request("POST", path, None)
    }

    pub fn patch(&self, path: &str, body: &Value) -> Resp {
        self.request("PATCH", path, Some(body))
    }

    pub fn delete(&self, path: &str) -> Resp {
        self.request("DELETE", path, None)
    }

    /// A JSON request over a raw socket (so no client library adds or fixes
    /// headers), with `Connection: close`.
    pub fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Resp {
        let body = body.map(|b| b.to_string());
        let mut headers = vec![("Host".to_string(), self.addr.to_string())];
        if body.is_some() {
            headers.push(("Content-Type".into(), "application/json".into()));
        }
        self.raw(
            method,
            path,
            &headers,
            body.as_deref().unwrap_or("").as_bytes(),
        )
    }

    /// Sends exactly these headers (plus Content-Length when there is a body
    /// and none is given) and this body.
    pub fn raw(&self, method: &str, path: &str, headers: &[(String, String)], body: &[u8]) -> Resp {
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

    /// A story's chapters, in order.
    pub fn chapters(&self, story_id: &str) -> Vec<Value> {
        let resp = self.get(&format!("/api/stories/{story_id}/chapters"));
        assert_eq!(resp.status, 200, "{}", resp.text());
        resp.json()["chapters"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// A run's events, oldest first.
    pub fn events(&self, run_id: &str) -> Vec<Value> {
        let resp = self.get(&format!("/api/runs/{run_id}/events"));
        assert_eq!(resp.status, 200, "{}", resp.text());
        resp.json()["events"]
            .as_array()
            .cloned()
            .unwrap_or_default()
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
pub fn create_story(server: &Server, body: Value) -> Value {
    let resp = server.post("/api/stories", &body);
    assert_eq!(resp.status, 201, "{}", resp.text());
    resp.json()
}

/// A numbered outline of `n` chapters titled "Beat 1".. "Beat n".
pub fn outline(n: u32) -> String {
    (1..=n)
        .map(|i| format!("## Chapter {i}: Beat {i}\n"))
        .collect()
}
