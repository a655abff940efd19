//! Which entries of the story bible a prompt carries (`{bible}`), in what
//! order they are worth their room, and how they are written into it.
//!
//! Decisions:
//! - a chapter's prompt carries the pinned entries and those mentioned in
//!   what the chapter is given: its own outline entry, the end of the chapter
//!   before it, and the summaries of the chapters before it. A mention is the
//!   entry's name or an alias, case-insensitive, as a whole word (`Ann` is
//!   not mentioned by `Anna`). The summaries are looked at as the story has
//!   them, before the budget leaves older ones out: an entry a summary names
//!   matters even when that summary does not fit.
//! - the ranking, best first: pinned entries, then entries mentioned in the
//!   chapter's outline entry, then in the previous chapter's end, then in the
//!   summaries from the newest back; ties keep the bible's own order. When
//!   the budget is short, entries are left out from the end of this ranking
//!   (so the pinned ones go last), and every entry after the first one left
//!   out is left out too, so a later, less relevant entry never takes the
//!   place of an earlier one.
//! - a prompt with no chapter (the outline) may carry every entry, pinned
//!   first: the outline is where the cast is set out.
//! - an entry's description is cut (at a word) past
//!   [`MAX_DESCRIPTION_CHARS`] in the prompt, so one long entry cannot take
//!   the room of many; the stored description is not touched.

use crate::generator::StoryContext;
use crate::store::BibleEntry;

/// The most characters of one entry's description a prompt carries.
pub(super) const MAX_DESCRIPTION_CHARS: usize = 600;

/// The entries a prompt for `chapter` may carry, best first (see the module
/// documentation for the order); entries neither pinned nor mentioned are
/// not among them.
pub(super) fn ranked(story: &StoryContext, chapter: Option<u32>) -> Vec<&BibleEntry> {
    let Some(number) = chapter else {
        let (pinned, rest): (Vec<&BibleEntry>, Vec<&BibleEntry>) =
            story.bible.iter().partition(|entry| entry.pinned);
        return pinned.into_iter().chain(rest).collect();
    };
    let mut sources: Vec<String> = vec![
        outline_entry_text(&story.outline, number).to_lowercase(),
        story.previous_tail.to_lowercase(),
    ];
    sources.extend(
        story
            .previous
            .iter()
            .rev()
            .filter(|gist| gist.number < number)
            .map(|gist| format!("{}\n{}", gist.title, gist.summary).to_lowercase()),
    );
    let mut scored: Vec<(usize, usize, &BibleEntry)> = story
        .bible
        .iter()
        .enumerate()
        .filter_map(|(order, entry)| {
            if entry.pinned {
                return Some((0, order, entry));
            }
            sources
                .iter()
                .position(|source| mentions(source, entry))
                .map(|place| (place + 1, order, entry))
        })
        .collect();
    scored.sort_by_key(|(rank, order, _)| (*rank, *order));
    scored.into_iter().map(|(_, _, entry)| entry).collect()
}

/// Whether `lowered` (already lowercase) names the entry as a whole word.
fn mentions(lowered: &str, entry: &BibleEntry) -> bool {
    entry
        .names()
        .map(|name| name.trim().to_lowercase())
        .filter(|name| !name.is_empty())
        .any(|name| has_whole_word(lowered, &name))
}

fn has_whole_word(text: &str, word: &str) -> bool {
    let is_word_char = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices(word).any(|(start, _)| {
        let before = text[..start].chars().next_back();
        let after = text[start + word.len()..].chars().next();
        !before.is_some_and(is_word_char) && !after.is_some_and(is_word_char)
    })
}

/// The lines of the outline that belong to chapter `number`: its heading and
/// what follows up to the next chapter's heading. Empty when the outline
/// does not name it.
fn outline_entry_text(outline: &str, number: u32) -> String {
    let entries = crate::progress::outline_entries(outline);
    let Some(index) = entries.iter().position(|entry| entry.number == number) else {
        return String::new();
    };
    let start = entries[index].line.saturating_sub(1);
    let end = entries
        .iter()
        .map(|entry| entry.line.saturating_sub(1))
        .filter(|line| *line > start)
        .min()
        .unwrap_or(usize::MAX);
    outline
        .lines()
        .skip(start)
        .take(end - start)
        .collect::<Vec<_>>()
        .join("\n")
}

/// One entry as the prompt carries it:
/// `- Name (kind; also: Alias, Alias): description`.
pub(super) fn entry_line(entry: &BibleEntry) -> String {
    let mut line = format!("- {} ({}", entry.name.trim(), entry.kind);
    if !entry.aliases.is_empty() {
        line.push_str("; also: ");
        line.push_str(&entry.aliases.join(", "));
    }
    line.push(')');
    let description = entry.description.trim();
    if !description.is_empty() {
        line.push_str(": ");
        line.push_str(&cut_at_word(description, MAX_DESCRIPTION_CHARS));
    }
    line
}

fn cut_at_word(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let head: String = text.chars().take(max_chars).collect();
    let whole = head
        .rsplit_once(char::is_whitespace)
        .map_or(head.as_str(), |(whole, _)| whole);
    format!("{}…", whole.trim_end())
}

/// The most entry names one event message lists.
const MAX_NAMES_LISTED: usize = 12;

/// Names for an event message: at most [`MAX_NAMES_LISTED`], then how many
/// more (a bible of hundreds would drown the run's timeline).
pub(super) fn name_list(names: &[String]) -> String {
    let listed: Vec<&str> = names
        .iter()
        .take(MAX_NAMES_LISTED)
        .map(String::as_str)
        .collect();
    let mut text = listed.join(", ");
    if names.len() > MAX_NAMES_LISTED {
        text.push_str(&format!(" and {} more", names.len() - MAX_NAMES_LISTED));
    }
    text
}

/// The bible as one prompt carries it, and which entries are in it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct BibleFit {
    pub(super) text: String,
    pub(super) used: Vec<String>,
    pub(super) left_out: Vec<String>,
}

/// The ranked entries while they fit in `room` characters; from the first
/// one that does not, the rest are left out.
pub(super) fn fit(ranked: &[&BibleEntry], mut room: usize) -> BibleFit {
    let mut fitted = BibleFit::default();
    let mut lines: Vec<String> = Vec::new();
    for entry in ranked {
        let line = entry_line(entry);
        let cost = line.chars().count() + 1;
        if fitted.left_out.is_empty() && cost <= room {
            room -= cost;
            lines.push(line);
            fitted.used.push(entry.name.clone());
        } else {
            fitted.left_out.push(entry.name.clone());
        }
    }
    fitted.text = lines.join("\n");
    fitted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_words_only() {
        assert!(has_whole_word("anna met ann.", "ann"));
        assert!(!has_whole_word("anna met annie", "ann"));
        assert!(has_whole_word("the old mill, at dawn", "old mill"));
        assert!(!has_whole_word("bold miller", "old mill"));
        assert!(has_whole_word("élodie", "élodie"));
    }

    #[test]
    fn an_outline_entry_runs_to_the_next_heading() {
        let outline =
            "# Book\n## Chapter 1: Start\nMara leaves.\n## Chapter 2: Sea\nThe Gull sinks.\n";
        assert_eq!(
            outline_entry_text(outline, 2),
            "## Chapter 2: Sea\nThe Gull sinks."
        );
        assert_eq!(
            outline_entry_text(outline, 1),
            "## Chapter 1: Start\nMara leaves."
        );
        assert_eq!(outline_entry_text(outline, 3), "");
    }

    #[test]
    fn long_name_lists_are_counted_not_listed() {
        let names: Vec<String> = (1..=15).map(|n| format!("N{n}")).collect();
        assert_eq!(name_list(&names[..2]), "N1, N2");
        assert!(name_list(&names).ends_with("N12 and 3 more"));
    }

    #[test]
    fn long_descriptions_are_cut_at_a_word() {
        let cut = cut_at_word(&"word ".repeat(400), 50);
        assert!(cut.chars().count() <= 51 && cut.ends_with("word…"), "{cut}");
    }
}
