//! The run view in headless Chromium while a chapter is streamed: its text
//! grows on the page before the chapter is saved, marked "writing…", then
//! "saved"; and a prompt the model server cut is shown at the top of the
//! run with the fix. Same browser helpers and rules as [`crate::browser`].

use std::time::Duration;

use serde_json::json;

use crate::browser::{Browser, assert_quiet_console, assert_quiet_console_except};
use crate::util::fake_llm::{FakeLlm, Reply, Seen, StreamReply, UsageReport, default_reply};
use crate::util::{Api, Server, outline, story_with_run};

fn one_chapter_story() -> serde_json::Value {
    json!({"title": "The Salt Road", "premise": "A courier crosses a drowned country.", "outline": outline(1)})
}

/// The live text shown while the chapter is still being written.
fn writing_text(browser: &Browser) -> Option<String> {
    browser
        .text(".live-card[data-state='writing'] .live-text")
        .filter(|text| !text.is_empty())
}

/// A fake server that streams every chapter as 60 words (`{word}1 `,
/// `{word}2 `, …) 150 ms apart, and answers the rest at once.
fn streaming_chapters(word: &'static str) -> FakeLlm {
    let chunks: Vec<String> = (1..=60).map(|n| format!("{word}{n} ")).collect();
    let llm = FakeLlm::with_responder(Vec::new(), move |seen: &Seen, number| {
        if seen.is_summary() || seen.is_outline() {
            default_reply(seen, number)
        } else {
            Reply::Stream(StreamReply::new(chunks.clone(), Duration::from_millis(150)))
        }
    });
    llm.stream_when_asked(Duration::ZERO);
    llm
}

#[test]
fn browser_live_the_run_view_shows_text_growing_before_the_chapter_is_saved() {
    let llm = streaming_chapters("wave");
    let server = Server::start(&llm.args(&[]));
    let (story, run) = story_with_run(&server, one_chapter_story(), None);
    let browser = Browser::open(&server);
    browser.goto(&format!("/#run/{run}"));

    let first = browser.wait("live text", writing_text);
    assert!(server.chapters(&story).is_empty(), "saved before shown");
    let later = browser.wait("the live text to grow", |b| {
        writing_text(b).filter(|text| text.len() > first.len() + 20)
    });
    assert!(
        server.chapters(&story).is_empty(),
        "the text grew on the page while the chapter was not saved yet"
    );
    assert!(
        later.starts_with(first.trim_end()),
        "{first:?} then {later:?}"
    );
    browser.wait_text(".live-card .live-state", "writing");

    browser.wait_text(".live-card[data-state='saved'] .live-state", "saved");
    server.wait_for_run(&run, "completed", Duration::from_secs(30));
    let saved = server.chapters(&story)[0]["content"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let shown = browser.text(".live-card .live-text").unwrap_or_default();
    assert_eq!(shown.trim(), saved);
    assert_quiet_console(&browser);
}

#[test]
fn browser_live_a_cut_prompt_is_shown_at_the_top_of_the_run_with_the_fix() {
    let llm = FakeLlm::start(Vec::new());
    llm.report_usage(UsageReport::PromptShare(0.3));
    let server = Server::start(&llm.args(&[]));
    let (_, run) = story_with_run(&server, one_chapter_story(), None);
    server.wait_for_run(&run, "completed", Duration::from_secs(30));
    let browser = Browser::open(&server);
    browser.goto(&format!("/#run/{run}"));
    browser.wait_text(".run-warning", "cut the prompt");
    let fix = browser.text(".run-warning code.fix").unwrap_or_default();
    assert_eq!(fix, r#"--llm-extra-body '{"options":{"num_ctx":16384}}'"#);
    assert_quiet_console(&browser);
}

#[test]
fn browser_live_text_is_shown_on_a_server_with_a_token() {
    const TOKEN: &str = "live-s3cret";
    let llm = streaming_chapters("swell");
    let server = Server::start(&llm.args(&["--token", TOKEN]));
    let with_token = |method: &str, path: &str, body: &serde_json::Value| {
        let resp = server.raw(
            method,
            path,
            &[
                ("Host".into(), server.addr.to_string()),
                ("Content-Type".into(), "application/json".into()),
                ("Authorization".into(), format!("Bearer {TOKEN}")),
            ],
            body.to_string().as_bytes(),
        );
        assert!(resp.status < 300, "{method} {path}: {}", resp.text());
        resp.json()["id"].as_str().unwrap_or_default().to_string()
    };
    let story = with_token("POST", "/api/stories", &one_chapter_story());
    let run = with_token("POST", &format!("/api/stories/{story}/runs"), &json!({}));
    let browser = Browser::open(&server);
    browser.goto(&format!("/#run/{run}"));
    browser.wait_visible("#token-dialog");
    browser.type_into("#token-input", TOKEN);
    browser.click("#token-submit");
    // EventSource cannot send the token: text shown here came through the
    // page's own authorised stream.
    let shown = browser.wait("live text behind a token", writing_text);
    assert!(shown.contains("swell1"), "{shown:?}");
    // The refusals before the token was given are the only console errors.
    assert_quiet_console_except(&browser, &["401"]);
}
