//! Two figures of a long book through a fake OpenAI-compatible server
//! (`support/fake_llm.rs`: chapters of ~1,500 words, summaries of ~60):
//!
//! 1. Prompt flatness: a 60-chapter book written by one worker; from the
//!    `generations` table, chapter 60's prompt tokens against chapter 10's
//!    (target: at most 1.2×), and the share of all tokens (prompt and
//!    completion) spent on summaries (target: at most 20 %).
//! 2. Worker scaling: the fake answers each call after 1 s; `--workers 1`
//!    and `--workers 8` on 12 long stories for a fixed window; chapters
//!    written per minute (target: 8 workers at least 7× one worker).
//!
//! `cargo bench --bench book` — `BOOK_BENCH_CHAPTERS` (60),
//! `BOOK_BENCH_WINDOW_S` (30) change the sizes.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use serde_json::{Value, json};

#[path = "support/fake_llm.rs"]
mod fake_llm;
#[path = "support/mod.rs"]
mod support;

use fake_llm::FakeLlm;
use support::{Row, Server, print_table};

fn outline(chapters: usize) -> String {
    (1..=chapters)
        .map(|n| {
            format!(
                "## Chapter {n}: Part {n}\nThe keeper crosses the harbour for the {n}th time.\n"
            )
        })
        .collect()
}

fn call(agent: &ureq::Agent, method: &str, url: &str, body: Option<Value>) -> Value {
    let response = match (method, body) {
        ("GET", _) => agent.get(url).call(),
        (_, Some(body)) => agent.post(url).send_json(&body),
        (_, None) => agent.post(url).send_empty(),
    }
    .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = response.status().as_u16();
    let value: Value = response.into_body().read_json().expect("JSON answer");
    assert!(status < 300, "{method} {url}: {status} {value}");
    value
}

/// Creates a story of `chapters` chapters and starts its run; the run's id.
fn start_book(agent: &ureq::Agent, server: &Server, title: &str, chapters: usize) -> String {
    let story = call(
        agent,
        "POST",
        &server.url("/api/stories"),
        Some(
            json!({"title": title, "premise": "A lighthouse keeper waits for a letter.",
                    "outline": outline(chapters), "chapter_count": chapters}),
        ),
    );
    let id = story["id"].as_str().expect("story id");
    let run = call(
        agent,
        "POST",
        &server.url(&format!("/api/stories/{id}/runs")),
        None,
    );
    run["id"].as_str().expect("run id").to_string()
}

fn serve_args<'a>(llm: &'a FakeLlm, workers: &'a str) -> Vec<&'a str> {
    vec![
        "--generator",
        "openai",
        "--llm-url",
        &llm.url,
        "--llm-model",
        "bench-model",
        "--min-chapter-words",
        "1",
        "--retry-base-ms",
        "10",
        "--workers",
        workers,
    ]
}

fn read_only(db: &Path) -> Connection {
    Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open read-only")
}

/// Figure 1: (chapter 10's prompt tokens, chapter 60's, summaries' share).
fn flatness(chapters: usize) -> (i64, i64, f64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("book.db");
    let llm = FakeLlm::start(Duration::ZERO);
    let server = Server::start(&db, &serve_args(&llm, "1"));
    let agent = support::agent();
    let run = start_book(&agent, &server, "Sixty Chapters", chapters);
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let status = call(
            &agent,
            "GET",
            &server.url(&format!("/api/runs/{run}")),
            None,
        );
        match status["status"].as_str() {
            Some("completed") => break,
            Some("failed" | "cancelled") => panic!("the book's run ended: {status}"),
            _ => {}
        }
        assert!(Instant::now() < deadline, "the book took over 15 minutes");
        std::thread::sleep(Duration::from_millis(100));
    }
    let conn = read_only(&db);
    // Tokens as the server reported them, else as storyflow estimated them.
    let prompt_of = |chapter: usize| -> i64 {
        conn.query_row(
            "SELECT max(coalesce(prompt_tokens_reported, prompt_tokens_estimated)) FROM generations
             WHERE kind = 'chapter' AND outcome = 'ok' AND chapter = ?1",
            [chapter as i64],
            |row| row.get(0),
        )
        .expect("a chapter's generation")
    };
    let (summaries, all): (f64, f64) = conn
        .query_row(
            "SELECT total(CASE WHEN kind = 'summary' THEN t END), total(t) FROM
               (SELECT kind, coalesce(prompt_tokens_reported, prompt_tokens_estimated) + completion_tokens AS t
                FROM generations)",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .expect("token totals");
    (
        prompt_of(10.min(chapters)),
        prompt_of(chapters),
        summaries / all.max(1.0),
    )
}

/// Figure 2: chapters per minute with `workers` workers, over `window`,
/// after a warm-up of 5 s (every worker has claimed its run).
fn chapters_per_minute(workers: usize, window: Duration) -> f64 {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("scaling.db");
    let llm = FakeLlm::start(Duration::from_secs(1));
    let workers_arg = workers.to_string();
    let server = Server::start(&db, &serve_args(&llm, &workers_arg));
    let agent = support::agent();
    for i in 0..12 {
        start_book(&agent, &server, &format!("Story {i}"), 60);
    }
    let conn = read_only(&db);
    let count = || -> i64 {
        conn.query_row("SELECT count(*) FROM chapters", [], |row| row.get(0))
            .expect("chapter count")
    };
    std::thread::sleep(Duration::from_secs(5));
    let before = count();
    std::thread::sleep(window);
    let written = count() - before;
    written as f64 / window.as_secs_f64() * 60.0
}

fn main() {
    let chapters = support::env_number("BOOK_BENCH_CHAPTERS", 60).max(10);
    let window = Duration::from_secs(support::env_number("BOOK_BENCH_WINDOW_S", 30) as u64);
    let (tenth, last, summary_share) = flatness(chapters);
    let growth = last as f64 / tenth.max(1) as f64;
    let one = chapters_per_minute(1, window);
    let eight = chapters_per_minute(8, window);
    let scaling = eight / one.max(f64::MIN_POSITIVE);
    print_table(
        &format!(
            "book: {chapters}-chapter book through a fake OpenAI server; scaling over {} s with 1 s per call, {} cores",
            window.as_secs(),
            std::thread::available_parallelism().map_or(0, |n| n.get())
        ),
        &[
            Row::new("chapter 10 prompt tokens", tenth.to_string(), "", None),
            Row::new(
                &format!("chapter {chapters} prompt tokens"),
                last.to_string(),
                "",
                None,
            ),
            Row::new(
                &format!("chapter {chapters} / chapter 10 prompt"),
                format!("{growth:.2}"),
                "<= 1.20",
                Some(growth <= 1.2),
            ),
            Row::new(
                "summaries' share of all tokens",
                format!("{:.1} %", summary_share * 100.0),
                "<= 20 %",
                Some(summary_share <= 0.2),
            ),
            Row::new("chapters/min, --workers 1", format!("{one:.1}"), "", None),
            Row::new("chapters/min, --workers 8", format!("{eight:.1}"), "", None),
            Row::new(
                "8 workers / 1 worker",
                format!("{scaling:.2}"),
                ">= 7.00",
                Some(scaling >= 7.0),
            ),
        ],
    );
}
