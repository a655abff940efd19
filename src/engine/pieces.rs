//! The pieces a run writes: the outline, a chapter (continued while cut off
//! or short) and its summary (continued while cut off). Each is saved only
//! whole; each follow-up request is recorded in the run's events.
//!
//! Each piece's context carries the story bible as stored when the piece
//! is written (`Job::context`); the prompts choose from it.
//!
//! Follow-ups for outlines and summaries reuse the piece's own prompt with a
//! note appended (what was written so far, what to write next), so the
//! generator interface and the templates stay as they are. A generator that
//! does not read prompts (the builtin one) never answers cut or short; for
//! it, a short outline is written again rather than completed.

use std::sync::Mutex;

use super::worker::{Job, Stop};
use crate::generator::{
    ChapterGist, ChapterRequest, Completion, LiveSink, StoryBrief, StoryContext, Task, TaskKind,
};
use crate::live::{LiveHub, ThinkFilter};
use crate::progress::{check_outline, outline_entries, parse_outline};
use crate::run::{EventKind, FailureCode, Step, Timestamp};
use crate::store::{Chapter, NewChapter, RunId, Story, word_count};

/// A summary longer than this is cut at its last sentence end before it: it
/// travels in every later prompt.
const MAX_SUMMARY_CHARS: usize = 1_000;

/// Relays one chapter's text, reasoning filtered out, to the run's viewers.
pub(super) struct ChapterRelay<'a> {
    hub: &'a LiveHub,
    run: &'a RunId,
    chapter: u32,
    base: String,
    filter: Mutex<ThinkFilter>,
}

impl std::fmt::Debug for ChapterRelay<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ChapterRelay(run {}, chapter {})",
            self.run, self.chapter
        )
    }
}

impl LiveSink for ChapterRelay<'_> {
    fn begin(&self) {
        *self.filter.lock().unwrap_or_else(|e| e.into_inner()) = ThinkFilter::default();
        self.hub.restart(self.run, self.chapter, &self.base);
    }

    fn push(&self, delta: &str) {
        let shown = self
            .filter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(delta);
        self.hub.chunk(self.run, self.chapter, &shown);
    }
}

/// Where a generated outline stands against the chapters asked.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum OutlineState {
    /// Chapters 1..=N in order, nothing more (a longer one was cut to N).
    Whole { text: String, dropped: usize },
    /// Chapters 1..=named in order and whole; the rest is missing.
    Short { text: String, named: u32 },
    /// Nothing usable: no chapter 1, or no whole chapter.
    Unusable(String),
}

impl Job<'_> {
    /// Writes one chapter: its text (continued while it is cut off or short)
    /// and its summary, after making sure every earlier chapter has a summary.
    pub(super) fn compose_chapter(
        &self,
        story: &Story,
        chapters: &mut [Chapter],
        request: &ChapterRequest,
    ) -> Result<NewChapter, Stop> {
        self.summarize_earlier(story, chapters, request.number, request.total)?;
        let context = self.context(story, chapters, request.number)?;
        let content = self.chapter_text(&context, request)?;
        let content = self.less_repetitive(&context, request, content)?;
        let summary = self.summarize(&context, request, &content)?;
        Ok(NewChapter {
            number: request.number,
            title: request.title.clone(),
            content,
            summary,
        })
    }

    /// Earlier chapters without a summary (edited by the writer, or written
    /// before summaries existed) get one, so the story so far stays whole.
    fn summarize_earlier(
        &self,
        story: &Story,
        chapters: &mut [Chapter],
        before: u32,
        total: u32,
    ) -> Result<(), Stop> {
        for index in 0..chapters.len() {
            let chapter = &chapters[index];
            if chapter.number >= before || !chapter.summary.trim().is_empty() {
                continue;
            }
            let request = ChapterRequest {
                number: chapter.number,
                total,
                title: chapter.title.clone(),
            };
            let context = self.context(story, chapters, chapter.number)?;
            let summary = self.summarize(&context, &request, &chapters[index].content)?;
            let store = &self.shared.app.store;
            self.persist("a summary", || {
                store.set_chapter_summary(&story.id, request.number, &summary)
            })?;
            let note = format!("chapter {} had no summary; wrote one", request.number);
            self.record(EventKind::Summary, &note)?;
            chapters[index].summary = summary;
        }
        Ok(())
    }

    /// The chapter's summary, continued while the generator says it was cut
    /// off; still cut after the last continuation, the chapter fails
    /// `CHAPTER_TRUNCATED` (a summary is part of its chapter's save).
    fn summarize(
        &self,
        context: &StoryContext,
        request: &ChapterRequest,
        text: &str,
    ) -> Result<String, Stop> {
        let kind = TaskKind::Summary {
            chapter: request,
            text,
        };
        let first = self.generate(&self.task(context, kind, None)?)?;
        let mut summary = first.text.trim().to_string();
        let mut cut = first.truncated;
        let mut continuations = 0;
        while cut {
            if continuations == self.shared.settings.max_continuations {
                return Err(Stop::Failed {
                    code: FailureCode::ChapterTruncated,
                    message: format!(
                        "the summary of chapter {} was still cut off after {continuations} continuations; raise --llm-context-tokens or --max-continuations",
                        request.number
                    ),
                });
            }
            continuations += 1;
            let note = format!(
                "the summary of chapter {} was cut off; asking for the rest ({continuations} of at most {})",
                request.number, self.shared.settings.max_continuations
            );
            self.record(EventKind::Continued, &note)?;
            let mut task = self.task(context, kind, None)?;
            append_to_prompt(
                &mut task,
                &format!(
                    "Your summary was cut off. It ends:\n{summary}\n\nContinue it from exactly where it stops and finish it. Write only the rest."
                ),
            );
            let more = self.generate(&task)?;
            summary = join_continuation(&summary, &more.text);
            cut = more.truncated;
        }
        Ok(capped_summary(summary))
    }

    /// The chapter's text, continued with follow-up requests while the
    /// generator says it was cut off or it is shorter than
    /// `--min-chapter-words` (whatever the generator). Never saved cut off: a
    /// chapter still cut off after the last continuation fails the step
    /// `CHAPTER_TRUNCATED`.
    fn chapter_text(
        &self,
        context: &StoryContext,
        request: &ChapterRequest,
    ) -> Result<String, Stop> {
        let label = format!("chapter {}", request.number);
        let relay = self.relay(request.number, "");
        let mut task = self.task(context, TaskKind::Chapter(request), Some(&label))?;
        task.live = Some(&relay);
        let first = self.generate(&task)?;
        let mut cut = self.is_cut_off(&first, &first.text);
        let mut reported_cut = first.truncated;
        let mut text = first.text;
        let mut continuations = 0;
        let max = self.shared.settings.max_continuations;
        while cut {
            if continuations == max {
                return Err(Stop::Failed {
                    code: FailureCode::ChapterTruncated,
                    message: format!(
                        "chapter {} was still cut off after {continuations} continuations ({} words); raise --llm-context-tokens or --max-continuations",
                        request.number,
                        word_count(&text)
                    ),
                });
            }
            continuations += 1;
            let why = if reported_cut { "cut off" } else { "short" };
            let note = format!(
                "chapter {} was {why} at {} words; asking for the rest ({continuations} of at most {max})",
                request.number,
                word_count(&text),
            );
            self.record(EventKind::Continued, &note)?;
            let kind = TaskKind::Continue {
                chapter: request,
                so_far: &text,
            };
            let relay = self.relay(request.number, &format!("{text} "));
            let mut task = self.task(context, kind, None)?;
            task.live = Some(&relay);
            let more = self.generate(&task)?;
            text = join_continuation(&text, &more.text);
            cut = self.is_cut_off(&more, &text);
            reported_cut = more.truncated;
        }
        Ok(text)
    }

    /// Where a chapter's text goes while it is written: to the run's live
    /// viewers, after `base` (the text so far of a chapter being continued).
    fn relay(&self, chapter: u32, base: &str) -> ChapterRelay<'_> {
        ChapterRelay {
            hub: &self.shared.app.live,
            run: &self.run.id,
            chapter,
            base: base.to_string(),
            filter: Mutex::new(ThinkFilter::default()),
        }
    }

    /// With `--rewrite-repetitive R`, a chapter whose share of repeated word
    /// 4-grams is above R is written once more, from the same prompt (a
    /// sampled model answers differently; the builtin generator writes the
    /// same text again, which changes nothing), and the less repetitive of
    /// the two is kept, the first on a tie. Once only: a model that loops
    /// twice would likely loop a third time, and each try costs a call.
    /// A rewrite that fails (its retries spent, filtered, still cut off)
    /// keeps the first text rather than failing the run. The `rewritten`
    /// event gives both shares (or the failure) and which text was kept.
    fn less_repetitive(
        &self,
        context: &StoryContext,
        request: &ChapterRequest,
        first: String,
    ) -> Result<String, Stop> {
        let Some(limit) = self.shared.settings.rewrite_repetitive else {
            return Ok(first);
        };
        let first_share = repetition_share(&first);
        if first_share <= limit {
            return Ok(first);
        }
        let repeated = format!(
            "chapter {} repeated itself ({first_share:.3} of its word 4-grams are repeats, above {limit})",
            request.number
        );
        let second = match self.chapter_text(context, request) {
            Ok(second) => second,
            // The rewrite is a second chance, not a condition: the first
            // text is whole, so a rewrite that fails leaves it standing.
            Err(Stop::Failed { code, message }) => {
                let note = format!(
                    "{repeated}; writing it again failed ({code}: {message}); kept the first"
                );
                self.record(EventKind::Rewritten, &note)?;
                return Ok(first);
            }
            Err(stop) => return Err(stop),
        };
        let second_share = repetition_share(&second);
        let (kept, which) = if second_share < first_share {
            (second, "the second")
        } else {
            (first, "the first")
        };
        let note = format!("{repeated}; written again: {second_share:.3}; kept {which}");
        self.record(EventKind::Rewritten, &note)?;
        Ok(kept)
    }

    /// The story as the generator sees it before chapter `number`, with its
    /// bible read afresh: an entry the writer adds mid-run reaches the next
    /// chapter.
    fn context(
        &self,
        story: &Story,
        chapters: &[Chapter],
        number: u32,
    ) -> Result<StoryContext, Stop> {
        let mut context = context_of(story, chapters, number);
        context.bible = self.shared.app.store.bible_entries(&story.id)?;
        Ok(context)
    }

    fn is_cut_off(&self, completion: &Completion, text_so_far: &str) -> bool {
        completion.truncated || word_count(text_so_far) < self.shared.settings.min_chapter_words
    }

    /// A task with its prompt rendered within the context budget (for
    /// generators that read prompts). With `label`, the estimate and any
    /// trimming are recorded in the run's events; without, only trimming.
    pub(super) fn task<'a>(
        &'a self,
        story: &'a StoryContext,
        kind: TaskKind<'a>,
        label: Option<&str>,
    ) -> Result<Task<'a>, Stop> {
        let builder = &self.shared.generator.prompts();
        let mut task = Task {
            story,
            kind,
            prompt: Default::default(),
            max_tokens: builder.completion_tokens(),
            cancel: &self.cancel,
            live: None,
        };
        if !self.shared.generator.reads_prompts() {
            return Ok(task);
        }
        let built = match kind {
            TaskKind::Outline { chapters } => builder.outline(story, chapters),
            TaskKind::Chapter(chapter) => builder.chapter(story, chapter),
            TaskKind::Continue { chapter, so_far } => builder.continuation(story, chapter, so_far),
            TaskKind::Summary { chapter, text } => builder.summary(story, chapter, text),
        }
        .map_err(Stop::from_generator)?;
        if label.is_some() || !built.trimmed.is_empty() {
            let what = label.map_or_else(|| kind.name().to_string(), str::to_string);
            self.record(EventKind::Prompt, &built.describe(&what))?;
        }
        task.prompt = built.prompt;
        Ok(task)
    }

    /// Writes the story's outline, whole, and returns the story with it.
    pub(super) fn write_outline(&self, story: Story) -> Result<Story, Stop> {
        let store = &self.shared.app.store;
        let count = story
            .chapter_count
            .unwrap_or(self.shared.app.counts.default_count());
        self.enter_step(&Step::Outline, count)?;
        let context = self.context(&story, &[], 1)?;
        let outline = self.whole_outline(&context, count)?;
        self.persist("the outline", || {
            store.set_generated_outline(&story.id, &outline)
        })?;
        self.shared.app.counts.invalidate(&story.id);
        self.record(
            EventKind::Outline,
            &format!("outline written: {count} chapters"),
        )?;
        Ok(store
            .find_story(&story.id)?
            .ok_or_else(|| crate::error::Error::StoryNotFound(story.id.clone()))?)
    }

    /// Asks for an outline of `count` chapters until it names exactly
    /// chapters 1..=count in order: a cut or short answer is completed (the
    /// missing chapters asked for and appended), an unusable one written
    /// again, a longer one cut to `count`; at most `--max-continuations`
    /// follow-ups, then `OUTLINE_INCOMPLETE`.
    fn whole_outline(&self, context: &StoryContext, count: u32) -> Result<String, Stop> {
        let max = self.shared.settings.max_continuations;
        let answer = self.generate(&self.outline_task(context, count, Some("outline"))?)?;
        let mut state = assess_outline(&answer.text, answer.truncated, count);
        let mut follow_ups = 0;
        loop {
            let (text, named, why) = match state {
                OutlineState::Whole { text, dropped } => {
                    if dropped > 0 {
                        let note = format!(
                            "the outline named {dropped} chapters more than the {count} asked; kept the first {count}"
                        );
                        self.record(EventKind::Outline, &note)?;
                    }
                    return Ok(text);
                }
                OutlineState::Short { text, named } => {
                    let why = format!("names chapters 1-{named} only");
                    (text, named, why)
                }
                OutlineState::Unusable(why) => (String::new(), 0, why),
            };
            if follow_ups == max {
                return Err(outline_incomplete(count, named, follow_ups, &why));
            }
            follow_ups += 1;
            let progress = format!("({follow_ups} of at most {max})");
            state = if named == 0 || !self.shared.generator.reads_prompts() {
                let note = format!("the generated outline {why}; writing it again {progress}");
                self.record(EventKind::Outline, &note)?;
                let answer = self.generate(&self.outline_task(context, count, None)?)?;
                assess_outline(&answer.text, answer.truncated, count)
            } else {
                let next = named + 1;
                let note = format!(
                    "the outline names chapters 1-{named} of {count}; asking for chapters {next}-{count} {progress}"
                );
                self.record(EventKind::Outline, &note)?;
                let mut task = self.outline_task(context, count, None)?;
                append_to_prompt(&mut task, &outline_follow_up(&text, named, count));
                let more = self.generate(&task)?;
                let joined = format!("{}\n\n{}", text.trim_end(), more.text.trim());
                assess_outline(&joined, more.truncated, count)
            };
        }
    }

    fn outline_task<'a>(
        &'a self,
        context: &'a StoryContext,
        count: u32,
        label: Option<&str>,
    ) -> Result<Task<'a>, Stop> {
        self.task(context, TaskKind::Outline { chapters: count }, label)
    }
}

fn outline_incomplete(count: u32, named: u32, follow_ups: u32, why: &str) -> Stop {
    Stop::Failed {
        code: FailureCode::OutlineIncomplete,
        message: format!(
            "the generated outline {why} after {follow_ups} follow-up requests, not the {count} chapters asked ({named} usable); write the outline yourself or raise --max-continuations"
        ),
    }
}

/// What to append to the outline prompt to ask for the missing chapters:
/// the headings written so far (not their synopses, to stay in budget).
fn outline_follow_up(text: &str, named: u32, count: u32) -> String {
    let headings: Vec<&str> = outline_entries(text)
        .iter()
        .filter_map(|entry| text.lines().nth(entry.line - 1))
        .map(str::trim)
        .collect();
    format!(
        "You have written chapters 1 to {named} of this outline:\n{}\n\nWrite chapters {} to {count} only, in the same form, starting with `## Chapter {}: Title`. Do not repeat the chapters above.",
        headings.join("\n"),
        named + 1,
        named + 1
    )
}

/// Judges a generated outline against the `count` chapters asked. A cut
/// answer loses its last chapter (its title or synopsis may be cut); the
/// chapters kept are the run 1, 2, 3… from the start, up to the first gap,
/// duplicate or disorder; past `count` the text is cut.
pub(super) fn assess_outline(text: &str, truncated: bool, count: u32) -> OutlineState {
    let entries = outline_entries(text);
    let whole_lines = match (truncated, entries.last()) {
        (true, Some(last)) => last.line - 1,
        (true, None) => 0,
        (false, _) => text.lines().count(),
    };
    let in_order = entries
        .iter()
        .take_while(|entry| entry.line <= whole_lines)
        .zip(1..)
        .take_while(|(entry, expected)| entry.number == *expected)
        .count();
    if in_order == 0 {
        let why = if entries.is_empty() {
            "names no chapters"
        } else if truncated && entries.len() == 1 {
            "was cut off inside its first chapter"
        } else {
            "does not begin with chapter 1"
        };
        return OutlineState::Unusable(why.into());
    }
    // Up to the first entry not kept (or the cut).
    let kept = in_order.min(count as usize);
    let end = entries
        .get(kept)
        .map_or(whole_lines, |next| (next.line - 1).min(whole_lines));
    let kept_text = text
        .lines()
        .take(end)
        .collect::<Vec<_>>()
        .join("\n")
        .trim_end()
        .to_string();
    if kept < count as usize {
        return OutlineState::Short {
            text: kept_text,
            named: kept as u32,
        };
    }
    // The reader's own checks have the last word.
    if parse_outline(&kept_text).len() != count as usize
        || !check_outline(&kept_text, Some(count)).is_empty()
    {
        return OutlineState::Unusable(format!("does not read as chapters 1 to {count} in order"));
    }
    OutlineState::Whole {
        text: kept_text,
        dropped: parse_outline(text).len().saturating_sub(count as usize),
    }
}

fn append_to_prompt(task: &mut Task<'_>, note: &str) {
    task.prompt.user = format!("{}\n\n{note}", task.prompt.user.trim_end());
}

/// A summary within [`MAX_SUMMARY_CHARS`], cut after a whole sentence when it
/// is longer (never mid-word: it is saved and shown).
fn capped_summary(summary: String) -> String {
    if summary.chars().count() <= MAX_SUMMARY_CHARS {
        return summary;
    }
    let head: String = summary.chars().take(MAX_SUMMARY_CHARS).collect();
    match head.rfind(['.', '!', '?']) {
        Some(end) => head[..=end].to_string(),
        None => head
            .rsplit_once(char::is_whitespace)
            .map_or(head.clone(), |(whole, _)| whole.trim_end().to_string()),
    }
}

/// The story as a generator sees it before writing chapter `number`: the
/// summaries of the chapters before it and the end of the one just before.
pub(super) fn context_of(story: &Story, chapters: &[Chapter], number: u32) -> StoryContext {
    const TAIL_CHARS: usize = 4_000;
    let previous_tail = chapters
        .iter()
        .find(|c| c.number + 1 == number)
        .map(|c| {
            let count = c.content.chars().count();
            c.content
                .chars()
                .skip(count.saturating_sub(TAIL_CHARS))
                .collect()
        })
        .unwrap_or_default();
    StoryContext {
        story_id: story.id.clone(),
        title: story.title.clone(),
        premise: story.premise.clone(),
        outline: story.outline.clone(),
        previous: chapters
            .iter()
            .filter(|c| c.number < number)
            .map(|c| ChapterGist {
                number: c.number,
                title: c.title.clone(),
                summary: c.summary.clone(),
            })
            .collect(),
        previous_tail,
        brief: StoryBrief::from(story),
        bible: Vec::new(),
    }
}

/// Keeps a chapter just saved in the worker's view of the story.
pub(super) fn remember(
    chapters: &mut Vec<Chapter>,
    chapter: NewChapter,
    run: &RunId,
    at: Timestamp,
) {
    chapters.push(Chapter {
        number: chapter.number,
        title: chapter.title,
        word_count: word_count(&chapter.content),
        content: chapter.content,
        summary: chapter.summary,
        run_id: Some(run.clone()),
        created_at: at,
        updated_at: None,
        locked: false,
    });
    chapters.sort_by_key(|c| c.number);
}

/// The chapter's share of repeated word 4-grams, as its quality reports it.
fn repetition_share(text: &str) -> f64 {
    crate::quality::repetition(&crate::quality::words(text))
}

/// Appends a continuation where the text stopped: a space between words,
/// none before punctuation, the paragraph breaks the model gave.
pub(super) fn join_continuation(text: &str, more: &str) -> String {
    let more = more.trim_end();
    if more.trim().is_empty() {
        return text.to_string();
    }
    let starts_inside = more.starts_with([',', '.', ';', ':', '!', '?', ')', '\'', '"', '’', '”']);
    if text.ends_with(char::is_whitespace) || more.starts_with(char::is_whitespace) || starts_inside
    {
        format!("{text}{more}")
    } else {
        format!("{text} {more}")
    }
}
