//! The prompts sent to language-model backends: templates, and fitting them
//! into the model's context window.
//!
//! Templates live in `static/prompts/` (compiled in); `serve --prompts DIR`
//! overrides any of them with a file of the same name. Placeholders are
//! `{name}`; `{{` and `}}` stand for literal braces. Every template is parsed
//! at start, so an unknown placeholder stops `serve` with the file and line.
//!
//! The story fields reach every template: `{author}`, `{language}`, `{pov}`,
//! `{tense}`, `{style}` and `{target_words}`. A field the writer left empty
//! renders as words that leave the choice to the model ([`UNSET_POV`] and its
//! neighbours), so a line such as `Point of view: {pov}.` reads well either
//! way; the default templates put each on a line of its own for that reason.
//!
//! [`PromptBuilder`] renders a prompt within the context budget: the story so
//! far is carried as the summaries of the last [`RECENT_SUMMARIES`] chapters,
//! a digest of the earlier ones (the first sentence of each, newest first,
//! within [`EARLIER_DIGEST_TOKENS`]) and the tail of the previous chapter,
//! and what does not fit is trimmed oldest-first (older summaries, then the
//! start of the tail, then the outline away from the current chapter, then
//! the premise).
//!
//! Why a window and a digest, not every summary: a prompt that grows by one
//! summary a chapter makes a long book's late chapters the costly ones (a
//! 60-chapter book's last prompt was twice its tenth's), while the outline
//! and the bible already carry the plan and who is who. With the window the
//! prompt stays flat once the digest is full (`cargo bench --bench book`).
//! Likewise a chapter is summarised from at most [`SUMMARY_SOURCE_TOKENS`]
//! of its text (its beginning and end, where a chapter sets up and turns),
//! so summaries stay a small share of what a book costs. Tokens are estimated conservatively,
//! at 3.5 characters each. What was kept and dropped is reported so the
//! engine can record it in the run's events.
//!
//! A template with `{bible}` carries the story bible's entries chosen for it
//! ([`bible`]: pinned ones and those the chapter is given a mention of).
//! They are placed after the fixed parts and before the story so far, in at
//! most a third of the room the fixed parts leave; entries that do not fit
//! are left out last-relevant-first and named in the prompt's account, as
//! are the entries that went in.

use super::{ChapterRequest, GenError, StoryContext};
use crate::run::FailureCode;

pub use template::{
    Template, TemplateError, Templates, UNSET_AUTHOR, UNSET_POV, UNSET_STYLE, UNSET_TENSE,
};
use template::{Var, Vars, template_uses};

/// A system instruction and the user's request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prompt {
    pub system: String,
    pub user: String,
}

impl Prompt {
    /// Both parts as one text, for backends that take a single input.
    pub fn as_text(&self) -> String {
        format!("{}\n\n{}", self.system, self.user)
    }
}

/// Characters per token assumed when estimating: fewer than real English
/// text has (about 4), so estimates err on the safe side.
const CHARS_PER_TOKEN: f64 = 3.5;
/// Tokens counted per chat message for roles and separators.
const MESSAGE_OVERHEAD_TOKENS: u32 = 8;
/// Characters of the previous chapter's ending carried into the next prompt.
const TAIL_CHARS: usize = 2_000;
/// Chapters before the one to write whose summaries go in whole.
pub const RECENT_SUMMARIES: usize = 8;
/// Tokens the digest of the chapters before those may take.
pub const EARLIER_DIGEST_TOKENS: u32 = 300;
/// Tokens of a chapter's text a summary is asked from, at most.
pub const SUMMARY_SOURCE_TOKENS: u32 = 1_000;

fn chars_for_tokens(tokens: u32) -> usize {
    (f64::from(tokens) * CHARS_PER_TOKEN).floor() as usize
}

/// Estimated tokens of `text`, rounded up.
pub fn estimate_tokens(text: &str) -> u32 {
    (text.chars().count() as f64 / CHARS_PER_TOKEN).ceil() as u32
}

/// A prompt fitted into the budget, with an account of how.
#[derive(Debug, Clone)]
pub struct BuiltPrompt {
    pub prompt: Prompt,
    pub estimated_tokens: u32,
    pub budget: u32,
    /// What was cut to fit, in words; empty when nothing was.
    pub trimmed: Vec<String>,
    /// The names of the bible entries the prompt carries.
    pub bible_used: Vec<String>,
    /// The names of the bible entries chosen for it but left out for room.
    pub bible_left_out: Vec<String>,
}

impl BuiltPrompt {
    /// One line for the run's events.
    pub fn describe(&self, what: &str) -> String {
        let mut text = format!(
            "{what} prompt ≈ {} of {} tokens",
            self.estimated_tokens, self.budget
        );
        if !self.bible_used.is_empty() {
            text.push_str("; bible: ");
            text.push_str(&bible::name_list(&self.bible_used));
        }
        if !self.trimmed.is_empty() {
            text.push_str("; ");
            text.push_str(&self.trimmed.join("; "));
        }
        text
    }
}

/// Renders prompts from the templates within a context window.
#[derive(Debug, Clone)]
pub struct PromptBuilder {
    templates: Templates,
    context_tokens: u32,
}

impl PromptBuilder {
    pub fn new(templates: Templates, context_tokens: u32) -> PromptBuilder {
        PromptBuilder {
            templates,
            context_tokens,
        }
    }

    /// The context window this builder fits prompts into.
    pub fn context_tokens(&self) -> u32 {
        self.context_tokens
    }

    /// The same templates for another context window (a settings change).
    pub fn with_context_tokens(&self, context_tokens: u32) -> PromptBuilder {
        PromptBuilder {
            templates: self.templates.clone(),
            context_tokens,
        }
    }

    /// Tokens left for the model's answer (sent as `max_tokens`).
    pub fn completion_tokens(&self) -> u32 {
        (self.context_tokens / 4).clamp(64, 4096)
    }

    /// Tokens the prompt may take.
    pub fn prompt_budget(&self) -> u32 {
        self.context_tokens.saturating_sub(self.completion_tokens())
    }

    fn base_vars<'a>(
        story: &'a StoryContext,
        chapter: Option<&'a ChapterRequest>,
        chapter_count: u32,
    ) -> Vars<'a> {
        Vars {
            title: &story.title,
            premise: story.premise.clone(),
            outline: story.outline.clone(),
            chapter_number: chapter.map_or(0, |c| c.number),
            chapter_title: chapter.map_or("", |c| c.title.as_str()),
            chapter_count,
            previous: &story.previous,
            brief: story.brief.clone(),
            ..Vars::default()
        }
    }

    pub fn outline(&self, story: &StoryContext, chapters: u32) -> Result<BuiltPrompt, GenError> {
        let vars = Self::base_vars(story, None, chapters);
        self.fit(&self.templates.outline, vars, story, None, Flex::None)
    }

    pub fn chapter(
        &self,
        story: &StoryContext,
        chapter: &ChapterRequest,
    ) -> Result<BuiltPrompt, GenError> {
        let mut vars = Self::base_vars(story, Some(chapter), chapter.total);
        vars.previous_tail = story.previous_tail.clone();
        self.fit(
            &self.templates.chapter,
            vars,
            story,
            Some(chapter.number),
            Flex::PreviousTail,
        )
    }

    pub fn continuation(
        &self,
        story: &StoryContext,
        chapter: &ChapterRequest,
        so_far: &str,
    ) -> Result<BuiltPrompt, GenError> {
        let mut vars = Self::base_vars(story, Some(chapter), chapter.total);
        vars.text_so_far = so_far.to_string();
        self.fit(
            &self.templates.continuation,
            vars,
            story,
            Some(chapter.number),
            Flex::TextSoFar,
        )
    }

    pub fn summary(
        &self,
        story: &StoryContext,
        chapter: &ChapterRequest,
        text: &str,
    ) -> Result<BuiltPrompt, GenError> {
        let mut vars = Self::base_vars(story, Some(chapter), chapter.total);
        vars.chapter_text = text.to_string();
        self.fit(
            &self.templates.summary,
            vars,
            story,
            Some(chapter.number),
            Flex::ChapterText,
        )
    }

    fn render(&self, template: &Template, vars: &Vars<'_>) -> (Prompt, u32) {
        let prompt = Prompt {
            system: self.templates.system.render(vars),
            user: template.render(vars),
        };
        let tokens = estimate_tokens(&prompt.system)
            + estimate_tokens(&prompt.user)
            + 2 * MESSAGE_OVERHEAD_TOKENS;
        (prompt, tokens)
    }

    /// Fills `template` within the budget: first without the flexible parts
    /// (trimming the outline, then the premise, if even that is too much),
    /// then the flexible text and the newest summaries that still fit.
    fn fit(
        &self,
        template: &Template,
        mut vars: Vars<'_>,
        story: &StoryContext,
        chapter: Option<u32>,
        flex: Flex,
    ) -> Result<BuiltPrompt, GenError> {
        let budget = self.prompt_budget();
        let mut trimmed = Vec::new();
        let flexible = flex.take(&mut vars);
        // The outline may take at most a third of the budget, so that the
        // story so far keeps room; beyond that only the part from the current
        // chapter on is sent.
        let outline_cap = chars_for_tokens(budget / 3);
        let outline_chars = vars.outline.chars().count();
        if outline_chars > outline_cap {
            vars.outline = outline_window(&vars.outline, chapter, outline_cap);
            trimmed.push(format!(
                "outline cut to {} of {outline_chars} characters, from chapter {}",
                vars.outline.chars().count(),
                chapter.unwrap_or(1)
            ));
        }
        let (_, mut fixed) = self.render(template, &vars);
        if fixed > budget && !vars.premise.is_empty() {
            let over = chars_for_tokens(fixed - budget) + 1;
            let keep = vars.premise.chars().count().saturating_sub(over);
            vars.premise = vars.premise.chars().take(keep).collect();
            trimmed.push(format!("premise cut to {keep} characters"));
            fixed = self.render(template, &vars).1;
        }
        if fixed > budget {
            return Err(GenError::permanent(
                FailureCode::ContextBudget,
                format!(
                    "the prompt needs about {fixed} tokens before any story text, over the budget of {budget}; raise --llm-context-tokens (now {})",
                    self.context_tokens
                ),
            ));
        }
        let mut chosen = bible::BibleFit::default();
        if template_uses(template, Var::Bible) {
            let ranked = bible::ranked(story, chapter);
            chosen = bible::fit(&ranked, chars_for_tokens(budget - fixed) / 3);
            vars.bible = chosen.text.clone();
            if !chosen.left_out.is_empty() {
                trimmed.push(format!(
                    "{} bible entries left out: {}",
                    chosen.left_out.len(),
                    bible::name_list(&chosen.left_out)
                ));
            }
        }
        let (_, fixed) = self.render(template, &vars);
        let room = chars_for_tokens(budget.saturating_sub(fixed));
        fit_flexible(&mut vars, flex, &flexible, room, &mut trimmed);
        let (_, used) = self.render(template, &vars);
        let room = chars_for_tokens(budget.saturating_sub(used));
        if template_uses(template, Var::StorySoFar) {
            fit_story_so_far(&mut vars, chapter, room, &mut trimmed);
        } else {
            vars.story_so_far = String::new();
        }
        let (prompt, estimated_tokens) = self.render(template, &vars);
        Ok(BuiltPrompt {
            prompt,
            estimated_tokens,
            budget,
            trimmed,
            bible_used: chosen.used,
            bible_left_out: chosen.left_out,
        })
    }
}

/// The flexible text (the tail, or the text to continue or summarise) gets
/// up to half of what is left (the tail) or three quarters (the others),
/// keeping room for the summaries.
fn fit_flexible(
    vars: &mut Vars<'_>,
    flex: Flex,
    flexible: &str,
    room: usize,
    trimmed: &mut Vec<String>,
) {
    if flexible.is_empty() {
        return;
    }
    let wanted = flexible.chars().count();
    let by_design = match flex {
        Flex::PreviousTail => TAIL_CHARS,
        Flex::ChapterText => chars_for_tokens(SUMMARY_SOURCE_TOKENS),
        Flex::None | Flex::TextSoFar => usize::MAX,
    };
    let cap = match flex {
        Flex::PreviousTail => by_design.min(room / 2),
        _ => by_design.min(room * 3 / 4),
    };
    let text = flex.shorten(flexible, cap);
    // Only a cut below the designed length, for lack of room, is worth
    // reporting.
    let designed = wanted.min(by_design);
    if text.chars().count() + 2 < designed {
        trimmed.push(format!(
            "{} cut to {} of {wanted} characters",
            flex.name(),
            text.chars().count()
        ));
    }
    flex.put(vars, text);
}

/// The story so far, newest first, while it fits in `room` characters:
/// the recent chapters' summaries, then the earlier chapters' digest lines
/// while the digest has room; once one line does not fit, the older ones
/// are left out too.
fn fit_story_so_far(
    vars: &mut Vars<'_>,
    chapter: Option<u32>,
    mut room: usize,
    trimmed: &mut Vec<String>,
) {
    let mut digest_room = chars_for_tokens(EARLIER_DIGEST_TOKENS);
    let mut kept: Vec<String> = Vec::new();
    let mut dropped = Vec::new();
    for (index, (number, line)) in story_so_far_lines(vars, chapter).into_iter().enumerate() {
        let cost = line.chars().count() + 1;
        let in_digest = index >= RECENT_SUMMARIES;
        let fits = cost <= room && (!in_digest || cost <= digest_room);
        if fits && dropped.is_empty() {
            room -= cost;
            if in_digest {
                digest_room -= cost;
            }
            kept.push(line);
        } else {
            dropped.push(number);
        }
    }
    kept.reverse();
    vars.story_so_far = kept.join("\n");
    if let (Some(first), Some(last)) = (dropped.iter().min(), dropped.iter().max()) {
        trimmed.push(format!("summaries of chapters {first}-{last} left out"));
    }
}

/// The story-so-far lines for the chapters before `chapter`, newest first,
/// with their chapter numbers: the [`RECENT_SUMMARIES`] newest whole, the
/// earlier ones by the first sentence of their summary.
fn story_so_far_lines(vars: &Vars<'_>, chapter: Option<u32>) -> Vec<(u32, String)> {
    vars.previous
        .iter()
        .rev()
        .filter(|gist| chapter.is_none_or(|n| gist.number < n))
        .enumerate()
        .map(|(index, gist)| {
            let line = if index < RECENT_SUMMARIES {
                format!(
                    "- Chapter {} ({}): {}",
                    gist.number,
                    gist.title.trim(),
                    gist.summary.trim()
                )
            } else {
                format!(
                    "- Chapter {}: {}",
                    gist.number,
                    first_sentence(gist.summary.trim())
                )
            };
            (gist.number, line)
        })
        .collect()
}

/// The text up to and including its first sentence end (`.`, `!`, `?`,
/// or a closing quote after one), or the whole text without one.
fn first_sentence(text: &str) -> &str {
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        if matches!(c, '.' | '!' | '?' | '…') {
            let next = chars.peek().map(|&(_, next)| next);
            match next {
                None => return text,
                Some(n) if n.is_whitespace() => return &text[..at + c.len_utf8()],
                Some('"' | '”' | '’' | '\'') => {
                    let (quote_at, quote) = chars.next().unwrap_or((at, c));
                    return &text[..quote_at + quote.len_utf8()];
                }
                Some(_) => {}
            }
        }
    }
    text
}

/// The part of a prompt that may be shortened to fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flex {
    None,
    PreviousTail,
    TextSoFar,
    ChapterText,
}

impl Flex {
    fn name(self) -> &'static str {
        match self {
            Flex::None => "nothing",
            Flex::PreviousTail => "previous chapter's tail",
            Flex::TextSoFar => "text to continue",
            Flex::ChapterText => "chapter text to summarise",
        }
    }

    fn take(self, vars: &mut Vars<'_>) -> String {
        match self {
            Flex::None => String::new(),
            Flex::PreviousTail => std::mem::take(&mut vars.previous_tail),
            Flex::TextSoFar => std::mem::take(&mut vars.text_so_far),
            Flex::ChapterText => std::mem::take(&mut vars.chapter_text),
        }
    }

    fn put(self, vars: &mut Vars<'_>, text: String) {
        match self {
            Flex::None => {}
            Flex::PreviousTail => vars.previous_tail = text,
            Flex::TextSoFar => vars.text_so_far = text,
            Flex::ChapterText => vars.chapter_text = text,
        }
    }

    /// Tails keep their end (what comes next follows it); a chapter to
    /// summarise keeps its beginning and end.
    fn shorten(self, text: &str, max_chars: usize) -> String {
        let count = text.chars().count();
        if count <= max_chars {
            return text.to_string();
        }
        match self {
            Flex::ChapterText => {
                let half = max_chars.saturating_sub(5) / 2;
                let head: String = text.chars().take(half).collect();
                let tail: String = text.chars().skip(count - half).collect();
                format!("{head} […] {tail}")
            }
            _ => {
                let tail: String = text
                    .chars()
                    .skip(count - max_chars.saturating_sub(2))
                    .collect();
                format!("…{}", tail.trim_start())
            }
        }
    }
}

/// At most `keep` characters of the outline, from the lines around the
/// current chapter's heading (the past matters less than what comes next).
fn outline_window(outline: &str, chapter: Option<u32>, keep: usize) -> String {
    let entries = crate::progress::parse_outline(outline);
    let start_line = chapter
        .and_then(|n| entries.iter().find(|e| e.number == n))
        .map_or(1, |e| e.line)
        .saturating_sub(1);
    let lines: Vec<&str> = outline.lines().collect();
    let mut out = String::new();
    for line in lines.iter().skip(start_line) {
        if out.chars().count() + line.chars().count() + 1 > keep {
            break;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

mod bible;
mod template;

#[cfg(test)]
mod tests;
