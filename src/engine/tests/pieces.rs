//! Only whole pieces are saved: continuations, outline completion, filters.

use std::time::Duration;

use super::{FakeGenerator, Harness, outline, settings, words};
use crate::engine::pieces::{OutlineState, assess_outline, join_continuation};
use crate::generator::GenError;
use crate::run::{EventKind, FailureCode};
use crate::store::RunStatus;

#[test]
fn a_cut_summary_is_continued_before_it_is_saved() {
    let h = Harness::new();
    let (story, run) = h.story_with_run("Salt Road", &outline(1), 1);
    h.generator.then_text(&words(60, "sand"), false);
    h.generator.then_text("The courier crossed the", true);
    h.generator.then_text("salt flats at dawn.", false);
    h.worker("w").run_once();
    assert_eq!(h.run(&run).status, RunStatus::Completed);
    let chapter = &h.app().store.chapters(&story.id).unwrap()[0];
    assert_eq!(
        chapter.summary,
        "The courier crossed the salt flats at dawn."
    );
    let calls = h.generator.calls();
    assert_eq!(
        calls.iter().map(|c| c.kind).collect::<Vec<_>>(),
        ["chapter", "summary", "summary"]
    );
    assert!(
        calls[2]
            .prompt
            .contains("Your summary was cut off. It ends:\nThe courier crossed the")
    );
    assert!(h.has_event(
        &run,
        EventKind::Continued,
        "the summary of chapter 1 was cut off"
    ));
}

#[test]
fn a_summary_still_cut_after_every_continuation_saves_nothing() {
    let h = Harness::new();
    let (story, run) = h.story_with_run("Salt Road", &outline(1), 1);
    h.generator.then_text(&words(60, "sand"), false);
    for _ in 0..4 {
        h.generator.then_text("and then", true);
    }
    h.worker("w").run_once();
    let failed = h.run(&run);
    assert_eq!(failed.error_code, Some(FailureCode::ChapterTruncated));
    assert!(h.app().store.chapters(&story.id).unwrap().is_empty());
}

#[test]
fn a_short_generated_outline_is_completed_not_accepted() {
    let h = Harness::new();
    let (story, run) = h.story_with_run("Salt Road", "", 3);
    h.generator
        .then_text("## Chapter 1: Low Tide\nThe courier sets out.", false);
    h.generator.then_text(
        "## Chapter 2: High Water\nThe flats flood.\n\n## Chapter 3: The Crossing\nShe arrives.",
        false,
    );
    h.worker("w").run_once();
    assert_eq!(h.run(&run).status, RunStatus::Completed);
    let saved = h.app().store.story(&story.id).unwrap().outline;
    assert_eq!(
        saved,
        "## Chapter 1: Low Tide\nThe courier sets out.\n\n## Chapter 2: High Water\nThe flats flood.\n\n## Chapter 3: The Crossing\nShe arrives."
    );
    let titles: Vec<String> = h
        .app()
        .store
        .chapters(&story.id)
        .unwrap()
        .into_iter()
        .map(|c| c.title)
        .collect();
    assert_eq!(titles, ["Low Tide", "High Water", "The Crossing"]);
    let second = &h.generator.calls()[1];
    assert!(
        second
            .prompt
            .contains("## Chapter 1: Low Tide\n\nWrite chapters 2 to 3 only"),
        "{}",
        second.prompt
    );
    assert!(h.has_event(
        &run,
        EventKind::Outline,
        "names chapters 1-1 of 3; asking for chapters 2-3"
    ));
}

#[test]
fn a_cut_outline_loses_its_cut_chapter_and_is_completed() {
    let h = Harness::new();
    let (story, run) = h.story_with_run("Salt Road", "", 2);
    h.generator.then_text(
        "## Chapter 1: Low Tide\nThe courier sets out.\n## Chapter 2: High",
        true,
    );
    h.generator
        .then_text("## Chapter 2: High Water\nThe flats flood.", false);
    h.worker("w").run_once();
    assert_eq!(h.run(&run).status, RunStatus::Completed);
    let saved = h.app().store.story(&story.id).unwrap().outline;
    assert_eq!(
        saved,
        "## Chapter 1: Low Tide\nThe courier sets out.\n\n## Chapter 2: High Water\nThe flats flood."
    );
}

#[test]
fn an_outline_that_stays_short_fails_outline_incomplete_and_saves_nothing() {
    let h = Harness::new();
    let (story, run) = h.story_with_run("Salt Road", "", 3);
    for _ in 0..4 {
        h.generator
            .then_text("## Chapter 1: Low Tide\nThe courier sets out.", false);
    }
    h.worker("w").run_once();
    let failed = h.run(&run);
    assert_eq!(failed.error_code, Some(FailureCode::OutlineIncomplete));
    assert_eq!(h.app().store.story(&story.id).unwrap().outline, "");
    assert_eq!(
        h.generator.calls().len(),
        4,
        "the first answer and three follow-ups"
    );
}

#[test]
fn outlines_are_judged_against_the_chapters_asked() {
    let long = outline(4);
    match assess_outline(&long, false, 2) {
        OutlineState::Whole { text, dropped } => {
            assert_eq!(text, outline(2).trim_end());
            assert_eq!(dropped, 2);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        assess_outline(
            "## Chapter 1: A\nx\n## Chapter 2: B\ny\n## Chapter 4: D\nz",
            false,
            4
        ),
        OutlineState::Short {
            text: "## Chapter 1: A\nx\n## Chapter 2: B\ny".into(),
            named: 2
        }
    );
    assert!(matches!(
        assess_outline("Just some prose.", false, 2),
        OutlineState::Unusable(_)
    ));
    assert!(matches!(
        assess_outline("## Chapter 2: B\nx", false, 2),
        OutlineState::Unusable(_)
    ));
    assert!(matches!(
        assess_outline("## Chapter 1: Lo", true, 2),
        OutlineState::Unusable(_)
    ));
}

#[test]
fn a_short_chapter_is_continued_even_when_the_generator_reports_truncation() {
    let generator = FakeGenerator {
        reports_truncation: true,
        ..FakeGenerator::default()
    };
    let h = Harness::with(generator, settings());
    let (story, run) = h.story_with_run("Salt Road", &outline(1), 1);
    h.generator
        .then_text("She opened the door and stepped into the wind.", false);
    h.generator.then_text(&words(50, "wind"), false);
    h.worker("w").run_once();
    assert_eq!(h.run(&run).status, RunStatus::Completed);
    let chapter = &h.app().store.chapters(&story.id).unwrap()[0];
    assert!(
        chapter
            .content
            .starts_with("She opened the door and stepped into the wind. wind wind")
    );
    assert_eq!(h.generator.calls()[1].kind, "continue");
    assert!(h.has_event(&run, EventKind::Continued, "chapter 1 was short at 9 words"));
}

#[test]
fn a_filtered_answer_fails_the_run_and_saves_nothing_of_that_chapter() {
    let h = Harness::new();
    let (story, run) = h.story_with_run("Salt Road", &outline(2), 2);
    h.generator.then_text(&words(60, "sand"), false);
    h.generator.then_text("Summary one.", false);
    h.generator.then_error(GenError::permanent(
        FailureCode::GeneratorFiltered,
        "content_filter",
    ));
    h.worker("w").run_once();
    let failed = h.run(&run);
    assert_eq!(failed.status, RunStatus::Failed);
    assert_eq!(failed.error_code, Some(FailureCode::GeneratorFiltered));
    let saved = h.app().store.chapters(&story.id).unwrap();
    assert_eq!(saved.len(), 1, "chapter 1 stays; nothing of chapter 2");
    assert!(h.clock.sleeps().is_empty(), "a filter is not retried");
}

#[test]
fn bad_answers_are_retried_then_fail_bad_response() {
    let h = Harness::new();
    let (_, run) = h.story_with_run("Salt Road", &outline(1), 1);
    h.generator.then_text("   ", false);
    for _ in 0..4 {
        h.generator.then_error(GenError::BadAnswer {
            message: "empty after cleaning".into(),
        });
    }
    h.worker("w").run_once();
    let failed = h.run(&run);
    assert_eq!(failed.error_code, Some(FailureCode::GeneratorBadResponse));
    assert_eq!(h.clock.sleeps().len(), 4);
    assert!(
        h.clock
            .sleeps()
            .iter()
            .all(|d| *d <= Duration::from_secs(8))
    );
}

#[test]
fn continuations_join_where_the_text_stopped() {
    assert_eq!(
        join_continuation("She opened the", "door."),
        "She opened the door."
    );
    assert_eq!(
        join_continuation("She said", ", quietly."),
        "She said, quietly."
    );
    assert_eq!(
        join_continuation("End.\n\n", "New paragraph."),
        "End.\n\nNew paragraph."
    );
    assert_eq!(join_continuation("Same", "   "), "Same");
}

#[test]
fn a_repetitive_chapter_written_again_no_better_keeps_the_first() {
    let h = Harness::with(
        FakeGenerator::default(),
        crate::engine::EngineSettings {
            rewrite_repetitive: Some(0.5),
            ..settings()
        },
    );
    let (story, run) = h.story_with_run("Salt Road", &outline(1), 1);
    // 56 of 57 word 4-grams repeat, then 66 of 67: the second is worse.
    h.generator.then_text(&words(60, "tide"), false);
    h.generator.then_text(&words(70, "sand"), false);
    h.worker("w").run_once();
    assert_eq!(h.run(&run).status, RunStatus::Completed);
    let kinds: Vec<&str> = h.generator.calls().iter().map(|c| c.kind).collect();
    assert_eq!(kinds, ["chapter", "chapter", "summary"]);
    let chapter = &h.app().store.chapters(&story.id).unwrap()[0];
    assert_eq!(chapter.content, words(60, "tide"));
    assert!(h.has_event(
        &run,
        EventKind::Rewritten,
        "chapter 1 repeated itself (0.982 of its word 4-grams are repeats, above 0.5); written again: 0.985; kept the first"
    ));
}

#[test]
fn a_chapter_under_the_repetition_limit_is_written_once() {
    let h = Harness::with(
        FakeGenerator::default(),
        crate::engine::EngineSettings {
            rewrite_repetitive: Some(0.99),
            ..settings()
        },
    );
    let (_, run) = h.story_with_run("Salt Road", &outline(1), 1);
    h.worker("w").run_once();
    assert_eq!(h.run(&run).status, RunStatus::Completed);
    let kinds: Vec<&str> = h.generator.calls().iter().map(|c| c.kind).collect();
    assert_eq!(kinds, ["chapter", "summary"]);
    assert!(
        !h.events(&run)
            .iter()
            .any(|(k, _)| *k == EventKind::Rewritten)
    );
}

#[test]
fn a_rewrite_that_fails_keeps_the_first_text_and_the_run_goes_on() {
    let h = Harness::with(
        FakeGenerator::default(),
        crate::engine::EngineSettings {
            rewrite_repetitive: Some(0.5),
            retries: 0,
            ..settings()
        },
    );
    let (story, run) = h.story_with_run("Salt Road", &outline(1), 1);
    h.generator.then_text(&words(60, "tide"), false);
    h.generator.then_error(GenError::Permanent {
        code: FailureCode::GeneratorFiltered,
        message: "the answer was filtered".into(),
    });
    h.worker("w").run_once();
    assert_eq!(h.run(&run).status, RunStatus::Completed);
    let chapter = &h.app().store.chapters(&story.id).unwrap()[0];
    assert_eq!(chapter.content, words(60, "tide"));
    assert!(h.has_event(
        &run,
        EventKind::Rewritten,
        "writing it again failed (GENERATOR_FILTERED: the answer was filtered); kept the first"
    ));
}
