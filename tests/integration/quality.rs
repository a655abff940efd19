//! Quality signals in the chapter JSON: a repetitive chapter shows it, a
//! builtin one passes (how they are stored: `quality_stored`).

use serde_json::{Value, json};

use crate::util::{Api, Server, create_story, id_of, outline};

#[test]
fn a_chapter_of_one_sentence_repeated_shows_it_and_a_builtin_chapter_passes() {
    let server = Server::start(&[]);
    let story = id_of(&create_story(
        &server,
        json!({ "title": "Measured", "outline": outline(2) }),
    ));
    let run = server.start_run(&story, None);
    server.wait_for_run(
        &id_of(&run),
        "completed",
        std::time::Duration::from_secs(60),
    );

    let builtin: Value = server
        .get(&format!("/api/stories/{story}/chapters/1"))
        .json();
    let q = &builtin["quality"];
    assert!(q["length_score"].as_f64().unwrap() >= 50.0, "{q}");
    assert!(q["repetition"].as_f64().unwrap() <= 0.15, "{q}");
    assert_eq!(q["repeated_sentences"], json!([]), "{q}");

    let sentence = "The courier crossed the flooded plain at dawn.";
    let parrot = format!("{sentence} ").repeat(200);
    let resp = server.patch(
        &format!("/api/stories/{story}/chapters/2"),
        &json!({ "content": parrot }),
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    let listed = server.chapters(&story);
    let q = &listed[1]["quality"];
    assert!(q["repetition"].as_f64().unwrap() > 0.9, "{q}");
    assert_eq!(
        q["repeated_sentences"][0]["sentence"],
        sentence.trim_end_matches('.'),
        "{q}"
    );
    assert_eq!(q["repeated_sentences"][0]["count"], 200, "{q}");
}
