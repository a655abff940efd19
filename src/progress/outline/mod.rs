//! Finds the chapters an outline names, checks its numbering, and finds the
//! chapter headings a manuscript is split at.
//!
//! A chapter line is, at the start of a line and in any Markdown (`#`
//! heading, `-`/`*` list item, `>` quote, `**bold**`):
//! - `Chapter 3`, `Chapter Three` (one to ninety-nine, `Twenty-One`),
//!   `Chapter III`, `Ch. 3`, `Ch 3`, `Chap. 3`;
//! - `Prologue`, `Interlude` and `Epilogue`, each a chapter of its own;
//! - `3.` or `3)`, as a heading (`## 3. Arrival`, `**3. Arrival**`) or as a
//!   list item (`3. Arrival`).
//!
//! The label is followed by the end of the line, a separator (`:`, `.`, `)`,
//! ` - `, ` — `, ` – `) or a title. Without a separator the title must not
//! start with a lower-case word unless the line is a heading or bold, so
//! prose that opens with "Chapter 3 is where…" is not a chapter line; prose
//! that mentions a chapter in mid-sentence never is.
//!
//! Which lines count, decided once the whole text is read:
//! - Only lines at the outermost indent among chapter lines count: indented
//!   lines are notes under a chapter.
//! - When any line names a chapter (`Chapter`/`Ch.`), numbered lines are
//!   notes; otherwise numbered headings are the chapters, and numbered list
//!   items only when there are no numbered headings.
//! - `Part One`, `Book 2`, `Act III`, `Volume 1` group chapters; they are not
//!   chapters.
//!
//! Numbering (the "running" number is the story's chapter number, the
//! written one is kept for warnings): without parts, prologue, interlude or
//! epilogue the written number is the chapter number. A prologue, interlude or epilogue is
//! the chapter after the last one, and the chapters after it move up by one
//! (a prologue is chapter 1, `Chapter 1` after it is chapter 2). At the first
//! numbered chapter after a part heading or a prologue/interlude, a written
//! `1` restarts (it runs on from the chapters before) and a written number
//! that is already the next running number is taken as written; any other
//! number keeps the current offset and is warned about.
//!
//! Titles come out without Markdown (`**`, `#`, a trailing `:` or dash). A
//! `Chapter N` line without a title takes the next non-blank line as its
//! title when that line reads as one (short, not a list item, not ending
//! like a sentence or a label: `CHAPTER ONE` / `The Letter`); otherwise it
//! is titled `Chapter N` with its running number. A prologue, interlude or
//! epilogue keeps its name in the title (`Prologue`, `Prologue: The Fire`)
//! so the generator knows what it writes.
//! `Interlude` is a chapter because writers list it to have it written; a
//! part heading is not, because it has no text of its own.
//!
//! Not understood (an outline in these forms gets the "no chapter found"
//! warning): unnumbered headings (`## The Storm`), tables, ordinals
//! (`First Chapter`), and Roman-numbered list items (`IV. The Storm`, which
//! in formal outlines are parts).
//!
//! The forms are pinned by the corpus in `tests/data/outlines/` (one file
//! per outline, read by `corpus.rs`).
//!
//! The scan is one pass over the text, line by line, each line read at most
//! twice (the line below an untitled chapter line is also read as its title)
//! with no backtracking; choosing and numbering is one pass over the lines found:
//! linear in the input whatever it holds.

mod check;
mod line;
mod number;

#[cfg(test)]
mod corpus;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::ops::Range;

use line::{ClassifiedLine, LineKind, classify, title_below_heading};
use number::MAX_CHAPTER_NUMBER;

pub use check::check_outline;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutlineEntry {
    /// The story's chapter number (running on across parts).
    pub number: u32,
    /// The number as written (`Chapter 1` in Part Two), `None` for a
    /// prologue, interlude or epilogue.
    pub written: Option<u32>,
    pub title: String,
    /// 1-based line of the outline it came from.
    pub line: usize,
}

/// A chapter heading in a manuscript, with the lines of its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChapterHeading {
    /// The story's chapter number (running on across parts).
    pub number: u32,
    pub written: Option<u32>,
    pub title: String,
    /// 0-based index of the heading in `text.lines()`.
    pub line: usize,
    /// The chapter's text as indexes into `text.lines()`: from the line after
    /// the heading up to the next chapter or part heading, or the end.
    pub body: Range<usize>,
}

/// A chapter line, with where it came from.
struct Found {
    index: usize,
    line: ClassifiedLine,
    /// The line the title was read from when it is not the heading's own
    /// (`CHAPTER ONE` / `The Letter`).
    title_line: Option<usize>,
}

/// A chapter line with its running number; `offset` is running minus written
/// (two chapters with the same offset can be compared by written number).
struct Numbered {
    entry: OutlineEntry,
    offset: u64,
    kind: LineKind,
    title_line: Option<usize>,
}

/// Every chapter line, in the order written (duplicates and gaps kept, for
/// [`check_outline`]).
pub fn outline_entries(outline: &str) -> Vec<OutlineEntry> {
    numbered(outline, true)
        .0
        .into_iter()
        .map(|numbered| numbered.entry)
        .collect()
}

/// The chapters of an outline: one per distinct number, in the order first
/// written. Its length is the outline's chapter count.
pub fn parse_outline(outline: &str) -> Vec<OutlineEntry> {
    let mut seen = HashSet::new();
    numbered(outline, true)
        .0
        .into_iter()
        .map(|numbered| numbered.entry)
        .filter(|entry| seen.insert(entry.number))
        .collect()
}

/// The chapter headings of a manuscript, to split it into chapters: the same
/// lines as in an outline, except numbered list items (`3. …`), which in a
/// manuscript are lists, not headings.
pub fn chapter_headings(text: &str) -> Vec<ChapterHeading> {
    let (chapters, boundaries, line_count) = numbered(text, false);
    let mut boundaries = boundaries.into_iter().peekable();
    let mut headings = Vec::with_capacity(chapters.len());
    for numbered in chapters {
        let index = numbered.entry.line - 1;
        while boundaries.next_if(|&boundary| boundary <= index).is_some() {}
        let end = boundaries.peek().copied().unwrap_or(line_count);
        headings.push(ChapterHeading {
            number: numbered.entry.number,
            written: numbered.entry.written,
            title: numbered.entry.title,
            line: index,
            body: numbered.title_line.unwrap_or(index) + 1..end,
        });
    }
    headings
}

/// Scans the text once: the chapter lines and part headings, and how many
/// lines there are.
fn scan(text: &str, numbered_items: bool) -> (Vec<Found>, usize) {
    let mut found: Vec<Found> = Vec::new();
    let mut line_count = 0;
    // A `Chapter N` line without a title, waiting for the next non-blank
    // line, which may be its title.
    let mut untitled: Option<usize> = None;
    for (index, text) in text.lines().enumerate() {
        line_count = index + 1;
        if let Some(line) = classify(text, numbered_items) {
            let waits = line.title.is_empty() && matches!(line.kind, LineKind::Named { .. });
            untitled = waits.then_some(found.len());
            found.push(Found {
                index,
                line,
                title_line: None,
            });
        } else if let Some(position) = untitled
            && !text.trim().is_empty()
        {
            untitled = None;
            if let Some(title) = title_below_heading(text) {
                found[position].line.title = title;
                found[position].title_line = Some(index);
            }
        }
    }
    (found, line_count)
}

/// The chapters, numbered, and the 0-based indexes of every line that ends a
/// chapter's text (chapter and part headings), and the line count.
fn numbered(text: &str, numbered_items: bool) -> (Vec<Numbered>, Vec<usize>, usize) {
    let (found, line_count) = scan(text, numbered_items);
    let chosen = choose(found);
    let boundaries = chosen.iter().map(|found| found.index).collect();
    (number_chapters(chosen), boundaries, line_count)
}

/// Keeps part headings and the lines that are chapters (see the module docs).
fn choose(mut found: Vec<Found>) -> Vec<Found> {
    // One pass: the outermost indent of a chapter line, and which kinds of
    // chapter line appear at it.
    let mut outermost = usize::MAX;
    let (mut named, mut headings) = (false, false);
    for Found { line, .. } in &found {
        if line.kind == LineKind::Part || line.indent > outermost {
            continue;
        }
        if line.indent < outermost {
            outermost = line.indent;
            (named, headings) = (false, false);
        }
        named |= matches!(line.kind, LineKind::Named { .. });
        headings |= matches!(line.kind, LineKind::NumberedHeading { .. });
    }
    found.retain(|Found { line, .. }| match line.kind {
        LineKind::Part => true,
        _ if line.indent != outermost => false,
        LineKind::Named { .. } | LineKind::Special(_) => true,
        LineKind::NumberedHeading { .. } => !named,
        LineKind::NumberedItem { .. } => !named && !headings,
    });
    found
}

/// Gives each chapter its running number (see the module docs); chapters
/// that would be numbered past the largest chapter number are dropped.
fn number_chapters(chosen: Vec<Found>) -> Vec<Numbered> {
    let mut chapters = Vec::with_capacity(chosen.len());
    let mut offset: u64 = 0;
    let mut last: u64 = 0;
    let mut segment_start = false;
    for Found {
        index,
        line,
        title_line,
    } in chosen
    {
        let running = match line.kind.written() {
            None if line.kind == LineKind::Part => {
                segment_start = true;
                continue;
            }
            None => {
                offset += 1;
                segment_start = true;
                last + 1
            }
            Some(written) => {
                let written = u64::from(written);
                if segment_start && last > 0 {
                    if written == 1 {
                        offset = last;
                    } else if written == last + 1 {
                        offset = 0;
                    }
                }
                segment_start = false;
                written + offset
            }
        };
        let Ok(number) = u32::try_from(running) else {
            continue;
        };
        if number > MAX_CHAPTER_NUMBER {
            continue;
        }
        last = last.max(running);
        let title = if line.title.is_empty() {
            format!("Chapter {number}")
        } else {
            line.title
        };
        chapters.push(Numbered {
            entry: OutlineEntry {
                number,
                written: line.kind.written(),
                title,
                line: index + 1,
            },
            offset,
            kind: line.kind,
            title_line,
        });
    }
    chapters
}
