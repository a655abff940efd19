//! Checks an outline's numbering and says what would surprise a writer
//! mid-run: no chapter found in a non-empty outline, gaps, duplicates,
//! disorder, and a chapter count that differs from the explicit one.
//!
//! At most one warning per chapter line, and at most [`MAX_LISTED`] of those
//! (then one line saying how many more): a pasted outline with ten thousand
//! duplicate lines gets a readable answer, and the answer stays small.

use std::collections::HashSet;

use super::line::{LineKind, Special};
use super::{Numbered, numbered};

/// Problems listed one by one; the rest are counted.
const MAX_LISTED: usize = 20;

/// What a writer is told when an outline names no chapter.
const NO_CHAPTER_FOUND: &str = "no chapter found in the outline, so the chapter count does not \
come from it; write one line per chapter, such as `Chapter 1: Title`, `## Chapter One - Title`, \
`Ch. 1: Title`, `**Chapter I:** Title`, `## 1. Title`, `1. Title`, `Prologue` or `Epilogue`, \
under `# Part One` headings if the story has parts";

/// Problems in an outline that would surprise a writer mid-run (see the
/// module docs). Empty when the outline is empty or its numbering is clean.
pub fn check_outline(outline: &str, explicit_count: Option<u32>) -> Vec<String> {
    let (chapters, _, _) = numbered(outline, true);
    if chapters.is_empty() {
        return if outline.trim().is_empty() {
            Vec::new()
        } else {
            vec![NO_CHAPTER_FOUND.to_string()]
        };
    }
    let mut warnings = Vec::new();
    let mut unlisted = 0usize;
    let mut seen = HashSet::new();
    // The chapter with the highest number so far.
    let mut highest: Option<&Numbered> = None;
    let mut epilogue_seen = false;
    for chapter in &chapters {
        if let Some(problem) = problem(chapter, highest, &mut seen, epilogue_seen) {
            if warnings.len() < MAX_LISTED {
                warnings.push(format!(
                    "line {}: {}",
                    chapter.entry.line,
                    problem.describe(chapter)
                ));
            } else {
                unlisted += 1;
            }
        }
        epilogue_seen |= chapter.kind == LineKind::Special(Special::Epilogue);
        if highest.is_none_or(|h| chapter.entry.number > h.entry.number) {
            highest = Some(chapter);
        }
    }
    if unlisted > 0 {
        warnings.push(format!("and {unlisted} more numbering problems like these"));
    }
    if let Some(explicit) = explicit_count
        && explicit as usize != seen.len()
    {
        warnings.push(format!(
            "the chapter count is {explicit} but the outline names {} chapters",
            seen.len()
        ));
    }
    warnings
}

/// What is wrong with a chapter's place in the outline; `highest` is the
/// chapter with the highest number before it.
enum Problem<'a> {
    Duplicate,
    StartsLate,
    AfterEpilogue,
    LatePrologue { highest: &'a Numbered },
    Disorder { highest: &'a Numbered },
    Gap { highest: &'a Numbered },
}

fn problem<'a>(
    chapter: &Numbered,
    highest: Option<&'a Numbered>,
    seen: &mut HashSet<u32>,
    epilogue_seen: bool,
) -> Option<Problem<'a>> {
    let number = chapter.entry.number;
    if !seen.insert(number) {
        return Some(Problem::Duplicate);
    }
    let Some(highest) = highest else {
        return (number > 1).then_some(Problem::StartsLate);
    };
    if epilogue_seen {
        Some(Problem::AfterEpilogue)
    } else if chapter.kind == LineKind::Special(Special::Prologue) {
        Some(Problem::LatePrologue { highest })
    } else if number < highest.entry.number {
        Some(Problem::Disorder { highest })
    } else if number > highest.entry.number + 1 {
        Some(Problem::Gap { highest })
    } else {
        None
    }
}

impl Problem<'_> {
    fn describe(&self, chapter: &Numbered) -> String {
        let this = label(chapter);
        match self {
            Problem::Duplicate => format!("{this} appears more than once"),
            Problem::StartsLate => format!(
                "the outline starts at {this}; {}",
                missing(1, chapter.entry.number - 1)
            ),
            Problem::AfterEpilogue => format!("{this} comes after the epilogue"),
            Problem::LatePrologue { highest } => format!(
                "the prologue comes after {}; a prologue opens the story",
                label(highest)
            ),
            Problem::Disorder { highest } => format!("{this} comes after {}", label(highest)),
            Problem::Gap { highest } => {
                // Within one numbering (same offset) the writer's own
                // numbers say what is missing; across a restart only the
                // story's numbers can.
                let gap = match (chapter.entry.written, highest.entry.written) {
                    (Some(written), Some(before)) if chapter.offset == highest.offset => {
                        missing(before + 1, written - 1)
                    }
                    _ => format!(
                        "the story's {}",
                        missing(highest.entry.number + 1, chapter.entry.number - 1)
                    ),
                };
                format!("{this} follows {}; {gap}", label(highest))
            }
        }
    }
}

/// `chapter 3`, `chapter 1 (the story's chapter 6)`, `the prologue`.
fn label(chapter: &Numbered) -> String {
    match (chapter.kind, chapter.entry.written) {
        (LineKind::Special(special), _) => format!("the {}", special.name().to_lowercase()),
        (_, Some(written)) if written != chapter.entry.number => format!(
            "chapter {written} (the story's chapter {})",
            chapter.entry.number
        ),
        _ => format!("chapter {}", chapter.entry.number),
    }
}

fn missing(first: u32, last: u32) -> String {
    if first == last {
        format!("chapter {first} is missing")
    } else {
        format!("chapters {first}-{last} are missing")
    }
}
