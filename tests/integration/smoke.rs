//! The shortest path through storyflow: serve, create, generate, export.

use std::time::Duration;

use crate::util::{Server, create_story, outline};
use serde_json::json;

#[test]
fn a_twelve_chapter_outline_is_written_end_to_end_by_builtin() {
    let server = Server::start(&[]);
    let story = create_story(
        &server,
        json!({"title": "The Salt Road", "premise": "A courier crosses a drowned country.", "outline": outline(12)}),
    );
    assert_eq!(story["chapter_count"], 12);
    assert_eq!(story["chapter_count_source"], "outline");
    let id = story["id"].as_str().unwrap();
    let run = server.post_empty(&format!("/api/stories/{id}/runs"));
    assert_eq!(run.status, 202, "{}", run.text());
    let run = server.wait_for_run(
        run.json()["id"].as_str().unwrap(),
        "completed",
        Duration::from_secs(30),
    );
    assert_eq!(run["progress"], 100);
    assert_eq!(run["chapters_done"], 12);
    let chapters = server.get(&format!("/api/stories/{id}/chapters")).json();
    let numbers: Vec<u64> = chapters["chapters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, (1..=12).collect::<Vec<u64>>());
    let export = server.get(&format!("/api/stories/{id}/export"));
    assert!(
        export
            .header("content-type")
            .unwrap()
            .starts_with("text/markdown")
    );
    for i in 1..=12 {
        assert!(
            export.text().contains(&format!("## Chapter {i}: Beat {i}")),
            "chapter {i} missing from export"
        );
    }
    assert!(
        server
            .log_text()
            .contains("Story context loaded successfully")
    );
}
