//! The shortest path through storyflow: serve, create, generate, export.

use std::time::Duration;

use crate::util::{Api, Server, create_story, id_of, outline};
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
    let id = &id_of(&story);
    let run = server.start_run(id, None);
    let run = server.wait_for_run(&id_of(&run), "completed", Duration::from_secs(30));
    assert_eq!(run["progress"], 100);
    assert_eq!(run["chapters_done"], 12);
    assert_eq!(server.chapter_numbers(id), (1..=12).collect::<Vec<u64>>());
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
