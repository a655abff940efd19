//! Tests of the prompt templates and of fitting prompts into the budget.

use super::*;
use crate::generator::{ChapterGist, StoryBrief};
use crate::store::StoryId;

fn story(chapters: u32, summary_words: usize) -> StoryContext {
    StoryContext {
        story_id: StoryId::random(),
        title: "The Salt Road".into(),
        premise: "A courier crosses a drowned country.".into(),
        outline: (1..=chapters + 1)
            .map(|n| format!("## Chapter {n}: Beat {n}\n"))
            .collect(),
        previous: (1..=chapters)
            .map(|n| ChapterGist {
                number: n,
                title: format!("Beat {n}"),
                summary: format!("summary{n} ") + &"word ".repeat(summary_words),
            })
            .collect(),
        previous_tail: "the tail of the last chapter ".repeat(200),
        brief: Default::default(),
        bible: Vec::new(),
    }
}

fn builder(context: u32) -> PromptBuilder {
    PromptBuilder::new(Templates::load(None).unwrap(), context)
}

#[test]
fn placeholders_are_checked_with_file_and_line() {
    let err = Template::parse("Title: {title}\nThen {titel} here", "my.txt").unwrap_err();
    assert_eq!((err.origin.as_str(), err.line), ("my.txt", 2));
    assert!(
        err.message.contains("unknown placeholder `{titel}`"),
        "{err}"
    );
    assert!(
        Template::parse("a {title", "x")
            .unwrap_err()
            .message
            .contains("not closed")
    );
    assert!(Template::parse("a } b", "x").is_err());
    let literal = Template::parse("{{json}} {title}", "x").unwrap();
    let vars = Vars {
        title: "T",
        ..Vars::default()
    };
    assert_eq!(literal.render(&vars), "{json} T");
}

#[test]
fn a_short_book_fits_whole() {
    let built = builder(8192)
        .chapter(
            &story(3, 20),
            &ChapterRequest {
                number: 4,
                total: 4,
                title: "Beat 4".into(),
            },
        )
        .unwrap();
    assert!(built.trimmed.is_empty(), "{:?}", built.trimmed);
    for needle in [
        "The Salt Road",
        "drowned country",
        "summary1",
        "summary3",
        "the tail of the last chapter",
        "chapter 4 of 4",
        "Beat 4",
    ] {
        assert!(built.prompt.user.contains(needle), "missing {needle}");
    }
    assert!(built.estimated_tokens <= built.budget);
}

#[test]
fn a_long_book_drops_the_oldest_summaries_and_stays_in_budget() {
    for chapters in [10, 60, 400] {
        let builder = builder(4096);
        let built = builder
            .chapter(
                &story(chapters, 60),
                &ChapterRequest {
                    number: chapters + 1,
                    total: chapters + 1,
                    title: "Next".into(),
                },
            )
            .unwrap();
        let real = estimate_tokens(&built.prompt.system) + estimate_tokens(&built.prompt.user) + 16;
        assert!(
            real <= builder.prompt_budget(),
            "{chapters}: {real} > {}",
            builder.prompt_budget()
        );
        assert!(
            built.prompt.user.contains(&format!("summary{chapters} ")),
            "the newest summary is kept"
        );
        if chapters >= 60 {
            assert!(
                !built.prompt.user.contains("summary1 "),
                "the oldest summary is dropped"
            );
            assert!(
                built
                    .trimmed
                    .iter()
                    .any(|t| t.starts_with("summaries of chapters 1-")),
                "{:?}",
                built.trimmed
            );
        }
    }
}

#[test]
fn a_huge_outline_is_cut_around_the_current_chapter() {
    let mut story = story(2, 10);
    story.outline = (1..=3000)
        .map(|n| format!("## Chapter {n}: Beat {n}\n"))
        .collect();
    let built = builder(2048)
        .chapter(
            &story,
            &ChapterRequest {
                number: 1500,
                total: 3000,
                title: "Beat 1500".into(),
            },
        )
        .unwrap();
    assert!(built.prompt.user.contains("## Chapter 1500: Beat 1500"));
    assert!(!built.prompt.user.contains("## Chapter 3: Beat 3\n"));
    assert!(built.estimated_tokens <= built.budget);
}

#[test]
fn a_prompt_that_cannot_fit_is_a_clear_error() {
    let mut story = story(0, 0);
    story.title = "T".repeat(20_000);
    let err = builder(1024)
        .chapter(
            &story,
            &ChapterRequest {
                number: 1,
                total: 1,
                title: "x".into(),
            },
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            GenError::Permanent {
                code: FailureCode::ContextBudget,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn overrides_replace_templates_and_misspelt_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("chapter.txt"),
        "CUSTOM {chapter_title} {story_so_far}",
    )
    .unwrap();
    let built = PromptBuilder::new(Templates::load(Some(dir.path())).unwrap(), 8192)
        .chapter(
            &story(1, 5),
            &ChapterRequest {
                number: 2,
                total: 2,
                title: "Beat 2".into(),
            },
        )
        .unwrap();
    assert!(
        built.prompt.user.starts_with("CUSTOM Beat 2 - Chapter 1"),
        "{}",
        built.prompt.user
    );
    std::fs::write(dir.path().join("chapter.txt"), "ok\n{chapter_titel}").unwrap();
    let err = Templates::load(Some(dir.path())).unwrap_err();
    assert!(err.to_string().ends_with("chapter.txt:2: unknown placeholder `{chapter_titel}`; known: {title}, {premise}, {outline}, {chapter_number}, {chapter_title}, {chapter_count}, {story_so_far}, {previous_tail}, {text_so_far}, {chapter_text}, {author}, {language}, {pov}, {tense}, {style}, {target_words}, {bible}"), "{err}");
    std::fs::remove_file(dir.path().join("chapter.txt")).unwrap();
    std::fs::write(dir.path().join("chaptr.txt"), "x").unwrap();
    assert!(
        Templates::load(Some(dir.path()))
            .unwrap_err()
            .message
            .contains("not a prompt template name")
    );
}

#[test]
fn the_story_fields_reach_every_default_template() {
    let mut story = story(2, 5);
    story.brief = StoryBrief {
        author: "Ana Lys".into(),
        language: "French".into(),
        pov: "first person".into(),
        tense: "past".into(),
        style: "terse, salt-dry".into(),
        target_words: 900,
    };
    let builder = builder(16_000);
    let chapter = ChapterRequest {
        number: 3,
        total: 3,
        title: "Beat 3".into(),
    };
    let prompts = [
        ("outline", builder.outline(&story, 3).unwrap().prompt),
        ("chapter", builder.chapter(&story, &chapter).unwrap().prompt),
        (
            "continue",
            builder
                .continuation(&story, &chapter, "She ran.")
                .unwrap()
                .prompt,
        ),
        (
            "summary",
            builder
                .summary(&story, &chapter, "She ran.")
                .unwrap()
                .prompt,
        ),
    ];
    for (name, prompt) in &prompts {
        let text = prompt.as_text();
        assert!(text.contains("in French"), "{name}: {text}");
        if *name != "summary" {
            for wanted in ["first person", "past", "terse, salt-dry", "900 words"] {
                assert!(text.contains(wanted), "{name} lacks {wanted}: {text}");
            }
        }
        assert!(!text.contains(UNSET_POV), "{name}: {text}");
    }
}

#[test]
fn empty_fields_leave_the_choice_to_the_model_in_whole_sentences() {
    let story = story(0, 0);
    let chapter = ChapterRequest {
        number: 1,
        total: 2,
        title: "Beat 1".into(),
    };
    let user = builder(16_000)
        .chapter(&story, &chapter)
        .unwrap()
        .prompt
        .user;
    assert!(
        user.contains(&format!("Point of view: {UNSET_POV}.")),
        "{user}"
    );
    assert!(user.contains(&format!("Tense: {UNSET_TENSE}.")), "{user}");
    assert!(
        user.contains(&format!("Voice and tone: {UNSET_STYLE}")),
        "{user}"
    );
    assert!(user.contains("in English"), "{user}");
    assert!(user.contains("about 1500 words"), "{user}");
    assert!(!user.contains(": ."), "an empty field left a hole: {user}");
}

#[test]
fn author_and_the_other_fields_render_in_an_override() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("summary.txt"),
        "{author}|{language}|{pov}|{tense}|{style}|{target_words}|{chapter_text}",
    )
    .unwrap();
    let builder = PromptBuilder::new(Templates::load(Some(dir.path())).unwrap(), 16_000);
    let mut story = story(0, 0);
    let chapter = ChapterRequest {
        number: 1,
        total: 1,
        title: "One".into(),
    };
    let unset = builder.summary(&story, &chapter, "x").unwrap().prompt.user;
    assert_eq!(
        unset,
        format!("{UNSET_AUTHOR}|English|{UNSET_POV}|{UNSET_TENSE}|{UNSET_STYLE}|1500|x")
    );
    story.brief.author = "  Ana Lys ".into();
    story.brief.target_words = 4000;
    let set = builder.summary(&story, &chapter, "x").unwrap().prompt.user;
    assert!(set.starts_with("Ana Lys|English|"), "{set}");
    assert!(set.contains("|4000|"), "{set}");
}

fn entry(
    name: &str,
    aliases: &[&str],
    pinned: bool,
    description: &str,
) -> crate::store::BibleEntry {
    crate::store::BibleEntry {
        id: crate::store::BibleEntryId::random(),
        story_id: StoryId::random(),
        kind: crate::store::BibleKind::Character,
        name: name.into(),
        aliases: aliases.iter().map(|a| a.to_string()).collect(),
        description: description.into(),
        pinned,
        created_at: crate::run::Timestamp::at(std::time::SystemTime::UNIX_EPOCH),
        updated_at: crate::run::Timestamp::at(std::time::SystemTime::UNIX_EPOCH),
    }
}

fn bible_story() -> StoryContext {
    let mut story = story(0, 0);
    story.previous_tail = String::new();
    story.outline =
        "## Chapter 1: Dawn\nThe ferry leaves.\n## Chapter 2: Fog\nThe Captain meets Oren.\n"
            .into();
    story.bible = vec![
        entry("Mara", &["the Captain"], false, "Rows the ferry."),
        entry("Oren", &[], false, "A smuggler."),
        entry("Salt Road", &[], true, "The old causeway."),
        entry("Lena", &[], false, "Never named."),
    ];
    story
}

fn request(number: u32) -> ChapterRequest {
    ChapterRequest {
        number,
        total: 2,
        title: format!("Beat {number}"),
    }
}

#[test]
fn a_chapter_carries_the_pinned_entries_and_those_its_outline_entry_names() {
    let story = bible_story();
    let second = builder(8192).chapter(&story, &request(2)).unwrap();
    assert_eq!(second.bible_used, ["Salt Road", "Mara", "Oren"]);
    assert!(
        second
            .prompt
            .user
            .contains("- Mara (character; also: the Captain): Rows the ferry.")
    );
    assert!(!second.prompt.user.contains("Lena"));
    assert!(
        second
            .describe("chapter 2")
            .contains("bible: Salt Road, Mara, Oren")
    );
    let first = builder(8192).chapter(&story, &request(1)).unwrap();
    assert_eq!(first.bible_used, ["Salt Road"]);
    // The story so far counts: a summary naming Lena brings her in.
    let mut later = bible_story();
    later.previous = vec![ChapterGist {
        number: 1,
        title: "Dawn".into(),
        summary: "Lena watches from the pier.".into(),
    }];
    let built = builder(8192).chapter(&later, &request(2)).unwrap();
    assert_eq!(built.bible_used, ["Salt Road", "Mara", "Oren", "Lena"]);
    // The outline may carry every entry, pinned first.
    let outline = builder(8192).outline(&story, 2).unwrap();
    assert_eq!(outline.bible_used, ["Salt Road", "Mara", "Oren", "Lena"]);
}

#[test]
fn a_large_bible_never_pushes_a_prompt_over_the_budget() {
    let mut story = story(6, 40);
    let names: Vec<String> = (0..40).map(|n| format!("Person{n}")).collect();
    story.bible = names
        .iter()
        .enumerate()
        .map(|(n, name)| {
            entry(
                name,
                &[],
                n % 10 == 0,
                &"long description words ".repeat(200),
            )
        })
        .collect();
    story.previous_tail = names.join(" ");
    for context in [1200, 2000, 4000] {
        let built = builder(context).chapter(&story, &request(7)).unwrap();
        assert!(
            built.estimated_tokens <= built.budget,
            "{context}: {} > {}",
            built.estimated_tokens,
            built.budget
        );
        let (used, left) = (&built.bible_used, &built.bible_left_out);
        assert_eq!(used.len() + left.len(), 40, "{context}");
        assert!(!left.is_empty(), "{context}: everything fitted");
        // Pinned entries are the last to go.
        let pinned = ["Person0", "Person10", "Person20", "Person30"];
        let is_pinned = |name: &String| pinned.contains(&name.as_str());
        let used_pinned = used.iter().filter(|name| is_pinned(name)).count();
        assert!(used[..used_pinned].iter().all(is_pinned), "{used:?}");
        if used.len() > used_pinned {
            assert_eq!(used_pinned, pinned.len(), "{used:?}");
        }
        let note = format!("{} bible entries left out: ", left.len());
        assert!(
            built.trimmed.iter().any(|t| t.starts_with(&note)),
            "{:?}",
            built.trimmed
        );
    }
}

/// A 61-chapter story of which `chapters` are written, whose summaries are
/// two sentences of about 30 words each.
fn story_with_sentences(chapters: u32) -> StoryContext {
    let mut story = story(chapters, 0);
    story.outline = (1..=61)
        .map(|n| format!("## Chapter {n}: Beat {n}\n"))
        .collect();
    for gist in &mut story.previous {
        gist.summary = format!(
            "In chapter {} Mara {}. Then {}.",
            gist.number,
            "crosses the flooded fields ".repeat(6).trim_end(),
            "the tide turns against the courier ".repeat(5).trim_end()
        );
    }
    story
}

fn chapter_prompt(builder: &PromptBuilder, story: &StoryContext, number: u32) -> BuiltPrompt {
    builder
        .chapter(
            story,
            &ChapterRequest {
                number,
                total: 61,
                title: format!("Beat {number}"),
            },
        )
        .unwrap()
}

#[test]
fn a_long_books_prompts_stay_flat_however_much_room_the_context_leaves() {
    let builder = builder(65_536);
    let tenth = chapter_prompt(&builder, &story_with_sentences(9), 10);
    let sixtieth = chapter_prompt(&builder, &story_with_sentences(59), 60);
    let ratio = f64::from(sixtieth.estimated_tokens) / f64::from(tenth.estimated_tokens);
    assert!(
        ratio <= 1.2,
        "chapter 60's prompt is {ratio:.2}x chapter 10's ({} vs {})",
        sixtieth.estimated_tokens,
        tenth.estimated_tokens
    );
    let user = &sixtieth.prompt.user;
    // The last RECENT_SUMMARIES chapters whole, the ones before by their
    // first sentence, the oldest left out once the digest is full.
    assert!(user.contains("- Chapter 59 (Beat 59): In chapter 59 Mara"));
    assert!(user.contains("Then the tide turns"));
    let first_in_digest = 59 - RECENT_SUMMARIES as u32;
    let digest_line = format!("- Chapter {first_in_digest}: In chapter {first_in_digest} Mara");
    assert!(user.contains(&digest_line), "{user}");
    assert!(
        !user.contains("- Chapter 1:"),
        "the oldest chapters left out"
    );
    assert!(
        sixtieth
            .trimmed
            .iter()
            .any(|t| t.starts_with("summaries of chapters 1-")),
        "{:?}",
        sixtieth.trimmed
    );
}

#[test]
fn a_chapter_is_summarised_from_its_beginning_and_end_within_the_source_cap() {
    let builder = builder(65_536);
    let story = story(3, 10);
    let text = format!(
        "OPENING {} MIDDLE {} CLOSING",
        "the sea rose. ".repeat(600),
        "the sea fell. ".repeat(600)
    );
    let built = builder
        .summary(
            &story,
            &ChapterRequest {
                number: 4,
                total: 4,
                title: "Beat 4".into(),
            },
            &text,
        )
        .unwrap();
    let user = &built.prompt.user;
    assert!(user.contains("OPENING") && user.contains("CLOSING"));
    assert!(
        !user.contains("MIDDLE"),
        "the middle of a long chapter is left out"
    );
    assert!(
        estimate_tokens(user) <= SUMMARY_SOURCE_TOKENS + 200,
        "{} tokens",
        estimate_tokens(user)
    );
    assert!(built.trimmed.is_empty(), "a cut by design is not reported");
}

#[test]
fn a_first_sentence_ends_at_its_stop_or_closing_quote() {
    assert_eq!(first_sentence("Mara runs. Then she hides."), "Mara runs.");
    assert_eq!(first_sentence("“Run!” she says. Then."), "“Run!”");
    assert_eq!(first_sentence("No stop here"), "No stop here");
    assert_eq!(
        first_sentence("Dr.Who and 3.5 tides. Next."),
        "Dr.Who and 3.5 tides."
    );
    assert_eq!(first_sentence("Ends with a stop."), "Ends with a stop.");
}
