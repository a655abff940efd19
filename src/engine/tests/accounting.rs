//! Every generator call is recorded, answered or failed, and a server that
//! read far less of the prompt than was sent is reported.

use std::sync::atomic::Ordering::Relaxed;

use super::{Harness, outline, words};
use crate::generator::{CallReport, Completion, GenError, Usage};
use crate::run::EventKind;
use crate::store::{GenerationKind, RunStatus};

#[test]
fn each_call_answered_or_failed_is_one_row_and_the_totals_are_their_sums() {
    let h = Harness::new();
    let (story, run) = h.story_with_run("Salt Road", &outline(1), 1);
    h.generator
        .then_error(GenError::transient("connection refused"));
    h.worker("w").run_once();
    assert_eq!(h.run(&run).status, RunStatus::Completed);

    let rows = h.app().store.generations(&run).unwrap();
    let kinds: Vec<(GenerationKind, &str)> = rows
        .iter()
        .map(|g| (g.call.kind, g.call.outcome.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            (GenerationKind::Chapter, "transient"),
            (GenerationKind::Chapter, "ok"),
            (GenerationKind::Summary, "ok"),
        ]
    );
    for row in &rows {
        assert_eq!(row.call.chapter, Some(1));
        assert_eq!(row.call.model, "fake");
        assert!(row.call.prompt_tokens_estimated > 0, "{row:?}");
        assert!(row.call.completion_tokens_estimated);
    }
    assert_eq!(
        rows[0].call.completion_tokens, 0,
        "a failed call wrote nothing"
    );
    assert!(
        rows[1].call.completion_tokens > 0,
        "estimated from the answer"
    );

    let usage = h.run(&run).usage;
    assert_eq!(usage.calls, 3);
    let prompt: u64 = rows.iter().map(|g| u64::from(g.call.prompt_tokens())).sum();
    let completion: u64 = rows
        .iter()
        .map(|g| u64::from(g.call.completion_tokens))
        .sum();
    assert_eq!(
        (usage.prompt_tokens, usage.completion_tokens),
        (prompt, completion)
    );
    assert_eq!(h.app().store.story_usage(&story.id).unwrap(), Some(usage));
    let metrics = &h.app().metrics;
    assert_eq!(metrics.generator_calls.load(Relaxed), 3);
    assert_eq!(metrics.tokens_prompt.load(Relaxed), prompt);
    assert_eq!(metrics.tokens_completion.load(Relaxed), completion);
}

#[test]
fn a_server_that_read_under_three_quarters_of_the_prompt_is_reported_once() {
    let h = Harness::new();
    let (_, run) = h.story_with_run("Salt Road", &outline(1), 1);
    let answer = |text: String| Completion {
        call: CallReport {
            usage: Some(Usage {
                prompt_tokens: 5,
                completion_tokens: 90,
            }),
            ..CallReport::default()
        },
        ..Completion::finished(text)
    };
    let (chapter, summary) = (answer(words(60, "tide")), answer("It ends.".into()));
    h.generator.then(move |_| Ok(chapter));
    h.generator.then(move |_| Ok(summary));
    h.worker("w").run_once();

    let rows = h.app().store.generations(&run).unwrap();
    assert_eq!(rows[0].call.prompt_tokens_reported, Some(5));
    assert_eq!(rows[0].call.completion_tokens, 90);
    assert!(!rows[0].call.completion_tokens_estimated);
    assert_eq!(
        h.run(&run).usage.prompt_tokens,
        10,
        "the server's figures count"
    );
    let reports: Vec<_> = h
        .events(&run)
        .into_iter()
        .filter(|(kind, _)| *kind == EventKind::PromptTruncated)
        .collect();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(reports[0].1.contains("chapter 1"), "{}", reports[0].1);
    assert!(reports[0].1.contains("num_ctx"), "{}", reports[0].1);
}
