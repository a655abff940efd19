//! What runs cost: `usage` on runs, stories and chapters against a fake
//! OpenAI-compatible server that reports its own token counts, cost from the
//! price flags, the Prometheus totals, and `prompt_truncated` when the
//! server read far less of the prompt than was sent.

use std::time::Duration;

use serde_json::{Value, json};

use crate::util::fake_llm::{FakeLlm, SentUsage, UsageReport};
use crate::util::{Api, Server, outline, story_with_run};

const WAIT: Duration = Duration::from_secs(30);

fn two_chapters() -> Value {
    json!({
        "title": "The Salt Road",
        "premise": "A courier crosses a drowned country.",
        "outline": outline(2),
    })
}

fn sums(sent: &[SentUsage]) -> (u64, u64) {
    (
        sent.iter().map(|u| u.prompt_tokens).sum(),
        sent.iter().map(|u| u.completion_tokens).sum(),
    )
}

fn tokens(usage: &Value) -> (u64, u64) {
    (
        usage["prompt_tokens"].as_u64().unwrap(),
        usage["completion_tokens"].as_u64().unwrap(),
    )
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

/// Prometheus sample `name`'s value.
fn sample(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
}

#[test]
fn run_story_and_chapter_totals_are_the_sums_of_the_calls_and_cost_is_tokens_times_prices() {
    let llm = FakeLlm::start(Vec::new());
    let server = Server::start(&llm.args(&[
        "--price-input-per-mtok",
        "3",
        "--price-output-per-mtok",
        "15",
    ]));
    let (story_id, run_id) = story_with_run(&server, two_chapters(), None);
    let run = server.wait_for_run(&run_id, "completed", WAIT);

    let sent = llm.usage_sent();
    let seen = llm.seen();
    // One worker, an outline given: chapter 1, its summary, chapter 2, its summary.
    assert_eq!(sent.len(), 4, "{sent:?}");
    let summaries: Vec<bool> = seen.iter().map(|s| s.is_summary()).collect();
    assert_eq!(summaries, [false, true, false, true]);
    let (prompt, completion) = sums(&sent);
    assert!(prompt > 100 && completion > 0, "{sent:?}");
    let cost = |(p, c): (u64, u64)| (p as f64 * 3.0 + c as f64 * 15.0) / 1e6;

    let usage = &run["usage"];
    assert_eq!(usage["calls"], 4, "{run}");
    assert_eq!(tokens(usage), (prompt, completion), "{run}");
    assert!(
        close(usage["cost"].as_f64().unwrap(), cost((prompt, completion))),
        "{usage}"
    );

    let story = server.get(&format!("/api/stories/{story_id}")).json();
    assert_eq!(story["usage"], *usage, "{story}");

    for (number, calls) in [(1, &sent[..2]), (2, &sent[2..])] {
        let chapter = server
            .get(&format!("/api/stories/{story_id}/chapters/{number}"))
            .json();
        let chapter_usage = &chapter["usage"];
        assert_eq!(chapter_usage["calls"], 2, "{chapter}");
        assert_eq!(tokens(chapter_usage), sums(calls), "chapter {number}");
        assert!(close(
            chapter_usage["cost"].as_f64().unwrap(),
            cost(sums(calls))
        ));
    }

    let listed = server.get(&format!("/api/stories/{story_id}/runs")).json();
    assert_eq!(listed["runs"][0]["usage"], *usage, "{listed}");
    let metrics = server.get("/metrics").text();
    assert_eq!(sample(&metrics, "storyflow_generator_calls_total"), 4.0);
    assert_eq!(
        sample(&metrics, "storyflow_tokens_prompt_total"),
        prompt as f64
    );
    assert_eq!(
        sample(&metrics, "storyflow_tokens_completion_total"),
        completion as f64
    );
    let events = server.get(&format!("/api/runs/{run_id}/events")).json();
    assert!(
        !events.to_string().contains("prompt_truncated"),
        "a server that read the whole prompt: {events}"
    );
}

#[test]
fn a_server_that_reads_30_percent_of_the_prompt_gives_prompt_truncated_with_the_fix() {
    let llm = FakeLlm::start(Vec::new());
    llm.report_usage(UsageReport::PromptShare(0.3));
    let server = Server::start(&llm.args(&[]));
    let (_, run_id) = story_with_run(&server, two_chapters(), None);
    let run = server.wait_for_run(&run_id, "completed", WAIT);
    assert_eq!(run["usage"]["cost"], Value::Null, "no prices, no cost");
    let (prompt, _) = sums(&llm.usage_sent());
    assert_eq!(
        tokens(&run["usage"]).0,
        prompt,
        "the server's figures count"
    );

    let truncated = server.event_messages(&run_id, "prompt_truncated");
    assert_eq!(truncated.len(), 1, "{truncated:?}");
    let message = &truncated[0];
    assert!(message.contains("chapter 1"), "{message}");
    assert!(
        message.contains(r#"--llm-extra-body '{"options": {"num_ctx": 16384}}'"#),
        "{message}"
    );
    assert!(message.contains("Modelfile"), "{message}");

    // `diagnose --run` reports it with the fix.
    let out = crate::util::cli(&server.db, &["diagnose", "--run", &run_id, "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let finding = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "PROMPT_TRUNCATED")
        .unwrap_or_else(|| panic!("no PROMPT_TRUNCATED finding: {report}"));
    assert_eq!(finding["severity"], "warning");
    assert_eq!(out.status.code(), Some(1), "a problem was found");
    assert!(
        report["recommendations"].to_string().contains("num_ctx"),
        "{report}"
    );
}

#[test]
fn extra_body_fields_reach_every_request() {
    let llm = FakeLlm::start(Vec::new());
    let server = Server::start(&llm.args(&[
        "--llm-extra-body",
        r#"{"options": {"num_ctx": 16384}, "keep_alive": "5m"}"#,
    ]));
    let (_, run_id) = story_with_run(&server, two_chapters(), None);
    server.wait_for_run(&run_id, "completed", WAIT);
    let seen = llm.seen();
    assert!(seen.len() >= 4, "chapters and summaries: {}", seen.len());
    for (index, request) in seen.iter().enumerate() {
        assert_eq!(
            request.body["options"]["num_ctx"], 16384,
            "{}",
            request.body
        );
        assert_eq!(request.body["keep_alive"], "5m");
        // The first asks for a stream; answered whole, the rest do not.
        assert_eq!(request.body["stream"], index == 0);
    }
}

#[test]
fn a_server_without_usage_is_counted_by_estimate() {
    let llm = FakeLlm::start(Vec::new());
    llm.report_usage(UsageReport::Absent);
    let server = Server::start(&llm.args(&["--price-output-per-mtok", "10"]));
    let (_, run_id) = story_with_run(&server, two_chapters(), None);
    let run = server.wait_for_run(&run_id, "completed", WAIT);
    let usage = &run["usage"];
    assert_eq!(usage["calls"], 4);
    // Estimates: 3.5 characters per token of the prompts sent.
    let sent_chars: usize = llm.seen().iter().map(|s| s.prompt_chars()).sum();
    let (prompt, completion) = tokens(usage);
    let estimate = (sent_chars as f64 / 3.5) as u64;
    assert!(prompt.abs_diff(estimate) <= 8, "{prompt} vs {estimate}");
    assert!(completion > 0);
    assert!(close(
        usage["cost"].as_f64().unwrap(),
        completion as f64 * 10.0 / 1e6
    ));
    let events = server.get(&format!("/api/runs/{run_id}/events")).json();
    assert!(!events.to_string().contains("prompt_truncated"), "{events}");
}
