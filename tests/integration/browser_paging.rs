//! The stories list is paged in the browser: a first page of 50, "Show more
//! stories" for the next, and a run of a story beyond the loaded pages still
//! shows that story's title (fetched on its own).

use serde_json::json;

use crate::browser::{Browser, assert_quiet_console, story_card};
use crate::util::{Api, Server, create_story, id_of, outline};

#[test]
fn the_list_shows_a_page_of_stories_and_more_on_request() {
    let server = Server::start(&["--builtin-delay-ms", "0"]);
    let ids: Vec<String> = (1..=55)
        .map(|i| {
            id_of(&create_story(
                &server,
                json!({"title": format!("Paged story {i}"), "outline": outline(2)}),
            ))
        })
        .collect();
    // The oldest story is the last of the list, beyond its first page.
    let run = server.post(&format!("/api/stories/{}/runs", ids[0]), &json!({}));
    assert_eq!(run.status, 202, "{}", run.text());
    let run_id = id_of(&run.json());

    let browser = Browser::open(&server);
    browser.goto("/");
    browser.wait_text(
        &format!("{} .story-title", story_card(&ids[54])),
        "Paged story 55",
    );
    let cards = "return document.querySelectorAll('#story-list .story').length;";
    assert_eq!(browser.js(cards, json!([])), 50);
    assert_eq!(browser.text("#stories-count").as_deref(), Some("50+"));
    assert!(!browser.exists(&story_card(&ids[0])));
    // The run of the story off the page still names it.
    browser.wait_text(
        &format!("#run-list [data-run-id=\"{run_id}\"] .run-title"),
        "Paged story 1",
    );

    browser.click("#btn-more-stories");
    browser.wait_text(
        &format!("{} .story-title", story_card(&ids[0])),
        "Paged story 1",
    );
    assert_eq!(browser.js(cards, json!([])), 55);
    assert_eq!(browser.text("#stories-count").as_deref(), Some("55"));
    assert!(!browser.visible("#btn-more-stories"));
    assert_quiet_console(&browser);
}
