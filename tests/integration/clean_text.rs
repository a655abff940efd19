//! Only whole, clean text is saved: the real `storyflow serve` against a fake
//! OpenAI-compatible server that answers the way real servers do (reasoning
//! in every form, content filters, errors sent with status 200, content
//! parts, invalid UTF-8, answers with nothing but reasoning). For each case:
//! the run's final status and code, and the saved outline, chapters and
//! summaries byte for byte.

use std::time::Duration;

use crate::util::fake_llm::{FakeLlm, Reply, Seen, completion_with, status, writing};
use crate::util::{Api, Server, outline, story_with_run};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

/// The word every piece of reasoning in these tests contains.
const MUSING: &str = "musing";

/// A piece of clean text as two parts and what joins them, so a case can
/// put reasoning between them.
struct Piece {
    first: String,
    join: &'static str,
    second: String,
}

impl Piece {
    fn clean(&self) -> String {
        format!("{}{}{}", self.first, self.join, self.second)
    }
}

/// What the fake server means to say for a request: an outline, a summary
/// or chapter text, each naming the request's number where it can.
fn piece_for(seen: &Seen, number: usize) -> Piece {
    if seen.is_outline() {
        Piece {
            first: "## Chapter 1: Low Tide".into(),
            join: "\n\n",
            second: "## Chapter 2: High Water".into(),
        }
    } else if seen.is_summary() {
        Piece {
            first: format!("Summary {number}."),
            join: " ",
            second: "It ends at the ford.".into(),
        }
    } else {
        Piece {
            first: format!("Fog over the marsh, reply {number}."),
            join: "\n\n",
            second: "The courier waited — “not yet,” she said.".into(),
        }
    }
}

/// A story of two chapters with no outline, so the server writes it too.
fn start_unoutlined_run(server: &Server) -> (String, String) {
    start_run(
        server,
        json!({"title": "The Salt Road", "premise": "A courier crosses a drowned country.", "chapter_count": 2}),
    )
}

fn start_run(server: &Server, story: Value) -> (String, String) {
    story_with_run(server, story, None)
}

fn saved_outline(server: &Server, story_id: &str) -> String {
    let story = server.get(&format!("/api/stories/{story_id}")).json();
    story["outline"].as_str().unwrap().to_string()
}

fn error_code(run: &Value) -> &str {
    run["error"]["code"].as_str().unwrap_or_default()
}

/// (title, content, summary) of every saved chapter.
fn saved_chapters(server: &Server, story_id: &str) -> Vec<(String, String, String)> {
    server
        .chapters(story_id)
        .iter()
        .map(|c| {
            let text = |field: &str| c[field].as_str().unwrap_or_default().to_string();
            (text("title"), text("content"), text("summary"))
        })
        .collect()
}

/// Nothing of a tag, of reasoning or of a replaced byte in saved text.
fn assert_clean(text: &str) {
    let lower = text.to_lowercase();
    for bad in ["<think", "</think", MUSING, "\u{fffd}"] {
        assert!(!lower.contains(bad), "{bad:?} saved in {text:?}");
    }
}

/// Runs a story without an outline against a server that wraps every clean
/// piece with `wrap`, and checks that exactly the clean pieces were saved.
fn assert_saved_clean(wrap: fn(&Piece) -> String) {
    let llm = FakeLlm::with_responder(Vec::new(), move |seen, number| {
        Reply::Text(wrap(&piece_for(seen, number)))
    });
    let server = Server::start(&llm.args(&[]));
    let (story_id, run_id) = start_unoutlined_run(&server);
    let run = server.wait_for_run(&run_id, "completed", WAIT);
    assert_eq!(run["error"], Value::Null);
    let outline = saved_outline(&server, &story_id);
    assert_eq!(
        outline,
        "## Chapter 1: Low Tide\n\n## Chapter 2: High Water"
    );
    // Requests: 1 outline, 2 chapter 1, 3 its summary, 4 chapter 2, 5 its summary.
    let chapters = saved_chapters(&server, &story_id);
    let expected = |title: &str, reply: usize| {
        (
            title.to_string(),
            format!(
                "Fog over the marsh, reply {reply}.\n\nThe courier waited — “not yet,” she said."
            ),
            format!("Summary {}. It ends at the ford.", reply + 1),
        )
    };
    assert_eq!(
        chapters,
        [expected("Low Tide", 2), expected("High Water", 4)]
    );
    for (_, content, summary) in &chapters {
        assert_clean(content);
        assert_clean(summary);
    }
    assert_clean(&outline);
    assert_eq!(llm.seen().len(), 5, "nothing was asked twice");
}

#[test]
fn clean_answers_are_saved_as_sent() {
    assert_saved_clean(Piece::clean);
}

#[test]
fn an_unclosed_think_makes_the_rest_reasoning() {
    assert_saved_clean(|piece| {
        format!(
            "{}\n<think>Now I am {MUSING} whether the reader will",
            piece.clean()
        )
    });
}

#[test]
fn a_closing_tag_alone_makes_what_precedes_it_reasoning() {
    assert_saved_clean(|piece| {
        format!(
            "The user wants a calm scene; {MUSING} on it.\n</think>\n\n{}",
            piece.clean()
        )
    });
}

#[test]
fn a_capitalised_think_block_is_reasoning() {
    assert_saved_clean(|piece| {
        format!("<Think>{MUSING}: keep it short.</Think>\n{}", piece.clean())
    });
}

#[test]
fn a_thinking_block_is_reasoning() {
    assert_saved_clean(|piece| {
        format!(
            "<thinking>\n{MUSING} on the plan.\n</thinking>\n\n{}",
            piece.clean()
        )
    });
}

#[test]
fn text_before_a_block_is_kept() {
    assert_saved_clean(|piece| {
        format!(
            "{}{}<think>Is that enough? {MUSING}.</think>{}{}",
            piece.first, piece.join, piece.join, piece.second
        )
    });
}

#[test]
fn every_block_is_removed() {
    assert_saved_clean(|piece| {
        format!(
            "<think>first {MUSING}</think>{}{}<THINKING type=\"plan\">second {MUSING}</THINKING>{}{}",
            piece.first, piece.join, piece.join, piece.second
        )
    });
}

#[test]
fn content_given_as_text_parts_is_joined() {
    let llm = FakeLlm::with_responder(Vec::new(), |seen, number| {
        let piece = piece_for(seen, number);
        Reply::Json(completion_with(
            json!({
                "role": "assistant",
                "content": [
                    {"type": "text", "text": format!("{}{}", piece.first, piece.join)},
                    {"type": "text", "text": piece.second},
                ],
                "reasoning_content": format!("{MUSING} at length"),
            }),
            "stop",
        ))
    });
    let server = Server::start(&llm.args(&[]));
    let (story_id, run_id) = start_unoutlined_run(&server);
    server.wait_for_run(&run_id, "completed", WAIT);
    assert_eq!(
        saved_outline(&server, &story_id),
        "## Chapter 1: Low Tide\n\n## Chapter 2: High Water"
    );
    let chapters = saved_chapters(&server, &story_id);
    assert_eq!(chapters.len(), 2);
    assert_eq!(
        chapters[1].1,
        "Fog over the marsh, reply 4.\n\nThe courier waited — “not yet,” she said."
    );
    assert_eq!(chapters[1].2, "Summary 5. It ends at the ford.");
    for (_, content, summary) in &chapters {
        assert_clean(content);
        assert_clean(summary);
    }
}

/// A two-chapter story with an outline whose second chapter gets `reply`;
/// every other request the clean default. Returns the run once it ended
/// `status`, the saved chapters and the requests seen.
fn second_chapter_answered(
    reply: fn() -> Reply,
    status: &str,
) -> (Value, Vec<(String, String, String)>, Vec<Seen>) {
    let llm = FakeLlm::with_responder(Vec::new(), move |seen, number| {
        if !seen.is_summary() && seen.user_prompt().contains("Write chapter 2 of 2") {
            reply()
        } else {
            Reply::Text(piece_for(seen, number).clean())
        }
    });
    let server = Server::start(&llm.args(&[]));
    let (story_id, run_id) = start_run(
        &server,
        json!({"title": "The Salt Road", "premise": "A courier crosses a drowned country.", "outline": outline(2)}),
    );
    let run = server.wait_for_run(&run_id, status, WAIT);
    let chapters = saved_chapters(&server, &story_id);
    for (_, content, summary) in &chapters {
        assert_clean(content);
        assert_clean(summary);
    }
    (run, chapters, llm.seen())
}

/// Chapter 1 as the default server writes it, when it is request 1.
fn first_chapter_as_written() -> (String, String, String) {
    (
        "Beat 1".into(),
        "Fog over the marsh, reply 1.\n\nThe courier waited — “not yet,” she said.".into(),
        "Summary 2. It ends at the ford.".into(),
    )
}

#[test]
fn a_filtered_chapter_fails_the_run_and_saves_nothing_of_it() {
    let (run, chapters, seen) = second_chapter_answered(
        || Reply::Finish("Five harmless words here.".into(), "content_filter"),
        "failed",
    );
    assert_eq!(error_code(&run), "GENERATOR_FILTERED", "{run}");
    assert_eq!(chapters, [first_chapter_as_written()]);
    assert_eq!(
        writing(&seen).len(),
        2,
        "a filtered answer is not asked again"
    );
}

#[test]
fn a_body_that_is_not_utf8_fails_the_run_and_is_never_saved() {
    let (run, chapters, seen) = second_chapter_answered(
        || {
            let mut body =
                br#"{"choices":[{"finish_reason":"stop","message":{"content":"Fog "#.to_vec();
            body.extend_from_slice(b"\xff\xfe over the marsh.\"}}]}");
            Reply::Bytes(body)
        },
        "failed",
    );
    assert_eq!(error_code(&run), "GENERATOR_BAD_RESPONSE", "{run}");
    let message = run["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("UTF-8"), "{message}");
    assert_eq!(chapters, [first_chapter_as_written()]);
    assert_eq!(writing(&seen).len(), 2, "a broken body is not asked again");
}

#[test]
fn an_answer_with_nothing_but_reasoning_is_asked_again_then_fails() {
    let (run, chapters, seen) = second_chapter_answered(
        || {
            Reply::Json(completion_with(
                json!({"content": format!("<think>{MUSING} and {MUSING}"), "reasoning": MUSING}),
                "length",
            ))
        },
        "failed",
    );
    assert_eq!(error_code(&run), "GENERATOR_BAD_RESPONSE", "{run}");
    assert_eq!(chapters, [first_chapter_as_written()]);
    // Chapter 1, then chapter 2 asked the first time and 4 more (--retries).
    assert_eq!(writing(&seen).len(), 1 + 5);
}

#[test]
fn an_answer_empty_after_cleaning_is_asked_again_and_the_run_completes() {
    let llm = FakeLlm::start(vec![Reply::Text(format!("<think>{MUSING}</think>\n\n"))]);
    let server = Server::start(&llm.args(&[]));
    let (story_id, run_id) = start_run(
        &server,
        json!({"title": "The Salt Road", "premise": "A courier crosses a drowned country.", "outline": outline(2)}),
    );
    server.wait_for_run(&run_id, "completed", WAIT);
    let chapters = saved_chapters(&server, &story_id);
    // Request 1 was the empty answer; the default replies name their number.
    assert_eq!(
        chapters,
        [
            (
                "Beat 1".to_string(),
                "Fog over the marsh, reply 2.".to_string(),
                "Summary 3.".to_string()
            ),
            (
                "Beat 2".to_string(),
                "Fog over the marsh, reply 4.".to_string(),
                "Summary 5.".to_string()
            ),
        ]
    );
    let retries = server.event_messages(&run_id, "retry");
    assert_eq!(retries.len(), 1, "{retries:?}");
}

#[test]
fn an_overloaded_error_sent_with_status_200_is_retried() {
    let llm = FakeLlm::start(vec![status(
        200,
        r#"{"error":{"message":"model is overloaded"}}"#,
    )]);
    let server = Server::start(&llm.args(&[]));
    let (story_id, run_id) = start_run(
        &server,
        json!({"title": "The Salt Road", "premise": "A courier crosses a drowned country.", "outline": outline(2)}),
    );
    let run = server.wait_for_run(&run_id, "completed", WAIT);
    assert_eq!(run["error"], Value::Null);
    assert_eq!(
        writing(&llm.seen()).len(),
        3,
        "one failure, then two chapters"
    );
    let chapters = saved_chapters(&server, &story_id);
    assert_eq!(chapters.len(), 2);
    assert_eq!(chapters[0].1, "Fog over the marsh, reply 2.");
    let retries = server.event_messages(&run_id, "retry");
    assert_eq!(retries.len(), 1, "{retries:?}");
    let note = &retries[0];
    assert!(note.contains("model is overloaded"), "{note}");
}

#[test]
fn a_permanent_error_sent_with_status_200_fails_the_run_at_once() {
    let (run, chapters, seen) = second_chapter_answered(
        || status(200, r#"{"error":"model 'test-model' does not exist"}"#),
        "failed",
    );
    assert_eq!(error_code(&run), "GENERATOR_BAD_RESPONSE", "{run}");
    let message = run["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("does not exist"), "{message}");
    assert_eq!(chapters, [first_chapter_as_written()]);
    assert_eq!(writing(&seen).len(), 2, "not asked again");
}
