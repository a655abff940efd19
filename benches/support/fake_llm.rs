//! A fake OpenAI-compatible `/chat/completions` server for the benchmarks:
//! answers of a real book's sizes (a chapter of ~1,500 words, a summary of
//! ~60, an outline when asked), a fixed latency per call, and several
//! serving threads, so that N workers waiting on it wait in parallel as on a
//! real model server. (The test suite's fake serves one request at a time
//! and answers a few words: right for tests, wrong for throughput.)
//!
//! Its `usage` reports what storyflow sent (characters / 3.5) and what it
//! answered (characters / 4), as the test fake does.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{Value, json};

/// Serving threads: more than the most workers a benchmark runs.
const THREADS: usize = 16;

pub struct FakeLlm {
    pub url: String,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl FakeLlm {
    pub fn start(latency: Duration) -> FakeLlm {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind the fake llm"));
        let addr = server.server_addr().to_ip().expect("an ip address");
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..THREADS)
            .map(|thread| {
                let server = server.clone();
                let stop = stop.clone();
                std::thread::spawn(move || serve(&server, latency, thread as u64, &stop))
            })
            .collect();
        FakeLlm {
            url: format!("http://{addr}/v1"),
            stop,
            threads,
        }
    }
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

const WORDS: [&str; 32] = [
    "the",
    "fog",
    "river",
    "lantern",
    "keeper",
    "walked",
    "slowly",
    "toward",
    "harbour",
    "where",
    "boats",
    "waited",
    "silent",
    "morning",
    "she",
    "remembered",
    "letter",
    "brother",
    "never",
    "sent",
    "wind",
    "carried",
    "salt",
    "across",
    "stones",
    "and",
    "old",
    "bell",
    "rang",
    "twice",
    "again",
    "dark",
];

fn prose(rng: &mut fastrand::Rng, words: usize) -> String {
    let mut text = String::with_capacity(words * 7);
    for i in 0..words {
        text.push_str(WORDS[rng.usize(0..WORDS.len())]);
        text.push_str(if i % 12 == 11 { ". " } else { " " });
    }
    text.push_str("The bell rang.");
    text
}

fn prompt_chars(body: &Value) -> usize {
    body["messages"].as_array().map_or(0, |messages| {
        messages
            .iter()
            .map(|m| m["content"].as_str().unwrap_or("").chars().count())
            .sum()
    })
}

/// The answer to one request, by what its last message asks for.
fn answer(body: &Value, rng: &mut fastrand::Rng) -> String {
    let asked = body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or("");
    if asked.contains("Write an outline") {
        (1..=60)
            .map(|n| format!("## Chapter {n}: Part {n}\nThe keeper goes on.\n"))
            .collect()
    } else if asked.contains("Summarise what happens") {
        prose(rng, 60)
    } else {
        prose(rng, 1_500)
    }
}

fn serve(server: &tiny_http::Server, latency: Duration, seed: u64, stop: &AtomicBool) {
    let mut rng = fastrand::Rng::with_seed(seed);
    while !stop.load(Ordering::SeqCst) {
        let Ok(Some(mut request)) = server.recv_timeout(Duration::from_millis(20)) else {
            continue;
        };
        let mut raw = String::new();
        let _ = request.as_reader().read_to_string(&mut raw);
        let body: Value = serde_json::from_str(&raw).unwrap_or(Value::Null);
        std::thread::sleep(latency);
        let text = answer(&body, &mut rng);
        let prompt_tokens = (prompt_chars(&body) as f64 / 3.5).floor() as u64;
        let completion_tokens = text.chars().count().div_ceil(4) as u64;
        let completion = json!({
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "model": "bench-model",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        });
        let mut response = tiny_http::Response::from_string(completion.to_string());
        if let Ok(header) = tiny_http::Header::from_bytes("Content-Type", "application/json") {
            response.add_header(header);
        }
        let _ = request.respond(response);
    }
}
