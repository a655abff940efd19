//! The `openai` and `command` generators against the real `storyflow serve`:
//! a fake OpenAI-compatible server on 127.0.0.1 scripted per request, and
//! shell one-liners as generator programs.

use crate::util;

use std::path::Path;
use std::time::{Duration, Instant};

use crate::util::fake_llm::{FakeLlm, Reply, status, writing};
use crate::util::{Api, Server, TempDb, outline, story_with_run};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

fn salt_road(chapters: u32) -> Value {
    json!({
        "title": "The Salt Road",
        "premise": "A courier crosses a drowned country.",
        "outline": outline(chapters),
    })
}

fn error_of(run: &Value) -> (String, String) {
    (
        run["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        run["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

#[test]
fn requests_carry_the_model_the_story_and_the_story_so_far() {
    let llm = FakeLlm::start(Vec::new());
    let server = Server::start(&llm.args(&[]));
    let (story_id, run_id) = story_with_run(&server, salt_road(2), None);
    let run = server.wait_for_run(&run_id, "completed", WAIT);
    assert_eq!(run["chapters_done"], 2);

    let seen = writing(&llm.seen());
    assert_eq!(seen.len(), 2, "{seen:?}");
    for request in &seen {
        assert_eq!(
            request.body["max_tokens"], 2048,
            "a quarter of the default 8192-token context"
        );
        assert_eq!(request.path, "/v1/chat/completions");
        assert_eq!(request.authorization, None, "no key was configured");
        assert_eq!(request.body["model"], "test-model");
        assert_eq!(request.body["messages"][0]["role"], "system");
        assert_eq!(request.body["messages"][1]["role"], "user");
        let prompt = request.user_prompt();
        assert!(prompt.contains("The Salt Road"), "{prompt}");
        assert!(
            prompt.contains("A courier crosses a drowned country."),
            "{prompt}"
        );
    }
    assert!(seen[0].user_prompt().contains("Write chapter 1 of 2"));
    let second = seen[1].user_prompt();
    assert!(
        second.contains("Write chapter 2 of 2, titled \"Beat 2\""),
        "{second}"
    );
    assert!(second.contains("The story so far"), "{second}");
    // Chapter 1's summary (request 2) and the end of its text (request 1).
    assert!(
        second.contains("Chapter 1 (Beat 1): Summary 2."),
        "{second}"
    );
    assert!(second.contains("Fog over the marsh, reply 1."), "{second}");

    let saved = server.chapters(&story_id);
    assert_eq!(saved[0]["content"], "Fog over the marsh, reply 1.");
    assert_eq!(saved[0]["summary"], "Summary 2.");
    assert_eq!(saved[1]["content"], "Fog over the marsh, reply 3.");
}

#[test]
fn a_story_without_an_outline_gets_one_from_the_server() {
    let llm = FakeLlm::start(Vec::new());
    let server = Server::start(&llm.args(&[]));
    let (story_id, run_id) = story_with_run(
        &server,
        json!({"title": "The Salt Road", "premise": "A courier crosses a drowned country.", "chapter_count": 2}),
        None,
    );
    server.wait_for_run(&run_id, "completed", WAIT);
    let seen = writing(&llm.seen());
    assert_eq!(seen.len(), 3, "an outline and two chapters: {seen:?}");
    assert!(
        seen[0]
            .user_prompt()
            .contains("outline of exactly 2 chapters")
    );
    let titles: Vec<Value> = server
        .chapters(&story_id)
        .iter()
        .map(|c| c["title"].clone())
        .collect();
    assert_eq!(titles, [json!("Beat 1"), json!("Beat 2")]);
}

#[test]
fn a_server_error_is_retried_and_the_run_completes() {
    let llm = FakeLlm::start(vec![status(
        500,
        r#"{"error":{"message":"cuda out of memory"}}"#,
    )]);
    let server = Server::start(&llm.args(&[]));
    let (story_id, run_id) = story_with_run(&server, salt_road(2), None);
    server.wait_for_run(&run_id, "completed", WAIT);
    assert_eq!(
        writing(&llm.seen()).len(),
        3,
        "one failure, then two chapters"
    );
    assert_eq!(server.chapters(&story_id).len(), 2);
    let retries = server.event_messages(&run_id, "retry");
    assert_eq!(retries.len(), 1, "{retries:?}");
    let note = &retries[0];
    assert!(note.contains("http 500: cuda out of memory"), "{note}");
}

#[test]
fn a_rate_limit_waits_as_long_as_retry_after_says() {
    let llm = FakeLlm::start(vec![Reply::Status(
        429,
        r#"{"error":{"message":"slow down"}}"#.into(),
        vec![("Retry-After", "1")],
    )]);
    let server = Server::start(&llm.args(&[]));
    let (_, run_id) = story_with_run(&server, salt_road(1), None);
    server.wait_for_run(&run_id, "completed", WAIT);
    let seen = writing(&llm.seen());
    assert_eq!(seen.len(), 2);
    // The engine's own backoff would have been about 10 ms.
    let gap = seen[1].at - seen[0].at;
    assert!(gap >= Duration::from_millis(950), "retried after {gap:?}");
}

#[test]
fn unauthorized_fails_the_run_at_once() {
    let llm = FakeLlm::start(vec![status(
        401,
        r#"{"error":{"message":"Invalid API key","type":"invalid_request_error"}}"#,
    )]);
    let server = Server::start(&llm.args(&[]));
    let (_, run_id) = story_with_run(&server, salt_road(2), None);
    let run = server.wait_for_run(&run_id, "failed", WAIT);
    let (code, message) = error_of(&run);
    assert_eq!(code, "GENERATOR_AUTH");
    assert!(message.contains("http 401: Invalid API key"), "{message}");
    assert!(message.contains("STORYFLOW_LLM_API_KEY"), "{message}");
    assert_eq!(llm.seen().len(), 1);
    assert!(!server.events(&run_id).iter().any(|e| e["kind"] == "retry"));
}

#[test]
fn a_hung_server_times_out_and_the_run_fails_once_retries_are_spent() {
    let llm = FakeLlm::start(vec![Reply::Hang, Reply::Hang]);
    let server = Server::start(&llm.args(&["--llm-timeout-s", "1", "--retries", "1"]));
    let started = Instant::now();
    let (_, run_id) = story_with_run(&server, salt_road(1), None);
    let run = server.wait_for_run(&run_id, "failed", WAIT);
    let (code, message) = error_of(&run);
    assert_eq!(code, "GENERATOR_UNAVAILABLE");
    assert!(message.contains("did not answer within 1s"), "{message}");
    assert_eq!(llm.seen().len(), 2, "the first try and one retry");
    assert!(started.elapsed() >= Duration::from_secs(2));
}

#[test]
fn a_garbage_body_fails_the_run_cleanly() {
    let llm = FakeLlm::start(vec![status(200, "<html>502 proxy says hello</html>")]);
    let server = Server::start(&llm.args(&[]));
    let (story_id, run_id) = story_with_run(&server, salt_road(2), None);
    let run = server.wait_for_run(&run_id, "failed", WAIT);
    let (code, message) = error_of(&run);
    assert_eq!(code, "GENERATOR_BAD_RESPONSE");
    assert!(message.contains("not json"), "{message}");
    assert!(message.contains("proxy says hello"), "{message}");
    assert_eq!(llm.seen().len(), 1);
    assert!(server.chapters(&story_id).is_empty());
}

#[test]
fn the_api_key_is_sent_as_a_bearer_token_and_never_shown() {
    let key = "sk-storyflow-test-4242";
    // The server echoes the key back, as some do in their error messages.
    let echo = format!(r#"{{"error":{{"message":"overloaded for key {key}"}}}}"#);
    let llm = FakeLlm::start(vec![status(503, &echo)]);
    let temp = TempDb::new();
    let server = Server::start_with_env(
        &temp.path,
        &llm.args(&[]),
        &[("STORYFLOW_LLM_API_KEY", key)],
    );
    let (_, run_id) = story_with_run(&server, salt_road(1), None);
    server.wait_for_run(&run_id, "completed", WAIT);
    let seen = llm.seen();
    assert_eq!(writing(&seen).len(), 2);
    for request in &seen {
        assert_eq!(
            request.authorization.as_deref(),
            Some("Bearer sk-storyflow-test-4242")
        );
    }
    let timeline = serde_json::to_string(&server.events(&run_id)).unwrap();
    assert!(
        timeline.contains("overloaded for key [redacted]"),
        "{timeline}"
    );
    assert!(!timeline.contains(key), "{timeline}");
    assert!(!server.log_text().contains(key), "the key is in the log");
}

/// A generator script in its own temporary directory.
fn script(dir: &Path, body: &str) -> String {
    let path = dir.join("generate.sh");
    std::fs::write(&path, body).unwrap();
    format!("sh {}", shell_words::quote(&path.to_string_lossy()))
}

#[test]
fn a_shell_one_liner_writes_the_story() {
    let server = Server::start(&[
        "--generator",
        "command",
        "--generator-cmd",
        "sh -c 'cat >/dev/null; echo Chapter text here'",
        "--min-chapter-words",
        "1",
    ]);
    let (story_id, run_id) = story_with_run(&server, salt_road(2), None);
    server.wait_for_run(&run_id, "completed", WAIT);
    let saved = server.chapters(&story_id);
    assert_eq!(saved.len(), 2);
    for chapter in saved {
        assert_eq!(chapter["content"], "Chapter text here");
    }
}

#[test]
fn a_command_that_fails_once_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let command = script(
        dir.path(),
        r#"cat >/dev/null
counter="$(dirname "$0")/calls"
n=$(cat "$counter" 2>/dev/null || echo 0)
echo $((n + 1)) > "$counter"
if [ "$n" -eq 0 ]; then echo "model still loading" >&2; exit 1; fi
echo "Chapter $STORYFLOW_CHAPTER of $STORYFLOW_CHAPTERS, call $((n + 1))."
"#,
    );
    let server = Server::start(&[
        "--generator",
        "command",
        "--generator-cmd",
        &command,
        "--retry-base-ms",
        "10",
        "--min-chapter-words",
        "1",
    ]);
    let (story_id, run_id) = story_with_run(&server, salt_road(2), None);
    server.wait_for_run(&run_id, "completed", WAIT);
    let calls = std::fs::read_to_string(dir.path().join("calls")).unwrap();
    assert_eq!(
        calls.trim(),
        "5",
        "one failure, then two chapters and their summaries"
    );
    let contents: Vec<Value> = server
        .chapters(&story_id)
        .iter()
        .map(|c| c["content"].clone())
        .collect();
    assert_eq!(
        contents,
        [
            json!("Chapter 1 of 2, call 2."),
            json!("Chapter 2 of 2, call 4.")
        ]
    );
    let timeline = serde_json::to_string(&server.events(&run_id)).unwrap();
    assert!(timeline.contains("model still loading"), "{timeline}");
}

#[test]
fn a_command_that_always_fails_ends_unavailable_with_its_stderr() {
    let server = Server::start(&[
        "--generator",
        "command",
        "--generator-cmd",
        "sh -c 'cat >/dev/null; echo loading weights >&2; echo weights file missing >&2; exit 2'",
        "--retries",
        "1",
        "--retry-base-ms",
        "10",
    ]);
    let (_, run_id) = story_with_run(&server, salt_road(2), None);
    let run = server.wait_for_run(&run_id, "failed", WAIT);
    let (code, message) = error_of(&run);
    assert_eq!(code, "GENERATOR_UNAVAILABLE");
    assert!(message.contains("exited with status 2"), "{message}");
    assert!(
        message.contains("loading weights | weights file missing"),
        "{message}"
    );
}

#[test]
fn a_missing_program_fails_the_run_at_once() {
    let server = Server::start(&[
        "--generator",
        "command",
        "--generator-cmd",
        "storyflow-test-no-such-program --model x",
    ]);
    let (_, run_id) = story_with_run(&server, salt_road(2), None);
    let run = server.wait_for_run(&run_id, "failed", WAIT);
    let (code, message) = error_of(&run);
    assert_eq!(code, "GENERATOR_REJECTED");
    assert!(
        message.contains("storyflow-test-no-such-program"),
        "{message}"
    );
    assert!(message.contains("not found"), "{message}");
}

#[test]
fn bad_generator_settings_stop_serve_before_it_starts() {
    let temp = TempDb::new();
    for (args, needle) in [
        (
            vec!["--generator", "openai", "--llm-url", "localhost:11434/v1"],
            "must start with http:// or https://",
        ),
        (
            vec![
                "--generator",
                "command",
                "--generator-cmd",
                "sh -c 'unclosed",
            ],
            "cannot be parsed",
        ),
        (
            vec!["--generator", "command", "--generator-cmd", "  "],
            "is empty",
        ),
    ] {
        let mut full = vec!["serve", "--addr", "127.0.0.1:0"];
        full.extend(args);
        let output = util::cli(&temp.path, &full);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{full:?}: {}",
            util::stderr(&output)
        );
        assert!(
            util::stderr(&output).contains(needle),
            "{}",
            util::stderr(&output)
        );
    }
}
