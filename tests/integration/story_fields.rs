//! The story fields a writer sets for the whole book (author, language,
//! point of view, tense, style, words per chapter): they round-trip through
//! the API, reach the prompt the model server receives, follow a PATCH into
//! the next run, and the EPUB carries the author and the language.

use std::io::Read;
use std::time::Duration;

use serde_json::{Value, json};

use crate::util::fake_llm::{FakeLlm, Seen};
use crate::util::{Api, Server, create_story, id_of, outline};

const WAIT: Duration = Duration::from_secs(60);

/// The whole request (system and user messages) of each chapter prompt.
fn chapter_requests(seen: &[Seen]) -> Vec<String> {
    seen.iter()
        .filter(|s| !s.is_summary() && !s.is_outline() && !s.is_continuation())
        .map(|s| s.body["messages"].to_string())
        .collect()
}

fn fields(story: &Value) -> Value {
    json!({
        "author": story["author"],
        "language": story["language"],
        "pov": story["pov"],
        "tense": story["tense"],
        "style": story["style"],
        "target_words": story["target_words"],
    })
}

#[test]
fn story_fields_round_trip_and_reach_the_chapter_prompt() {
    let llm = FakeLlm::start(Vec::new());
    let server = Server::start(&llm.args(&["--workers", "1"]));
    let plain = create_story(&server, json!({"title": "Plain"}));
    assert_eq!(
        fields(&plain),
        json!({"author": "", "language": "English", "pov": "", "tense": "",
               "style": "", "target_words": 1500})
    );
    let wanted = json!({"author": "Ana Lys", "language": "French", "pov": "first person",
                        "tense": "past", "style": "terse", "target_words": 900});
    let mut body = wanted.clone();
    body["title"] = json!("Marée basse");
    body["outline"] = json!(outline(2));
    let created = create_story(&server, body);
    assert_eq!(fields(&created), wanted);
    let story_id = id_of(&created);
    let path = format!("/api/stories/{story_id}");
    assert_eq!(fields(&server.get(&path).json()), wanted);

    let run = server.start_run(&story_id, Some(&json!({"until_chapter": 1})));
    server.wait_for_run(&id_of(&run), "completed", WAIT);
    let first = chapter_requests(&llm.seen());
    assert_eq!(first.len(), 1, "{first:?}");
    for word in ["French", "first person", "past", "terse", "900"] {
        assert!(
            first[0].contains(word),
            "chapter 1 request lacks {word}: {}",
            first[0]
        );
    }

    let patched = server.patch(
        &path,
        &json!({"pov": "third person", "tense": "present", "style": "lush and slow",
                "target_words": 2500, "language": "German"}),
    );
    assert_eq!(patched.status, 200, "{}", patched.text());
    let changed = json!({"author": "Ana Lys", "language": "German", "pov": "third person",
                         "tense": "present", "style": "lush and slow", "target_words": 2500});
    assert_eq!(fields(&patched.json()), changed);
    assert_eq!(fields(&server.get(&path).json()), changed);

    let run = server.start_run(&story_id, None);
    server.wait_for_run(&id_of(&run), "completed", WAIT);
    let all = chapter_requests(&llm.seen());
    assert_eq!(all.len(), 2, "{all:?}");
    for word in ["German", "third person", "present", "lush and slow", "2500"] {
        assert!(
            all[1].contains(word),
            "chapter 2 request lacks {word}: {}",
            all[1]
        );
    }
    for word in ["French", "first person", "terse", " 900 "] {
        assert!(
            !all[1].contains(word),
            "chapter 2 request still has {word}: {}",
            all[1]
        );
    }
}

#[test]
fn bad_story_fields_are_refused_naming_the_field() {
    let server = Server::start(&[]);
    for (body, field) in [
        (json!({"title": "t", "target_words": 50}), "target_words"),
        (json!({"title": "t", "language": " "}), "language"),
        (json!({"title": "t", "style": "s".repeat(4001)}), "style"),
    ] {
        let resp = server.post("/api/stories", &body);
        assert_eq!(resp.error_code(), "VALIDATION_FAILED", "{}", resp.text());
        assert_eq!(resp.json()["error"]["details"]["field"], field);
    }
    let story_id = id_of(&create_story(&server, json!({"title": "t"})));
    let resp = server.patch(
        &format!("/api/stories/{story_id}"),
        &json!({"target_words": 20001}),
    );
    assert_eq!(resp.error_code(), "VALIDATION_FAILED", "{}", resp.text());
    assert_eq!(resp.json()["error"]["details"]["field"], "target_words");
}

#[test]
fn the_epub_names_the_author_and_the_language() {
    let server = Server::start(&[]);
    let created = create_story(
        &server,
        json!({"title": "Marée", "author": "Ana <Lys>", "language": "French",
               "outline": outline(2)}),
    );
    let story_id = id_of(&created);
    let run = server.start_run(&story_id, None);
    server.wait_for_run(&id_of(&run), "completed", WAIT);
    let resp = server.get(&format!("/api/stories/{story_id}/export?format=epub"));
    assert_eq!(resp.status, 200, "{}", resp.text());
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(resp.body.clone())).unwrap();
    let opf_name = zip
        .file_names()
        .find(|name| name.ends_with(".opf"))
        .unwrap()
        .to_string();
    let mut opf = String::new();
    zip.by_name(&opf_name)
        .unwrap()
        .read_to_string(&mut opf)
        .unwrap();
    assert!(opf.contains(">Ana &lt;Lys&gt;</dc:creator>"), "{opf}");
    assert!(opf.contains(">fr</dc:language>"), "{opf}");

    let markdown = server
        .get(&format!("/api/stories/{story_id}/export?format=markdown"))
        .text();
    assert!(
        markdown.starts_with("# Marée\n\nby Ana <Lys>\n\n"),
        "{markdown}"
    );
}
