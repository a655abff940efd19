//! Reading a manuscript into a story: the text is split at its chapter
//! headings (the outline reader's heading forms, through
//! [`crate::progress::chapter_headings`]) and saved with
//! [`Store::import_story`], each chapter as a version `imported`. The API
//! (`POST /api/stories/import`) and the CLI (`story import`) both come here.
//!
//! Decisions, since nobody was there to ask:
//! - a chapter's text is its body lines joined with `\n`, without leading
//!   and trailing blank lines; nothing else is touched;
//! - before the first heading, a `# Title` line (the first non-blank one)
//!   is the title when none is given, and the rest is the premise when none
//!   is given; when a title is given the `# Title` line is dropped;
//! - a heading with no text under it is not imported: it stays in the
//!   outline, so a run writes that chapter;
//! - the outline is built from the headings (`## Chapter N: Title`) unless
//!   one is given, so a run knows the imported chapters by their titles;
//! - an explicit `chapter_count` below the last imported chapter is refused:
//!   the story would end before chapters it has.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::progress::{ChapterHeading, chapter_headings};
use crate::store::{ImportedChapter, NewStory, Store, Story};

/// What an import is asked to do: the body of `POST /api/stories/import`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {
    #[serde(default)]
    pub title: Option<String>,
    /// The manuscript, Markdown or plain text.
    pub markdown: String,
    #[serde(default)]
    pub chapter_count: Option<u32>,
    #[serde(default)]
    pub premise: Option<String>,
    #[serde(default)]
    pub outline: Option<String>,
    /// The story fields of `POST /api/stories`; absent ones take their
    /// defaults.
    #[serde(default)]
    pub author: Option<String>,
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub pov: Option<String>,
    #[serde(default)]
    pub tense: Option<String>,
    #[serde(default)]
    pub style: Option<String>,
    #[serde(default)]
    pub target_words: Option<u32>,
}

/// A manuscript split and ready to save.
#[derive(Debug, Clone)]
pub struct Manuscript {
    pub story: NewStory,
    pub chapters: Vec<ImportedChapter>,
}

/// What an import saved.
#[derive(Debug, Clone, Serialize)]
pub struct Imported {
    pub story: Story,
    pub chapters_imported: usize,
}

/// Splits and saves a manuscript as a new story, in one transaction.
pub fn import_manuscript(store: &Store, request: ImportRequest) -> Result<Imported> {
    let manuscript = split_manuscript(request)?;
    let story = store.import_story(&manuscript.story, &manuscript.chapters)?;
    Ok(Imported {
        story,
        chapters_imported: manuscript.chapters.len(),
    })
}

/// Splits a manuscript at its chapter headings into a story and chapters.
pub fn split_manuscript(request: ImportRequest) -> Result<Manuscript> {
    let text = request.markdown.as_str();
    let headings = chapter_headings(text);
    let Some(first) = headings.first() else {
        return Err(Error::validation(
            "markdown",
            "no chapter headings found; start each chapter with a heading such as `## Chapter 1: Arrival` or `Chapter One`",
        ));
    };
    let lines: Vec<&str> = text.lines().collect();
    let front = FrontMatter::read(&lines[..first.line.min(lines.len())]);
    let chapters: Vec<ImportedChapter> = headings
        .iter()
        .map(|heading| chapter_of(&lines, heading))
        .filter(|chapter| !chapter.content.is_empty())
        .collect();
    let Some(last) = chapters.last() else {
        return Err(Error::validation(
            "markdown",
            "the chapter headings have no text under them; put each chapter's text below its heading",
        ));
    };
    if let Some(count) = request.chapter_count
        && count < last.number
    {
        return Err(Error::validation(
            "chapter_count",
            format!(
                "is {count}, but the manuscript has chapter {}; give at least {}",
                last.number, last.number
            ),
        ));
    }
    let title = request.title.or(front.title).ok_or_else(|| {
        Error::validation(
            "title",
            "give a title, or start the manuscript with a `# Title` line",
        )
    })?;
    let defaults = NewStory::default();
    let story = NewStory {
        title,
        premise: request.premise.unwrap_or(front.premise),
        outline: request.outline.unwrap_or_else(|| outline_of(&headings)),
        chapter_count: request.chapter_count,
        author: request.author.unwrap_or(defaults.author),
        language: request.language.unwrap_or(defaults.language),
        pov: request.pov.unwrap_or(defaults.pov),
        tense: request.tense.unwrap_or(defaults.tense),
        style: request.style.unwrap_or(defaults.style),
        target_words: request.target_words.unwrap_or(defaults.target_words),
    };
    Ok(Manuscript { story, chapters })
}

/// The text before the first chapter heading.
struct FrontMatter {
    title: Option<String>,
    premise: String,
}

impl FrontMatter {
    fn read(lines: &[&str]) -> FrontMatter {
        let mut rest = lines;
        let mut title = None;
        if let Some(index) = lines.iter().position(|line| !line.trim().is_empty())
            && let Some(heading) = lines[index].trim_start().strip_prefix("# ")
            && !heading.trim().is_empty()
        {
            title = Some(heading.trim().to_string());
            rest = &lines[index + 1..];
        }
        FrontMatter {
            title,
            premise: trim_blank_lines(rest).join("\n"),
        }
    }
}

fn chapter_of(lines: &[&str], heading: &ChapterHeading) -> ImportedChapter {
    let start = heading.body.start.min(lines.len());
    let end = heading.body.end.clamp(start, lines.len());
    ImportedChapter {
        number: heading.number,
        title: heading.title.clone(),
        content: trim_blank_lines(&lines[start..end]).join("\n"),
    }
}

/// The lines without the blank ones at either end.
fn trim_blank_lines<'a, 'b>(lines: &'b [&'a str]) -> &'b [&'a str] {
    let blank = |line: &&str| line.trim().is_empty();
    let start = lines.iter().position(|l| !blank(l)).unwrap_or(lines.len());
    let end = lines
        .iter()
        .rposition(|l| !blank(l))
        .map_or(start, |i| i + 1);
    &lines[start..end]
}

/// An outline with one `## Chapter N: Title` line per heading.
fn outline_of(headings: &[ChapterHeading]) -> String {
    headings
        .iter()
        .map(|heading| match heading.title.trim() {
            "" => format!("## Chapter {}", heading.number),
            title => format!("## Chapter {}: {title}", heading.number),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(markdown: &str) -> Result<Manuscript> {
        split_manuscript(ImportRequest {
            markdown: markdown.into(),
            ..Default::default()
        })
    }

    #[test]
    fn chapters_keep_their_text_byte_for_byte_without_the_blank_edges() {
        let text = "# The Salt Road\n\nA courier crosses a drowned country.\n\n## Chapter 1: Arrival\n\n  Indented first line.\n\n\tTabbed “quote” — dash.  \n\n\n## Chapter 2: The Ferry\nTwo.\n";
        let manuscript = split(text).unwrap();
        assert_eq!(manuscript.story.title, "The Salt Road");
        assert_eq!(
            manuscript.story.premise,
            "A courier crosses a drowned country."
        );
        assert_eq!(
            manuscript.story.outline,
            "## Chapter 1: Arrival\n## Chapter 2: The Ferry"
        );
        assert_eq!(manuscript.chapters.len(), 2);
        assert_eq!(manuscript.chapters[0].title, "Arrival");
        assert_eq!(
            manuscript.chapters[0].content,
            "  Indented first line.\n\n\tTabbed “quote” — dash.  "
        );
        assert_eq!(manuscript.chapters[1].content, "Two.");
    }

    #[test]
    fn given_fields_win_over_the_manuscript() {
        let manuscript = split_manuscript(ImportRequest {
            title: Some("Given".into()),
            premise: Some("P".into()),
            outline: Some("O".into()),
            chapter_count: Some(4),
            markdown: "# Ignored\nfront text\n## Chapter 1: A\nText.".into(),
            language: Some("French".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(manuscript.story.title, "Given");
        assert_eq!(manuscript.story.premise, "P");
        assert_eq!(manuscript.story.outline, "O");
        assert_eq!(manuscript.story.chapter_count, Some(4));
        assert_eq!(manuscript.story.language, "French");
        assert_eq!(
            manuscript.story.target_words, 1500,
            "absent fields keep their defaults"
        );
    }

    #[test]
    fn a_manuscript_without_chapter_headings_is_refused() {
        let err = split("# A Title\n\nJust prose, no chapters.").unwrap_err();
        assert!(err.to_string().contains("no chapter headings"), "{err}");
    }

    #[test]
    fn a_missing_title_and_a_short_chapter_count_are_refused() {
        let err = split("## Chapter 1: A\nText.").unwrap_err();
        assert!(err.to_string().contains("title"), "{err}");
        let err = split_manuscript(ImportRequest {
            title: Some("T".into()),
            chapter_count: Some(1),
            markdown: "## Chapter 1: A\nText.\n## Chapter 2: B\nMore.".into(),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("chapter 2"), "{err}");
    }

    #[test]
    fn a_heading_without_text_stays_in_the_outline_only() {
        let manuscript = split("# T\n## Chapter 1: A\nText.\n## Chapter 2: B\n\n").unwrap();
        assert_eq!(manuscript.chapters.len(), 1);
        assert!(manuscript.story.outline.contains("Chapter 2: B"));
    }
}
