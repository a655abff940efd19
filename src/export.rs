//! Turning a story into a document a reader can take away: Markdown.

use crate::store::{Chapter, Story};

/// The whole story as Markdown: title, premise, then each chapter in order.
pub fn markdown(story: &Story, chapters: &[Chapter]) -> String {
    let mut out = format!("# {}\n\n", story.title.trim());
    if !story.premise.trim().is_empty() {
        out.push_str(&format!(
            "> {}\n\n",
            story.premise.trim().replace('\n', "\n> ")
        ));
    }
    for chapter in chapters {
        out.push_str(&format!(
            "## Chapter {}: {}\n\n{}\n\n",
            chapter.number,
            chapter.title.trim(),
            chapter.content.trim()
        ));
    }
    out
}

/// A file name made from a title: lowercase ASCII words joined by dashes.
pub fn file_stem(title: &str) -> String {
    let stem: String = title
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect::<String>()
        .split('-')
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    let stem: String = stem.chars().take(60).collect();
    if stem.is_empty() {
        "story".into()
    } else {
        stem
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_stems_are_safe() {
        assert_eq!(file_stem("The Storm: Part 2!"), "the-storm-part-2");
        assert_eq!(file_stem("\"; rm -rf /"), "rm-rf");
        assert_eq!(file_stem("日本"), "story");
    }
}
