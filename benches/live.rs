//! The live relay (`GET /api/runs/{id}/live`) against the real `storyflow
//! serve` and the tests' fake OpenAI-compatible server streaming chapters:
//!
//! 1. latency: from a chunk leaving the fake server (written and flushed) to
//!    its `chunk` event reaching a viewer, over every chunk of a run (p50,
//!    p95, max; target p95 < 50 ms);
//! 2. load: the same run with no viewer, then with 20 viewers of which one
//!    never reads its socket; the run's duration must stay within 10 %.
//!
//! `cargo bench --bench live [-- CHAPTERS CHUNKS DELAY_MS]` (default 4
//! chapters of 50 chunks 20 ms apart) — prints one table.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[allow(dead_code)]
#[path = "../tests/integration/util/fake_llm.rs"]
mod fake_llm;

use fake_llm::{FakeLlm, Reply, Seen, StreamReply, default_reply};

/// An outline of `n` chapters (what `fake_llm`'s default answers use).
fn outline(n: u32) -> String {
    (1..=n)
        .map(|i| format!("## Chapter {i}: Beat {i}\n"))
        .collect()
}

/// `storyflow serve` on a free port with a temporary database.
struct Serve {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Serve {
    fn start(args: &[&str]) -> Serve {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut child = Command::new(env!("CARGO_BIN_EXE_storyflow"))
            .arg("--db")
            .arg(dir.path().join("live.db"))
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn storyflow serve");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("serving http://").nth(1) {
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_string());
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("storyflow started")
            .parse()
            .expect("an address");
        Serve {
            child,
            addr,
            _dir: dir,
        }
    }

    fn request(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut stream = TcpStream::connect(self.addr).expect("connect");
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.addr,
            body.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body.as_bytes()).unwrap();
        let mut raw = String::new();
        let _ = stream.read_to_string(&mut raw);
        let body = raw.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        serde_json::from_str(body).unwrap_or(Value::Null)
    }

    /// Creates a story of `chapters` chapters and starts its run.
    fn start_run(&self, chapters: u32) -> String {
        let story = self.request(
            "POST",
            "/api/stories",
            Some(json!({"title": "The Salt Road", "premise": "A drowned country.", "outline": outline(chapters)})),
        );
        let id = story["id"].as_str().expect("a story id");
        let run = self.request("POST", &format!("/api/stories/{id}/runs"), None);
        run["id"].as_str().expect("a run id").to_string()
    }

    fn wait_completed(&self, run: &str) {
        let deadline = Instant::now() + Duration::from_secs(300);
        while Instant::now() < deadline {
            let status = self.request("GET", &format!("/api/runs/{run}"), None)["status"].clone();
            match status.as_str() {
                Some("completed") => return,
                Some("failed" | "cancelled") => panic!("run {run} ended {status}"),
                _ => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        panic!("run {run} did not complete");
    }

    /// A live connection whose events are read on a thread: (arrival,
    /// event name, data).
    fn watch(&self, run: &str) -> Receiver<(Instant, String, Value)> {
        let mut stream = self.open_live(run);
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(&mut stream);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let (mut name, mut buffered) = (String::new(), String::new());
            loop {
                let mut size = String::new();
                if reader.read_line(&mut size).unwrap_or(0) == 0 {
                    return;
                }
                let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
                if size == 0 {
                    return;
                }
                let mut chunk = vec![0; size + 2];
                if reader.read_exact(&mut chunk).is_err() {
                    return;
                }
                let at = Instant::now();
                buffered.push_str(&String::from_utf8_lossy(&chunk[..size]));
                while let Some(end) = buffered.find("\n\n") {
                    let event: String = buffered.drain(..end + 2).collect();
                    for field in event.lines() {
                        if let Some(value) = field.strip_prefix("event: ") {
                            name = value.to_string();
                        } else if let Some(data) = field.strip_prefix("data: ") {
                            let data = serde_json::from_str(data).unwrap_or(Value::Null);
                            if tx.send((at, std::mem::take(&mut name), data)).is_err() {
                                return;
                            }
                        }
                    }
                }
            }
        });
        rx
    }

    /// A live connection that is never read.
    fn open_live(&self, run: &str) -> TcpStream {
        let mut stream = TcpStream::connect(self.addr).expect("connect");
        let request = format!(
            "GET /api/runs/{run}/live HTTP/1.1\r\nHost: {}\r\n\r\n",
            self.addr
        );
        stream.write_all(request.as_bytes()).unwrap();
        stream
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let chapters = args.first().copied().unwrap_or(4) as u32;
    let chunks = args.get(1).copied().unwrap_or(50) as usize;
    let delay = Duration::from_millis(args.get(2).copied().unwrap_or(20));
    let llm = FakeLlm::with_responder(Vec::new(), move |seen: &Seen, number| {
        if seen.is_summary() || seen.is_outline() {
            default_reply(seen, number)
        } else {
            let words = (1..=chunks).map(|n| format!("w{number}x{n} ")).collect();
            Reply::Stream(StreamReply::new(words, delay))
        }
    });
    llm.stream_when_asked(Duration::ZERO);
    let serve = Serve::start(&llm.args(&["--workers", "1"]));

    // 1. Latency: every chunk of every chapter, fake server to viewer.
    let run = serve.start_run(chapters);
    let events = serve.watch(&run);
    serve.wait_completed(&run);
    let arrivals: Vec<(Instant, String)> = events
        .try_iter()
        .filter(|(_, name, data)| name == "chunk" && data["reset"] != true)
        .map(|(at, _, data)| (at, data["text"].as_str().unwrap_or("").to_string()))
        .collect();
    let seen = llm.seen();
    let mut sent: Vec<(Instant, String)> = Vec::new();
    for stream in llm.streams() {
        let request = &seen[stream.request - 1];
        if request.is_summary() || request.is_outline() {
            continue;
        }
        for (n, at) in stream.chunk_times.iter().enumerate() {
            sent.push((*at, format!("w{}x{} ", stream.request, n + 1)));
        }
    }
    let mut latencies: Vec<Duration> = sent
        .iter()
        .filter_map(|(left, text)| {
            arrivals
                .iter()
                .find(|(_, shown)| shown == text)
                .map(|(at, _)| at.saturating_duration_since(*left))
        })
        .collect();
    latencies.sort();
    assert!(!latencies.is_empty(), "no chunk reached the viewer");

    // 2. Load: the same run with no viewer, then with 20 (one never reads).
    let timed = |viewers: usize| {
        let run = serve.start_run(chapters);
        let started = Instant::now();
        let mut readers = Vec::new();
        let mut idle = None;
        for n in 0..viewers {
            if n == 0 {
                idle = Some(serve.open_live(&run));
            } else {
                readers.push(serve.watch(&run));
            }
        }
        serve.wait_completed(&run);
        let took = started.elapsed();
        // Drain so the readers' threads end with the streams.
        for reader in &readers {
            let _ = reader.try_iter().count();
        }
        drop(idle);
        took
    };
    let alone = timed(0);
    let watched = timed(20);
    let ratio = watched.as_secs_f64() / alone.as_secs_f64();

    println!(
        "live relay: {chapters} chapters x {chunks} chunks, {} ms apart, 1 worker",
        delay.as_millis()
    );
    println!("| measure | value | target |");
    println!("| --- | --- | --- |");
    println!(
        "| chunks matched (sent -> shown) | {} of {} | all |",
        latencies.len(),
        sent.len()
    );
    println!(
        "| relay latency p50 | {} | |",
        ms(percentile(&latencies, 0.5))
    );
    println!(
        "| relay latency p95 | {} | < 50 ms |",
        ms(percentile(&latencies, 0.95))
    );
    println!(
        "| relay latency max | {} | |",
        ms(*latencies.last().unwrap_or(&Duration::ZERO))
    );
    println!("| run, no viewer | {} | |", ms(alone));
    println!(
        "| run, 20 viewers (1 never reads) | {} ({:+.1} %) | within 10 % |",
        ms(watched),
        (ratio - 1.0) * 100.0
    );
}
