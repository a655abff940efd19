//! Cancel that interrupts, against the real `storyflow serve` and a fake
//! OpenAI-compatible server on 127.0.0.1: a run cancelled while its worker
//! waits out a `Retry-After`, or while the server hangs mid-answer, stops at
//! once, sends no further request, and its worker moves on to the next run.

use std::time::{Duration, Instant};

use crate::util::fake_llm::{FakeLlm, Reply, Seen, default_reply, rate_limited};
use crate::util::{Api, Server, create_story, outline};
use serde_json::json;

const SLOW: &str = "The Stalled Courier";
const QUICK: &str = "The Quick Crossing";

fn is_for(seen: &Seen, title: &str) -> bool {
    seen.user_prompt().contains(&format!("Title: {title}"))
}

/// Creates a two-chapter story and starts its run; returns the run id.
fn start_run(server: &Server, title: &str) -> String {
    let story = create_story(
        server,
        json!({"title": title, "premise": "Fog on the flats.", "outline": outline(2)}),
    );
    let story_id = story["id"].as_str().unwrap();
    let run = server.post_empty(&format!("/api/stories/{story_id}/runs"));
    assert_eq!(run.status, 202, "{}", run.text());
    run.json()["id"].as_str().unwrap().to_string()
}

/// One worker; the slow story's requests get `slow`, the quick one's the
/// default answers. Cancels the slow run once its first request was seen
/// and `settled` says the worker is where the test wants it, then checks
/// the contract: cancelled, no further request for it, and the quick run
/// completed within 5 s of the cancel.
fn cancel_interrupts(slow: fn() -> Reply, settled: fn(&Server, &str) -> bool) {
    let llm = FakeLlm::with_responder(Vec::new(), move |seen: &Seen, number| {
        if is_for(seen, SLOW) {
            slow()
        } else {
            default_reply(seen, number)
        }
    });
    let server = Server::start(&llm.args(&["--workers", "1", "--llm-timeout-s", "120"]));
    let slow_run = start_run(&server, SLOW);
    let quick_run = start_run(&server, QUICK);
    let slow_requests = || llm.seen().iter().filter(|s| is_for(s, SLOW)).count();
    assert!(
        server.wait_until(Duration::from_secs(20), || slow_requests() == 1
            && settled(&server, &slow_run)),
        "the slow run never got going: {}",
        server.log_text()
    );
    let cancel = server.post_empty(&format!("/api/runs/{slow_run}/cancel"));
    assert_eq!(cancel.status, 200, "{}", cancel.text());
    let cancelled_at = Instant::now();
    server.wait_for_run(&quick_run, "completed", Duration::from_secs(5));
    assert!(
        cancelled_at.elapsed() < Duration::from_secs(5),
        "the next run completed {:?} after the cancel",
        cancelled_at.elapsed()
    );
    // The watcher ticks every 250 ms; give a late request time to show.
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(slow_requests(), 1, "a request was sent after the cancel");
    let run = server.get(&format!("/api/runs/{slow_run}")).json();
    assert_eq!(run["status"], "cancelled", "{run}");
    let stopped = server.events(&slow_run).iter().any(|e| {
        e["kind"] == "stopped" && e["message"].as_str().unwrap_or("").contains("cancelled")
    });
    assert!(stopped, "{:?}", server.events(&slow_run));
}

#[test]
fn a_cancel_during_a_retry_after_wait_stops_the_run_at_once() {
    cancel_interrupts(
        || rate_limited("40"),
        |server, run| {
            server.events(run).iter().any(|e| {
                e["kind"] == "retry" && e["message"].as_str().unwrap_or("").contains("40000 ms")
            })
        },
    );
}

/// Needs a generator call that gives up when the run's token is cancelled
/// (the openai backend of the generator rewrite); with a call that blocks
/// until `--llm-timeout-s`, the worker cannot move on in time.
#[test]
fn a_cancel_while_the_server_hangs_mid_answer_stops_the_run_at_once() {
    cancel_interrupts(|| Reply::HangMidAnswer, |_, _| true);
}
