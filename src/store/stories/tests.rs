//! Tests of stories, their fields and their chapters in the store.

use super::*;
use crate::store::testing::temp_store;

fn new_story(title: &str) -> NewStory {
    NewStory {
        title: title.into(),
        ..Default::default()
    }
}

#[test]
fn create_read_update_delete() {
    let (store, _dir) = temp_store();
    let story = store.create_story(&new_story("  The Storm ")).unwrap();
    assert_eq!(story.title, "The Storm");
    assert_eq!(store.story(&story.id).unwrap(), story);
    let patch = StoryPatch {
        premise: Some("a sea".into()),
        chapter_count: Some(Some(3)),
        ..Default::default()
    };
    let updated = store.update_story(&story.id, &patch).unwrap();
    assert_eq!(
        (updated.premise.as_str(), updated.chapter_count),
        ("a sea", Some(3))
    );
    let cleared = store
        .update_story(
            &story.id,
            &StoryPatch {
                chapter_count: Some(None),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(cleared.chapter_count, None);
    store.trash_story(&story.id).unwrap();
    assert!(matches!(
        store.story(&story.id),
        Err(Error::StoryNotFound(_))
    ));
    assert!(matches!(
        store.trash_story(&story.id),
        Err(Error::StoryNotFound(_))
    ));
}

#[test]
fn validation_names_the_field_and_the_limit() {
    let (store, _dir) = temp_store();
    let err = store.create_story(&new_story("   ")).unwrap_err();
    assert!(matches!(&err, Error::Validation { field, .. } if field == "title"));
    let err = store
        .create_story(&new_story(&"x".repeat(MAX_TITLE_CHARS + 1)))
        .unwrap_err();
    assert!(err.to_string().contains("the limit is 500"), "{err}");
    let err = store
        .create_story(&NewStory {
            chapter_count: Some(0),
            ..new_story("t")
        })
        .unwrap_err();
    assert!(matches!(&err, Error::Validation { field, .. } if field == "chapter_count"));
}

#[test]
fn a_patch_clears_the_count_with_null_but_no_text_field() {
    let patch: StoryPatch = serde_json::from_str(r#"{"chapter_count": null}"#).unwrap();
    assert_eq!(patch.chapter_count, Some(None));
    assert_eq!(patch.title, None);
    let patch: StoryPatch = serde_json::from_str(r#"{"premise": "p"}"#).unwrap();
    assert_eq!(
        (patch.premise.as_deref(), patch.chapter_count),
        (Some("p"), None)
    );
    for field in ["title", "premise", "outline"] {
        let body = format!(r#"{{"{field}": null}}"#);
        assert!(serde_json::from_str::<StoryPatch>(&body).is_err(), "{body}");
    }
}

#[test]
fn prompt_fields_default_round_trip_and_patch() {
    let (store, _dir) = temp_store();
    let plain = store.create_story(&new_story("Plain")).unwrap();
    assert_eq!(
        (
            plain.language.as_str(),
            plain.target_words,
            plain.author.as_str()
        ),
        ("English", 1500, "")
    );
    // A body that names none of the fields gets the same defaults.
    let parsed: NewStory = serde_json::from_str(r#"{"title": "Parsed"}"#).unwrap();
    assert_eq!(
        (parsed.language.as_str(), parsed.target_words),
        ("English", 1500)
    );
    let story = store
        .create_story(&NewStory {
            author: " Ana Lys ".into(),
            language: "French".into(),
            pov: "first person".into(),
            tense: "past".into(),
            style: "terse".into(),
            target_words: 900,
            ..new_story("Marée")
        })
        .unwrap();
    assert_eq!(story.author, "Ana Lys");
    assert_eq!(store.story(&story.id).unwrap(), story);
    let patch: StoryPatch =
        serde_json::from_str(r#"{"pov": "third person", "target_words": 2000, "style": ""}"#)
            .unwrap();
    let patched = store.update_story(&story.id, &patch).unwrap();
    assert_eq!(
        (
            patched.pov.as_str(),
            patched.target_words,
            patched.style.as_str(),
            patched.language.as_str(),
            patched.tense.as_str()
        ),
        ("third person", 2000, "", "French", "past")
    );
    assert_eq!(store.story(&story.id).unwrap(), patched);
    for field in [
        "author",
        "language",
        "pov",
        "tense",
        "style",
        "target_words",
    ] {
        let body = format!(r#"{{"{field}": null}}"#);
        assert!(serde_json::from_str::<StoryPatch>(&body).is_err(), "{body}");
    }
}

#[test]
fn prompt_field_errors_name_the_field() {
    let (store, _dir) = temp_store();
    let field_of = |err: Error| match err {
        Error::Validation { field, .. } => field,
        other => panic!("not a validation error: {other}"),
    };
    let cases = [
        NewStory {
            target_words: 99,
            ..new_story("t")
        },
        NewStory {
            target_words: 20_001,
            ..new_story("t")
        },
        NewStory {
            language: "  ".into(),
            ..new_story("t")
        },
        NewStory {
            author: "a".repeat(MAX_AUTHOR_CHARS + 1),
            ..new_story("t")
        },
        NewStory {
            style: "s".repeat(MAX_STYLE_CHARS + 1),
            ..new_story("t")
        },
    ];
    let fields: Vec<String> = cases
        .iter()
        .map(|new| field_of(store.create_story(new).unwrap_err()))
        .collect();
    assert_eq!(
        fields,
        [
            "target_words",
            "target_words",
            "language",
            "author",
            "style"
        ]
    );
    let story = store.create_story(&new_story("t")).unwrap();
    let err = store
        .update_story(
            &story.id,
            &StoryPatch {
                pov: Some("p".repeat(MAX_POV_CHARS + 1)),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!(field_of(err), "pov");
    let err = store
        .update_story(
            &story.id,
            &StoryPatch {
                target_words: Some(50),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains("between 100 and 20000"), "{err}");
    // The database holds the same rule for rows written around the store.
    let raw = store.write_one(|conn| {
        Ok(conn.execute(
            "UPDATE stories SET target_words = 5 WHERE id = ?1",
            [&story.id],
        )?)
    });
    assert!(raw.is_err(), "{raw:?}");
}

#[test]
fn stories_created_in_the_same_millisecond_list_newest_first() {
    let (store, _dir) = temp_store();
    let clock = std::sync::Arc::new(crate::clock::ManualClock::new(
        std::time::SystemTime::UNIX_EPOCH,
    ));
    let store = store.with_clock(clock);
    let ids: Vec<StoryId> = (0..20)
        .map(|i| store.create_story(&new_story(&format!("s{i}"))).unwrap().id)
        .collect();
    let listed: Vec<StoryId> = store
        .list_stories(100, 0)
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(listed, ids.into_iter().rev().collect::<Vec<_>>());
}

#[test]
fn generated_outline_never_overwrites_the_writers() {
    let (store, _dir) = temp_store();
    let story = store
        .create_story(&NewStory {
            outline: "1. Mine".into(),
            ..new_story("t")
        })
        .unwrap();
    assert!(
        !store
            .set_generated_outline(&story.id, "1. Generated")
            .unwrap()
    );
    assert_eq!(store.story(&story.id).unwrap().outline, "1. Mine");
}
