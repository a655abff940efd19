//! Streaming from an OpenAI-compatible server and the live relay
//! (`GET /api/runs/{id}/live`), against the real `storyflow serve` and the
//! fake server streaming chapters chunk by chunk: text reaches a viewer
//! before the chapter is saved, and what is saved is the whole streamed
//! answer; a cut stream is asked again and nothing of it is saved; a cancel
//! closes the upstream connection; a server that refuses streaming is asked
//! plainly; usage from the last chunk is counted; reasoning never reaches a
//! viewer.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::fake_llm::{FakeLlm, Reply, Seen, StreamEnd, StreamReply, default_reply};
use crate::util::{Api, Server, assert_error, outline, story_with_run};

const WAIT: Duration = Duration::from_secs(30);
const CHUNK_DELAY: Duration = Duration::from_millis(50);

/// One event of a live stream and when it arrived.
#[derive(Debug, Clone)]
pub struct LiveEvent {
    pub at: Instant,
    pub name: String,
    pub data: Value,
}

/// Opens `GET /api/runs/{run}/live` and reads its events on a thread.
pub fn watch(server: &Server, run: &str) -> Receiver<LiveEvent> {
    let mut stream = TcpStream::connect(server.addr).expect("connect");
    let request = format!(
        "GET /api/runs/{run}/live HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
        server.addr
    );
    stream.write_all(request.as_bytes()).unwrap();
    let (sender, receiver) = channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        // The head.
        while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
            line.clear();
        }
        let (mut name, mut buffered) = (String::new(), String::new());
        loop {
            // One HTTP chunk.
            let mut size = String::new();
            if reader.read_line(&mut size).unwrap_or(0) == 0 {
                return;
            }
            let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
                return;
            };
            if size == 0 {
                return;
            }
            let mut chunk = vec![0; size + 2];
            if reader.read_exact(&mut chunk).is_err() {
                return;
            }
            buffered.push_str(&String::from_utf8_lossy(&chunk[..size]));
            while let Some(end) = buffered.find("\n\n") {
                let event: String = buffered.drain(..end + 2).collect();
                for field in event.lines() {
                    if let Some(value) = field.strip_prefix("event: ") {
                        name = value.to_string();
                    } else if let Some(data) = field.strip_prefix("data: ") {
                        let data = serde_json::from_str(data).unwrap_or(Value::Null);
                        let event = LiveEvent {
                            at: Instant::now(),
                            name: std::mem::take(&mut name),
                            data,
                        };
                        if sender.send(event).is_err() {
                            return;
                        }
                    }
                }
            }
        }
    });
    receiver
}

/// Every event until the stream ends (or `WAIT` passes).
pub fn all_events(events: &Receiver<LiveEvent>) -> Vec<LiveEvent> {
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match events.recv_timeout(left) {
            Ok(event) => seen.push(event),
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
        }
    }
    seen
}

/// The text of `chapter` a viewer of `events` was shown.
pub fn shown_text(events: &[LiveEvent], chapter: u64) -> String {
    let mut text = String::new();
    for event in events
        .iter()
        .filter(|e| e.name == "chunk" && e.data["chapter"] == chapter)
    {
        if event.data["reset"] == true {
            text.clear();
        }
        text.push_str(event.data["text"].as_str().unwrap_or(""));
    }
    text
}

fn is_chapter_request(seen: &Seen) -> bool {
    !seen.is_summary() && !seen.is_outline()
}

fn words(prefix: &str, n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("{prefix}{i} ")).collect()
}

fn one_chapter_story() -> Value {
    json!({"title": "The Salt Road", "premise": "A courier crosses a drowned country.", "outline": outline(1)})
}

/// A fake server that streams whatever it is asked to stream.
fn streaming_llm(chapter: impl Fn(usize) -> Reply + Send + 'static) -> FakeLlm {
    let llm = FakeLlm::with_responder(Vec::new(), move |seen: &Seen, number| {
        if is_chapter_request(seen) {
            chapter(number)
        } else {
            default_reply(seen, number)
        }
    });
    llm.stream_when_asked(Duration::ZERO);
    llm
}

fn chapter_text(server: &Server, story: &str, number: u64) -> Option<String> {
    server
        .chapters(story)
        .into_iter()
        .find(|c| c["number"] == number)
        .map(|c| c["content"].as_str().unwrap_or("").to_string())
}

#[test]
fn live_text_arrives_before_the_chapter_is_saved_and_is_what_is_saved() {
    let chunks = words("tide", 50);
    let llm = {
        let chunks = chunks.clone();
        streaming_llm(move |_| Reply::Stream(StreamReply::new(chunks.clone(), CHUNK_DELAY)))
    };
    let server = Server::start(&llm.args(&[]));
    let (story, run) = story_with_run(&server, one_chapter_story(), None);
    let events = watch(&server, &run);
    let first_chunk = loop {
        let event = events.recv_timeout(WAIT).expect("a live event");
        if event.name == "chunk" && !event.data["text"].as_str().unwrap_or("").is_empty() {
            break event;
        }
    };
    assert_eq!(first_chunk.data["chapter"], 1);
    assert_eq!(
        chapter_text(&server, &story, 1),
        None,
        "the chapter was saved before its first chunk reached the viewer"
    );
    let mut rest = all_events(&events);
    let saved_at = rest
        .iter()
        .find(|e| e.name == "saved" && e.data["chapter"] == 1)
        .map(|e| e.at)
        .expect("a saved event");
    assert!(
        saved_at.duration_since(first_chunk.at) > Duration::from_secs(1),
        "50 chunks 50 ms apart: the first came long before the save"
    );
    let last = rest.last().expect("events");
    assert_eq!(
        (last.name.as_str(), &last.data["status"]),
        ("status", &json!("completed"))
    );
    rest.insert(0, first_chunk);
    let saved = chapter_text(&server, &story, 1).expect("chapter 1 saved");
    assert_eq!(saved, chunks.concat().trim());
    assert_eq!(shown_text(&rest, 1).trim(), saved);
    let run_row = server.run(&run);
    assert_eq!(run_row["status"], "completed");
    let (first_token_ms, latency_ms) = chapter_call_timing(&server, &run);
    assert!(
        first_token_ms < latency_ms && latency_ms - first_token_ms >= 1000,
        "the first text came {first_token_ms} ms into a {latency_ms} ms call of 50 chunks 50 ms apart"
    );
}

/// `first_token_ms` and `latency_ms` of the run's chapter call, as stored.
fn chapter_call_timing(server: &Server, run: &str) -> (i64, i64) {
    let db = rusqlite::Connection::open(&server.db).expect("open the test database");
    db.query_row(
        "SELECT first_token_ms, latency_ms FROM generations
         WHERE run_id = ?1 AND kind = 'chapter' AND outcome = 'ok'",
        [run],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )
    .expect("the chapter call with its time to first token")
}

#[test]
fn a_stream_cut_mid_way_is_asked_again_and_nothing_of_it_is_saved() {
    // The first chapter request gets a stream cut after 10 chunks.
    let cut = StreamReply {
        cut_after: Some(10),
        ..StreamReply::new(words("partial", 20), Duration::from_millis(5))
    };
    let llm = {
        let first = std::sync::Mutex::new(Some(cut));
        let llm = FakeLlm::with_responder(Vec::new(), move |seen: &Seen, number| {
            if !is_chapter_request(seen) {
                return default_reply(seen, number);
            }
            match first.lock().unwrap().take() {
                Some(cut) => Reply::Stream(cut),
                None => Reply::Stream(StreamReply::new(words("whole", 20), Duration::ZERO)),
            }
        });
        llm.stream_when_asked(Duration::ZERO);
        llm
    };
    let server = Server::start(&llm.args(&[]));
    let (story, run) = story_with_run(&server, one_chapter_story(), None);
    server.wait_for_run(&run, "completed", WAIT);
    assert_eq!(llm.streams()[0].end, StreamEnd::Cut);
    let saved = chapter_text(&server, &story, 1).expect("chapter 1");
    assert!(!saved.contains("partial"), "{saved}");
    assert_eq!(saved, words("whole", 20).concat().trim());
    let retried = server
        .events(&run)
        .iter()
        .any(|e| e["kind"] == "retry" && e["message"].as_str().unwrap_or("").contains("broke"));
    assert!(retried, "{:?}", server.events(&run));
    // Every request after the cut still asked for a stream.
    assert!(llm.seen().iter().all(|s| s.body["stream"] == true));
}

#[test]
fn a_cancel_mid_stream_closes_the_upstream_connection_within_two_seconds() {
    let llm = streaming_llm(|_| Reply::Stream(StreamReply::new(words("fog", 400), CHUNK_DELAY)));
    let server = Server::start(&llm.args(&["--llm-timeout-s", "120"]));
    let (_, run) = story_with_run(&server, one_chapter_story(), None);
    assert!(
        server.wait_until(WAIT, || llm
            .streams()
            .first()
            .is_some_and(|s| s.chunk_times.len() >= 5)),
        "the stream never got going: {}",
        server.log_text()
    );
    let cancel = server.post_empty(&format!("/api/runs/{run}/cancel"));
    assert_eq!(cancel.status, 200, "{}", cancel.text());
    let cancelled_at = Instant::now();
    let closed = server.wait_until(Duration::from_secs(5), || {
        matches!(llm.streams()[0].end, StreamEnd::ClientClosed(_))
    });
    let StreamEnd::ClientClosed(at) = llm.streams()[0].end else {
        panic!(
            "the connection stayed open: {:?} ({closed})",
            llm.streams()[0]
        );
    };
    assert!(
        at.duration_since(cancelled_at) < Duration::from_secs(2),
        "closed {:?} after the cancel",
        at.duration_since(cancelled_at)
    );
    assert_eq!(server.run(&run)["status"], "cancelled");
}

#[test]
fn a_server_that_refuses_streaming_is_asked_plainly_from_then_on() {
    let llm = FakeLlm::start(Vec::new());
    llm.refuse_streams(400);
    let server = Server::start(&llm.args(&[]));
    let (story, run) = story_with_run(&server, one_chapter_story(), None);
    server.wait_for_run(&run, "completed", WAIT);
    let asked: Vec<bool> = llm
        .seen()
        .iter()
        .map(|s| s.body["stream"] == true)
        .collect();
    assert_eq!(asked[..2], [true, false], "{asked:?}");
    assert_eq!(
        asked.iter().filter(|a| **a).count(),
        1,
        "the refusal is remembered: {asked:?}"
    );
    assert!(chapter_text(&server, &story, 1).is_some());
    assert!(server.log_text().contains("does not stream"));
}

#[test]
fn usage_from_the_last_chunk_is_what_the_run_counts() {
    let llm = streaming_llm(|_| Reply::Stream(StreamReply::new(words("salt", 12), Duration::ZERO)));
    let server = Server::start(&llm.args(&[]));
    let (_, run) = story_with_run(&server, one_chapter_story(), None);
    let run = server.wait_for_run(&run, "completed", WAIT);
    let sent = llm.usage_sent();
    assert_eq!(
        sent.len(),
        llm.seen().len(),
        "every streamed answer had usage"
    );
    assert!(
        llm.seen()
            .iter()
            .all(|s| s.body["stream_options"]["include_usage"] == true)
    );
    let usage = &run["usage"];
    assert_eq!(usage["calls"], sent.len() as u64);
    assert_eq!(
        usage["prompt_tokens"],
        sent.iter().map(|u| u.prompt_tokens).sum::<u64>()
    );
    assert_eq!(
        usage["completion_tokens"],
        sent.iter().map(|u| u.completion_tokens).sum::<u64>()
    );
}

#[test]
fn reasoning_split_across_chunks_never_reaches_a_viewer() {
    let chunks: Vec<String> = [
        "<th",
        "ink>The secret pl",
        "an is to lie.</thi",
        "nk>Dawn came ",
        "over the <b>marsh</b>. <THINK",
        "ING>hidden again</thinking",
        "> The end.",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let llm = {
        let chunks = chunks.clone();
        streaming_llm(move |_| Reply::Stream(StreamReply::new(chunks.clone(), CHUNK_DELAY)))
    };
    let server = Server::start(&llm.args(&[]));
    let (story, run) = story_with_run(&server, one_chapter_story(), None);
    let events = all_events(&watch(&server, &run));
    assert!(events.iter().any(|e| e.name == "saved"), "{events:?}");
    for event in events.iter().filter(|e| e.name == "chunk") {
        let text = event.data["text"].as_str().unwrap_or("").to_lowercase();
        assert!(
            !text.contains("secret") && !text.contains("hidden") && !text.contains("think"),
            "reasoning reached a viewer: {text:?}"
        );
    }
    let shown = shown_text(&events, 1);
    assert!(
        shown.contains("Dawn came over the <b>marsh</b>."),
        "{shown:?}"
    );
    let saved = chapter_text(&server, &story, 1).expect("chapter 1");
    assert!(
        !saved.contains("secret") && !saved.contains("hidden"),
        "{saved}"
    );
}

#[test]
fn the_live_stream_of_an_unknown_or_finished_run_answers_at_once() {
    let llm = FakeLlm::start(Vec::new());
    let server = Server::start(&llm.args(&[]));
    let missing = server.get("/api/runs/00000000-0000-4000-8000-000000000000/live");
    assert_error(&missing, 404, "RUN_NOT_FOUND");
    let (_, run) = story_with_run(&server, one_chapter_story(), None);
    server.wait_for_run(&run, "completed", WAIT);
    let started = Instant::now();
    let finished = server.get(&format!("/api/runs/{run}/live"));
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(finished.status, 200);
    assert!(
        finished
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/event-stream"))
    );
    assert_eq!(
        finished.text(),
        "event: status\ndata: {\"status\":\"completed\"}\n\n"
    );
}

#[test]
fn live_streams_leave_the_request_threads_free_and_are_bounded() {
    // No workers: the run stays pending, so its live streams stay open.
    let server = Server::start(&["--workers", "0", "--http-threads", "2"]);
    let (_, run) = story_with_run(&server, one_chapter_story(), None);
    let open: Vec<Receiver<LiveEvent>> = (0..64).map(|_| watch(&server, &run)).collect();
    for events in &open {
        let first = events.recv_timeout(WAIT).expect("a first event");
        assert_eq!(
            (first.name.as_str(), &first.data),
            ("status", &json!({"status": "pending"}))
        );
    }
    // 64 streams held, 2 request threads: other requests are still served.
    let started = Instant::now();
    assert_eq!(server.get(&format!("/api/runs/{run}")).status, 200);
    assert!(started.elapsed() < Duration::from_secs(2));
    let refused = server.get(&format!("/api/runs/{run}/live"));
    let error = assert_error(&refused, 503, "UNAVAILABLE");
    assert!(error["message"].as_str().unwrap_or("").contains("64"));
    // A cancel ends every stream with the run's status.
    assert_eq!(
        server.post_empty(&format!("/api/runs/{run}/cancel")).status,
        200
    );
    for events in &open {
        let last = all_events(events).pop().expect("the final status");
        assert_eq!(last.data, json!({"status": "cancelled"}));
    }
}

#[test]
fn a_live_stream_outlasts_the_request_timeout() {
    let llm = streaming_llm(|_| Reply::Stream(StreamReply::new(words("mist", 40), CHUNK_DELAY)));
    let server = Server::start(&llm.args(&["--http-timeout-s", "1"]));
    let (story, run) = story_with_run(&server, one_chapter_story(), None);
    let events = all_events(&watch(&server, &run));
    let last = events.last().expect("events");
    assert_eq!(last.data, json!({"status": "completed"}), "{events:?}");
    let saved = chapter_text(&server, &story, 1).expect("chapter 1");
    assert_eq!(shown_text(&events, 1).trim(), saved);
}
