//! Only whole pieces are saved, against a fake OpenAI-compatible server: a
//! generated outline cut by the length limit or naming too few chapters is
//! completed, a cut summary is continued, and a chapter shorter than
//! `--min-chapter-words` is continued whatever the generator says.

use std::time::Duration;

use serde_json::{Value, json};

use crate::util::fake_llm::{FakeLlm, Reply, Seen};
use crate::util::{Api, Server, create_story, id_of};

const WAIT: Duration = Duration::from_secs(60);

fn story(server: &Server, body: Value) -> (String, Value) {
    let story_id = id_of(&create_story(server, body));
    let run = server.start_run(&story_id, None);
    let done = server.wait_for_run(&id_of(&run), "completed", WAIT);
    (story_id, done)
}

fn saved_outline(server: &Server, story_id: &str) -> String {
    server.get(&format!("/api/stories/{story_id}")).json()["outline"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn titles(server: &Server, story_id: &str) -> Vec<String> {
    server
        .chapters(story_id)
        .iter()
        .map(|c| c["title"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Answers an outline request: the first one cut mid-title after `first`,
/// later ones (the follow-ups) with chapters 2 and 3.
fn outline_answer(seen: &Seen, first: &str, cut: bool) -> Reply {
    if seen.user_prompt().contains("## Chapter 1") {
        // A follow-up: it shows what was kept and asks for the rest.
        Reply::Text("## Chapter 2: High Water\n## Chapter 3: The Far Shore".into())
    } else if cut {
        Reply::Finish(format!("{first}\n## Chapter 2: High"), "length")
    } else {
        Reply::Text(first.to_string())
    }
}

fn text_answer(seen: &Seen, number: usize) -> Reply {
    if seen.is_summary() {
        Reply::Text(format!("Summary {number}."))
    } else {
        Reply::Text(format!("Fog over the marsh, reply {number}."))
    }
}

#[test]
fn a_generated_outline_cut_by_the_length_limit_is_completed_never_saved_cut() {
    let llm = FakeLlm::with_responder(Vec::new(), |seen, number| {
        if seen.is_outline() {
            outline_answer(seen, "## Chapter 1: Low Tide", true)
        } else {
            text_answer(seen, number)
        }
    });
    let server = Server::start(&llm.args(&[]));
    let (story_id, run) = story(
        &server,
        json!({"title": "The Salt Road", "premise": "A courier.", "chapter_count": 3}),
    );
    assert_eq!(run["chapters_done"], 3);
    let outline = saved_outline(&server, &story_id);
    assert!(!outline.contains("## Chapter 2: High\n"), "{outline}");
    assert!(!outline.trim_end().ends_with("High"), "{outline}");
    assert_eq!(
        titles(&server, &story_id),
        ["Low Tide", "High Water", "The Far Shore"]
    );
}

#[test]
fn a_one_chapter_outline_for_a_three_chapter_story_is_completed() {
    let llm = FakeLlm::with_responder(Vec::new(), |seen, number| {
        if seen.is_outline() {
            outline_answer(seen, "## Chapter 1: Low Tide", false)
        } else {
            text_answer(seen, number)
        }
    });
    let server = Server::start(&llm.args(&[]));
    let (story_id, _) = story(
        &server,
        json!({"title": "The Salt Road", "premise": "A courier.", "chapter_count": 3}),
    );
    assert_eq!(
        titles(&server, &story_id),
        ["Low Tide", "High Water", "The Far Shore"]
    );
    let outlines = llm.seen().iter().filter(|s| s.is_outline()).count();
    assert!(outlines >= 2, "the short outline was completed: {outlines}");
}

#[test]
fn a_summary_cut_by_the_length_limit_is_continued_before_it_is_saved() {
    let llm = FakeLlm::with_responder(Vec::new(), |seen, number| {
        if seen.is_summary() && !seen.user_prompt().contains("The courier crossed the") {
            Reply::Finish("The courier crossed the".into(), "length")
        } else if seen.is_summary() {
            Reply::Text("flooded plain and reached the ford.".into())
        } else {
            Reply::Text(format!("Fog over the marsh, reply {number}."))
        }
    });
    let server = Server::start(&llm.args(&[]));
    let (story_id, _) = story(
        &server,
        json!({"title": "The Salt Road", "outline": "## Chapter 1: Low Tide"}),
    );
    let summary = server.chapters(&story_id)[0]["summary"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        summary,
        "The courier crossed the flooded plain and reached the ford."
    );
}

#[test]
fn an_openai_chapter_under_min_chapter_words_is_continued() {
    let llm = FakeLlm::with_responder(Vec::new(), |seen, number| {
        if seen.is_summary() {
            Reply::Text(format!("Summary {number}."))
        } else if seen.is_continuation() {
            Reply::Text(
                "The rest of the crossing, told at length: ".to_string() + &"tide ".repeat(60),
            )
        } else {
            // Four words, sent as a whole answer (`finish_reason: stop`).
            Reply::Text("Fog. Marsh. Waiting. Night.".into())
        }
    });
    let server = Server::start(&llm.args(&["--min-chapter-words", "50"]));
    let (story_id, run) = story(
        &server,
        json!({"title": "The Salt Road", "outline": "## Chapter 1: Low Tide"}),
    );
    let content = server.chapters(&story_id)[0]["content"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        content.starts_with("Fog. Marsh. Waiting. Night."),
        "{content}"
    );
    assert!(content.split_whitespace().count() >= 50, "{content}");
    let kinds = server.event_kinds(&id_of(&run));
    assert!(kinds.iter().any(|k| k == "continued"), "{kinds:?}");
}
