//! Prompt templates: parsing `{name}` placeholders (with `{{`/`}}` for
//! literal braces), the five templates storyflow uses and where they come
//! from (compiled in, or `serve --prompts DIR`), and rendering one with the
//! values of a story.

use std::fmt;
use std::path::Path;

use crate::generator::{ChapterGist, StoryBrief};
use crate::store::DEFAULT_LANGUAGE;

/// What `{pov}` and `{tense}` say when the writer gave none.
pub const UNSET_POV: &str = "your choice; keep it the same throughout";
pub const UNSET_TENSE: &str = "your choice; keep it the same throughout";
/// What `{style}` says when the writer gave no notes on tone and voice.
pub const UNSET_STYLE: &str = "your choice, suited to the premise and the story so far";
/// What `{author}` says when the story names none.
pub const UNSET_AUTHOR: &str = "(not given)";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Var {
    Title,
    Premise,
    Outline,
    ChapterNumber,
    ChapterTitle,
    ChapterCount,
    StorySoFar,
    PreviousTail,
    TextSoFar,
    ChapterText,
    Author,
    Language,
    Pov,
    Tense,
    Style,
    TargetWords,
    Bible,
}

const VARS: &[(&str, Var)] = &[
    ("title", Var::Title),
    ("premise", Var::Premise),
    ("outline", Var::Outline),
    ("chapter_number", Var::ChapterNumber),
    ("chapter_title", Var::ChapterTitle),
    ("chapter_count", Var::ChapterCount),
    ("story_so_far", Var::StorySoFar),
    ("previous_tail", Var::PreviousTail),
    ("text_so_far", Var::TextSoFar),
    ("chapter_text", Var::ChapterText),
    ("author", Var::Author),
    ("language", Var::Language),
    ("pov", Var::Pov),
    ("tense", Var::Tense),
    ("style", Var::Style),
    ("target_words", Var::TargetWords),
    ("bible", Var::Bible),
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Var(Var),
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    parts: Vec<Part>,
}

/// A template that cannot be used, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub origin: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.origin, self.line, self.message)
    }
}

impl Template {
    /// Parses `source`; `origin` names it in errors (a file path).
    pub fn parse(source: &str, origin: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut line = 1;
        let mut chars = source.chars().peekable();
        let error = |line: usize, message: String| TemplateError {
            origin: origin.to_string(),
            line,
            message,
        };
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    text.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some('\n') | None => {
                                return Err(error(
                                    line,
                                    format!(
                                        "`{{{name}` is not closed; write `{{{{` for a literal brace"
                                    ),
                                ));
                            }
                            Some(c) => name.push(c),
                        }
                    }
                    let Some((_, var)) = VARS.iter().find(|(known, _)| *known == name.trim())
                    else {
                        let known: Vec<String> =
                            VARS.iter().map(|(n, _)| format!("{{{n}}}")).collect();
                        return Err(error(
                            line,
                            format!(
                                "unknown placeholder `{{{name}}}`; known: {}",
                                known.join(", ")
                            ),
                        ));
                    };
                    if !text.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut text)));
                    }
                    parts.push(Part::Var(*var));
                }
                '}' => {
                    return Err(error(
                        line,
                        "a lone `}`; write `}}` for a literal brace".into(),
                    ));
                }
                c => {
                    if c == '\n' {
                        line += 1;
                    }
                    text.push(c);
                }
            }
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Template { parts })
    }

    pub(super) fn render(&self, vars: &Vars<'_>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Var(var) => out.push_str(&vars.get(*var)),
            }
        }
        out.trim().to_string()
    }
}

/// Values for one rendering.
#[derive(Debug, Clone, Default)]
pub(super) struct Vars<'a> {
    pub(super) title: &'a str,
    pub(super) premise: String,
    pub(super) outline: String,
    pub(super) chapter_number: u32,
    pub(super) chapter_title: &'a str,
    pub(super) chapter_count: u32,
    pub(super) story_so_far: String,
    pub(super) previous_tail: String,
    pub(super) text_so_far: String,
    pub(super) chapter_text: String,
    /// The bible entries chosen for this prompt, one line each.
    pub(super) bible: String,
    /// The chapters before this one, for `{story_so_far}`.
    pub(super) previous: &'a [ChapterGist],
    pub(super) brief: StoryBrief,
}

/// `text` trimmed, or `unset` when it is blank.
fn or_else(text: &str, unset: &str) -> String {
    let text = text.trim();
    if text.is_empty() { unset } else { text }.to_string()
}

impl Vars<'_> {
    fn get(&self, var: Var) -> String {
        let or_none = |text: &str| {
            if text.trim().is_empty() {
                "(none)".to_string()
            } else {
                text.trim().to_string()
            }
        };
        match var {
            Var::Title => self.title.trim().to_string(),
            Var::Premise => or_none(&self.premise),
            Var::Outline => or_none(&self.outline),
            Var::ChapterNumber => self.chapter_number.to_string(),
            Var::ChapterTitle => self.chapter_title.trim().to_string(),
            Var::ChapterCount => self.chapter_count.to_string(),
            Var::StorySoFar => {
                if self.story_so_far.is_empty() {
                    "(this is the first chapter)".into()
                } else {
                    self.story_so_far.clone()
                }
            }
            Var::PreviousTail => or_none(&self.previous_tail),
            Var::TextSoFar => self.text_so_far.trim().to_string(),
            Var::ChapterText => self.chapter_text.trim().to_string(),
            Var::Author => or_else(&self.brief.author, UNSET_AUTHOR),
            // Never empty in a stored story; a context built by hand may be.
            Var::Language => or_else(&self.brief.language, DEFAULT_LANGUAGE),
            Var::Pov => or_else(&self.brief.pov, UNSET_POV),
            Var::Tense => or_else(&self.brief.tense, UNSET_TENSE),
            Var::Style => or_else(&self.brief.style, UNSET_STYLE),
            Var::TargetWords => self.brief.target_words.to_string(),
            Var::Bible => or_none(&self.bible),
        }
    }
}

/// The five templates storyflow uses.
#[derive(Debug, Clone)]
pub struct Templates {
    pub(super) system: Template,
    pub(super) outline: Template,
    pub(super) chapter: Template,
    pub(super) continuation: Template,
    pub(super) summary: Template,
}

const BUILTIN_TEMPLATES: [(&str, &str); 5] = [
    (
        "system.txt",
        include_str!("../../../static/prompts/system.txt"),
    ),
    (
        "outline.txt",
        include_str!("../../../static/prompts/outline.txt"),
    ),
    (
        "chapter.txt",
        include_str!("../../../static/prompts/chapter.txt"),
    ),
    (
        "continue.txt",
        include_str!("../../../static/prompts/continue.txt"),
    ),
    (
        "summary.txt",
        include_str!("../../../static/prompts/summary.txt"),
    ),
];

impl Templates {
    /// The built-in templates, each overridden by a file of the same name in
    /// `overrides` when given. Files there that are not template names are
    /// refused, so a misspelt override does not go unnoticed.
    pub fn load(overrides: Option<&Path>) -> Result<Templates, TemplateError> {
        let mut parsed = Vec::new();
        if let Some(dir) = overrides {
            let entries = std::fs::read_dir(dir).map_err(|e| TemplateError {
                origin: dir.display().to_string(),
                line: 0,
                message: format!("cannot read the prompts directory: {e}"),
            })?;
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                // The stock phrase list lives beside the templates.
                if name.ends_with(".txt")
                    && name != crate::quality::STOCK_PHRASES_FILE
                    && !BUILTIN_TEMPLATES.iter().any(|(known, _)| *known == name)
                {
                    let known: Vec<&str> = BUILTIN_TEMPLATES.iter().map(|(n, _)| *n).collect();
                    return Err(TemplateError {
                        origin: entry.path().display().to_string(),
                        line: 0,
                        message: format!(
                            "not a prompt template name; templates are {}",
                            known.join(", ")
                        ),
                    });
                }
            }
        }
        for (name, builtin) in BUILTIN_TEMPLATES {
            let file = overrides
                .map(|dir| dir.join(name))
                .filter(|path| path.is_file());
            let template = match file {
                Some(path) => {
                    let origin = path.display().to_string();
                    let source = std::fs::read_to_string(&path).map_err(|e| TemplateError {
                        origin: origin.clone(),
                        line: 0,
                        message: format!("cannot read it: {e}"),
                    })?;
                    Template::parse(&source, &origin)?
                }
                None => Template::parse(builtin, &format!("static/prompts/{name} (built in)"))?,
            };
            parsed.push(template);
        }
        let mut parsed = parsed.into_iter();
        let mut next = || parsed.next().unwrap_or(Template { parts: Vec::new() });
        Ok(Templates {
            system: next(),
            outline: next(),
            chapter: next(),
            continuation: next(),
            summary: next(),
        })
    }
}

pub(super) fn template_uses(template: &Template, var: Var) -> bool {
    template.parts.contains(&Part::Var(var))
}
