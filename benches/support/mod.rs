//! What the benchmarks that drive the real server share: the built
//! `storyflow` binary started on a free loopback port (killed on drop),
//! percentiles, and the PASS/FAIL table every benchmark prints.
//!
//! The server is the binary cargo built for this benchmark
//! (`CARGO_BIN_EXE_storyflow`, the bench profile), so the figures are those
//! of what a writer runs, HTTP parsing and all.

#![allow(dead_code)] // each bench uses a part of this module

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A `storyflow serve` child process; killed when dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
}

impl Server {
    /// Serves `db` with `args` added to `serve`; waits for its address.
    pub fn start(db: &Path, args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_storyflow"))
            .arg("--db")
            .arg(db)
            .arg("serve")
            .args(["--addr", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "info")
            .env_remove("STORYFLOW_TOKEN")
            .env_remove("STORYFLOW_LLM_API_KEY")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn storyflow serve");
        let stderr = child.stderr.take().expect("stderr piped");
        let (tx, rx) = std::sync::mpsc::channel();
        // Drained to the end, so a chatty log never blocks the server.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("serving http://").nth(1) {
                    let addr = rest.split_whitespace().next().unwrap_or_default();
                    let _ = tx.send(addr.to_string());
                }
            }
        });
        // The first sweep (with the quick integrity check) precedes the
        // address line: a large database takes a while.
        let addr = match rx.recv_timeout(Duration::from_secs(600)) {
            Ok(addr) => addr.parse().expect("server address"),
            Err(_) => {
                let _ = child.kill();
                panic!("storyflow serve did not start");
            }
        };
        Server { child, addr }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client that reports statuses instead of failing on them, and never
/// goes through a proxy (the target is loopback).
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// The `p`-th percentile (0..=100) of `samples`, nearest rank.
pub fn percentile(samples: &[f64], p: f64) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// One line of a result table: a figure, its target, and whether it met it.
pub struct Row {
    pub figure: String,
    pub value: String,
    pub target: String,
    /// `None` for a figure given for reference, with no target.
    pub pass: Option<bool>,
}

impl Row {
    pub fn new(figure: &str, value: String, target: &str, pass: Option<bool>) -> Row {
        Row {
            figure: figure.to_string(),
            value,
            target: target.to_string(),
            pass,
        }
    }
}

/// Prints `rows` as the benchmark's table, with the machine's load: on a
/// shared machine the absolute figures move with it.
pub fn print_table(title: &str, rows: &[Row]) {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    println!("\n{title}; load average {}", load.join(" "));
    println!(
        "{:<52} {:>12}  {:<14} result",
        "figure", "measured", "target"
    );
    for row in rows {
        let result = match row.pass {
            Some(true) => "PASS",
            Some(false) => "FAIL",
            None => "",
        };
        println!(
            "{:<52} {:>12}  {:<14} {result}",
            row.figure, row.value, row.target
        );
    }
}

/// A number from the environment, else `default`.
pub fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}
